from __future__ import annotations

import polars as pl

from quant_assets import cli
from quant_assets.screening.config import DEFAULT_CONFIG_DIR

FUTURES = str(DEFAULT_CONFIG_DIR / "us_futures_trend.yaml")

ARGS = ["screen", "--date", "2024-06-03", "--instruments", "200", "--seed", "3"]


def test_screen_prints_selected_signals(capsys):
    assert cli.main([*ARGS, "--config", FUTURES]) == 0
    out = capsys.readouterr().out
    assert "Signals for 2024-06-03 (synthetic)" in out and "us_futures_trend" in out


def test_screen_writes_parquet_and_csv(tmp_path, capsys):
    parquet, csv = tmp_path / "s.parquet", tmp_path / "s.csv"
    assert cli.main([*ARGS, "--output", str(parquet)]) == 0
    assert cli.main([*ARGS, "--output", str(csv), "--all"]) == 0
    chosen, everything = pl.read_parquet(parquet), pl.read_csv(csv)
    assert chosen.height > 0 and chosen["selected"].all()
    assert everything.height > chosen.height
    assert set(everything.filter(~pl.col("selected"))["rejected_by"]) - {None}
    assert set(chosen["direction"]) == {"LONG", "SHORT"}


def test_screen_exit_status_when_a_config_fails(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndirection: LONG\nmarkets: [crypto]\ncolumns: [Not.A.Field]\n")
    code = cli.main([*ARGS, "--config", FUTURES, "--config", str(bad)])
    captured = capsys.readouterr()
    assert code == 1
    assert "config bad failed" in captured.err and "Not.A.Field" in captured.err
    assert "us_futures_trend" in captured.out


def test_screen_rejects_unknown_output_suffix(tmp_path, capsys):
    assert cli.main([*ARGS, "--output", str(tmp_path / "s.xlsx")]) == 1
    assert "expected a .parquet or .csv" in capsys.readouterr().err
