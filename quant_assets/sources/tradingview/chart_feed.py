"""Daily bars from TradingView's chart websocket: the framing, the session and an async client.

Wire format (undocumented; gathered from public clients). Every websocket text message holds one
or more frames ``~m~<length>~m~<payload>``, ``length`` counting the payload's characters. A
payload is either a heartbeat ``~h~<n>`` (echo it back, framed, or the server hangs up), a
JSON hello from the server (``session_id``, ...) on connect, or a JSON message
``{"m": <method>, "p": [<params>]}``. Fetching one symbol's daily bars:

1. ``set_auth_token ["unauthorized_user_token"]``, ``chart_create_session [cs]``;
2. ``resolve_symbol [cs, "sds_sym_1", "={\\"symbol\\": \\"BINANCE:BTCUSDT\\", ...}"]``: the server
   answers ``symbol_resolved`` or ``symbol_error`` (an unknown symbol);
3. ``create_series [cs, "sds_1", "s1", "sds_sym_1", "1D", n_bars, ""]``: the server sends
   ``timescale_update`` messages whose ``p[1]["sds_1"]["s"]`` is a list of
   ``{"i": index, "v": [unix_time, open, high, low, close, volume]}``, then ``series_completed``.
   ``critical_error`` / ``protocol_error`` end the session.

:class:`ChartFeedClient` opens one connection per symbol (a chart session serves one series
at a time), at most ``concurrency`` at once, and retries a connection that drops or stalls per
its :class:`~quant_assets.sources.tradingview.transport.RetryPolicy`; an unknown symbol is not retried.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp
import polars as pl

from quant_assets.errors import SourceConnectionError, SourceResponseError
from quant_assets.instruments import BAR_SCHEMA
from quant_assets.sources.tradingview.transport import RetryPolicy

#: Environment variable overriding :attr:`ChartFeedSettings.url`.
CHART_URL_ENV = "QUANT_ASSETS_TRADINGVIEW_CHART_URL"
DEFAULT_CHART_URL = "wss://data.tradingview.com/socket.io/websocket"


_FRAME = re.compile(r"~m~(\d+)~m~")
_HEARTBEAT = "~h~"


class UnknownSymbolError(SourceResponseError):
    """The chart feed does not know the symbol (``symbol_error``)."""


def encode_frame(payload: str | dict[str, Any]) -> str:
    """One frame: ``~m~<length>~m~<payload>``; a dict is sent as compact JSON."""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return f"~m~{len(text)}~m~{text}"


def decode_frames(data: str) -> list[str]:
    """The payloads of the frames in one websocket message, in order.

    Raises
    ------
    SourceResponseError
        If the message is not a sequence of whole frames (naming the offset).
    """
    payloads, at = [], 0
    while at < len(data):
        header = _FRAME.match(data, at)
        if header is None:
            raise SourceResponseError(f"chart feed: no frame header at offset {at} of {data[:80]!r}")
        start = header.end()
        end = start + int(header.group(1))
        if end > len(data):
            raise SourceResponseError(
                f"chart feed: frame at offset {at} claims {header.group(1)} characters, "
                f"{len(data) - start} left"
            )
        payloads.append(data[start:end])
        at = end
    return payloads


def message(method: str, *params: Any) -> dict[str, Any]:
    return {"m": method, "p": list(params)}


def parse_bars(symbol: str, updates: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Bars from the ``s`` lists of a series' updates: one row per day, the last update of a day
    winning, sorted by date; columns :data:`BAR_SCHEMA`.

    Raises
    ------
    SourceResponseError
        On a bar that is not ``[time, open, high, low, close, volume]`` numbers.
    """
    by_day: dict[Any, list[float]] = {}
    for bar in updates:
        values = bar.get("v") if isinstance(bar, dict) else None
        if (not isinstance(values, list) or len(values) < 6
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values[:6])):
            raise SourceResponseError(f"chart feed {symbol}: malformed bar {bar!r}")
        day = datetime.fromtimestamp(values[0], tz=timezone.utc).date()
        by_day[day] = [float(v) for v in values[1:6]]
    days = sorted(by_day)
    columns = list(zip(*(by_day[d] for d in days))) if days else [[]] * 5
    return pl.DataFrame(
        {"date": days, "symbol": [symbol] * len(days),
         **{name: list(col) for name, col in zip(("open", "high", "low", "close", "volume"), columns)}},
        schema=BAR_SCHEMA,
    )


