"""Stages 1-2: screening configs (YAML schema), discovery (every config's screen at once) and the
hygiene, liquidity and alpha gates that make the liquid universe and the signals. Pure: may
import ``sources`` (the query and the source interface), ``instruments`` and ``errors``; never
``risk``, ``reporting``, ``orchestration`` or Dagster."""
