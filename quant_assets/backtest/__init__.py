"""Stage 5, what the book earned: the daily backtest of the barbell and its benchmarks
(:mod:`~quant_assets.backtest.books`), and the statistics of their returns
(:mod:`~quant_assets.backtest.performance`)."""
