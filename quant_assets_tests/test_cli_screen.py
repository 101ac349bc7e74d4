from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from quant_assets import cli
from quant_assets.testing.fake_scanner import FakeScanner
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig
from quant_assets.sources.tradingview import URL_ENV
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
    # SMA10 is in TradingView's field lists for crypto, but the synthetic screen lacks it.
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndirection: LONG\nmarkets: [crypto]\ncolumns: [SMA10]\n")
    code = cli.main([*ARGS, "--config", FUTURES, "--config", str(bad)])
    captured = capsys.readouterr()
    assert code == 1
    assert "config bad failed" in captured.err and "SMA10" in captured.err
    assert "us_futures_trend" in captured.out


def test_screen_refuses_a_config_asking_for_a_field_no_market_has(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndirection: LONG\nmarkets: [crypto]\ncolumns: [Not.A.Field]\n")
    assert cli.main([*ARGS, "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "key 'columns[0]': field 'Not.A.Field' is not available in any of the markets crypto" in err


def test_screen_rejects_unknown_output_suffix(tmp_path, capsys):
    assert cli.main([*ARGS, "--output", str(tmp_path / "s.xlsx")]) == 1
    assert "expected a .parquet or .csv" in capsys.readouterr().err


@pytest.fixture
def fake_scanner_url():
    """The fake scanner serving today's screen on 127.0.0.1, in a thread of its own."""
    market = SyntheticMarket(SyntheticMarketConfig(n_instruments=200, seed=3))
    today = datetime.now(timezone.utc).date()
    loop = asyncio.new_event_loop()
    fake = FakeScanner(market, today)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.__aenter__())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60)
    try:
        yield fake.url
    finally:
        asyncio.run_coroutine_threadsafe(fake.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_screen_live_source_against_fake_scanner(fake_scanner_url, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(URL_ENV, fake_scanner_url)
    out = tmp_path / "live.parquet"
    assert cli.main(["screen", "--source", "tradingview", "--config", FUTURES, "--output", str(out)]) == 0
    live = pl.read_parquet(out)
    assert live.height > 0 and (live["date"] == datetime.now(timezone.utc).date()).all()
    # The fake serves the synthetic market through the wire format: same signals either way.
    offline = tmp_path / "offline.parquet"
    today = datetime.now(timezone.utc).date().isoformat()
    assert cli.main(["screen", "--date", today, "--instruments", "200", "--seed", "3",
                     "--config", FUTURES, "--output", str(offline)]) == 0
    assert live.select("symbol", "rank").equals(pl.read_parquet(offline).select("symbol", "rank"))


def test_screen_live_source_refuses_future_dates(fake_scanner_url, monkeypatch, capsys):
    monkeypatch.setenv(URL_ENV, fake_scanner_url)
    tomorrow = (datetime.now(timezone.utc).date() + timedelta(days=1)).isoformat()
    code = cli.main(["screen", "--source", "tradingview", "--date", tomorrow, "--config", FUTURES])
    assert code == 1
    assert "knows nothing after today" in capsys.readouterr().err
