"""Liquid Winners: hygiene and liquidity gates, then alpha gates and ranking.

Both stages keep every candidate and record in ``rejected_by`` the first gate it failed
(``null`` for survivors), so "why was X not selected on D?" is one query. Gates run in the
order of DESIGN.md §1; a gate that ranks (market-cap rank, de-duplication, base limit, rank
cut) ranks only the candidates still alive, within their config. Every rank breaks ties by
symbol, so results never depend on input order.
"""

from __future__ import annotations

from typing import Sequence

import polars as pl

from quant_assets.errors import ValidationError
from quant_assets.instruments import METADATA_COLUMNS, STABLECOINS, USD_QUOTES, normalise_metadata
from quant_assets.screening.config import ScreeningConfig

#: Instrument types with a market cap, by asset class: a coin's (every crypto instrument is on
#: one) and a company's. ETFs and other funds, structured products, futures and forex have none
#: (TradingView reports none), so the market-cap gates do not apply to them: a fund is never
#: rejected for lacking what it cannot have.
MARKET_CAP_TYPES: dict[str, frozenset[str] | None] = {
    "crypto": None,  # every type: spot, swap and futures are all on a coin
    "stock": frozenset({"stock", "dr"}),
}


def _has_market_cap() -> pl.Expr:
    """Whether the row's instrument type has a market cap (:data:`MARKET_CAP_TYPES`)."""
    rules = [
        (pl.col("asset_class") == asset_class)
        & (pl.lit(True) if types is None else pl.col("type").is_in(sorted(types)))
        for asset_class, types in MARKET_CAP_TYPES.items()
    ]
    return pl.any_horizontal(rules)


def asset_market_cap(frame: pl.DataFrame) -> pl.Series:
    """The market cap of each row's asset, in US dollars, one value per asset and config.

    TradingView's ``market_cap_calc`` is per listing: the coin's supply times the listing's
    own price, in the listing's quote currency (BTC has eleven listings with eleven values; one
    quoted in BTC counts in BTC). A coin's cap is the median over its listings quoted in dollars
    (:data:`~quant_assets.instruments.USD_QUOTES`) and applies to all its listings, so a rank
    counts coins, not listings; a coin with no dollar listing in the screen has no known cap. A
    company's is its own ``market_cap_calc`` when its currency is the dollar. Null for
    instrument types without a market cap.
    """
    in_usd = pl.col("quote").is_in(sorted(USD_QUOTES))
    coin = pl.col("market_cap_calc").filter(in_usd).median().over("config", "base")
    own = pl.when(in_usd).then(pl.col("market_cap_calc"))
    cap = pl.when(pl.col("asset_class") == "crypto").then(coin).otherwise(own)
    return frame.select(pl.when(_has_market_cap()).then(cap).alias("asset_market_cap")).to_series()


def _reject(frame: pl.DataFrame, gate: str, fails: pl.Expr) -> pl.DataFrame:
    """Mark still-alive rows where ``fails`` is true (or null) as rejected by ``gate``."""
    alive = pl.col("rejected_by").is_null()
    return frame.with_columns(
        rejected_by=pl.when(alive & fails.fill_null(True)).then(pl.lit(gate)).otherwise("rejected_by")
    )


def _alive_rank(frame: pl.DataFrame, by: str, descending: bool, *, dense: bool = False) -> pl.Series:
    """Rank of each alive row within its config by ``by`` (ties by symbol); null for the dead."""
    alive = frame.filter(pl.col("rejected_by").is_null()).sort(
        ["config", by, "symbol"], descending=[False, descending, False], nulls_last=True
    )
    if dense:
        rank = pl.col(by).rank("dense", descending=descending).over("config")
    else:
        rank = pl.int_range(1, pl.len() + 1).over("config")
    ranked = alive.with_columns(_rank=rank.cast(pl.Int64)).select("config", "symbol", "_rank")
    return frame.join(ranked, on=["config", "symbol"], how="left", maintain_order="left")["_rank"]


