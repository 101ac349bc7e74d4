"""quant_assets: a Dagster lakehouse for a daily screen-to-portfolio quantitative workflow."""

from __future__ import annotations

__version__ = "0.1.0"
