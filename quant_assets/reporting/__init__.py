"""Pictures of the pipeline's data for the Dagster UI: ``draw_*`` returns a matplotlib figure,
``render_png`` turns one into PNG bytes. Pure: may import ``errors`` (and the layers below it);
never the stages, ``orchestration`` or Dagster."""
