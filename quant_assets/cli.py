"""``quant-assets``: run the daily workflow over a range of days, run stages 1-2 alone, report what
the book earned, serve the fake scanner, or query the lakehouse with SQL.

Each command imports what it needs when it runs (Dagster, DuckDB, the market simulation), so
``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Sequence

from quant_assets.errors import QuantAssetsError
from quant_assets.sources.registry import SOURCES

if TYPE_CHECKING:
    import polars as pl

    from quant_assets.orchestration.runner import Progress

DEFAULT_DAYS = 7

PIT_QUERY = """
SELECT w.symbol, w.sleeve, round(w.weight, 4) AS weight, s.tick_size, s.pricescale,
       s.version, s.valid_from
FROM barbell_weights AS w
JOIN symbols_as_of(DATE '{day}') AS s USING (symbol)
WHERE w.date = DATE '{day}'
ORDER BY w.weight DESC, w.symbol
LIMIT 5
"""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


def _add_market_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="synthetic market seed")
    parser.add_argument("--instruments", type=int, default=1200, help="synthetic market size")


def _add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="screening config YAML (repeatable; default: every file in configs/)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quant-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialise all seven assets for a range of days")
    run.add_argument("--start", type=_date, help=f"first day (default: {DEFAULT_DAYS} days up to --end)")
    run.add_argument("--end", type=_date, help="last day (default: yesterday, UTC)")
    _add_config_arg(run)
    run.add_argument("--lakehouse", help="lakehouse root (default: $QUANT_ASSETS_LAKEHOUSE or data/lakehouse)")
    run.add_argument("--source", default="synthetic", choices=SOURCES, help="market data source")
    _add_market_args(run)
    run.add_argument("--verbose", action="store_true", help="show Dagster's event log on the console")

    screen = commands.add_parser("screen", help="run stages 1-2 (discovery, universe, signals) alone")
    _add_config_arg(screen)
    screen.add_argument("--source", default="synthetic", choices=SOURCES)
    screen.add_argument("--date", type=_date,
                        help="business day (default: today for tradingview, yesterday for synthetic)")
    screen.add_argument("--output", metavar="FILE", help="write the signals to FILE (.parquet or .csv)")
    screen.add_argument("--all", action="store_true", help="include rejected candidates with the gate that rejected them")
    screen.add_argument("--strict", action="store_true", help="stop at the first failed config")
    _add_market_args(screen)

    report = commands.add_parser("report", help="what the book and its benchmarks earned: table and tearsheet")
    report.add_argument("--start", type=_date, help="first day (default: the first portfolio_returns partition)")
    report.add_argument("--end", type=_date, help="last day (default: the newest portfolio_returns partition)")
    report.add_argument("--output", metavar="FILE",
                        help="write the tearsheet: a .png picture, or an .html page with the tables and the picture")
    report.add_argument("--lakehouse", help="lakehouse root")

    fake = commands.add_parser("fake-scanner", help="serve the synthetic market through the scanner's HTTP API")
    fake.add_argument("--port", type=int, default=8765)
    fake.add_argument("--date", type=_date, help="day served (default: today, UTC)")
    fake.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    fake.add_argument("--jitter", type=float, default=0.0, help="extra random latency, up to this many seconds")
    fake.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random fault per request")
    _add_market_args(fake)

    query = commands.add_parser("sql", help="run one read-only DuckDB SQL query over the lakehouse")
    query.add_argument("query", help='one SELECT statement, e.g. "SELECT * FROM regime ORDER BY date"')
    query.add_argument("--lakehouse", help="lakehouse root")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")

    doctor = commands.add_parser("doctor", help="list stray, corrupt, legacy and off-contract files (exit 1 if any)")
    doctor.add_argument("--lakehouse", help="lakehouse root")

    catalog = commands.add_parser("catalog", help="the point-in-time catalog for other DuckDB clients")
    actions = catalog.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write a DuckDB file with the lakehouse's views and macros")
    export.add_argument("path", help="the .duckdb file to write (replaced if it exists)")
    export.add_argument("--lakehouse", help="lakehouse root")
    return parser


def _print_progress(p: Progress) -> None:
    print(
        f"[{p.done}/{p.total}] partitions up to {p.day} done  elapsed {p.elapsed_s:6.1f}s  "
        f"ETA {p.eta_s:6.1f}s",
        flush=True,
    )


def _run(args: argparse.Namespace) -> int:
    import polars as pl

    from quant_assets.backtest.report import history
    from quant_assets.lakehouse import sql
    from quant_assets.pipeline import QuantitativePipeline, last_complete_day

    end = args.end or last_complete_day()
    start = args.start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise QuantAssetsError(f"--start {start} is after --end {end}")
    pipeline = QuantitativePipeline(
        lakehouse=args.lakehouse, source=args.source, seed=args.seed, n_instruments=args.instruments
    )
    print(f"Materialising {(end - start).days + 1} partitions {start}..{end} into {pipeline.store.root}")
    pipeline.run(start, end, args.config, on_progress=_print_progress,
                 log_level="DEBUG" if args.verbose else "WARNING")
    result = pipeline.result(end)
    regime = result.regime
    print(f"\n=== {end} ===")
    print(f"Regime: {regime['regime']}  (short vol {regime['vol_short']:.1%}, long vol "
          f"{regime['vol_long']:.1%}, ratio {regime['vol_ratio']:.2f}"
          + (f", dispersion ratio {regime['dispersion_ratio']:.2f})" if regime.get("dispersion_ratio") is not None
             else ")"))
    print(f"Signals: {result.signals.height} selected "
          f"({(result.signals['direction'] == 'LONG').sum()} LONG, "
          f"{(result.signals['direction'] == 'SHORT').sum()} SHORT)")
    with pl.Config(tbl_rows=10, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        for sleeve in ("core", "aggressor"):
            rows = result.weights.filter(pl.col("sleeve") == sleeve).sort("weight", descending=True)
            print(f"\nTop {sleeve} weights (sleeve total {rows['weight'].sum():.2%}):")
            print(rows.select("symbol", "direction", pl.col("weight").round(4)).head(5))
        print(f"\nPoint-in-time catalog: constituents' tick sizes as known on {end}:")
        print(sql.query(PIT_QUERY.format(day=end), pipeline.store.root))
    daily = history(pipeline.store, start, end)
    if daily.height:
        print(f"\nWhat the book earned, {start}..{end} (quant-assets report for more):")
        _print_performance(daily)
    return 0


def _screen(args: argparse.Namespace) -> int:
    import polars as pl
    from upath import UPath

    from quant_assets.lakehouse.store import write_parquet_atomic
    from quant_assets.pipeline import last_complete_day
    from quant_assets.screening.config import resolve_configs
    from quant_assets.screening.discovery import fetch_raw_screen
    from quant_assets.screening.gates import select_liquid_universe, select_signals
    from quant_assets.sources.registry import open_source

    if args.output and not args.output.endswith((".parquet", ".csv")):
        raise QuantAssetsError(f"--output {args.output}: expected a .parquet or .csv file name")
    configs = resolve_configs(args.config)
    source = open_source(args.source, seed=args.seed, n_instruments=args.instruments)
    day = args.date or (datetime.now(timezone.utc).date() if args.source == "tradingview"
                        else last_complete_day())
    fetched = fetch_raw_screen(source, configs, day, strict=args.strict)
    for name, why in sorted(fetched.failures.items()):
        print(f"quant-assets: config {name} failed: {why}", file=sys.stderr)
    universe = select_liquid_universe(fetched.frame, configs)
    signals = select_signals(universe, configs)
    shown = signals if args.all else signals.filter(pl.col("selected")).sort(["config", "rank"])
    if args.output:
        if args.output.endswith(".parquet"):
            write_parquet_atomic(shown, UPath(args.output))
        else:
            shown.write_csv(args.output)
        print(f"{shown.height} signals for {day} written to {args.output}")
    else:
        with pl.Config(tbl_rows=100, tbl_cols=12, tbl_width_chars=160,
                       tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):
            print(f"Signals for {day} ({args.source}):")
            print(shown.select("config", "rank", "symbol", "direction", "rejected_by", "alpha_field",
                               pl.col("alpha_value").round(2), pl.col("ADX").round(1), "tick_size"))
    return 1 if fetched.failures else 0


def _print_performance(daily: pl.DataFrame) -> None:
    import polars as pl

    from quant_assets.backtest.performance import performance, performance_by_regime

    shown = ["book", "days", "cumulative_return", "annual_return", "annual_volatility", "sharpe", "sortino",
             "max_drawdown", "calmar", "annual_turnover", "cost_drag", "hit_rate"]
    with pl.Config(tbl_rows=20, tbl_cols=20, tbl_width_chars=200, tbl_hide_column_data_types=True,
                   tbl_hide_dataframe_shape=True, float_precision=4):
        print(performance(daily).select(shown))
        print("\nBy regime (the regime on the day each book was decided):")
        print(performance_by_regime(daily).select("book", "regime", *shown[1:]))


def _report(args: argparse.Namespace) -> int:
    from quant_assets.backtest.report import history, html_report, tearsheet
    from quant_assets.lakehouse.store import PartitionStore
    from quant_assets.reporting.charts import render_png

    if args.output and not args.output.endswith((".html", ".png")):
        raise QuantAssetsError(f"--output {args.output}: expected a .html or .png file name")
    store = PartitionStore(args.lakehouse)
    daily = history(store, args.start, args.end)
    if daily.is_empty():
        raise QuantAssetsError(f"no portfolio_returns rows between {args.start or 'the start'} and "
                               f"{args.end or 'the end'} in {store.root}: materialise them first (quant-assets run)")
    first, last = daily["date"].min(), daily["date"].max()
    print(f"What the book earned, {first}..{last} (net of costs):")
    _print_performance(daily)
    if args.output:
        title = f"What the book earned, {first} to {last}"
        if args.output.endswith(".html"):
            data = html_report(daily, title).encode()
        else:
            data = render_png(tearsheet(daily)[0])
        with open(args.output, "wb") as fh:
            fh.write(data)
        print(f"\nwrote {args.output}")
    return 0


def _fake_scanner(args: argparse.Namespace) -> int:
    from quant_assets.testing.fake_scanner import serve

    serve(args.port, args.seed, args.instruments, args.date, args.latency,
          jitter_s=args.jitter, fault_rate=args.fault_rate)
    return 0


def _sql(args: argparse.Namespace) -> int:
    import polars as pl

    from quant_assets.lakehouse import sql

    frame = sql.query(args.query, args.lakehouse)
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(tbl_rows=50, tbl_cols=20, tbl_hide_column_data_types=True):
            print(frame)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from quant_assets.lakehouse.doctor import examine
    from quant_assets.lakehouse.store import PartitionStore

    store = PartitionStore(args.lakehouse)
    findings = examine(store)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} problem{'s' if len(findings) != 1 else ''} in {store.root}")
    return 1 if findings else 0


def _catalog(args: argparse.Namespace) -> int:
    from quant_assets.lakehouse import sql

    path = sql.export(args.path, args.lakehouse)
    print(f"wrote {path}: ATTACH '{path}' AS lake (READ_ONLY); USE lake; then the README's queries")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import duckdb

    try:
        commands = {"run": _run, "screen": _screen, "report": _report, "fake-scanner": _fake_scanner, "sql": _sql,
                    "doctor": _doctor, "catalog": _catalog}
        return commands[args.command](args)
    except (QuantAssetsError, duckdb.Error) as exc:
        print(f"quant-assets: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
