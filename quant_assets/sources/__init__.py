"""Market data sources: the common interface, the synthetic market, screener indicators."""
