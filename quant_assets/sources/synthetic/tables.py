"""Reference data of the synthetic market: coins, stablecoins, venues, futures, stocks and ETFs,
currencies. Loosely anchored on early-2021 levels; listing/delisting offsets are days after the
market's ``start`` (so they move with it); prices are at ``start``."""

from __future__ import annotations

# ticker, name, price (USD), market cap (USD), listed offset, delisted offset
COINS: tuple[tuple[str, str, float, float, int | None, int | None], ...] = (
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
STABLECOINS: tuple[tuple[str, str, float, int | None, int | None, int], ...] = (
    ("USDC", "USD Coin", 4.0e9, None, None, 3),
    ("BUSD", "Binance USD", 8.0e8, None, 1080, 7),
    ("DAI", "Dai", 1.2e9, None, None, 11),
    ("TUSD", "TrueUSD", 3.0e8, None, None, 22),
    ("FDUSD", "First Digital USD", 3.0e8, 936, None, 30),
)

USD_LIKE = ("USDT", "USDC", "USD", "FDUSD")
QUOTE_USD = {"USDT": 1.0, "USDC": 1.0, "USD": 1.0, "FDUSD": 1.0, "EUR": 1.22, "BTC": 29000.0}
EXACT_CLONE_EXCHANGES = ("BINANCE", "BYBIT", "OKX")

# Where a generated coin's first listing is, and its odds.
PRIMARY_SLOTS: tuple[tuple[str, str], ...] = (
    ("BINANCE", "USDT"),
    ("BYBIT", "USDT"),
    ("OKX", "USDT"),
    ("COINBASE", "USD"),
    ("KRAKEN", "USD"),
)
PRIMARY_WEIGHTS = (0.4, 0.2, 0.15, 0.15, 0.1)

# Further listings of a coin: exchange, quote, perpetual?, weight.
SECONDARY_SLOTS: tuple[tuple[str, str, bool, float], ...] = (
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

# root, exchange, name, sector, point value, price, pricescale, minmov, daily vol, Value.Traded (USD).
# Exchanges as TradingView lists the continuous contracts (its futures/filters/america.json of
# 2023-10-02): the E-mini index futures under CME_MINI (ES, NQ, RTY) and CBOT_MINI (YM), the
# micros under CME_MINI and COMEX_MINI, the full-size contracts under CME, CBOT, NYMEX, COMEX.
FUTURES: tuple[tuple[str, str, str, str, float, float, int, int, float, float], ...] = (
    ("ES", "CME_MINI", "E-mini S&P 500", "index", 50.0, 3750.0, 100, 25, 0.011, 2.0e11),
    ("NQ", "CME_MINI", "E-mini Nasdaq-100", "index", 20.0, 12900.0, 100, 25, 0.014, 1.0e11),
    ("CL", "NYMEX", "Crude Oil", "energy", 1000.0, 48.5, 100, 1, 0.025, 5.0e10),
    ("GC", "COMEX", "Gold", "metals", 100.0, 1890.0, 10, 1, 0.010, 3.0e10),
    ("ZN", "CBOT", "10-Year T-Note", "rates", 1000.0, 137.0, 1000000, 15625, 0.004, 6.0e10),
    ("6E", "CME", "Euro FX", "currency", 125000.0, 1.22, 100000, 5, 0.005, 2.0e10),
    ("YM", "CBOT_MINI", "E-mini Dow", "index", 5.0, 30600.0, 1, 1, 0.011, 1.5e10),
    ("RTY", "CME_MINI", "E-mini Russell 2000", "index", 50.0, 1970.0, 100, 10, 0.016, 1.5e10),
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
SECTOR_BETA = {
    "index": 1.0, "energy": 0.6, "metals": 0.2, "rates": -0.3, "currency": 0.1,
    "agricultural": 0.3, "livestock": 0.2, "crypto": 1.4, "other": 0.4,
}
# Micro contracts: root, exchange, name, point value, root they track.
MICRO_FUTURES = (
    ("MES", "CME_MINI", "Micro E-mini S&P 500", 5.0, "ES"),
    ("MNQ", "CME_MINI", "Micro E-mini Nasdaq-100", 2.0, "NQ"),
    ("MGC", "COMEX_MINI", "Micro Gold", 10.0, "GC"),
)
SECOND_MONTH_ROOTS = ("ES", "NQ", "CL", "GC", "ZN", "6E", "NG", "SI")
DATED_ROOTS = ("ES", "NQ", "CL", "GC")
QUARTER_CODES = (("H", 3), ("M", 6), ("U", 9), ("Z", 12))

# ticker, exchange, name, price, market cap / AUM (USD), type, listed offset, delisted offset, clone of
STOCKS: tuple[tuple[str, str, str, float, float, str, int | None, int | None, str | None], ...] = (
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
#: Volatility and tail-hedge products, rows like STOCKS' (CONVEX_PRODUCTS gives their payoffs):
#: every market with room for five stocks has them.
VOLATILITY_PRODUCTS: tuple[tuple[str, str, str, float, float, str, int | None, int | None, str | None], ...] = (
    ("VIXY", "AMEX", "ProShares VIX Short-Term Futures ETF", 15.0, 6.0e8, "fund", None, None, None),
    ("UVXY", "AMEX", "ProShares Ultra VIX Short-Term Futures ETF", 12.0, 1.0e9, "fund", None, None, None),
    ("VXX", "AMEX", "iPath Series B S&P 500 VIX Short-Term Futures ETN", 20.0, 8.0e8, "fund", None, None, None),
    ("TAIL", "AMEX", "Cambria Tail Risk ETF", 17.0, 3.0e8, "fund", None, None, None),
    ("SVXY", "AMEX", "ProShares Short VIX Short-Term Futures ETF", 60.0, 3.0e8, "fund", None, None, None),
)
CONVEX_STOCKS = ("GME", "AMC")  # meme stocks: upward jumps, none of them tied to the market

#: The payoffs of the volatility products, the ground truth of antifragility scoring:
#: ``(market beta, convexity, tail hedge)`` in the simulation's market payoff (see
#: ``simulation.market_payoff``): long volatility is convex (VIXY, UVXY, VXX), a tail hedge is
#: convex on the downside only (TAIL), short volatility is concave (SVXY).
CONVEX_PRODUCTS: dict[str, tuple[float, float, float]] = {
    "VIXY": (-1.0, 1.0, 0.0),
    "UVXY": (-1.5, 1.5, 0.0),
    "VXX": (-1.0, 1.0, 0.0),
    "TAIL": (-0.2, 0.0, 5.0),
    "SVXY": (0.5, -0.5, 0.0),
}

# Currencies in quoting order (the earlier one is the base of a pair), USD value, daily vol.
CURRENCIES: tuple[tuple[str, float, float], ...] = (
    ("EUR", 1.22, 0.005), ("GBP", 1.37, 0.006), ("AUD", 0.77, 0.007), ("NZD", 0.72, 0.007),
    ("USD", 1.0, 0.0), ("CAD", 0.785, 0.005), ("CHF", 1.13, 0.005), ("NOK", 0.117, 0.007),
    ("SEK", 0.122, 0.006), ("DKK", 0.164, 0.005), ("PLN", 0.27, 0.007), ("HUF", 0.0034, 0.008),
    ("CZK", 0.047, 0.006), ("TRY", 0.135, 0.012), ("ZAR", 0.068, 0.010), ("MXN", 0.050, 0.009),
    ("SGD", 0.757, 0.003), ("HKD", 0.129, 0.0005), ("CNH", 0.154, 0.003), ("INR", 0.0137, 0.004),
    ("BRL", 0.19, 0.011), ("KRW", 0.00092, 0.005), ("ILS", 0.31, 0.005), ("THB", 0.033, 0.004),
    ("CLP", 0.0014, 0.008), ("COP", 0.00029, 0.009), ("IDR", 0.000071, 0.005), ("JPY", 0.0097, 0.005),
)
MAJOR_CURRENCIES = ("EUR", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD")
FX_EXCHANGES = ("FX", "OANDA", "FXCM", "SAXO", "PEPPERSTONE", "ICMARKETS", "CAPITALCOM", "EIGHTCAP")
