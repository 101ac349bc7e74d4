"""quant_assets: a Dagster lakehouse for a daily screen-to-portfolio quantitative workflow.

Layers, top to bottom (a module imports only from layers below its own; see the README's
Layout and the import contracts in ``pyproject.toml``): ``cli``; ``pipeline``, ``definitions``
and ``testing``; ``orchestration``; ``screening``, ``risk`` and ``reporting``; ``sources``;
``lakehouse``; ``instruments``; ``errors``.
"""

from __future__ import annotations

__version__ = "0.1.0"