@dataclass(frozen=True)
class ChartFeedSettings:
    """Where the chart feed is and how hard to push it.

    ``url`` defaults to ``$QUANT_ASSETS_TRADINGVIEW_CHART_URL``, else TradingView's.
    ``concurrency`` bounds connections open at once; ``idle_timeout_s`` is how long a session
    may go without a frame before it counts as stalled (and is retried).
    """

    url: str = ""
    concurrency: int = 4
    idle_timeout_s: float = 20.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_attempts=4, base_delay_s=0.5))

    def resolved_url(self) -> str:
        return self.url or os.environ.get(CHART_URL_ENV) or DEFAULT_CHART_URL


class _SessionDropped(Exception):
    """The connection ended or stalled before the series completed: worth another attempt."""


class ChartFeedClient:
    """Fetches daily bars of many symbols over the chart websocket, concurrently and politely."""

    def __init__(self, settings: ChartFeedSettings | None = None, rng: random.Random | None = None) -> None:
        self.settings = settings or ChartFeedSettings()
        self._rng = rng or random.Random()

    async def fetch_many(self, symbols: Sequence[str], n_bars: int) -> dict[str, pl.DataFrame]:
        """The last ``n_bars`` daily bars of every symbol.

        Raises
        ------
        UnknownSymbolError
            For the first unknown symbol (the others are still fetched first).
        SourceConnectionError / SourceResponseError
            When a symbol could not be fetched after the retries.
        """
        limit = asyncio.Semaphore(self.settings.concurrency)
        async with aiohttp.ClientSession() as http:
            async def one(symbol: str) -> pl.DataFrame:
                async with limit:
                    return await self.fetch(http, symbol, n_bars)

            results = await asyncio.gather(*(one(s) for s in symbols), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return dict(zip(symbols, results))

    async def fetch(self, http: aiohttp.ClientSession, symbol: str, n_bars: int) -> pl.DataFrame:
        """One symbol's last ``n_bars`` daily bars, retrying dropped or stalled sessions."""
        policy = self.settings.retry
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return await self._session(http, symbol, n_bars)
            except _SessionDropped as exc:
                if attempt == policy.max_attempts:
                    raise SourceConnectionError(
                        f"chart feed {symbol}: {exc} ({attempt} attempts at {self.settings.resolved_url()})"
                    ) from exc
                await asyncio.sleep(policy.delay(attempt, None, self._rng))
        raise AssertionError("unreachable")

    async def _session(self, http: aiohttp.ClientSession, symbol: str, n_bars: int) -> pl.DataFrame:
        chart = "cs_" + secrets.token_hex(6)
        try:
            async with http.ws_connect(self.settings.resolved_url(), heartbeat=None) as ws:
                for request in (
                    message("set_auth_token", "unauthorized_user_token"),
                    message("chart_create_session", chart, ""),
                    message("resolve_symbol", chart, "sds_sym_1",
                            "=" + json.dumps({"symbol": symbol, "adjustment": "splits"})),
                    message("create_series", chart, "sds_1", "s1", "sds_sym_1", "1D", n_bars, ""),
                ):
                    await ws.send_str(encode_frame(request))
                return await self._receive(ws, symbol)
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            raise _SessionDropped(f"{type(exc).__name__}: {exc}") from exc

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse, symbol: str) -> pl.DataFrame:
        updates: list[dict[str, Any]] = []
        while True:
            try:
                received = await ws.receive(timeout=self.settings.idle_timeout_s)
            except asyncio.TimeoutError as exc:
                raise _SessionDropped(f"no frame for {self.settings.idle_timeout_s:g} s") from exc
            if received.type != aiohttp.WSMsgType.TEXT:
                raise _SessionDropped(f"connection ended ({received.type.name}) before the series completed")
            for payload in decode_frames(received.data):
                if payload.startswith(_HEARTBEAT):
                    await ws.send_str(encode_frame(payload))
                    continue
                try:
                    parsed = json.loads(payload)
                except json.JSONDecodeError as exc:
                    raise SourceResponseError(f"chart feed {symbol}: payload is not JSON: {payload[:80]!r}") from exc
                method, params = parsed.get("m"), parsed.get("p", [])
                if method == "symbol_error":
                    raise UnknownSymbolError(f"chart feed: unknown symbol {symbol!r} ({params[-1] if params else ''})")
                if method in ("critical_error", "protocol_error"):
                    raise SourceResponseError(f"chart feed {symbol}: {method} {params}")
                if method == "timescale_update":
                    series = params[1].get("sds_1", {}) if len(params) > 1 and isinstance(params[1], dict) else {}
                    updates.extend(series.get("s", []))
                if method == "series_completed":
                    return parse_bars(symbol, updates)
