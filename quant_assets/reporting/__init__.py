"""Pictures of the pipeline's data for the Dagster UI."""
