"""`make bench`: run every benchmark in turn; each prints its own table."""

from __future__ import annotations

from benchmarks import (
    bench_aggressors,
    bench_backfill,
    bench_backtest,
    bench_catalog,
    bench_chart_feed,
    bench_deploy,
    bench_discovery,
    bench_regime,
    bench_risk,
    bench_screening,
    bench_synthetic,
)


def main() -> None:
    for module in (bench_synthetic, bench_discovery, bench_screening, bench_risk, bench_regime, bench_aggressors,
                   bench_catalog, bench_backfill, bench_backtest, bench_chart_feed, bench_deploy):
        print(f"\n## {module.__name__}\n", flush=True)
        module.main()


if __name__ == "__main__":
    main()
