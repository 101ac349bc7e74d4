"""The exceptions quant_assets raises: one small tree under :class:`QuantAssetsError`.

Messages say what was wrong, where (file, key, symbol, partition) and what was expected.
"""

from __future__ import annotations


class QuantAssetsError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(QuantAssetsError):
    """A screening config or a setting is missing, malformed or impossible."""


class ValidationError(QuantAssetsError):
    """Data entering the core (a frame, an array, a response) breaks its contract."""


class SourceConnectionError(QuantAssetsError):
    """A market data source could not be reached after the allowed retries."""


class SourceResponseError(QuantAssetsError):
    """A market data source answered, but with an error or an unusable body."""


class OptimisationError(QuantAssetsError):
    """A portfolio optimisation is infeasible or its solver did not converge."""


class LakehouseError(QuantAssetsError):
    """A partition could not be written, read or found in the lakehouse."""


class AlertDeliveryError(QuantAssetsError):
    """An alert could not be delivered to its webhook after the allowed attempts."""
