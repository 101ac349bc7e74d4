"""A faithful local fake of the TradingView scanner API, for tests and demos (DESIGN.md §2, §3).

An ``aiohttp`` app serving ``POST /{market}/scan`` from a synthetic market's screen of one day,
answering the request body the way the scanner does (``columns``, ``filter``, ``filter2``,
``sort``, ``range``, ``symbols.tickers``; ``totalCount`` ignores the range; missing values are
``null``; a field unknown to the market (by TradingView's recorded field lists) is HTTP 400
``{"totalCount":0,"error":"Unknown field \\"x\\"","data":null}``).
Filters are evaluated by :func:`~quant_assets.sources.screener.scan_filters.apply_scan_filters`, the
code the synthetic source uses, and ties in the sort are broken by symbol as the synthetic
source breaks them, so the fake answers any query exactly as
:meth:`SyntheticSource.scan <quant_assets.sources.synthetic.SyntheticSource.scan>` does.

A :class:`FaultPlan` injects latency and the failures seen in the wild (429 with or without
``Retry-After``, 403, 5xx, a hung request, a reset connection, HTTP 200 with an empty, HTML
or truncated body or without ``data``) and records every request, so tests can assert retries, the concurrency
bound and the request rate.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import polars as pl
from aiohttp import web

from quant_assets.errors import ConfigError, SourceResponseError
from quant_assets.sources.base import ScanFilter
from quant_assets.sources.screener.fields import fields_in
from quant_assets.sources.screener.scan_filters import apply_scan_filters, unknown_field_error
from quant_assets.sources.synthetic import SyntheticMarket, SyntheticMarketConfig, get_market
from quant_assets.sources.tradingview.scanner import URL_ENV
from quant_assets.sources.tradingview.wire import FilterTree, ScanErrorBody, ScanResponse

#: Faults a :class:`FaultPlan` can inject besides an HTTP status (``"429"``, ``"503"``, ...,
#: optionally ``"429-retry-after:2"``): ``ok`` is no fault.
FAULT_KINDS: tuple[str, ...] = ("ok", "hang", "reset", "empty", "html", "truncated", "nodata")

_STATUS_FAULT = re.compile(r"^(?P<status>[45]\d\d)(?:-retry-after:(?P<after>\d+(?:\.\d+)?))?$")
_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
    "<body><p>Checking your browser before accessing scanner.tradingview.com.</p></body></html>"
)
_ROW = "__row"


def _check_fault(fault: str, where: str) -> str:
    if fault not in FAULT_KINDS and not _STATUS_FAULT.match(fault):
        raise ConfigError(
            f"FaultPlan.{where}: unknown fault {fault!r}; expected one of {', '.join(FAULT_KINDS)} or an "
            f"HTTP status >= 400, optionally with '-retry-after:<seconds>' (e.g. '429-retry-after:1')"
        )
    return fault


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake received."""

    at: float  # time.monotonic() on arrival, before any latency
    market: str
    body: Any  # the parsed JSON body, or None if it was not JSON
    headers: dict[str, str]
    fault: str | None


