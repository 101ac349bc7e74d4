"""Stage 3: settings, returns panel, covariance, regime, max diversification and the barbell;
``daily`` puts them together for one business day of each risk asset. Pure: may import the
lakehouse (the bars cache, the partition store), ``sources`` (the source interface),
``instruments`` and ``errors``; never ``screening``, ``reporting``, ``orchestration`` or
Dagster."""
