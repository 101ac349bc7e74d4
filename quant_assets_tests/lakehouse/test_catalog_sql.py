from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from quant_assets.errors import LakehouseError, ValidationError
from quant_assets.lakehouse import sql
from quant_assets.lakehouse.catalog import build_observations, constituents_without_tick_size, missing_tick_sizes
from quant_assets.lakehouse.store import PartitionStore

D1, D2, D3, D4 = (date(2024, 1, d) for d in (1, 2, 3, 4))
T0 = datetime(2024, 6, 1, tzinfo=timezone.utc)


def _raw(day: date, btc_scale: int | None = 100) -> pl.DataFrame:
    return pl.DataFrame({
        "date": [day, day, day],
        "config": ["a", "b", "a"],
        "symbol": ["BINANCE:BTCUSDT", "BINANCE:BTCUSDT", "NASDAQ:AAPL"],
        "market": ["crypto", "crypto", "america"],
        "name": ["BTCUSDT", "BTCUSDT", "AAPL"],
        "exchange": ["BINANCE", "BINANCE", "NASDAQ"],
        "type": ["spot", "spot", "stock"],
        "currency": ["USDT", "USDT", "USD"],
        "close": [1.0, 1.0, 1.0], "volume": [1.0, 1.0, 1.0], "Value.Traded": [1.0, 1.0, 1.0],
        "pricescale": [btc_scale, btc_scale, 100], "minmov": [1, 1, 1],
    })


def _signals(symbols: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"symbol": symbols, "selected": [True] * len(symbols)},
                        schema={"symbol": pl.String, "selected": pl.Boolean})


def _write_days(store: PartitionStore, days: list[tuple[date, int | None]]) -> None:
    for i, (day, scale) in enumerate(days):
        obs = build_observations(_raw(day, scale), _signals(["BINANCE:BTCUSDT"]), day)
        store.write("metadata_catalog", day, obs, recorded_at=T0 + timedelta(hours=i))


def test_observations_one_row_per_symbol_with_tick_size():
    obs = build_observations(_raw(D1), _signals(["NASDAQ:AAPL"]), D1)
    assert obs["symbol"].to_list() == ["BINANCE:BTCUSDT", "NASDAQ:AAPL"]
    assert obs["tick_size"].to_list() == [0.01, 0.01]
    assert obs["in_signals"].to_list() == [False, True]
    assert missing_tick_sizes(obs) == []


def test_missing_tick_size_of_a_signal_is_reported():
    obs = build_observations(_raw(D1, btc_scale=None), _signals(["BINANCE:BTCUSDT"]), D1)
    assert missing_tick_sizes(obs) == ["BINANCE:BTCUSDT"]


def test_rows_stamped_with_another_day_are_rejected():
    with pytest.raises(ValidationError, match="metadata_catalog 2024-01-02"):
        build_observations(_raw(D1), _signals([]), D2)


def test_rematerialising_same_facts_adds_no_version_and_a_correction_keeps_the_old_one(tmp_path):
    store = PartitionStore(tmp_path)
    first = store.write("metadata_catalog", D1, build_observations(_raw(D1), _signals([]), D1), recorded_at=T0)
    again = store.write("metadata_catalog", D1, build_observations(_raw(D1), _signals([]), D1),
                        recorded_at=T0 + timedelta(days=3))
    assert again == first and len(store.versions("metadata_catalog", D1)) == 1
    fixed = build_observations(_raw(D1, 10), _signals([]), D1)
    store.write("metadata_catalog", D1, fixed, recorded_at=T0 + timedelta(days=3))
    # A correction is a new version beside the old one, which stays readable as known before.
    assert [v.recorded_at for v in store.versions("metadata_catalog", D1)] == [T0, T0 + timedelta(days=3)]
    assert store.read("metadata_catalog", D1).equals(fixed)
    assert store.read("metadata_catalog", D1, known_at=T0 + timedelta(days=1))["tick_size"].to_list() == [0.01, 0.01]
    with pytest.raises(LakehouseError, match="not after the live one"):
        store.write("metadata_catalog", D1, build_observations(_raw(D1, 1000), _signals([]), D1), recorded_at=T0)


def test_correction_keeps_what_was_known_before(tmp_path):
    store = PartitionStore(tmp_path)
    _write_days(store, [(D1, 100), (D2, 100), (D3, 100)])
    # Later, D2 is re-materialised with a corrected tick size: a new knowledge version.
    corrected_at = T0 + timedelta(days=30)
    store.write("metadata_catalog", D2, build_observations(_raw(D2, 10), _signals([]), D2), recorded_at=corrected_at)
    q = ("SELECT tick_size FROM symbols_as_of('{d}'{known}) WHERE symbol = 'BINANCE:BTCUSDT'")
    assert sql.query(q.format(d=D2, known=""), tmp_path).item() == 0.1
    before = f", TIMESTAMPTZ '{(corrected_at - timedelta(days=1)).isoformat()}'"
    assert sql.query(q.format(d=D2, known=before), tmp_path).item() == 0.01
    # As known now, D2 is its own version between two 0.01 versions.
    now = sql.query("SELECT version, tick_size, valid_from, valid_to FROM symbols "
                    "WHERE symbol = 'BINANCE:BTCUSDT' ORDER BY version", tmp_path)
    assert now.rows() == [(1, 0.01, D1, D2), (2, 0.1, D2, D3), (3, 0.01, D3, None)]