@dataclass
class FaultPlan:
    """Latency and faults to inject, and what the fake saw.

    Attributes
    ----------
    latency_s, jitter_s : float
        Every request waits ``latency_s`` plus a uniform draw in ``[0, jitter_s]``.
    faults : list of str
        Scripted faults, consumed one per request in arrival order (``"ok"`` for none):
        an HTTP status (``"429"``, ``"403"``, ``"500"``, ``"503"``, optionally
        ``"429-retry-after:1"``), ``"hang"`` (no answer for ``hang_s``), ``"reset"`` (the
        connection is dropped), ``"empty"``, ``"html"``, ``"truncated"`` or ``"nodata"`` (HTTP
        200 with an empty body, an HTML page, the answer's JSON cut in half, or JSON whose
        ``data`` is null).
    fail_markets : dict of str to str
        A fault for every request to a market (persistent failure), before scripted faults.
    fault_rate : float
        Once the script is used up, each request fails with this probability, with a fault
        drawn from ``random_faults`` (seeded by ``seed``).
    random_faults : tuple of str
        Faults drawn for ``fault_rate``.
    seed : int
        Seed of the fault and jitter draws.
    hang_s : float
        How long a ``"hang"`` lasts before the request is answered (the server's shutdown
        ends it sooner).
    records : list of RequestRecord
        Every request received, in arrival order.
    in_flight, max_in_flight : int
        Requests being handled now, and the most at once so far.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    faults: list[str] = field(default_factory=list)
    fail_markets: dict[str, str] = field(default_factory=dict)
    fault_rate: float = 0.0
    random_faults: tuple[str, ...] = ("429", "503", "empty", "html", "truncated", "reset")
    seed: int = 0
    hang_s: float = 3600.0
    records: list[RequestRecord] = field(default_factory=list, repr=False)
    in_flight: int = 0
    max_in_flight: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for i, fault in enumerate(self.faults):
            _check_fault(fault, f"faults[{i}]")
        for market, fault in self.fail_markets.items():
            _check_fault(fault, f"fail_markets[{market!r}]")
        for fault in self.random_faults:
            _check_fault(fault, "random_faults")
        for name in ("latency_s", "jitter_s", "hang_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigError(f"FaultPlan.{name} must be a non-negative number of seconds, got {value!r}")
        if not 0 <= self.fault_rate <= 1:
            raise ConfigError(f"FaultPlan.fault_rate must be in [0, 1], got {self.fault_rate!r}")
        self._rng = random.Random(self.seed)

    @property
    def requests(self) -> int:
        """How many requests arrived."""
        return len(self.records)

    @property
    def timestamps(self) -> list[float]:
        """Arrival times (``time.monotonic()``) of the requests, in order."""
        return [record.at for record in self.records]

    def _next_fault(self, market: str) -> str | None:
        if market in self.fail_markets:
            return self.fail_markets[market]
        if self.faults:
            return self.faults.pop(0)
        if self.fault_rate and self._rng.random() < self.fault_rate:
            return self._rng.choice(self.random_faults)
        return None

    def _latency(self) -> float:
        return self.latency_s + (self.jitter_s * self._rng.random() if self.jitter_s else 0.0)


# ---------------------------------------------------------------------------------------------
# Answering a scan request.
# ---------------------------------------------------------------------------------------------


def _scan_filter(raw: Any, where: str) -> ScanFilter:
    if not isinstance(raw, dict) or not all(isinstance(raw.get(key), str) for key in ("left", "operation")):
        raise SourceResponseError(f"{where}: expected {{left, operation, right}}, got {json.dumps(raw)}")
    return ScanFilter(raw["left"], raw["operation"], raw.get("right"))


def _tree_mask(frame: pl.DataFrame, node: Any, where: str) -> pl.Series:
    """Rows of ``frame`` passing a ``filter2`` node ``{operator, operands}``."""
    operator, operands = (node.get("operator"), node.get("operands")) if isinstance(node, dict) else (None, None)
    if operator not in ("and", "or") or not isinstance(operands, list):
        raise SourceResponseError(f'{where}: expected {{"operator": "and"|"or", "operands": [...]}}')
    masks = []
    for i, operand in enumerate(operands):
        here = f"{where}.operands[{i}]"
        if isinstance(operand, dict) and set(operand) == {"expression"}:
            # One leaf through the shared filter code, so its semantics (nulls fail, ...) match.
            passing = apply_scan_filters(frame, [_scan_filter(operand["expression"], here)])
            masks.append(frame[_ROW].is_in(passing[_ROW].implode()))
        elif isinstance(operand, dict) and set(operand) == {"operation"}:
            masks.append(_tree_mask(frame, operand["operation"], f"{here}.operation"))
        else:
            raise SourceResponseError(f"{here}: expected {{expression: ...}} or {{operation: ...}}")
    # An empty "and" keeps every row, an empty "or" none.
    combined = pl.Series(_ROW, [operator == "and"] * frame.height, dtype=pl.Boolean)
    for mask in masks:
        combined = combined & mask if operator == "and" else combined | mask
    return combined


def _int_pair(value: Any, where: str) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        or value[0] > value[1]
    ):
        raise SourceResponseError(
            f"{where}: expected [start, end] with 0 <= start <= end, got {json.dumps(value)}"
        )
    return value[0], value[1]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def answer_scan(screen: pl.DataFrame, body: Any) -> ScanResponse:
    """The scanner's answer to ``body`` over ``screen`` (one market's rows).

    Raises
    ------
    SourceResponseError
        The request is malformed or names a field the screen lacks (``Unknown field "x"``
        starts the message); the server answers HTTP 400.
    """
    if not isinstance(body, dict):
        raise SourceResponseError("the request body must be a JSON object")
    columns = body.get("columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise SourceResponseError("columns: expected a list of field names")
    for name in columns:
        if name not in screen.columns:
            raise unknown_field_error(name, "", where="columns")
    filters = body.get("filter") or []
    if not isinstance(filters, list):
        raise SourceResponseError("filter: expected a list of {left, operation, right}")
    frame = apply_scan_filters(
        screen.with_row_index(_ROW), [_scan_filter(f, f"filter[{i}]") for i, f in enumerate(filters)]
    )
    tree: FilterTree | None = body.get("filter2")
    if tree is not None:
        frame = frame.filter(_tree_mask(frame, tree, "filter2"))
    symbols = body.get("symbols") or {}
    tickers = symbols.get("tickers") if isinstance(symbols, dict) else None
    if tickers is not None and not (isinstance(tickers, list) and all(isinstance(t, str) for t in tickers)):
        raise SourceResponseError("symbols.tickers: expected a list of symbols")
    if tickers:
        frame = frame.filter(pl.col("symbol").is_in(tickers))
    sort = body.get("sort")
    if sort is not None:
        if not isinstance(sort, dict):
            raise SourceResponseError("sort: expected an object")
        by, order = sort.get("sortBy"), sort.get("sortOrder", "asc")
        nulls_first = sort.get("nullsFirst", False)
        if not isinstance(by, str) or order not in ("asc", "desc") or not isinstance(nulls_first, bool):
            raise SourceResponseError(
                'sort: expected {"sortBy": field, "sortOrder": "asc"|"desc", "nullsFirst": bool}'
            )
        if by not in screen.columns:
            raise unknown_field_error(by, "", where="sort")
        frame = frame.sort([by, "symbol"], descending=[order == "desc", False], nulls_last=not nulls_first)
    start, end = _int_pair(body.get("range", [0, frame.height]), "range")
    page = frame.slice(start, max(0, end - start))
    names = page["symbol"].to_list()
    rows = page.select(columns).rows() if columns else [()] * page.height
    return {
        "totalCount": frame.height,
        "data": [{"s": s, "d": [_json_value(v) for v in row]} for s, row in zip(names, rows)],
    }


def _wire_error(exc: SourceResponseError) -> ScanErrorBody:
    # The scanner says only 'Unknown field "x"'; our message goes on to say where.
    unknown = re.match(r'Unknown field "[^"]*"', str(exc))
    return {"totalCount": 0, "error": unknown.group(0) if unknown else str(exc), "data": None}


def _json_response(status: int, payload: Any) -> web.Response:
    text = json.dumps(payload, allow_nan=False)
    return web.Response(status=status, text=text, content_type="application/json")


# ---------------------------------------------------------------------------------------------
# The app and its runners.
# ---------------------------------------------------------------------------------------------


class _FakeScannerState:
    def __init__(self, market: SyntheticMarket, as_of: date, plan: FaultPlan) -> None:
        self.plan = plan
        self.as_of = as_of
        # Computed once: a request should cost the latency asked for, not a simulation.
        screen = market.screen(as_of).with_columns(pl.col(pl.Float64).fill_nan(None))
        # Every market with instruments, even none listed today: an empty answer, not a 404.
        # Each has only the fields TradingView's recorded lists show for it: asking for another
        # (market_cap_calc of a future) is HTTP 400, as it may be from TradingView.
        markets = market.instruments["market"].unique().sort()
        self.screens = {
            name: screen.filter(pl.col("market") == name).select("symbol", *fields_in(name, screen.columns[1:]))
            for name in markets
        }
        self.shutting_down = asyncio.Event()

    async def release_hangs(self, _app: web.Application) -> None:
        self.shutting_down.set()

    def _answer(self, market: str, body: Any) -> web.Response:
        screen = self.screens.get(market)
        if screen is None:
            return _json_response(404, {"totalCount": 0, "error": f'Unknown market "{market}"', "data": None})
        try:
            return _json_response(200, answer_scan(screen, body))
        except SourceResponseError as exc:
            return _json_response(400, _wire_error(exc))

    async def handle_scan(self, request: web.Request) -> web.StreamResponse:
        plan = self.plan
        market = request.match_info["market"]
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        fault = plan._next_fault(market)
        plan.records.append(RequestRecord(time.monotonic(), market, body, dict(request.headers), fault))
        plan.in_flight += 1
        plan.max_in_flight = max(plan.max_in_flight, plan.in_flight)
        try:
            latency = plan._latency()
            if latency:
                await asyncio.sleep(latency)
            return await self._faulty(request, fault, market, body)
        finally:
            plan.in_flight -= 1

    async def _faulty(
        self, request: web.Request, fault: str | None, market: str, body: Any
    ) -> web.StreamResponse:
        if fault is None or fault == "ok":
            return self._answer(market, body)
        if fault == "hang":
            try:
                await asyncio.wait_for(self.shutting_down.wait(), timeout=self.plan.hang_s)
            except asyncio.TimeoutError:
                return self._answer(market, body)  # a slow answer, if anyone still waits for it
            return web.Response(status=503, text="shutting down")
        if fault == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response()  # never sent: the connection is gone
        if fault == "empty":
            return web.Response(status=200, body=b"", content_type="application/json")
        if fault == "html":
            return web.Response(status=200, text=_HTML_PAGE, content_type="text/html")
        if fault == "nodata":
            return _json_response(200, {"totalCount": 0, "error": "temporarily unavailable", "data": None})
        if fault == "truncated":
            text = self._answer(market, body).text or ""
            cut = text[: max(1, len(text) // 2)]
            return web.Response(status=200, text=cut, content_type="application/json")
        # FaultPlan admits only the kinds above and HTTP statuses.
        status, retry_after = _STATUS_FAULT.match(fault).group("status", "after")  # type: ignore[union-attr]
        headers = {"Retry-After": retry_after} if retry_after else {}
        return web.Response(status=int(status), text=f"injected fault {fault}", headers=headers)


_STATE = web.AppKey("fake_scanner_state", _FakeScannerState)


def create_app(market: SyntheticMarket, as_of: date, plan: FaultPlan | None = None) -> web.Application:
    """The fake scanner app: ``POST /{market}/scan`` over ``market.screen(as_of)``.

    Markets are those of the synthetic market (``crypto``, ``futures``, ``america``,
    ``forex``); any other is HTTP 404. ``plan`` injects latency and faults and records
    requests (a fresh, fault-free plan by default).
    """
    state = _FakeScannerState(market, as_of, plan if plan is not None else FaultPlan())
    app = web.Application()
    app[_STATE] = state
    app.router.add_post("/{market}/scan", state.handle_scan)
    # Hung requests end when the server shuts down instead of holding it for hang_s.
    app.on_shutdown.append(state.release_hangs)
    return app


class FakeScanner:
    """The fake scanner on ``127.0.0.1`` and a free port, for ``async with``.

    Example
    -------
    >>> async with FakeScanner(market, as_of, FaultPlan(faults=["429"])) as fake:  # doctest: +SKIP
    ...     settings = ScannerSettings(base_url=fake.url)
    """

    def __init__(
        self, market: SyntheticMarket, as_of: date, plan: FaultPlan | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        self.plan = plan if plan is not None else FaultPlan()
        self.as_of = as_of
        self.app = create_app(market, as_of, self.plan)
        self._host = host
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeScanner:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, 0).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def serve(
    port: int,
    seed: int,
    n_instruments: int,
    as_of: date | None,
    latency_s: float,
    *,
    jitter_s: float = 0.0,
    fault_rate: float = 0.0,
    host: str = "127.0.0.1",
) -> None:
    """Serve the fake scanner until interrupted (``quant-assets fake-scanner``).

    Parameters
    ----------
    port : int
        TCP port on ``host``.
    seed, n_instruments : int
        The synthetic market (see :class:`~quant_assets.sources.synthetic.SyntheticMarketConfig`).
    as_of : datetime.date or None
        The day screened; UTC today by default, the day the live source asks for.
    latency_s, jitter_s : float
        Latency of every answer, plus a uniform draw in ``[0, jitter_s]``.
    fault_rate : float
        Probability of a random fault per request (429, 503, bad bodies, resets).
    host : str
        Interface to listen on.
    """
    day = as_of or datetime.now(timezone.utc).date()
    market = get_market(SyntheticMarketConfig(seed=seed, n_instruments=n_instruments))
    plan = FaultPlan(latency_s=latency_s, jitter_s=jitter_s, fault_rate=fault_rate, seed=seed)
    app = create_app(market, day, plan)
    url = f"http://{host}:{port}"
    print(
        f"fake TradingView scanner: {n_instruments} synthetic instruments (seed {seed}) as of "
        f"{day.isoformat()} on {url}\nmarkets: {', '.join(app[_STATE].screens)}; "
        f"point the live source here with {URL_ENV}={url}",
        flush=True,
    )
    web.run_app(app, host=host, port=port, print=None)
