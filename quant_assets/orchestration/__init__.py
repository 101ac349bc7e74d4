"""The Dagster layer: assets, resources, IO manager, jobs and the in-process runner."""
