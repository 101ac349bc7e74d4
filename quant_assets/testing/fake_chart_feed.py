"""A fake of TradingView's chart websocket on 127.0.0.1, serving the synthetic market's bars.

It speaks the framing and the session of :mod:`quant_assets.sources.tradingview.chart_feed`: a hello on
connect, a heartbeat that must be echoed before any data is sent, ``symbol_resolved`` or
``symbol_error``, the bars in ``timescale_update`` chunks, then ``series_completed``. Faults
are injected per symbol, for the first ``times`` connections asking for it:

* ``drop``: close the connection after the first chunk of bars;
* ``slow``: wait ``delay_s`` before every frame;
* ``protocol_error``: send a malformed frame instead of the bars.

Every connection is counted per symbol (``connections``), so tests can see the retries.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from aiohttp import WSMsgType, web

from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig, get_market
from quant_assets.sources.tradingview.chart_feed import decode_frames, encode_frame, message

FAULTS = ("drop", "slow", "protocol_error")
CHUNK = 100  # bars per timescale_update, as the real feed splits long histories


@dataclass
class ChartFault:
    kind: str
    times: int = 1
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown chart feed fault {self.kind!r}; expected one of {FAULTS}")


@dataclass
class FakeChartFeed:
    """The app's state: the market, the day it serves bars up to, faults, latency, counters."""

    market: SyntheticMarket
    as_of: date
    faults: dict[str, ChartFault] = field(default_factory=dict)
    latency_s: float = 0.0
    connections: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._known = frozenset(self.market.instruments["symbol"].to_list())

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/socket.io/websocket", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(encode_frame({"session_id": "fake", "protocol": "json"}))
        await ws.send_str(encode_frame("~h~1"))
        # Data flows only once the heartbeat is echoed: a client that ignores heartbeats gets
        # nothing, as the real feed hangs up on it.
        echoed, wanted, series = False, None, None
        async for received in ws:
            if received.type != WSMsgType.TEXT:
                break
            for payload in decode_frames(received.data):
                if payload == "~h~1":
                    echoed = True
                    continue
                parsed = json.loads(payload)
                if parsed["m"] == "resolve_symbol":
                    wanted = json.loads(parsed["p"][2].removeprefix("="))["symbol"]
                elif parsed["m"] == "create_series":
                    series = (parsed["p"][0], int(parsed["p"][5]))
            if echoed and series is not None:
                await self._serve(ws, series[0], wanted, series[1])
                break
        await ws.close()
        return ws

    async def _send(self, ws: web.WebSocketResponse, payload: Any, delay_s: float) -> None:
        if delay_s:
            await asyncio.sleep(delay_s)
        await ws.send_str(encode_frame(payload))

    async def _serve(self, ws: web.WebSocketResponse, chart: str, symbol: str | None, n_bars: int) -> None:
        self.connections[symbol] += 1
        fault = self.faults.get(symbol or "")
        if fault is not None and self.connections[symbol] > fault.times:
            fault = None
        delay = self.latency_s + (fault.delay_s if fault and fault.kind == "slow" else 0.0)
        if symbol not in self._known:
            await self._send(ws, message("symbol_error", chart, "sds_sym_1", "invalid symbol"), delay)
            return
        await self._send(ws, message("symbol_resolved", chart, "sds_sym_1", {"name": symbol}), delay)
        if fault and fault.kind == "protocol_error":
            await ws.send_str("~m~99~m~{truncated")
            return
        bars = self.market.bars(self.as_of - timedelta(days=10 * n_bars), self.as_of, [symbol]).tail(n_bars)
        rows = [
            {"i": i, "v": [datetime.combine(d, time(), tzinfo=timezone.utc).timestamp(), o, h, lo, c, v]}
            for i, (d, o, h, lo, c, v) in enumerate(bars.select("date", "open", "high", "low", "close", "volume").iter_rows())
        ]
        for start in range(0, max(len(rows), 1), CHUNK):
            chunk = rows[start:start + CHUNK]
            await self._send(ws, message("timescale_update", chart, {"sds_1": {"s": chunk}}), delay)
            if fault and fault.kind == "drop":
                return
        await self._send(ws, message("series_completed", chart, "sds_1", "streaming"), delay)


def main(argv: list[str] | None = None) -> None:
    """``python -m quant_assets.testing.fake_chart_feed --port 8766``: serve until stopped."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--date", type=date.fromisoformat, default=date.today() - timedelta(days=1))
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every frame")
    parser.add_argument("--instruments", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    market = get_market(SyntheticMarketConfig(seed=args.seed, n_instruments=args.instruments))
    feed = FakeChartFeed(market, args.date, latency_s=args.latency)
    web.run_app(feed.app(), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
