"""Lakehouse: the Parquet partition store, the point-in-time symbol catalog, DuckDB SQL."""
