"""Lakehouse: the Parquet partition store, the daily-bars cache, the data contracts, the
point-in-time symbol catalog and DuckDB SQL over it all. Storage knows nothing of the layers that
use it: may import ``instruments`` and ``errors`` only."""