def select_liquid_universe(raw: pl.DataFrame, configs: Sequence[ScreeningConfig]) -> pl.DataFrame:
    """Apply hygiene, market-cap, volatility, liquidity, de-duplication and base-limit gates.

    Parameters
    ----------
    raw
        The raw screen: one row per (config, symbol) with the screener's columns.
    configs
        The configs named in ``raw.config``.

    Returns
    -------
    pl.DataFrame
        ``raw`` with normalised metadata, ``rejected_by`` (first failed gate or null) and
        ``in_universe``, sorted by (config, symbol).

    Notes
    -----
    De-duplication keeps, per (config, base), the alive row with the highest ``Value.Traded``,
    then the alphabetically first symbol: the same coin on several exchanges or quotes is
    represented once, by its most liquid listing.
    """
    unknown = set(raw["config"].unique()) - {c.name for c in configs}
    if unknown:
        raise ValidationError(f"raw screen has rows for unknown configs {sorted(unknown)}")
    normalised = normalise_metadata(raw)
    normalised = normalised.with_columns(asset_market_cap=asset_market_cap(normalised))
    out = pl.concat(
        [_universe_for_config(normalised.filter(pl.col("config") == c.name), c) for c in configs],
        how="diagonal_relaxed",
    )
    ordered = [*raw.columns, *[c for c in out.columns if c not in raw.columns]]
    return out.select(ordered).sort(["config", "symbol"])


def _universe_for_config(rows: pl.DataFrame, cfg: ScreeningConfig) -> pl.DataFrame:
    h = cfg.hygiene
    frame = rows.with_columns(rejected_by=pl.lit(None, pl.String))
    frame = _reject(frame, "hygiene.missing_data",
                    pl.col("close").is_null() | pl.col("Value.Traded").is_null())
    if h.exchanges:
        frame = _reject(frame, "hygiene.exchange", ~pl.col("exchange").is_in(h.exchanges))
    if h.quotes:
        frame = _reject(frame, "hygiene.quote", ~pl.col("quote").is_in(h.quotes))
    if h.include:
        frame = _reject(frame, "hygiene.include",
                        ~(pl.col("symbol").is_in(h.include) | pl.col("base").is_in(h.include)))
    if h.exclude:
        frame = _reject(frame, "hygiene.exclude",
                        pl.col("symbol").is_in(h.exclude) | pl.col("base").is_in(h.exclude))
    if not h.allow_perps:
        frame = _reject(frame, "hygiene.perpetual",
                        (pl.col("type") == "swap") | pl.col("ticker").str.ends_with(".P"))
    if not h.allow_dated_futures:
        # Continuous contracts end in "!" (ES1!); anything else typed futures has an expiry.
        frame = _reject(frame, "hygiene.dated_future",
                        (pl.col("type") == "futures") & ~pl.col("ticker").str.ends_with("!"))
    if h.exclude_stable_bases:
        frame = _reject(frame, "hygiene.stable_base",
                        (pl.col("asset_class") == "crypto") & pl.col("base").is_in(sorted(STABLECOINS)))
    # Market-cap gates: per asset, in dollars, only on types that have a market cap.
    capped = _has_market_cap()
    if cfg.market_cap.min > 0:
        frame = _reject(frame, "market_cap.min", capped & (pl.col("asset_market_cap") < cfg.market_cap.min))
    if cfg.market_cap.max_rank is not None:
        # Dense rank: every listing of one coin has the coin's cap, so they share its rank.
        with_cap = frame.filter(capped)
        ranks = with_cap.select("config", "symbol").with_columns(
            _cap_rank=_alive_rank(with_cap, "asset_market_cap", True, dense=True))
        frame = frame.join(ranks, on=["config", "symbol"], how="left", maintain_order="left")
        frame = _reject(frame, "market_cap.rank", capped & (pl.col("_cap_rank") > cfg.market_cap.max_rank))
        frame = frame.drop("_cap_rank")
    vol = pl.col("Volatility.D")
    too_wild = vol > cfg.volatility.max if cfg.volatility.max is not None else pl.lit(False)
    frame = _reject(frame, "volatility", (vol < cfg.volatility.min) | too_wild)
    frame = _reject(frame, "liquidity.value_traded",
                    pl.col("Value.Traded") < cfg.liquidity.min_value_traded)
    frame = _reject(frame, "liquidity.volume", pl.col("volume") < cfg.liquidity.min_volume)
    representative = (
        frame.filter(pl.col("rejected_by").is_null())
        .sort(["base", "Value.Traded", "symbol"], descending=[False, True, False])
        .group_by("base", maintain_order=True)
        .first()["symbol"]
    )
    frame = _reject(frame, "duplicate_base", ~pl.col("symbol").is_in(representative.implode()))
    frame = frame.with_columns(_liq_rank=_alive_rank(frame, "Value.Traded", True))
    frame = _reject(frame, "base_limit", pl.col("_liq_rank") > cfg.base_limit).drop("_liq_rank")
    return frame.with_columns(in_universe=pl.col("rejected_by").is_null())


