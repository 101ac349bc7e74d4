"""The screener's column definitions, computed from daily bars and answered from a screen.

``bar_time`` (recursions over each instrument's own bars), ``indicators`` (every price and
indicator column of the screen, TradingView's definitions), ``scan_filters`` (the scanner's filter
operations on a screen frame), ``reconstruct`` (a past date's screen recomputed from bars).
Shared by the synthetic market, the live source and the fake scanner; imports only
``instruments``, ``errors`` and ``sources.base``.
"""
