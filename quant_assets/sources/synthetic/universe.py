"""The synthetic market's instruments: crypto listings on several venues and quotes (exact and
near clones, pairs quoted in BTC, stablecoins), futures, US stocks and ETFs, forex pairs; their
listings, delistings and tick-size changes, and the per-instrument simulation parameters."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from quant_assets.sources.synthetic.config import Draw, SyntheticMarketConfig, child_rng
from quant_assets.sources.synthetic.tables import (
    COINS, CONVEX_PRODUCTS, CONVEX_STOCKS, CURRENCIES, DATED_ROOTS, EXACT_CLONE_EXCHANGES, FUTURES, FX_EXCHANGES,
    MAJOR_CURRENCIES, MICRO_FUTURES, PRIMARY_SLOTS, PRIMARY_WEIGHTS, QUARTER_CODES, QUOTE_USD,
    SECOND_MONTH_ROOTS, SECONDARY_SLOTS, SECTOR_BETA, STABLECOINS, STOCKS, USD_LIKE, VOLATILITY_PRODUCTS,
)

#: Columns of :attr:`SyntheticMarket.instruments`.
INSTRUMENT_COLUMNS: tuple[str, ...] = (
    "symbol",
    "exchange",
    "ticker",
    "description",
    "base",
    "quote",
    "market",
    "asset_class",
    "type",
    "subtype",
    "pointvalue",
    "listed_on",
    "delisted_on",
    "clone_of",
    "clone_kind",
    "calendar",
)

#: Asset classes, in the order of the simulation's class factors.
ASSET_CLASSES = ("crypto", "futures", "stock", "forex")
#: The scanner market that lists each asset class.
SCANNER_MARKETS = {"crypto": "crypto", "futures": "futures", "stock": "america", "forex": "forex"}

_NO_DELISTING = np.iinfo(np.int32).max
#: A tick-size change may coarsen a tick only up to this fraction of the instrument's price.
_MAX_COARSE_TICK = 1e-3


@dataclass
class _Spec:
    """One instrument while the universe is built: attributes plus simulation parameters."""

    symbol: str
    exchange: str
    ticker: str
    description: str
    base: str
    quote: str
    asset_class: str
    type: str
    subtype: str
    pointvalue: float = 1.0
    listed_day: int = -365
    delisted_day: int | None = None
    kind: str = "own"  # own | stable | exact | near | cross
    driver: str | None = None  # exact/near: the symbol copied; cross: the coin's primary
    cross_quote: str | None = None  # cross: the quote coin's primary (BTC)
    conv: float = 0.0  # near: log price offset from the driver
    basis: float = 0.0  # near/cross/stable: std of log-price noise around the driver
    price: float = 1.0  # own/stable: price at start, in the quote currency
    sigma: float = 0.02
    beta_global: float = 1.0
    beta_class: float = 1.0
    jump_prob: float = 0.0
    jump_scale: float = 0.0  # signed mean jump (log return)
    market_beta: float = 0.0  # volatility products: their payoff on the market (simulation.market_payoff)
    convexity: float = 0.0
    tail_hedge: float = 0.0
    gap_frac: float = 0.1
    range_frac: float = 0.4
    liquidity: float = 1e6  # median Value.Traded, quote currency
    supply: float | None = None  # coins and companies: market cap = supply x the listing's close
    pricescale: int = 100
    minmov: int = 1
    tick_change_day: int | None = None
    new_pricescale: int | None = None

    @property
    def market(self) -> str:
        return SCANNER_MARKETS[self.asset_class]

    @property
    def calendar(self) -> str:
        return "7d" if self.asset_class == "crypto" else "weekdays"


def _fresh_names(
    rng: np.random.Generator, count: int, lengths: tuple[int, int], taken: set[str]
) -> list[str]:
    """``count`` new upper-case tickers, unique and not in ``taken`` (which they join)."""
    names: list[str] = []
    while len(names) < count:
        batch = 2 * (count - len(names)) + 8
        sizes = rng.integers(lengths[0], lengths[1] + 1, batch)
        letters = rng.integers(ord("A"), ord("Z") + 1, (batch, lengths[1]), dtype=np.uint8)
        for size, row in zip(sizes, letters):
            name = row[:size].tobytes().decode("ascii")
            if name not in taken and len(names) < count:
                taken.add(name)
                names.append(name)
    return names


def _bounded(x: float, low: float, high: float) -> float:
    return min(max(float(x), low), high)


def _crypto_pricescale(price: float) -> int:
    return 10 ** int(_bounded(round(6 - math.log10(price)), 2, 10))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, low: float, high: float) -> float:
    return _bounded(median * math.exp(sigma * rng.standard_normal()), low, high)


def _listing_events(
    rng: np.random.Generator, late_prob: float, delist_prob: float, horizon: int = 1095
) -> tuple[int, int | None]:
    """A listing day (negative: listed before start) and maybe a delisting day."""
    listed = int(rng.integers(1, horizon)) if rng.random() < late_prob else -int(rng.integers(30, 2500))
    delisted = None
    if rng.random() < delist_prob:
        delisted = int(rng.integers(max(listed, 0) + 60, horizon + 60))
    return listed, delisted


def _crypto_specs(rng: np.random.Generator, budget: int, taken: set[str]) -> list[_Spec]:
    coins: list[tuple[str, str, float, float, int | None, int | None, bool]] = [
        (*row, False) for row in COINS
    ]
    for ticker, name, cap, listed, delisted, rank in STABLECOINS:
        coins.insert(rank, (ticker, name, 1.0, cap, listed, delisted, True))
    taken.update(row[0] for row in coins)
    taken.update(QUOTE_USD)
    scale = _bounded(budget / 12.0, 3.0, 16.0)
    generated_names = iter(_fresh_names(rng, budget, (3, 5), taken))  # at most one coin per listing
    specs: list[_Spec] = []
    symbols: set[str] = set()
    btc_primary = "BINANCE:BTCUSDT"
    rank = 0
    while len(specs) < budget:
        if rank < len(coins):
            ticker, name, price, cap, listed, delisted, stable = coins[rank]
            coin_listed = -int(rng.integers(200, 2500)) if listed is None else listed
            coin_delisted = delisted
            primary_exchange, primary_quote = "BINANCE", "USDT"
            sigma = {"BTC": 0.022, "ETH": 0.028}.get(ticker, _lognormal(rng, 0.035, 0.25, 0.015, 0.10))
        else:
            ticker = next(generated_names)
            name = ticker.title() + " Token"
            cap = _lognormal(rng, 2e9 * (rank / 40.0) ** -1.3, 0.6, 1e5, 5e10)
            price = _lognormal(rng, 0.5, 2.0, 1e-6, 5e4)
            stable = False
            coin_listed, coin_delisted = _listing_events(rng, late_prob=0.15, delist_prob=0.06)
            primary_exchange, primary_quote = PRIMARY_SLOTS[
                rng.choice(len(PRIMARY_SLOTS), p=PRIMARY_WEIGHTS)
            ]
            sigma = _lognormal(rng, 0.042, 0.3, 0.015, 0.12)
        slots = [
            s
            for s in SECONDARY_SLOTS
            if s[1] != ticker
            and (s[0], s[1], s[2]) != (primary_exchange, primary_quote, False)
            and not (ticker == "BTC" and s[1] == "BTC")
            and not (stable and (s[2] or s[1] == "BTC"))
        ]
        n_listings = min(len(slots) + 1, max(1, round(scale * (rank + 1) ** -0.55)), budget - len(specs))
        chosen: list[int] = []
        if n_listings > 1:
            weights = np.array([s[3] for s in slots])
            picks = rng.choice(len(slots), size=n_listings - 1, replace=False, p=weights / weights.sum())
            chosen = sorted(picks)
        elif not stable and budget - len(specs) > 1 and rng.random() < 0.3:
            # Many small coins with a single spot market still have a perpetual somewhere.
            perps = [i for i, slot in enumerate(slots) if slot[2]]
            chosen = [perps[int(rng.integers(len(perps)))]]
        beta_global = float(rng.normal(1.2, 0.25))
        beta_class = _bounded(rng.normal(1.0, 0.25), 0.2, 2.0)
        # Daily value traded: a few percent of market cap (stablecoins turn over far more).
        coin_liquidity = cap * (0.5 if stable else _lognormal(rng, 0.04, 0.7, 1e-4, 1.0))
        primary = f"{primary_exchange}:{ticker}{primary_quote}"
        for position, (exchange, quote, perp) in enumerate(
            [(primary_exchange, primary_quote, False)] + [slots[i][:3] for i in chosen]
        ):
            symbol = f"{exchange}:{ticker}{quote}{'.P' if perp else ''}"
            if symbol in symbols:  # e.g. X + FDUSD vs XFD + USD: keep the first
                if position == 0:
                    break
                continue
            symbols.add(symbol)
            spec = _Spec(
                symbol=symbol,
                exchange=exchange,
                ticker=f"{ticker}{quote}{'.P' if perp else ''}",
                description=f"{name} / {quote}{' Perpetual Swap Contract' if perp else ''}",
                base=ticker,
                quote=quote,
                asset_class="crypto",
                type="swap" if perp else "spot",
                subtype="perpetual" if perp else "crypto",
                sigma=0.0004 if stable else sigma,
                beta_global=beta_global,
                beta_class=beta_class,
                gap_frac=0.02,
                supply=cap / price,
            )
            spec.listed_day, spec.delisted_day = coin_listed, coin_delisted
            quote_price = price
            if position == 0:
                spec.kind = "stable" if stable else "own"
                spec.basis = 0.0004 if stable else 0.0
                spec.price = price
                spec.liquidity = coin_liquidity / QUOTE_USD[quote]
            else:
                spec.driver = primary
                share = _lognormal(rng, 0.15, 0.8, 1e-4, 1.0) * (2.0 if perp else 1.0)
                spec.liquidity = coin_liquidity * share / QUOTE_USD[quote]
                if quote == "BTC":
                    spec.kind, spec.cross_quote, spec.basis = "cross", btc_primary, 0.0005
                    quote_price = price / QUOTE_USD["BTC"]
                elif stable:
                    spec.kind, spec.basis = "near", 0.0003
                elif perp:
                    spec.kind, spec.basis = "near", 0.0008
                elif quote == "EUR":
                    spec.kind, spec.basis, spec.conv = "near", 0.001, -math.log(QUOTE_USD["EUR"])
                    quote_price = price / QUOTE_USD["EUR"]
                elif quote in USD_LIKE and exchange in EXACT_CLONE_EXCHANGES:
                    spec.kind = "exact"  # arbitrage keeps the big offshore venues in lockstep
                else:
                    spec.kind, spec.basis = "near", 0.0005
                # An exchange may add or drop a pair on its own schedule, within the coin's life.
                coin_end = 1155 if coin_delisted is None else coin_delisted
                late_day, drop_day = int(rng.integers(1, 1095)), int(rng.integers(60, 1155))
                if rng.random() < 0.06 and coin_listed < late_day < coin_end - 60:
                    spec.listed_day = late_day
                if rng.random() < 0.04 and max(spec.listed_day, 0) + 60 < drop_day < coin_end:
                    spec.delisted_day = drop_day
            spec.pricescale = _crypto_pricescale(quote_price)
            specs.append(spec)
        rank += 1
    return specs


def _futures_specs(rng: np.random.Generator, budget: int, start: date, taken: set[str]) -> list[_Spec]:
    taken.update(row[0] for row in FUTURES)
    taken.update(row[0] for row in MICRO_FUTURES)

    def continuous(
        root: str, exchange: str, name: str, sector: str, pointvalue: float, price: float,
        pricescale: int, minmov: int, sigma: float, value_traded: float,
    ) -> _Spec:
        return _Spec(
            symbol=f"{exchange}:{root}1!", exchange=exchange, ticker=f"{root}1!",
            description=f"{name} Futures", base=root, quote="USD", asset_class="futures",
            type="futures", subtype="continuous", pointvalue=pointvalue, price=price, sigma=sigma,
            beta_global=float(rng.normal(SECTOR_BETA[sector], 0.2)),
            beta_class=_bounded(rng.normal(1.0, 0.3), 0.2, 2.0), gap_frac=0.1,
            liquidity=value_traded, pricescale=pricescale, minmov=minmov,
            listed_day=-int(rng.integers(1000, 5000)),
        )

    def follower(lead: _Spec, ticker: str, base: str, description: str, subtype: str, conv: float,
                 pointvalue: float) -> _Spec:
        # Another contract month or a micro contract: the lead's returns plus basis noise.
        return _Spec(
            symbol=f"{lead.exchange}:{ticker}", exchange=lead.exchange, ticker=ticker,
            description=description, base=base, quote="USD", asset_class="futures", type="futures",
            subtype=subtype, pointvalue=pointvalue, kind="near", driver=lead.symbol, conv=conv,
            basis=0.002 if conv else 0.0002, liquidity=lead.liquidity * _lognormal(rng, 0.05, 0.8, 1e-4, 0.5),
            pricescale=lead.pricescale, minmov=lead.minmov, listed_day=lead.listed_day,
        )

    # In priority order: every root's front contract, second months, micros, dated contracts.
    leads = {row[0]: continuous(*row) for row in FUTURES}
    candidates = list(leads.values())
    for root in SECOND_MONTH_ROOTS:
        lead = leads[root]
        description = f"{lead.description} (second month)"
        candidates.append(
            follower(lead, f"{root}2!", root, description, "continuous", math.log(1.004), lead.pointvalue)
        )
    for micro, _, name, pointvalue, root in MICRO_FUTURES:
        candidates.append(
            follower(leads[root], f"{micro}1!", micro, f"{name} Futures", "continuous", 0.0, pointvalue)
        )
    for year in range(start.year, start.year + 4):
        for code, month in QUARTER_CODES:
            first = date(year, month, 1)
            expiry = first + timedelta(days=(4 - first.weekday()) % 7 + 14)  # third Friday
            for root in DATED_ROOTS:
                lead = leads[root]
                spec = follower(
                    lead, f"{root}{code}{year}", root, f"{lead.description} ({first:%b} {year})", "calendar",
                    math.log(1.003), lead.pointvalue,
                )
                # Listed a year before expiry; gone the day after its last trading day.
                spec.listed_day = (expiry - start).days - 365
                spec.delisted_day = (expiry - start).days + 1
                candidates.append(spec)
    specs = candidates[:budget]
    exchanges = ("CME", "NYMEX", "COMEX", "CBOT")
    sectors = ("index", "energy", "metals", "agricultural", "rates", "other")
    for root in _fresh_names(rng, budget - len(specs), (2, 3), taken):
        spec = continuous(
            root, exchanges[int(rng.integers(0, len(exchanges)))], f"{root} Commodity",
            sectors[int(rng.integers(0, len(sectors)))],
            float(rng.choice([5.0, 10.0, 20.0, 50.0, 100.0, 1000.0])),
            _lognormal(rng, 80.0, 1.2, 0.5, 20000.0),
            100, int(rng.choice([1, 5, 25])), _lognormal(rng, 0.012, 0.4, 0.003, 0.05),
            _lognormal(rng, 3e7, 1.5, 1e4, 1e10),
        )
        spec.listed_day, spec.delisted_day = _listing_events(rng, late_prob=0.03, delist_prob=0.03)
        specs.append(spec)
    return specs


def _stock_specs(rng: np.random.Generator, budget: int, taken: set[str]) -> list[_Spec]:
    taken.update(row[0] for row in (*STOCKS, *VOLATILITY_PRODUCTS))
    specs: list[_Spec] = []
    by_ticker: dict[str, _Spec] = {}
    products = VOLATILITY_PRODUCTS[:budget]
    rows = list(STOCKS[: budget - len(products)]) + list(products)
    generated = _fresh_names(rng, budget - len(rows), (3, 4), taken)
    for ticker in generated:
        fund = rng.random() < 0.15
        venue = rng.random()
        if fund:
            exchange = "AMEX" if venue < 0.7 else "NASDAQ"
        else:
            exchange = "NASDAQ" if venue < 0.55 else "NYSE"
        cap = _lognormal(rng, 2e9, 1.8, 2e7, 8e11)
        price = _lognormal(rng, 30.0, 1.0, 0.2, 3000.0)
        listed, delisted = _listing_events(rng, late_prob=0.08, delist_prob=0.05)
        name = f"{ticker} {'Sector ETF' if fund else 'Holdings Inc.'}"
        rows.append((ticker, exchange, name, price, cap, "fund" if fund else "stock", listed, delisted, None))
    for ticker, exchange, name, price, cap, kind, listed, delisted, clone_of in rows:
        fund = kind == "fund"
        spec = _Spec(
            symbol=f"{exchange}:{ticker}", exchange=exchange, ticker=ticker, description=name,
            base=ticker, quote="USD", asset_class="stock", type=kind, subtype="etf" if fund else "common",
            price=price,
            sigma=_lognormal(rng, *((0.007, 0.5, 0.002, 0.03) if fund else (0.015, 0.35, 0.006, 0.07))),
            beta_global=float(rng.normal(0.9, 0.4) if fund else rng.normal(1.0, 0.3)),
            beta_class=_bounded(rng.normal(1.0, 0.3), 0.1, 2.5),
            gap_frac=0.25,
            liquidity=cap * _lognormal(rng, 0.02 if fund else 0.008, 0.8, 1e-5, 0.5),
            supply=cap / price,
            pricescale=100 if price >= 1.0 else 10000,
        )
        spec.listed_day = -int(rng.integers(200, 8000)) if listed is None else listed
        spec.delisted_day = delisted
        if clone_of is not None:
            spec.kind, spec.driver = "near", f"{by_ticker[clone_of].symbol}"
            spec.conv, spec.basis = math.log(price / by_ticker[clone_of].price), 0.0003
        if ticker in CONVEX_STOCKS:
            spec.jump_prob, spec.jump_scale = 0.02, 4.0 * spec.sigma
        if ticker in CONVEX_PRODUCTS:
            # Tied to the market by their payoff alone; they turn over their assets quickly.
            spec.market_beta, spec.convexity, spec.tail_hedge = CONVEX_PRODUCTS[ticker]
            spec.beta_global = spec.beta_class = 0.0
            spec.sigma, spec.liquidity = 0.01, 0.3 * cap
        by_ticker[ticker] = spec
        specs.append(spec)
    return specs


def _forex_specs(rng: np.random.Generator, budget: int) -> list[_Spec]:
    order = {code: i for i, (code, _, _) in enumerate(CURRENCIES)}
    info = {code: (usd, vol) for code, usd, vol in CURRENCIES}

    def tier(a: str, b: str) -> int:
        pair = {a, b}
        if "USD" in pair:
            return 0 if pair & set(MAJOR_CURRENCIES) else 2
        if pair <= set(MAJOR_CURRENCIES):
            return 1
        return 3 if "EUR" in pair else 4

    codes = [code for code, _, _ in CURRENCIES]
    pairs = sorted(
        ((a, b) for i, a in enumerate(codes) for b in codes[i + 1 :]),
        key=lambda p: (tier(*p), max(order[p[0]], order[p[1]]), order[p[0]]),
    )
    # A pair on a second venue is a near clone of the FX feed; the top pairs are on most venues.
    ranked = sorted(
        (rank + 12 * venue, rank, venue)
        for rank in range(len(pairs))
        for venue in range(len(FX_EXCHANGES))
    )
    specs: list[_Spec] = []
    for _, rank, venue in ranked[:budget]:
        base, quote = pairs[rank]
        price = info[base][0] / info[quote][0]
        exchange = FX_EXCHANGES[venue]
        spec = _Spec(
            symbol=f"{exchange}:{base}{quote}", exchange=exchange, ticker=f"{base}{quote}",
            description=f"{base} / {quote}", base=base, quote=quote, asset_class="forex", type="forex",
            subtype=("major", "cross", "exotic", "exotic", "exotic")[tier(base, quote)], price=price,
            sigma=0.7 * max(info[base][1], info[quote][1]),
            beta_global=float(rng.normal(0.1, 0.15)), beta_class=float(rng.normal(1.0, 0.3)),
            gap_frac=0.05, liquidity=price * _lognormal(rng, 2e5, 0.5, 1e3, 1e7),
            pricescale=10 ** int(_bounded(round(5 - math.log10(price)), 2, 6)),
        )
        if venue:
            spec.kind, spec.driver, spec.basis = "near", f"FX:{base}{quote}", 0.0001
        spec.listed_day = -int(rng.integers(1000, 8000))
        specs.append(spec)
    return specs


@dataclass(frozen=True)
class Universe:
    """The instruments, sorted by symbol, as a frame and as simulation arrays."""

    frame: pl.DataFrame
    tick_history: pl.DataFrame
    arrays: dict[str, np.ndarray] = field(repr=False)


def build_universe(config: SyntheticMarketConfig) -> Universe:
    rng = child_rng(config.seed, Draw.UNIVERSE)
    n = config.n_instruments
    n_crypto, n_futures, n_forex = round(0.55 * n), round(0.10 * n), round(0.05 * n)
    taken: set[str] = set()
    specs = _crypto_specs(rng, n_crypto, taken)
    specs += _futures_specs(rng, n_futures, config.start, taken)
    specs += _forex_specs(rng, n_forex)
    specs += _stock_specs(rng, n - len(specs), taken)

    # Symbols are unique by construction: each asset class has its own exchanges.
    by_symbol = {spec.symbol: spec for spec in specs}
    own = [s for s in specs if s.kind == "own"]
    # Positive-skew (convex) and negative-skew (fragile) names, for antifragility scoring.
    for spec in own:
        if spec.asset_class == "forex" or spec.jump_prob or spec.convexity or spec.tail_hedge:
            continue
        draw = rng.random()
        if draw < 0.06:
            spec.jump_prob, spec.jump_scale = 0.01, 4.0 * spec.sigma
        elif draw < 0.09:
            spec.jump_prob, spec.jump_scale = 0.01, -4.0 * spec.sigma
    for spec in specs:
        if spec.kind in ("exact", "near", "cross"):
            lead = by_symbol[spec.driver or ""]
            spec.sigma, spec.gap_frac, spec.range_frac = lead.sigma, lead.gap_frac, lead.range_frac
            if spec.kind == "cross":
                spec.sigma = math.hypot(lead.sigma, by_symbol[spec.cross_quote or ""].sigma)
    # A few tick-size changes inside the first two years (at least three).
    n_changes = max(3, round(0.02 * n))
    for i in sorted(rng.choice(len(specs), size=n_changes, replace=False)):
        spec = specs[i]
        spec.tick_change_day = int(rng.integers(30, 730))
        finer = rng.random() < 0.5 or spec.pricescale < 10
        # No venue coarsens a tick to a sizeable part of the price (a tick of 2.5 on a 7-dollar
        # contract made a half tick cost a fifth of every trade in it).
        finer = finer or spec.minmov / (spec.pricescale // 10) > _MAX_COARSE_TICK * spec.price
        spec.new_pricescale = spec.pricescale * 10 if finer else spec.pricescale // 10

    specs.sort(key=lambda s: s.symbol)
    index = {spec.symbol: i for i, spec in enumerate(specs)}
    start = config.start

    def day(offset: int | None) -> date | None:
        return None if offset is None else start + timedelta(days=offset)

    frame = pl.DataFrame(
        {
            "symbol": [s.symbol for s in specs],
            "exchange": [s.exchange for s in specs],
            "ticker": [s.ticker for s in specs],
            "description": [s.description for s in specs],
            "base": [s.base for s in specs],
            "quote": [s.quote for s in specs],
            "market": [s.market for s in specs],
            "asset_class": [s.asset_class for s in specs],
            "type": [s.type for s in specs],
            "subtype": [s.subtype for s in specs],
            "pointvalue": [s.pointvalue for s in specs],
            "listed_on": [day(s.listed_day) for s in specs],
            "delisted_on": [day(s.delisted_day) for s in specs],
            "clone_of": [s.driver if s.kind in ("exact", "near") else None for s in specs],
            "clone_kind": [s.kind if s.kind in ("exact", "near") else None for s in specs],
            "calendar": [s.calendar for s in specs],
        },
        schema_overrides={
            "listed_on": pl.Date, "delisted_on": pl.Date, "clone_of": pl.String, "clone_kind": pl.String,
        },
    )
    history_rows = []
    for s in specs:
        history_rows.append((s.symbol, day(s.listed_day), s.pricescale, s.minmov))
        if s.tick_change_day is not None:
            history_rows.append((s.symbol, day(s.tick_change_day), s.new_pricescale, s.minmov))
    tick_history = pl.DataFrame(
        history_rows,
        schema={"symbol": pl.String, "valid_from": pl.Date, "pricescale": pl.Int64, "minmov": pl.Int64},
        orient="row",
    )

    def positions(symbols: Iterable[str | None]) -> np.ndarray:
        return np.array([index[symbol or ""] for symbol in symbols], dtype=np.int64)

    def pick(kind: str) -> np.ndarray:
        return np.array([i for i, s in enumerate(specs) if s.kind == kind], dtype=np.int64)

    def column(values: list) -> np.ndarray:
        return np.array(values, dtype=np.float64)

    exact, near, cross, stable = pick("exact"), pick("near"), pick("cross"), pick("stable")
    jumpers = np.array([i for i, s in enumerate(specs) if s.jump_prob], dtype=np.int64)
    arrays = {
        "class": np.array([ASSET_CLASSES.index(s.asset_class) for s in specs], dtype=np.int64),
        "sigma": column([s.sigma for s in specs]),
        "beta_global": column([s.beta_global for s in specs]),
        "beta_class": column([s.beta_class for s in specs]),
        # Jump compensation keeps the expected log return of a jumpy name at zero.
        "drift": column([-s.jump_prob * s.jump_scale for s in specs]),
        "log_price": np.log(column([s.price for s in specs])),
        "gap_scale": column([s.gap_frac * s.sigma for s in specs]),
        "range_scale": column([s.range_frac * s.sigma for s in specs]),
        "liquidity": column([s.liquidity for s in specs]),
        "pointvalue": column([s.pointvalue for s in specs]),
        "seven_day": np.array([s.calendar == "7d" for s in specs]),
        "round_volume": np.array([s.asset_class != "crypto" for s in specs]),
        "listed_day": np.array([s.listed_day for s in specs], dtype=np.int64),
        "delisted_day": np.array(
            [_NO_DELISTING if s.delisted_day is None else s.delisted_day for s in specs], dtype=np.int64
        ),
        "ohlc_source": np.array(
            [index[s.driver or ""] if s.kind == "exact" else i for i, s in enumerate(specs)],
            dtype=np.int64,
        ),
        "stable": stable,
        "stable_basis": column([specs[i].basis for i in stable]),
        "exact": exact,
        "exact_driver": positions(specs[i].driver for i in exact),
        "near": near,
        "near_driver": positions(specs[i].driver for i in near),
        "near_conv": column([specs[i].conv for i in near]),
        "near_basis": column([specs[i].basis for i in near]),
        "cross": cross,
        "cross_base": positions(specs[i].driver for i in cross),
        "cross_quote": positions(specs[i].cross_quote for i in cross),
        "cross_basis": column([specs[i].basis for i in cross]),
        "jumpers": jumpers,
        "market_beta": column([s.market_beta for s in specs]),
        "convexity": column([s.convexity for s in specs]),
        "tail_hedge": column([s.tail_hedge for s in specs]),
        "jump_prob": column([specs[i].jump_prob for i in jumpers]),
        "jump_scale": column([specs[i].jump_scale for i in jumpers]),
        # Coins and companies have a market cap; ETFs, futures and forex do not.
        "has_market_cap": np.array([s.asset_class == "crypto" or s.type == "stock" for s in specs]),
        "supply": column([np.nan if s.supply is None else s.supply for s in specs]),
        "pricescale": np.array([s.pricescale for s in specs], dtype=np.int64),
        "minmov": np.array([s.minmov for s in specs], dtype=np.int64),
        "tick_change_day": np.array(
            [_NO_DELISTING if s.tick_change_day is None else s.tick_change_day for s in specs], dtype=np.int64
        ),
        "new_pricescale": np.array([s.new_pricescale or s.pricescale for s in specs], dtype=np.int64),
    }
    return Universe(frame=frame, tick_history=tick_history, arrays=arrays)