def select_signals(universe: pl.DataFrame, configs: Sequence[ScreeningConfig]) -> pl.DataFrame:
    """Apply the alpha gates to each config's universe, rank survivors and tag LONG/SHORT.

    Momentum must point the config's declared way: above zero for LONG, below zero for SHORT;
    ``Recommend.All`` likewise against ``recommend_min``. Survivors are ranked by the config's
    ``alpha_field`` (highest first for LONG, lowest first for SHORT) and cut to ``limit``.

    Returns
    -------
    pl.DataFrame
        One row per universe member: metadata, ``direction``, ``alpha_field``,
        ``alpha_value``, ``rejected_by``, ``selected`` and ``rank`` (1 = best; null unless
        selected), sorted by (config, symbol).
    """
    members = universe.filter(pl.col("in_universe"))
    frames = [_signals_for_config(members.filter(pl.col("config") == c.name), c) for c in configs]
    columns = ["date", "config", *METADATA_COLUMNS, "direction", "selected", "rejected_by", "rank",
               "alpha_field", "alpha_value", "close", "Value.Traded", "market_cap_calc",
               "Volatility.D", "ADX", "Perf.W", "Perf.1M", "Perf.3M", "Recommend.All"]
    return pl.concat(frames, how="diagonal_relaxed").select(columns).sort(["config", "symbol"])


def _signals_for_config(rows: pl.DataFrame, cfg: ScreeningConfig) -> pl.DataFrame:
    t = cfg.trend
    sign = 1.0 if cfg.direction == "LONG" else -1.0
    if cfg.alpha_field not in rows.columns:
        raise ValidationError(
            f"{cfg.source_file or cfg.name}: alpha_field '{cfg.alpha_field}' is not in the screen"
        )
    frame = rows.with_columns(
        rejected_by=pl.lit(None, pl.String),
        direction=pl.lit(cfg.direction),
        alpha_field=pl.lit(cfg.alpha_field),
        alpha_value=pl.col(cfg.alpha_field).cast(pl.Float64),
    )
    frame = _reject(frame, "trend.adx", pl.col("ADX") < t.adx_min)
    if t.momentum:
        pointing = [(pl.col(h) * sign > 0) for h in t.momentum]
        agrees = pl.all_horizontal(pointing) if t.logic == "AND" else pl.any_horizontal(pointing)
        frame = _reject(frame, "trend.momentum", ~agrees)
    if t.recommend_min is not None:
        frame = _reject(frame, "trend.recommend", pl.col("Recommend.All") * sign < t.recommend_min)
    frame = _reject(frame, "trend.missing_alpha", pl.col("alpha_value").is_null())
    frame = frame.with_columns(_alpha_score=pl.col("alpha_value") * sign)
    frame = frame.with_columns(rank=_alive_rank(frame, "_alpha_score", True))
    frame = _reject(frame, "rank_cut", pl.col("rank") > cfg.limit)
    selected = pl.col("rejected_by").is_null()
    return frame.with_columns(
        selected=selected, rank=pl.when(selected).then(pl.col("rank"))
    ).drop("_alpha_score")


def selected_signals(signals: pl.DataFrame) -> pl.DataFrame:
    """The portfolio's legs: selected signals, one row per symbol (per day and symbol, when the
    frame holds several days' partitions).

    A symbol selected by several configs in the same direction is one leg; a symbol selected
    LONG by one config and SHORT by another is dropped, because the two cancel.
    """
    keys = ["date", "symbol"] if "date" in signals.columns else ["symbol"]
    chosen = signals.filter(pl.col("selected"))
    conflicted = chosen.group_by(keys).agg(pl.col("direction").n_unique().alias("n_dir")).filter(pl.col("n_dir") > 1)
    return (
        chosen.join(conflicted.select(keys), on=keys, how="anti")
        .sort([*keys, "config"])
        .unique(keys, keep="first", maintain_order=True)
    )
