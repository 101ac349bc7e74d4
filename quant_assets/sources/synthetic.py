"""A deterministic, offline, simulated multi-asset market: the default data source (DESIGN.md §2).

The market holds crypto spot pairs and perpetuals on several exchanges and quotes, US futures,
US stocks and ETFs, and forex pairs. Daily returns have a factor structure (a global factor
and one per asset class), Student-t tails, occasional jumps, and a volatility and correlation
that follow a hidden regime path (QUIET / NORMAL / CRISIS), so regime detection can be scored
against the truth. The same coin on several exchanges and quotes is an exact clone (identical
returns) or a near clone (the same returns plus a little noise). Instruments list and delist
during the simulated span and some change tick size.

Screens are computed from the simulated daily bars with :mod:`quant_assets.sources.indicators`,
the definitions the real screener uses.

Determinism: every random draw comes from its own child generator of the config's seed,
keyed by (component, day) as ``numpy.random.SeedSequence(seed).spawn`` would key it, so a day's
draws do not depend on how many days are simulated or in which order dates are asked for, and
``perturb_after`` can redraw the future while leaving the past byte-identical. The panel is
simulated lazily up to the end of the calendar year of the latest date asked and cached; the
simulation and the indicators are causal row by row, so extending the horizon does not change
earlier rows.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from quant_assets.errors import ConfigError, QuantAssetsError, ValidationError
from quant_assets.sources import indicators
from quant_assets.sources.base import BAR_COLUMNS, BAR_SCHEMA, ScanQuery, answer_each
from quant_assets.sources.scan_filters import answer_query

#: Columns of :meth:`SyntheticMarket.screen`, named as the screener names them.
SCREEN_COLUMNS: tuple[str, ...] = (
    "symbol",
    "name",
    "description",
    "exchange",
    "type",
    "subtype",
    "currency",
    "base_currency",
    "market",
    "close",
    "open",
    "high",
    "low",
    "volume",
    "Value.Traded",
    "market_cap_calc",
    *indicators.INDICATOR_COLUMNS,
    "pricescale",
    "minmov",
    "minmove2",
    "fractional",
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

#: Hidden regimes, in the order of their integer codes.
REGIMES: tuple[str, ...] = ("QUIET", "NORMAL", "CRISIS")

#: How far past ``start`` the market may be simulated (memory grows with the span).
MAX_YEARS = 30

MIN_INSTRUMENTS = 50
MAX_INSTRUMENTS = 50_000


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """What determines a synthetic market: equal configs give byte-identical data.

    Attributes
    ----------
    seed : int
        Root of every random draw.
    n_instruments : int
        Instruments in the universe (50..50,000); the asset-class mix scales with it.
    start : datetime.date
        First simulated day; nothing exists before it.
    perturb_after : datetime.date or None
        When set, every random draw for days after this date is redrawn (lookahead audits):
        days up to and including it are byte-identical to the unperturbed market.
    """

    seed: int = 7
    n_instruments: int = 1200
    start: date = date(2021, 1, 1)
    perturb_after: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"SyntheticMarketConfig.seed must be a non-negative int, got {self.seed!r}")
        n = self.n_instruments
        if not isinstance(n, int) or isinstance(n, bool) or not MIN_INSTRUMENTS <= n <= MAX_INSTRUMENTS:
            raise ConfigError(
                f"SyntheticMarketConfig.n_instruments must be an int in "
                f"[{MIN_INSTRUMENTS}, {MAX_INSTRUMENTS}], got {n!r}"
            )
        for name, value in (("start", self.start), ("perturb_after", self.perturb_after or self.start)):
            if not _is_date(value):
                raise ConfigError(f"SyntheticMarketConfig.{name} must be a datetime.date, got {value!r}")


def _is_date(value: object) -> bool:
    # A datetime is a date too, but mixing them breaks date arithmetic and comparisons.
    return isinstance(value, date) and not isinstance(value, datetime)


# ---------------------------------------------------------------------------------------------
# Reference data: loosely anchored on early-2021 levels. Listing/delisting offsets are days
# after `start` (so they move with it); prices are at `start`.
# ---------------------------------------------------------------------------------------------

# ticker, name, price (USD), market cap (USD), listed offset, delisted offset
_COINS: tuple[tuple[str, str, float, float, int | None, int | None], ...] = (
    ("BTC", "Bitcoin", 29000.0, 5.4e11, None, None),
    ("ETH", "Ethereum", 730.0, 8.3e10, None, None),
    ("XRP", "XRP", 0.22, 1.0e10, None, None),
    ("BNB", "BNB", 37.0, 5.7e9, None, None),
    ("ADA", "Cardano", 0.18, 5.6e9, None, None),
    ("SOL", "Solana", 1.5, 1.0e8, None, None),
    ("DOT", "Polkadot", 9.3, 8.5e9, None, None),
    ("DOGE", "Dogecoin", 0.0047, 6.0e8, None, None),
    ("LINK", "Chainlink", 11.3, 4.6e9, None, None),
    ("LTC", "Litecoin", 125.0, 8.3e9, None, None),
    ("AVAX", "Avalanche", 3.5, 4.5e8, None, None),
    ("BCH", "Bitcoin Cash", 340.0, 6.3e9, None, None),
    ("MATIC", "Polygon", 0.018, 8.5e7, None, None),
    ("UNI", "Uniswap", 5.0, 1.5e9, None, None),
    ("ATOM", "Cosmos", 5.7, 1.2e9, None, None),
    ("XLM", "Stellar", 0.13, 2.9e9, None, None),
    ("TRX", "TRON", 0.027, 1.9e9, None, None),
    ("LUNA", "Terra", 0.65, 2.5e8, None, 512),
    ("ETC", "Ethereum Classic", 5.6, 6.5e8, None, None),
    ("FIL", "Filecoin", 20.0, 8.5e8, None, None),
    ("FTT", "FTX Token", 4.2, 4.0e8, None, 680),
    ("ICP", "Internet Computer", 30.0, 4.0e9, 129, None),
    ("AAVE", "Aave", 90.0, 1.1e9, None, None),
    ("NEAR", "NEAR Protocol", 1.3, 3.8e8, None, None),
    ("ALGO", "Algorand", 0.4, 1.0e9, None, None),
    ("SHIB", "Shiba Inu", 0.000008, 3.0e9, None, None),
    ("OP", "Optimism", 1.2, 2.5e8, 515, None),
    ("XTZ", "Tezos", 2.0, 1.5e9, None, None),
    ("APT", "Aptos", 8.0, 1.0e9, 656, None),
    ("SAND", "The Sandbox", 0.036, 2.7e7, None, None),
    ("MANA", "Decentraland", 0.08, 1.0e8, None, None),
    ("ARB", "Arbitrum", 1.2, 1.5e9, 811, None),
    ("GRT", "The Graph", 0.35, 4.3e8, None, None),
    ("PEPE", "Pepe", 0.0000012, 5.0e8, 836, None),
    ("AXS", "Axie Infinity", 0.53, 2.9e7, None, None),
    ("SUI", "Sui", 1.0, 5.0e8, 852, None),
    ("CRV", "Curve DAO", 0.6, 1.4e8, None, None),
    ("SNX", "Synthetix", 6.5, 7.2e8, None, None),
    ("SEI", "Sei", 0.15, 2.0e8, 956, None),
    ("COMP", "Compound", 145.0, 5.8e8, None, None),
    ("MKR", "Maker", 600.0, 5.5e8, None, None),
    ("TIA", "Celestia", 2.5, 3.0e8, 1033, None),
    ("YFI", "yearn.finance", 23000.0, 7.0e8, None, None),
    ("SUSHI", "SushiSwap", 3.4, 4.4e8, None, None),
)

# Stablecoin bases (quoted in USD-like currencies, near-zero returns): ticker, name, market
# cap, listed offset, delisted offset, rank among coins.
_STABLECOINS: tuple[tuple[str, str, float, int | None, int | None, int], ...] = (
    ("USDC", "USD Coin", 4.0e9, None, None, 3),
    ("BUSD", "Binance USD", 8.0e8, None, 1080, 7),
    ("DAI", "Dai", 1.2e9, None, None, 11),
    ("TUSD", "TrueUSD", 3.0e8, None, None, 22),
    ("FDUSD", "First Digital USD", 3.0e8, 936, None, 30),
)

_USD_LIKE = ("USDT", "USDC", "USD", "FDUSD")
_QUOTE_USD = {"USDT": 1.0, "USDC": 1.0, "USD": 1.0, "FDUSD": 1.0, "EUR": 1.22, "BTC": 29000.0}
_EXACT_CLONE_EXCHANGES = ("BINANCE", "BYBIT", "OKX")

# Where a generated coin's first listing is, and its odds.
_PRIMARY_SLOTS: tuple[tuple[str, str], ...] = (
    ("BINANCE", "USDT"),
    ("BYBIT", "USDT"),
    ("OKX", "USDT"),
    ("COINBASE", "USD"),
    ("KRAKEN", "USD"),
)
_PRIMARY_WEIGHTS = (0.4, 0.2, 0.15, 0.15, 0.1)

# Further listings of a coin: exchange, quote, perpetual?, weight.
_SECONDARY_SLOTS: tuple[tuple[str, str, bool, float], ...] = (
    ("BINANCE", "USDT", False, 3.0),
    ("BINANCE", "USDT", True, 3.0),
    ("BYBIT", "USDT", False, 2.0),
    ("OKX", "USDT", False, 2.0),
    ("COINBASE", "USD", False, 2.0),
    ("BYBIT", "USDT", True, 2.0),
    ("OKX", "USDT", True, 1.5),
    ("BINANCE", "USDC", False, 1.2),
    ("KRAKEN", "USD", False, 1.2),
    ("BINANCE", "BTC", False, 1.0),
    ("COINBASE", "EUR", False, 0.8),
    ("KRAKEN", "EUR", False, 0.8),
    ("OKX", "USDC", False, 0.6),
    ("BYBIT", "USDC", False, 0.6),
    ("BINANCE", "FDUSD", False, 0.6),
    ("COINBASE", "USDC", False, 0.5),
    ("BINANCE", "USDC", True, 0.5),
    ("KRAKEN", "BTC", False, 0.4),
    ("BINANCE", "EUR", False, 0.4),
    ("COINBASE", "BTC", False, 0.3),
)

# root, exchange, name, sector, point value, price, pricescale, minmov, daily vol, Value.Traded (USD)
_FUTURES: tuple[tuple[str, str, str, str, float, float, int, int, float, float], ...] = (
    ("ES", "CME", "E-mini S&P 500", "index", 50.0, 3750.0, 100, 25, 0.011, 2.0e11),
    ("NQ", "CME", "E-mini Nasdaq-100", "index", 20.0, 12900.0, 100, 25, 0.014, 1.0e11),
    ("CL", "NYMEX", "Crude Oil", "energy", 1000.0, 48.5, 100, 1, 0.025, 5.0e10),
    ("GC", "COMEX", "Gold", "metals", 100.0, 1890.0, 10, 1, 0.010, 3.0e10),
    ("ZN", "CBOT", "10-Year T-Note", "rates", 1000.0, 137.0, 1000000, 15625, 0.004, 6.0e10),
    ("6E", "CME", "Euro FX", "currency", 125000.0, 1.22, 100000, 5, 0.005, 2.0e10),
    ("YM", "CBOT", "E-mini Dow", "index", 5.0, 30600.0, 1, 1, 0.011, 1.5e10),
    ("RTY", "CME", "E-mini Russell 2000", "index", 50.0, 1970.0, 100, 10, 0.016, 1.5e10),
    ("NG", "NYMEX", "Natural Gas", "energy", 10000.0, 2.5, 1000, 1, 0.035, 1.0e10),
    ("SI", "COMEX", "Silver", "metals", 5000.0, 26.0, 1000, 5, 0.018, 8.0e9),
    ("HG", "COMEX", "Copper", "metals", 25000.0, 3.5, 10000, 5, 0.014, 5.0e9),
    ("ZB", "CBOT", "30-Year T-Bond", "rates", 1000.0, 174.0, 100000, 3125, 0.008, 2.0e10),
    ("ZF", "CBOT", "5-Year T-Note", "rates", 1000.0, 126.0, 10000000, 78125, 0.003, 3.0e10),
    ("ZC", "CBOT", "Corn", "agricultural", 50.0, 480.0, 100, 25, 0.015, 3.0e9),
    ("ZS", "CBOT", "Soybeans", "agricultural", 50.0, 1310.0, 100, 25, 0.013, 4.0e9),
    ("ZW", "CBOT", "Wheat", "agricultural", 50.0, 640.0, 100, 25, 0.019, 2.0e9),
    ("RB", "NYMEX", "RBOB Gasoline", "energy", 42000.0, 1.4, 10000, 1, 0.025, 5.0e9),
    ("HO", "NYMEX", "Heating Oil", "energy", 42000.0, 1.5, 10000, 1, 0.022, 4.0e9),
    ("PL", "NYMEX", "Platinum", "metals", 50.0, 1070.0, 10, 1, 0.018, 1.0e9),
    ("6J", "CME", "Japanese Yen", "currency", 12500000.0, 0.0097, 10000000, 5, 0.005, 8.0e9),
    ("6B", "CME", "British Pound", "currency", 62500.0, 1.36, 10000, 1, 0.006, 6.0e9),
    ("6A", "CME", "Australian Dollar", "currency", 100000.0, 0.77, 100000, 5, 0.007, 5.0e9),
    ("LE", "CME", "Live Cattle", "livestock", 400.0, 115.0, 1000, 25, 0.010, 1.0e9),
    ("HE", "CME", "Lean Hogs", "livestock", 400.0, 70.0, 1000, 25, 0.018, 8.0e8),
    ("BTC", "CME", "Bitcoin", "crypto", 5.0, 29000.0, 1, 5, 0.035, 2.0e9),
)
# Global-factor beta by sector (mean).
_SECTOR_BETA = {
    "index": 1.0, "energy": 0.6, "metals": 0.2, "rates": -0.3, "currency": 0.1,
    "agricultural": 0.3, "livestock": 0.2, "crypto": 1.4, "other": 0.4,
}
# Micro contracts: root, exchange, name, point value, root they track.
_MICRO_FUTURES = (
    ("MES", "CME", "Micro E-mini S&P 500", 5.0, "ES"),
    ("MNQ", "CME", "Micro E-mini Nasdaq-100", 2.0, "NQ"),
    ("MGC", "COMEX", "Micro Gold", 10.0, "GC"),
)
_SECOND_MONTH_ROOTS = ("ES", "NQ", "CL", "GC", "ZN", "6E", "NG", "SI")
_DATED_ROOTS = ("ES", "NQ", "CL", "GC")
_QUARTER_CODES = (("H", 3), ("M", 6), ("U", 9), ("Z", 12))

# ticker, exchange, name, price, market cap / AUM (USD), type, listed offset, delisted offset, clone of
_STOCKS: tuple[tuple[str, str, str, float, float, str, int | None, int | None, str | None], ...] = (
    ("AAPL", "NASDAQ", "Apple Inc.", 130.0, 2.2e12, "stock", None, None, None),
    ("MSFT", "NASDAQ", "Microsoft Corporation", 220.0, 1.7e12, "stock", None, None, None),
    ("SPY", "AMEX", "SPDR S&P 500 ETF Trust", 373.0, 3.3e11, "fund", None, None, None),
    ("AMZN", "NASDAQ", "Amazon.com, Inc.", 160.0, 1.6e12, "stock", None, None, None),
    ("GOOGL", "NASDAQ", "Alphabet Inc. Class A", 87.0, 1.2e12, "stock", None, None, None),
    ("QQQ", "NASDAQ", "Invesco QQQ Trust", 313.0, 1.5e11, "fund", None, None, None),
    ("META", "NASDAQ", "Meta Platforms, Inc.", 270.0, 7.5e11, "stock", None, None, None),
    ("TSLA", "NASDAQ", "Tesla, Inc.", 240.0, 7.0e11, "stock", None, None, None),
    ("NVDA", "NASDAQ", "NVIDIA Corporation", 13.0, 3.2e11, "stock", None, None, None),
    ("IVV", "AMEX", "iShares Core S&P 500 ETF", 375.0, 2.4e11, "fund", None, None, "SPY"),
    ("VOO", "AMEX", "Vanguard S&P 500 ETF", 343.0, 2.0e11, "fund", None, None, "SPY"),
    ("BRK.B", "NYSE", "Berkshire Hathaway Inc. Class B", 230.0, 5.3e11, "stock", None, None, None),
    ("JPM", "NYSE", "JPMorgan Chase & Co.", 127.0, 3.9e11, "stock", None, None, None),
    ("V", "NYSE", "Visa Inc.", 218.0, 4.7e11, "stock", None, None, None),
    ("JNJ", "NYSE", "Johnson & Johnson", 157.0, 4.1e11, "stock", None, None, None),
    ("WMT", "NYSE", "Walmart Inc.", 48.0, 4.0e11, "stock", None, None, None),
    ("IWM", "AMEX", "iShares Russell 2000 ETF", 196.0, 6.0e10, "fund", None, None, None),
    ("GLD", "AMEX", "SPDR Gold Shares", 178.0, 7.0e10, "fund", None, None, None),
    ("UNH", "NYSE", "UnitedHealth Group Incorporated", 350.0, 3.3e11, "stock", None, None, None),
    ("MA", "NYSE", "Mastercard Incorporated", 357.0, 3.5e11, "stock", None, None, None),
    ("HD", "NYSE", "The Home Depot, Inc.", 265.0, 2.8e11, "stock", None, None, None),
    ("PG", "NYSE", "The Procter & Gamble Company", 139.0, 3.4e11, "stock", None, None, None),
    ("TLT", "NASDAQ", "iShares 20+ Year Treasury Bond ETF", 157.0, 1.8e10, "fund", None, None, None),
    ("BAC", "NYSE", "Bank of America Corporation", 30.0, 2.6e11, "stock", None, None, None),
    ("DIS", "NYSE", "The Walt Disney Company", 180.0, 3.2e11, "stock", None, None, None),
    ("COIN", "NASDAQ", "Coinbase Global, Inc.", 250.0, 5.0e10, "stock", 103, None, None),
    ("TWTR", "NYSE", "Twitter, Inc.", 54.0, 4.3e10, "stock", None, 676, None),
    ("GME", "NYSE", "GameStop Corp.", 4.7, 1.3e9, "stock", None, None, None),
    ("AMC", "NYSE", "AMC Entertainment Holdings, Inc.", 2.1, 7.0e8, "stock", None, None, None),
    ("RIVN", "NASDAQ", "Rivian Automotive, Inc.", 100.0, 8.0e10, "stock", 313, None, None),
    ("SIVB", "NASDAQ", "SVB Financial Group", 390.0, 2.0e10, "stock", None, 816, None),
    ("FRC", "NYSE", "First Republic Bank", 147.0, 2.5e10, "stock", None, 850, None),
    ("ATVI", "NASDAQ", "Activision Blizzard, Inc.", 93.0, 7.0e10, "stock", None, 1015, None),
    ("QQQM", "NASDAQ", "Invesco NASDAQ 100 ETF", 128.0, 2.0e9, "fund", None, None, "QQQ"),
    ("IAU", "AMEX", "iShares Gold Trust", 18.0, 3.0e10, "fund", None, None, "GLD"),
    ("SPLG", "AMEX", "SPDR Portfolio S&P 500 ETF", 44.0, 5.0e9, "fund", None, None, "SPY"),
    ("XOM", "NYSE", "Exxon Mobil Corporation", 41.0, 1.7e11, "stock", None, None, None),
    ("KO", "NYSE", "The Coca-Cola Company", 55.0, 2.3e11, "stock", None, None, None),
    ("PFE", "NYSE", "Pfizer Inc.", 37.0, 2.0e11, "stock", None, None, None),
    ("INTC", "NASDAQ", "Intel Corporation", 50.0, 2.0e11, "stock", None, None, None),
    ("CSCO", "NASDAQ", "Cisco Systems, Inc.", 45.0, 1.9e11, "stock", None, None, None),
    ("NFLX", "NASDAQ", "Netflix, Inc.", 540.0, 2.4e11, "stock", None, None, None),
    ("ADBE", "NASDAQ", "Adobe Inc.", 500.0, 2.4e11, "stock", None, None, None),
    ("CRM", "NYSE", "Salesforce, Inc.", 222.0, 2.0e11, "stock", None, None, None),
    ("PEP", "NASDAQ", "PepsiCo, Inc.", 148.0, 2.0e11, "stock", None, None, None),
    ("CVX", "NYSE", "Chevron Corporation", 84.0, 1.6e11, "stock", None, None, None),
    ("AMD", "NASDAQ", "Advanced Micro Devices, Inc.", 92.0, 1.1e11, "stock", None, None, None),
    ("QCOM", "NASDAQ", "QUALCOMM Incorporated", 152.0, 1.7e11, "stock", None, None, None),
    ("ORCL", "NYSE", "Oracle Corporation", 65.0, 1.9e11, "stock", None, None, None),
    ("NKE", "NYSE", "NIKE, Inc.", 141.0, 2.2e11, "stock", None, None, None),
    ("MRK", "NYSE", "Merck & Co., Inc.", 82.0, 2.0e11, "stock", None, None, None),
    ("COST", "NASDAQ", "Costco Wholesale Corporation", 377.0, 1.7e11, "stock", None, None, None),
    ("AVGO", "NASDAQ", "Broadcom Inc.", 438.0, 1.8e11, "stock", None, None, None),
    ("MCD", "NYSE", "McDonald's Corporation", 214.0, 1.6e11, "stock", None, None, None),
    ("BA", "NYSE", "The Boeing Company", 214.0, 1.2e11, "stock", None, None, None),
    ("IBM", "NYSE", "International Business Machines", 126.0, 1.1e11, "stock", None, None, None),
    ("F", "NYSE", "Ford Motor Company", 8.8, 3.5e10, "stock", None, None, None),
    ("PLTR", "NYSE", "Palantir Technologies Inc.", 23.5, 4.0e10, "stock", None, None, None),
    ("ABNB", "NASDAQ", "Airbnb, Inc.", 147.0, 8.8e10, "stock", None, None, None),
    ("UBER", "NYSE", "Uber Technologies, Inc.", 51.0, 9.0e10, "stock", None, None, None),
    ("PYPL", "NASDAQ", "PayPal Holdings, Inc.", 234.0, 2.7e11, "stock", None, None, None),
    ("DIA", "AMEX", "SPDR Dow Jones Industrial Average ETF", 306.0, 2.7e10, "fund", None, None, None),
    ("SLV", "AMEX", "iShares Silver Trust", 24.0, 1.4e10, "fund", None, None, None),
    ("HYG", "AMEX", "iShares iBoxx High Yield Corporate Bond ETF", 87.0, 2.3e10, "fund", None, None, None),
    ("LQD", "AMEX", "iShares iBoxx Inv Grade Corporate Bond ETF", 138.0, 5.0e10, "fund", None, None, None),
    ("EEM", "AMEX", "iShares MSCI Emerging Markets ETF", 51.0, 3.0e10, "fund", None, None, None),
    ("EFA", "AMEX", "iShares MSCI EAFE ETF", 72.0, 5.0e10, "fund", None, None, None),
    ("XLE", "AMEX", "Energy Select Sector SPDR Fund", 38.0, 1.5e10, "fund", None, None, None),
    ("XLF", "AMEX", "Financial Select Sector SPDR Fund", 29.0, 2.5e10, "fund", None, None, None),
    ("XLK", "AMEX", "Technology Select Sector SPDR Fund", 130.0, 3.5e10, "fund", None, None, None),
    ("ARKK", "AMEX", "ARK Innovation ETF", 125.0, 1.7e10, "fund", None, None, None),
)
_CONVEX_STOCKS = ("GME", "AMC")  # meme stocks: upward jumps

# Currencies in quoting order (the earlier one is the base of a pair), USD value, daily vol.
_CURRENCIES: tuple[tuple[str, float, float], ...] = (
    ("EUR", 1.22, 0.005), ("GBP", 1.37, 0.006), ("AUD", 0.77, 0.007), ("NZD", 0.72, 0.007),
    ("USD", 1.0, 0.0), ("CAD", 0.785, 0.005), ("CHF", 1.13, 0.005), ("NOK", 0.117, 0.007),
    ("SEK", 0.122, 0.006), ("DKK", 0.164, 0.005), ("PLN", 0.27, 0.007), ("HUF", 0.0034, 0.008),
    ("CZK", 0.047, 0.006), ("TRY", 0.135, 0.012), ("ZAR", 0.068, 0.010), ("MXN", 0.050, 0.009),
    ("SGD", 0.757, 0.003), ("HKD", 0.129, 0.0005), ("CNH", 0.154, 0.003), ("INR", 0.0137, 0.004),
    ("BRL", 0.19, 0.011), ("KRW", 0.00092, 0.005), ("ILS", 0.31, 0.005), ("THB", 0.033, 0.004),
    ("CLP", 0.0014, 0.008), ("COP", 0.00029, 0.009), ("IDR", 0.000071, 0.005), ("JPY", 0.0097, 0.005),
)
_MAJOR_CURRENCIES = ("EUR", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD")
_FX_EXCHANGES = ("FX", "OANDA", "FXCM", "SAXO", "PEPPERSTONE", "ICMARKETS", "CAPITALCOM", "EIGHTCAP")

# ---------------------------------------------------------------------------------------------
# Market dynamics.
# ---------------------------------------------------------------------------------------------

_CLASSES = ("crypto", "futures", "stock", "forex")
_MARKETS = {"crypto": "crypto", "futures": "futures", "stock": "america", "forex": "forex"}  # scanner markets
# Regime transition probabilities per calendar day (rows: from, columns: to QUIET/NORMAL/CRISIS):
# crises last about a month (1/0.034 days) and start about once a year from NORMAL.
_TRANSITIONS = np.array(
    [
        [0.985, 0.014, 0.001],
        [0.008, 0.987, 0.005],
        [0.004, 0.030, 0.966],
    ]
)
_INITIAL_REGIME = 1  # NORMAL on the day before `start`
# Volatility multipliers: factors move more than idiosyncratic noise in a crisis, which raises
# correlations; the drift of the global and crypto factors turns negative.
_FACTOR_SCALE = np.array([0.6, 1.0, 3.0])
_IDIO_SCALE = np.array([0.6, 1.0, 2.0])
_GLOBAL_DRIFT = np.array([0.0005, 0.0003, -0.003])
_CLASS_DRIFT = np.array(
    [
        [0.0005, 0.0, -0.003],  # crypto
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0],
    ]
)
_GLOBAL_VOL = 0.009
_CLASS_VOL = np.array([0.015, 0.007, 0.006, 0.002])
_T_DF = 4.0
_T_CLIP = 12.0  # about 8.5 standard deviations: no single-day move beyond that
_T_STD = math.sqrt(_T_DF / (_T_DF - 2.0))
_CRISIS_VOLUME = 1.5

# Child-generator components: spawn_key (component,) for the universe, (component, day) for a
# day's draws, (component, day, 1) for a perturbed day.
_UNIVERSE, _REGIME, _FACTOR, _IDIO, _JUMP, _BASIS, _GAP, _RANGE, _VOLUME = range(9)
_PERTURBED = 1

_NO_DELISTING = np.iinfo(np.int32).max


def _child_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


# ---------------------------------------------------------------------------------------------
# The universe of instruments.
# ---------------------------------------------------------------------------------------------


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
    gap_frac: float = 0.1
    range_frac: float = 0.4
    liquidity: float = 1e6  # median Value.Traded, quote currency
    supply: float | None = None  # market cap = supply x price of `mcap_of`
    mcap_of: str | None = None
    pricescale: int = 100
    minmov: int = 1
    tick_change_day: int | None = None
    new_pricescale: int | None = None

    @property
    def market(self) -> str:
        return _MARKETS[self.asset_class]

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
        (*row, False) for row in _COINS
    ]
    for ticker, name, cap, listed, delisted, rank in _STABLECOINS:
        coins.insert(rank, (ticker, name, 1.0, cap, listed, delisted, True))
    taken.update(row[0] for row in coins)
    taken.update(_QUOTE_USD)
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
            primary_exchange, primary_quote = _PRIMARY_SLOTS[
                rng.choice(len(_PRIMARY_SLOTS), p=_PRIMARY_WEIGHTS)
            ]
            sigma = _lognormal(rng, 0.042, 0.3, 0.015, 0.12)
        slots = [
            s
            for s in _SECONDARY_SLOTS
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
                mcap_of=primary,
            )
            spec.listed_day, spec.delisted_day = coin_listed, coin_delisted
            quote_price = price
            if position == 0:
                spec.kind = "stable" if stable else "own"
                spec.basis = 0.0004 if stable else 0.0
                spec.price = price
                spec.liquidity = coin_liquidity / _QUOTE_USD[quote]
            else:
                spec.driver = primary
                share = _lognormal(rng, 0.15, 0.8, 1e-4, 1.0) * (2.0 if perp else 1.0)
                spec.liquidity = coin_liquidity * share / _QUOTE_USD[quote]
                if quote == "BTC":
                    spec.kind, spec.cross_quote, spec.basis = "cross", btc_primary, 0.0005
                    quote_price = price / _QUOTE_USD["BTC"]
                elif stable:
                    spec.kind, spec.basis = "near", 0.0003
                elif perp:
                    spec.kind, spec.basis = "near", 0.0008
                elif quote == "EUR":
                    spec.kind, spec.basis, spec.conv = "near", 0.001, -math.log(_QUOTE_USD["EUR"])
                    quote_price = price / _QUOTE_USD["EUR"]
                elif quote in _USD_LIKE and exchange in _EXACT_CLONE_EXCHANGES:
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
    taken.update(row[0] for row in _FUTURES)
    taken.update(row[0] for row in _MICRO_FUTURES)

    def continuous(
        root: str, exchange: str, name: str, sector: str, pointvalue: float, price: float,
        pricescale: int, minmov: int, sigma: float, value_traded: float,
    ) -> _Spec:
        return _Spec(
            symbol=f"{exchange}:{root}1!", exchange=exchange, ticker=f"{root}1!",
            description=f"{name} Futures", base=root, quote="USD", asset_class="futures",
            type="futures", subtype="continuous", pointvalue=pointvalue, price=price, sigma=sigma,
            beta_global=float(rng.normal(_SECTOR_BETA[sector], 0.2)),
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
    leads = {row[0]: continuous(*row) for row in _FUTURES}
    candidates = list(leads.values())
    for root in _SECOND_MONTH_ROOTS:
        lead = leads[root]
        description = f"{lead.description} (second month)"
        candidates.append(
            follower(lead, f"{root}2!", root, description, "continuous", math.log(1.004), lead.pointvalue)
        )
    for micro, _, name, pointvalue, root in _MICRO_FUTURES:
        candidates.append(
            follower(leads[root], f"{micro}1!", micro, f"{name} Futures", "continuous", 0.0, pointvalue)
        )
    for year in range(start.year, start.year + 4):
        for code, month in _QUARTER_CODES:
            first = date(year, month, 1)
            expiry = first + timedelta(days=(4 - first.weekday()) % 7 + 14)  # third Friday
            for root in _DATED_ROOTS:
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
    taken.update(row[0] for row in _STOCKS)
    specs: list[_Spec] = []
    by_ticker: dict[str, _Spec] = {}
    rows = list(_STOCKS[:budget])
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
        spec.mcap_of = spec.symbol
        spec.listed_day = -int(rng.integers(200, 8000)) if listed is None else listed
        spec.delisted_day = delisted
        if clone_of is not None:
            spec.kind, spec.driver = "near", f"{by_ticker[clone_of].symbol}"
            spec.conv, spec.basis = math.log(price / by_ticker[clone_of].price), 0.0003
        if ticker in _CONVEX_STOCKS:
            spec.jump_prob, spec.jump_scale = 0.02, 4.0 * spec.sigma
        by_ticker[ticker] = spec
        specs.append(spec)
    return specs


def _forex_specs(rng: np.random.Generator, budget: int) -> list[_Spec]:
    order = {code: i for i, (code, _, _) in enumerate(_CURRENCIES)}
    info = {code: (usd, vol) for code, usd, vol in _CURRENCIES}

    def tier(a: str, b: str) -> int:
        pair = {a, b}
        if "USD" in pair:
            return 0 if pair & set(_MAJOR_CURRENCIES) else 2
        if pair <= set(_MAJOR_CURRENCIES):
            return 1
        return 3 if "EUR" in pair else 4

    codes = [code for code, _, _ in _CURRENCIES]
    pairs = sorted(
        ((a, b) for i, a in enumerate(codes) for b in codes[i + 1 :]),
        key=lambda p: (tier(*p), max(order[p[0]], order[p[1]]), order[p[0]]),
    )
    # A pair on a second venue is a near clone of the FX feed; the top pairs are on most venues.
    ranked = sorted(
        (rank + 12 * venue, rank, venue)
        for rank in range(len(pairs))
        for venue in range(len(_FX_EXCHANGES))
    )
    specs: list[_Spec] = []
    for _, rank, venue in ranked[:budget]:
        base, quote = pairs[rank]
        price = info[base][0] / info[quote][0]
        exchange = _FX_EXCHANGES[venue]
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
class _Universe:
    """The instruments, sorted by symbol, as a frame and as simulation arrays."""

    frame: pl.DataFrame
    tick_history: pl.DataFrame
    arrays: dict[str, np.ndarray] = field(repr=False)


def _build_universe(config: SyntheticMarketConfig) -> _Universe:
    rng = _child_rng(config.seed, _UNIVERSE)
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
        if spec.asset_class == "forex" or spec.jump_prob:
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

    coins = sorted({s.mcap_of or "" for s in specs if s.asset_class == "crypto"})
    coin_column = {symbol: j for j, symbol in enumerate(coins)}
    exact, near, cross, stable = pick("exact"), pick("near"), pick("cross"), pick("stable")
    jumpers = np.array([i for i, s in enumerate(specs) if s.jump_prob], dtype=np.int64)
    arrays = {
        "class": np.array([_CLASSES.index(s.asset_class) for s in specs], dtype=np.int64),
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
        "jump_prob": column([specs[i].jump_prob for i in jumpers]),
        "jump_scale": column([specs[i].jump_scale for i in jumpers]),
        "coin_primary": positions(coins),
        "coin_column": np.array(
            [coin_column.get(s.mcap_of or "", -1) if s.asset_class == "crypto" else -1 for s in specs],
            dtype=np.int64,
        ),
        "stock_mcap": np.array([s.asset_class == "stock" for s in specs]),
        "supply": column([np.nan if s.supply is None else s.supply for s in specs]),
        "pricescale": np.array([s.pricescale for s in specs], dtype=np.int64),
        "minmov": np.array([s.minmov for s in specs], dtype=np.int64),
        "tick_change_day": np.array(
            [_NO_DELISTING if s.tick_change_day is None else s.tick_change_day for s in specs], dtype=np.int64
        ),
        "new_pricescale": np.array([s.new_pricescale or s.pricescale for s in specs], dtype=np.int64),
    }
    return _Universe(frame=frame, tick_history=tick_history, arrays=arrays)


# ---------------------------------------------------------------------------------------------
# The simulation.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    """The simulated market from ``start`` through ``end``: T days by N instruments."""

    end: date
    dates: np.ndarray  # (T,) datetime64[D]
    regime: np.ndarray  # (T,) int8 codes into REGIMES
    prices: dict[str, np.ndarray]  # open/high/low/close/volume, (T, N), NaN where no bar
    coin_close: np.ndarray  # (T, coins): close of each coin's primary listing, bar or not
    last_bar_row: np.ndarray  # (T, N) int32: row of the last bar on or before each row, -1 if none
    fields: dict[str, np.ndarray]  # indicator columns, (T, N)


def _simulate(universe: _Universe, config: SyntheticMarketConfig, n_days: int) -> _Panel:
    """Simulate days ``0..n_days-1`` after ``config.start``, one day (row) at a time.

    Each day draws from its own child generators, so a day's numbers do not depend on the
    horizon; the state carried from day to day (log prices, the regime) only flows forward.
    """
    a = universe.arrays
    n = len(a["sigma"])
    dates = np.datetime64(config.start, "D") + np.arange(n_days)
    weekdays = (dates.astype(np.int64) + 3) % 7 < 5  # 1970-01-01 was a Thursday
    first_perturbed = n_days
    if config.perturb_after is not None:
        first_perturbed = max(0, (config.perturb_after - config.start).days + 1)
    prices = {name: np.empty((n_days, n)) for name in ("open", "high", "low", "close", "volume")}
    coin_close = np.empty((n_days, len(a["coin_primary"])))
    last_bar_row = np.empty((n_days, n), dtype=np.int32)
    regime = np.empty(n_days, dtype=np.int8)
    cumulative_transitions = np.cumsum(_TRANSITIONS, axis=1)
    weekday_only = ~a["seven_day"]
    source = a["ohlc_source"]  # exact clones reuse their driver's intraday draws
    own_log_price = a["log_price"].copy()
    prev_log_price: np.ndarray | None = None
    last_row = np.full(n, -1, dtype=np.int32)
    state = _INITIAL_REGIME

    def draws(component: int, d: int) -> np.random.Generator:
        return _child_rng(config.seed, component, d, *((_PERTURBED,) if d >= first_perturbed else ()))

    for d in range(n_days):
        u = draws(_REGIME, d).random()
        state = min(2, int(np.searchsorted(cumulative_transitions[state], u, side="right")))
        regime[d] = state
        factor_scale, idio_scale = _FACTOR_SCALE[state], _IDIO_SCALE[state]

        shocks = draws(_FACTOR, d).standard_t(_T_DF, size=1 + len(_CLASSES))
        shocks = np.clip(shocks, -_T_CLIP, _T_CLIP) / _T_STD
        global_move = _GLOBAL_DRIFT[state] + _GLOBAL_VOL * factor_scale * shocks[0]
        class_move = _CLASS_DRIFT[:, state] + _CLASS_VOL * factor_scale * shocks[1:]
        log_return = np.clip(draws(_IDIO, d).standard_t(_T_DF, size=n), -_T_CLIP, _T_CLIP)
        log_return *= a["sigma"] * (idio_scale / _T_STD)
        log_return += a["drift"] + a["beta_global"] * global_move + a["beta_class"] * class_move[a["class"]]
        jumpers = a["jumpers"]
        if len(jumpers):
            jump_draws = draws(_JUMP, d)
            hit = jump_draws.random(len(jumpers)) < a["jump_prob"]
            log_return[jumpers] += hit * a["jump_scale"] * jump_draws.standard_exponential(len(jumpers))
        if not weekdays[d]:
            log_return[weekday_only] = 0.0  # the market is closed: no move
        own_log_price += log_return

        # Derived instruments follow their driver's price; none cumulates noise of its own.
        log_price = own_log_price.copy()
        noise = draws(_BASIS, d).standard_normal(n)
        stable, near, cross = a["stable"], a["near"], a["cross"]
        log_price[stable] = a["log_price"][stable] + a["stable_basis"] * noise[stable]
        log_price[a["exact"]] = log_price[a["exact_driver"]]
        log_price[near] = log_price[a["near_driver"]] + a["near_conv"] + a["near_basis"] * noise[near]
        log_price[cross] = (
            log_price[a["cross_base"]] - log_price[a["cross_quote"]] + a["cross_basis"] * noise[cross]
        )
        if prev_log_price is None:
            prev_log_price = log_price

        gap = a["gap_scale"] * idio_scale * draws(_GAP, d).standard_normal(n)[source]
        open_ = np.exp(prev_log_price + gap)
        close = np.exp(log_price)
        ranges = draws(_RANGE, d).standard_exponential(2 * n)
        high = np.maximum(open_, close) * np.exp(a["range_scale"] * idio_scale * ranges[:n][source])
        low = np.minimum(open_, close) * np.exp(-a["range_scale"] * idio_scale * ranges[n:][source])
        # Value traded: lognormal around the instrument's level, higher on big moves and in a crisis.
        move = np.abs(log_price - prev_log_price) / a["sigma"]
        value = a["liquidity"] * np.exp(0.6 * draws(_VOLUME, d).standard_normal(n) - 0.18)
        value *= 1.0 + 1.5 * move
        if state == 2:
            value *= _CRISIS_VOLUME
        volume = value / (close * a["pointvalue"])
        np.rint(volume, out=volume, where=a["round_volume"])  # shares and contracts are whole

        coin_close[d] = close[a["coin_primary"]]
        has_bar = (a["listed_day"] <= d) & (d < a["delisted_day"]) & (a["seven_day"] | weekdays[d])
        no_bar = ~has_bar
        rows = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
        for name, row in rows.items():
            row[no_bar] = np.nan
            prices[name][d] = row
        last_row[has_bar] = d
        last_bar_row[d] = last_row
        prev_log_price = log_price

    fields = indicators.screen_indicators(
        prices["open"], prices["high"], prices["low"], prices["close"], dates
    )
    end = config.start + timedelta(days=n_days - 1)
    return _Panel(end, dates, regime, prices, coin_close, last_bar_row, fields)


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


class SyntheticMarket:
    """A simulated market, deterministic from its config; screens and bars for any date.

    The panel is simulated on first use up to the end of the calendar year of the latest date
    asked for, and re-simulated (identically in its earlier rows) when a later year is asked.
    Safe to share between threads.

    Parameters
    ----------
    config : SyntheticMarketConfig, optional
        Seed, size, start date and optional perturbation of the future.
    """

    def __init__(self, config: SyntheticMarketConfig | None = None) -> None:
        self.config = config or SyntheticMarketConfig()
        self._universe = _build_universe(self.config)
        self._symbols = self._universe.frame["symbol"].to_numpy()
        self._symbol_index = {symbol: i for i, symbol in enumerate(self._symbols)}
        self._panel: _Panel | None = None
        self._lock = threading.Lock()

    @property
    def instruments(self) -> pl.DataFrame:
        """One row per instrument, sorted by symbol; columns :data:`INSTRUMENT_COLUMNS`.

        ``clone_of`` names the listing an exact or near clone copies (``clone_kind`` says
        which); pairs quoted in BTC follow their coin divided by BTC and are not clones.
        """
        return self._universe.frame

    @property
    def tick_size_history(self) -> pl.DataFrame:
        """Tick-size versions: ``symbol, valid_from, pricescale, minmov`` (tick = minmov/pricescale)."""
        return self._universe.tick_history

    @property
    def horizon(self) -> date | None:
        """The last simulated day, or None before anything was asked for."""
        panel = self._panel
        return None if panel is None else panel.end

    def _day(self, day: date, what: str) -> int:
        if not _is_date(day):
            raise ValidationError(f"{what} must be a datetime.date, got {day!r}")
        start = self.config.start
        if day < start:
            raise ValidationError(
                f"{what} {day.isoformat()} is before the synthetic market's start {start.isoformat()}"
            )
        if day.year > start.year + MAX_YEARS:
            raise ValidationError(
                f"{what} {day.isoformat()} is more than {MAX_YEARS} years after the synthetic market's start "
                f"{start.isoformat()}"
            )
        return (day - start).days

    def _panel_through(self, day: date) -> _Panel:
        with self._lock:
            panel = self._panel
            if panel is None or panel.end < day:
                year_end = date(day.year, 12, 31)
                panel = _simulate(self._universe, self.config, (year_end - self.config.start).days + 1)
                self._panel = panel
            return panel

    def regime_path(self, start: date, end: date) -> pl.DataFrame:
        """The hidden regime of every calendar day in ``[start, end]``: ``date, regime``.

        Raises
        ------
        ValidationError
            If ``start`` is before the market's start or after ``end``.
        """
        first, last = self._day(start, "regime_path start"), self._day(end, "regime_path end")
        if last < first:
            raise ValidationError(
                f"regime_path end {end.isoformat()} is before its start {start.isoformat()}"
            )
        panel = self._panel_through(end)
        return pl.DataFrame(
            {
                "date": pl.Series(panel.dates[first : last + 1]),
                "regime": pl.Series(np.array(REGIMES)[panel.regime[first : last + 1]], dtype=pl.String),
            }
        )

    def _columns_of(self, symbols: Sequence[str] | None) -> np.ndarray:
        if symbols is None:
            return np.arange(len(self._symbol_index))
        if isinstance(symbols, str):
            raise ValidationError(f"symbols must be a sequence of symbols, got the string {symbols!r}")
        unknown = [s for s in symbols if s not in self._symbol_index]
        if unknown:
            shown = ", ".join(repr(s) for s in unknown[:5])
            raise ValidationError(
                f"unknown symbol{'s' if len(unknown) > 1 else ''} {shown}"
                f"{f' and {len(unknown) - 5} more' if len(unknown) > 5 else ''} in the synthetic market "
                f"(seed {self.config.seed}, {self.config.n_instruments} instruments)"
            )
        return np.unique([self._symbol_index[s] for s in symbols])

    def bars(self, start: date, end: date, symbols: Sequence[str] | None = None) -> pl.DataFrame:
        """Daily bars with ``start <= date <= end``: :data:`BAR_COLUMNS`, sorted by (symbol, date).

        Only real bars: none on a weekend for weekday instruments, none outside
        ``[listed_on, delisted_on)``, none before the market's start.

        Raises
        ------
        ValidationError
            On an unknown symbol, or ``end`` before ``start``.
        """
        for what, day in (("bars start", start), ("bars end", end)):
            if not _is_date(day):
                raise ValidationError(f"{what} must be a datetime.date, got {day!r}")
        if end < start:
            raise ValidationError(f"bars end {end.isoformat()} is before start {start.isoformat()}")
        columns = self._columns_of(symbols)
        first = max(0, (start - self.config.start).days)
        stop = (end - self.config.start).days + 1
        if stop <= first:  # the window ends before the market starts
            return pl.DataFrame(schema=BAR_SCHEMA)
        self._day(end, "bars end")
        panel = self._panel_through(end)
        window = panel.prices["close"][first:stop][:, columns]
        # Column-major nonzero: grouped by symbol (columns are in symbol order), then by date.
        col, row = np.nonzero(np.isfinite(window.T))
        rows, cols = row + first, columns[col]
        data = {"date": panel.dates[rows], "symbol": self._symbols[cols]}
        for name in BAR_COLUMNS[2:]:
            data[name] = panel.prices[name][rows, cols]
        return pl.DataFrame(data, schema=BAR_SCHEMA)

    def screen(self, as_of: date) -> pl.DataFrame:
        """The screener's view at the close of ``as_of``: one row per listed instrument.

        Rows are the instruments listed on ``as_of`` (``listed_on <= as_of < delisted_on``)
        with a bar on or before it, sorted by symbol; columns :data:`SCREEN_COLUMNS`. Values
        are those of each instrument's last bar on or before ``as_of`` (a stock on a Saturday
        shows Friday's). ``Value.Traded = volume * close * pointvalue``; ``market_cap_calc``
        is supply x price for crypto (shared by every listing of a coin) and stocks, null for
        futures and forex; ``pricescale`` is the one in force on ``as_of``. Missing indicator
        values (not enough history yet) are null.

        Raises
        ------
        ValidationError
            If ``as_of`` is before the market's start (or absurdly far after it).
        """
        r = self._day(as_of, "screen date")
        panel = self._panel_through(as_of)
        a = self._universe.arrays
        n = len(a["sigma"])
        last_rows = panel.last_bar_row[r]
        idx = np.flatnonzero((a["listed_day"] <= r) & (r < a["delisted_day"]) & (last_rows >= 0))
        rows = last_rows[idx].astype(np.int64)
        flat = rows * n + idx

        def at(values: np.ndarray) -> np.ndarray:
            return values.ravel()[flat]

        close, volume = at(panel.prices["close"]), at(panel.prices["volume"])
        market_cap = np.full(len(idx), np.nan)
        coin = a["coin_column"][idx]
        crypto = coin >= 0
        market_cap[crypto] = a["supply"][idx][crypto] * panel.coin_close[rows[crypto], coin[crypto]]
        stock = a["stock_mcap"][idx]
        market_cap[stock] = a["supply"][idx][stock] * close[stock]
        pricescale = np.where(a["tick_change_day"][idx] <= r, a["new_pricescale"][idx], a["pricescale"][idx])
        numeric = {
            "close": close,
            "open": at(panel.prices["open"]),
            "high": at(panel.prices["high"]),
            "low": at(panel.prices["low"]),
            "volume": volume,
            "Value.Traded": volume * close * a["pointvalue"][idx],
            "market_cap_calc": market_cap,
            **{name: at(values) for name, values in panel.fields.items()},
        }
        frame = self._universe.frame[idx].select(
            "symbol",
            pl.col("ticker").alias("name"),
            "description",
            "exchange",
            "type",
            "subtype",
            pl.col("quote").alias("currency"),
            pl.col("base").alias("base_currency"),
            "market",
        )
        return frame.with_columns(
            *(pl.Series(name, v, dtype=pl.Float64, nan_to_null=True) for name, v in numeric.items()),
            pl.Series("pricescale", pricescale, dtype=pl.Int64),
            pl.Series("minmov", a["minmov"][idx], dtype=pl.Int64),
            pl.lit(0, dtype=pl.Int64).alias("minmove2"),
            pl.lit(False).alias("fractional"),
        ).select(SCREEN_COLUMNS)


def get_market(config: SyntheticMarketConfig | None = None) -> SyntheticMarket:
    """The process-wide :class:`SyntheticMarket` of ``config`` (default config if None).

    Several assets materialised in one process then share one simulated panel.
    """
    return _market_of(config or SyntheticMarketConfig())


@functools.lru_cache(maxsize=4)
def _market_of(config: SyntheticMarketConfig) -> SyntheticMarket:
    return SyntheticMarket(config)


class SyntheticSource:
    """The offline :class:`~quant_assets.sources.base.MarketSource`: a synthetic market.

    Parameters
    ----------
    config : SyntheticMarketConfig, optional
        Which market; the instance is shared per config through :func:`get_market`.
    market : SyntheticMarket, optional
        Use this market instead (tests).
    """

    name = "synthetic"

    def __init__(
        self, config: SyntheticMarketConfig | None = None, *, market: SyntheticMarket | None = None
    ) -> None:
        self.market = market if market is not None else get_market(config or SyntheticMarketConfig())

    def scan(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        """The screen of ``as_of`` as the scanner answers ``query``: ``symbol`` + its columns.

        Rows of ``query.markets``, passing ``query.filters``, sorted by ``query.sort_by``
        (nulls last, ties by symbol), cut to ``query.limit``.

        Raises
        ------
        SourceResponseError
            On a field the screen does not have (filter, sort or column), naming the field and
            the query's label.
        ValidationError
            If ``as_of`` is before the market's start.
        """
        return answer_query(self.market.screen(as_of), query)

    def scan_many(self, as_of: date, queries: Sequence[ScanQuery]) -> list[pl.DataFrame | QuantAssetsError]:
        """:meth:`scan` for each query in turn; a failing query's slot holds its error."""
        return answer_each(lambda query: self.scan(as_of, query), queries)

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Bars (:data:`BAR_COLUMNS`) of ``symbols`` with ``start <= date <= end``.

        Raises
        ------
        ValidationError
            On an unknown symbol or ``end`` before ``start``.
        """
        return self.market.bars(start, end, symbols)