def test_versions_only_on_change_and_missing_field_never_wipes(tmp_path):
    store = PartitionStore(tmp_path)
    # BTC tick size 0.01, then 0.1 from D3; D4 observes no pricescale at all.
    _write_days(store, [(D1, 100), (D2, 100), (D3, 10), (D4, None)])
    versions = sql.query(
        "SELECT symbol, version, tick_size, valid_from, valid_to, last_seen FROM symbols "
        "ORDER BY symbol, version", tmp_path)
    btc = versions.filter(pl.col("symbol") == "BINANCE:BTCUSDT")
    assert btc.select("version", "tick_size", "valid_from", "valid_to", "last_seen").rows() == [
        (1, 0.01, D1, D3, D2),
        (2, 0.1, D3, None, D4),
    ]
    aapl = versions.filter(pl.col("symbol") == "NASDAQ:AAPL")
    assert aapl.height == 1 and aapl["valid_to"][0] is None


def test_symbols_as_of_and_out_of_order_backfill(tmp_path):
    in_order, shuffled = tmp_path / "a", tmp_path / "b"
    _write_days(PartitionStore(in_order), [(D1, 100), (D2, 100), (D3, 10)])
    _write_days(PartitionStore(shuffled), [(D3, 10), (D1, 100), (D2, 100)])
    q = ("SELECT symbol, tick_size, valid_from FROM symbols_as_of('{d}') "
         "WHERE symbol = 'BINANCE:BTCUSDT'")
    for root in (in_order, shuffled):
        assert sql.query(q.format(d=D2), root).rows() == [("BINANCE:BTCUSDT", 0.01, D1)]
        assert sql.query(q.format(d=D3), root).rows() == [("BINANCE:BTCUSDT", 0.1, D3)]
    cols = "symbol, version, tick_size, valid_from, valid_to"
    assert sql.query(f"SELECT {cols} FROM symbols ORDER BY ALL", in_order).equals(
        sql.query(f"SELECT {cols} FROM symbols ORDER BY ALL", shuffled))


def test_asset_views_have_date_column_and_skip_empty_assets(tmp_path):
    store = PartitionStore(tmp_path)
    for day in (D1, D2):
        store.write("regime", day, pl.DataFrame({"date": [day], "regime": ["QUIET"]}))
    frame = sql.query("SELECT date, regime FROM regime ORDER BY date", tmp_path)
    assert frame["date"].to_list() == [D1, D2]
    with sql.connect(tmp_path) as con:
        views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == {"regime"}


def test_constituents_without_tick_size_names_each_one():
    weights = pl.DataFrame({"symbol": ["BINANCE:BTCUSDT", "NASDAQ:AAPL", "NYSE:GONE"]})
    no_btc_tick = build_observations(_raw(D1, None), _signals([]), D1)
    assert constituents_without_tick_size(weights, no_btc_tick) == ["BINANCE:BTCUSDT", "NYSE:GONE"]
    assert constituents_without_tick_size(weights, build_observations(_raw(D1, 100), _signals([]), D1)) == [
        "NYSE:GONE"]


def test_symbols_unseen_for_30_days_are_retired_as_of_a_day(tmp_path):
    store = PartitionStore(tmp_path)
    _write_days(store, [(D1, 100)])
    later = D1 + timedelta(days=40)
    obs = build_observations(_raw(later, 100).filter(pl.col("symbol") == "NASDAQ:AAPL"), _signals([]), later)
    store.write("metadata_catalog", later, obs, recorded_at=T0 + timedelta(days=40))
    q = "SELECT symbol, active, last_observed FROM symbols_as_of('{d}'{extra}) ORDER BY symbol"
    for known in ("", ", TIMESTAMPTZ '2099-01-01 00:00:00+00'"):  # cached and derived paths
        assert sql.query(q.format(d=D1 + timedelta(days=29), extra=known), tmp_path).rows() == [
            ("BINANCE:BTCUSDT", True, D1), ("NASDAQ:AAPL", True, D1)]
        assert sql.query(q.format(d=later, extra=known), tmp_path).rows() == [
            ("BINANCE:BTCUSDT", False, D1), ("NASDAQ:AAPL", True, later)]


def test_versions_cache_follows_every_write(tmp_path):
    store = PartitionStore(tmp_path)
    _write_days(store, [(D1, 100), (D2, 100)])
    q = "SELECT tick_size FROM symbols_as_of('{d}') WHERE symbol = 'BINANCE:BTCUSDT'"
    assert sql.query(q.format(d=D2), tmp_path).item() == 0.01
    cache = tmp_path / "_cache" / "catalog"
    states = [p.name for p in cache.iterdir() if p.name != "current"]
    assert len(states) == 1 and (cache / "current").resolve().name == states[0]
    # A new day, and a rewrite of an old one, are seen at once: the cache is keyed by the files.
    store.write("metadata_catalog", D3, build_observations(_raw(D3, 10), _signals([]), D3),
                recorded_at=T0 + timedelta(days=3))
    assert sql.query(q.format(d=D3), tmp_path).item() == 0.1
    store.write("metadata_catalog", D2, build_observations(_raw(D2, 10), _signals([]), D2),
                recorded_at=T0 + timedelta(days=4))
    assert sql.query(q.format(d=D2), tmp_path).item() == 0.1
    live = sql.query("SELECT * FROM symbol_versions() ORDER BY symbol, version", tmp_path)
    assert sql.query("SELECT * FROM symbols ORDER BY symbol, version", tmp_path).equals(live)
