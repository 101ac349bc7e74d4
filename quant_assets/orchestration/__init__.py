"""The Dagster layer: assets, resources, IO manager, checks' metadata, jobs and the in-process
runner. Assets stay thin: each turns its partitions into dates, calls the stages through the
resources and returns frames with metadata. May import every layer below (screening, risk,
reporting, sources, lakehouse, instruments, errors) and Dagster; only this package and
``definitions.py`` import Dagster."""
