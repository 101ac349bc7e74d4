"""The live TradingView scanner: an async client and the :class:`MarketSource` over it (DESIGN.md §3).

Building a request body (:func:`build_scan_body`, pure) is separate from sending it
(:meth:`ScannerClient._request`, the one place HTTP happens). Every request of a session goes
through one semaphore (requests in flight) and one rate limiter (requests per second), and
every failure is retried per a :class:`RetryPolicy` or mapped to our own errors:
:class:`~quant_assets.errors.SourceConnectionError` when the scanner could not be reached,
:class:`~quant_assets.errors.SourceResponseError` when it answered unusably. Messages name the
config asking (``ScanQuery.label``) and the URL path; the optional session cookie never
appears in a message, a log record or a ``repr``.

The scanner answers one market per request (``POST {base_url}/{market}/scan``) and at most a
page of rows per request; :func:`scan_all` fetches every query, market and page concurrently
over one session and keeps one failing query from sinking the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import os
import random
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, TypeVar
from urllib.parse import urlsplit

import aiohttp
import polars as pl

from quant_assets.errors import ConfigError, QuantAssetsError, SourceConnectionError, SourceResponseError
from quant_assets.sources.base import BAR_SCHEMA, ScanFilter, ScanQuery, answer_each
from quant_assets.sources.scan_filters import unknown_field_error

if TYPE_CHECKING:  # chart_feed imports this module's RetryPolicy
    from quant_assets.lakehouse.bars_cache import BarsCache
    from quant_assets.sources.chart_feed import ChartFeedSettings

_LOGGER = logging.getLogger(__name__)

#: Environment variable overriding :attr:`ScannerSettings.base_url`.
URL_ENV = "QUANT_ASSETS_TRADINGVIEW_URL"
#: Environment variable holding the optional TradingView ``sessionid`` cookie.
COOKIE_ENV = "QUANT_ASSETS_TRADINGVIEW_COOKIE"

DEFAULT_BASE_URL = "https://scanner.tradingview.com"
# Honest about who is asking: the scanner's operators can tell this traffic apart and reach us.
DEFAULT_USER_AGENT = "quant_assets/0.1 (+https://github.com/quant-assets/quant_assets)"

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# Wire format.
# ---------------------------------------------------------------------------------------------


class FilterExpression(TypedDict):
    """One filter ``{left, operation, right}``; ``right`` is a value, a list or a field name."""

    left: str
    operation: str
    right: Any


class FilterOperand(TypedDict, total=False):
    """One operand of a ``filter2`` node: a leaf expression or a nested node (exactly one key)."""

    expression: FilterExpression
    operation: FilterTree


class FilterTree(TypedDict):
    """The ``filter2`` boolean tree."""

    operator: Literal["and", "or"]
    operands: list[FilterOperand]


class SortSpec(TypedDict):
    sortBy: str
    sortOrder: Literal["asc", "desc"]
    nullsFirst: bool


class ScanOptions(TypedDict):
    lang: str


class SymbolsSpec(TypedDict, total=False):
    query: dict[str, list[str]]
    tickers: list[str]


class ScanBody(TypedDict):
    """The body of ``POST /{market}/scan``; ``range`` is ``[start, end)``, end exclusive."""

    columns: list[str]
    filter: list[FilterExpression]
    filter2: NotRequired[FilterTree]
    sort: SortSpec
    range: list[int]
    options: ScanOptions
    markets: NotRequired[list[str]]
    symbols: NotRequired[SymbolsSpec]


class ScanRow(TypedDict):
    """One instrument: ``s`` its symbol (``EXCHANGE:TICKER``), ``d`` values aligned with ``columns``."""

    s: str
    d: list[Any]


class ScanResponse(TypedDict):
    """A successful answer; ``totalCount`` counts every matching row, ignoring ``range``."""

    totalCount: int
    data: list[ScanRow]


class ScanErrorBody(TypedDict):
    """What the scanner answers with HTTP 400, e.g. ``Unknown field "x"``."""

    totalCount: int
    error: str
    data: None


def _wire_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_wire_value(v) for v in value]
    # YAML turns 2024-01-31 into a date; the scanner takes text.
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _wire_filter(flt: ScanFilter) -> FilterExpression:
    return {"left": flt.left, "operation": flt.operation, "right": _wire_value(flt.right)}


def request_columns(query: ScanQuery) -> list[str]:
    """The columns sent for ``query``: its columns, minus ``symbol`` (every row has it as ``s``),
    plus the sort field, so pages of several markets can be merged in sort order."""
    columns = [c for c in query.columns if c != "symbol"]
    return list(dict.fromkeys([*columns, query.sort_by]))


def build_scan_body(query: ScanQuery, start: int, end: int) -> ScanBody:
    """The scanner request body for rows ``[start, end)`` of ``query`` (pure; nothing is sent).

    Nulls sort last, whatever the order, so the best rows come first and pages are stable.
    """
    return {
        "columns": request_columns(query),
        "filter": [_wire_filter(f) for f in query.filters],
        "sort": {
            "sortBy": query.sort_by,
            "sortOrder": "desc" if query.descending else "asc",
            "nullsFirst": False,
        },
        "range": [start, end],
        "options": {"lang": "en"},
    }


# ---------------------------------------------------------------------------------------------
# Settings.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a request again.

    Attributes
    ----------
    max_attempts : int
        Attempts in all, the first included (1 = never retry).
    base_delay_s : float
        Wait after the first failed attempt; doubles after each further one.
    max_delay_s : float
        No wait is longer, ``Retry-After`` included.
    jitter : float
        Each backoff is scaled by a uniform factor in ``[1 - jitter, 1 + jitter]`` so that
        concurrent requests failing together do not retry together.
    """

    max_attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be an int >= 1, got {self.max_attempts!r}")
        if not 0 <= self.base_delay_s <= self.max_delay_s:
            raise ConfigError(
                f"RetryPolicy needs 0 <= base_delay_s <= max_delay_s, got {self.base_delay_s!r} "
                f"and {self.max_delay_s!r}"
            )
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryPolicy.jitter must be in [0, 1], got {self.jitter!r}")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        The jittered exponential backoff, or the server's ``Retry-After`` when that is longer;
        either way at most ``max_delay_s`` (a server asking for an hour must not stall a daily
        run: the retry then most likely fails again and the error says so).
        """
        backoff = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        backoff *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        wanted = backoff if retry_after is None else max(retry_after, backoff)
        return min(self.max_delay_s, max(0.0, wanted))


def _default_headers() -> dict[str, str]:
    return {
        "User-Agent": DEFAULT_USER_AGENT,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


@dataclass(frozen=True)
class ScannerSettings:
    """How to talk to the scanner; build it with :meth:`from_env` to pick up the environment.

    Attributes
    ----------
    base_url : str
        Scheme and host (and optional path prefix) of the scanner; a proxy or a fake in tests.
    headers : dict of str to str
        Sent with every request; by default an honest User-Agent and JSON content type.
    timeout_s : float
        Per request, connection included.
    concurrency : int
        Requests in flight at most, over the whole session.
    rate_per_s : float
        Requests started per second at most, over the whole session (retries included).
    page_size : int
        Rows per request.
    retry : RetryPolicy
        Retries of 429, 403, 5xx, transport errors, timeouts and unusable 200 bodies.
    cookie : str or None
        The ``sessionid`` cookie, only ever from ``QUANT_ASSETS_TRADINGVIEW_COOKIE`` (see
        :meth:`from_env`) so it stays out of files; never shown by ``repr``.
    """

    base_url: str = DEFAULT_BASE_URL
    headers: Mapping[str, str] = field(default_factory=_default_headers, hash=False)
    timeout_s: float = 20.0
    concurrency: int = 4
    rate_per_s: float = 1.0
    page_size: int = 150
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cookie: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if urlsplit(self.base_url).scheme not in ("http", "https") or not urlsplit(self.base_url).netloc:
            raise ConfigError(f"ScannerSettings.base_url must be an http(s) URL, got {self.base_url!r}")
        for name, value in (("timeout_s", self.timeout_s), ("rate_per_s", self.rate_per_s)):
            if not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
                raise ConfigError(f"ScannerSettings.{name} must be a positive number, got {value!r}")
        for name, value in (("concurrency", self.concurrency), ("page_size", self.page_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"ScannerSettings.{name} must be an int >= 1, got {value!r}")

    @classmethod
    def from_env(cls, **overrides: Any) -> ScannerSettings:
        """Settings from the environment, then ``overrides`` (any field but ``cookie``).

        ``QUANT_ASSETS_TRADINGVIEW_URL`` sets ``base_url``; ``QUANT_ASSETS_TRADINGVIEW_COOKIE``
        sets the cookie.

        Raises
        ------
        ConfigError
            On an unknown field, a cookie passed as an override, or an impossible value.
        """
        known = {f.name for f in fields(cls)} - {"cookie"}
        unknown = sorted(set(overrides) - known)
        if "cookie" in overrides:
            raise ConfigError(
                f"the TradingView session cookie is read only from ${COOKIE_ENV}, not passed in code"
            )
        if unknown:
            raise ConfigError(
                f"ScannerSettings has no field {unknown[0]!r} (fields: {', '.join(sorted(known))})"
            )
        values: dict[str, Any] = {}
        if os.environ.get(URL_ENV):
            values["base_url"] = os.environ[URL_ENV]
        values.update(overrides)
        return cls(**values, cookie=os.environ.get(COOKIE_ENV) or None)


# ---------------------------------------------------------------------------------------------
# The client.
# ---------------------------------------------------------------------------------------------


class _RateLimiter:
    """Spaces request starts at least ``1 / rate_per_s`` apart (a token bucket of depth one).

    Each caller reserves the next free slot before sleeping, so concurrent callers queue in
    call order without a lock: nothing awaits between reading and moving the next slot.
    """

    def __init__(self, rate_per_s: float) -> None:
        self._interval = 1.0 / rate_per_s
        self._next_slot = -math.inf

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass(frozen=True)
class _Failure:
    """A retryable failure of one attempt."""

    reason: str
    transport: bool  # True: no usable HTTP exchange; False: the scanner answered unusably
    retry_after: float | None = None
    cause: BaseException | None = None


class _BadBody(Exception):
    """A 200 body that is not a scan answer (internal: becomes a retryable failure)."""


def _asker(label: str) -> str:
    return f"scan query {label!r}" if label else "a scan query"


def _snippet(raw: bytes, limit: int = 80) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _parse_scan_response(raw: bytes, n_columns: int) -> ScanResponse:
    """Validate a 200 body; raise :class:`_BadBody` saying what is wrong with it."""
    if not raw.strip():
        raise _BadBody("HTTP 200 with an empty body")
    try:
        # NaN and Infinity are not JSON; if a proxy lets them through they mean "no value".
        payload = json.loads(raw, parse_constant=lambda _: None)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "truncated or malformed JSON" if raw.lstrip()[:1] in (b"{", b"[") else "a non-JSON body"
        raise _BadBody(f"HTTP 200 with {kind} ({exc}): {_snippet(raw)}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise _BadBody(f"HTTP 200 with JSON lacking a 'data' list: {_snippet(raw)}")
    total = payload.get("totalCount")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise _BadBody(f"HTTP 200 with JSON lacking a non-negative 'totalCount': {_snippet(raw)}")
    for row in payload["data"]:
        if not (
            isinstance(row, dict)
            and isinstance(row.get("s"), str)
            and isinstance(row.get("d"), list)
            and len(row["d"]) == n_columns
        ):
            raise _BadBody(
                f"HTTP 200 with a row that is not {{s, d[{n_columns}]}}: {_snippet(json.dumps(row).encode())}"
            )
    return {"totalCount": total, "data": payload["data"]}


def _field_location(body: ScanBody, name: str) -> str:
    if body["sort"]["sortBy"] == name:
        return "sort"
    if any(name in (f["left"], f["right"]) for f in body["filter"]):
        return "filters"
    return "columns"


def _rejection(status: int, raw: bytes, body: ScanBody, label: str, path: str) -> SourceResponseError:
    """The error for an answer that retrying cannot fix (400, 404, ...)."""
    where = f"(HTTP {status} from POST {path})"
    try:
        message = json.loads(raw).get("error")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        message = None
    if not isinstance(message, str):
        return SourceResponseError(
            f"{_asker(label)}: the scanner refused the request {where}: {_snippet(raw)}"
        )
    unknown = re.search(r'Unknown field "([^"]*)"', message)
    if unknown:
        error = unknown_field_error(unknown.group(1), label, where=_field_location(body, unknown.group(1)))
        return SourceResponseError(f"{error} {where}")
    return SourceResponseError(f"{_asker(label)}: the scanner refused the request {where}: {message}")


def _page_frame(response: ScanResponse, columns: Sequence[str]) -> pl.DataFrame:
    rows = response["data"]
    data = [pl.Series("symbol", [row["s"] for row in rows], dtype=pl.String)]
    # strict=False: JSON numbers come as ints and floats mixed; nulls stay nulls.
    data += [pl.Series(name, [row["d"][j] for row in rows], strict=False) for j, name in enumerate(columns)]
    return pl.DataFrame(data)


def _sorted_cut(frame: pl.DataFrame, query: ScanQuery) -> pl.DataFrame:
    # Ties broken by symbol so the answer does not depend on page arrival or market order.
    frame = frame.sort([query.sort_by, "symbol"], descending=[query.descending, False], nulls_last=True)
    return frame.unique(subset="symbol", keep="first", maintain_order=True).head(query.limit)


async def _gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather``, but the first error cancels the siblings instead of orphaning them."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class ScannerClient:
    """An async client of the TradingView scanner: one session, one semaphore, one rate limiter.

    Use as ``async with ScannerClient(settings) as client: await client.scan("crypto", query)``.

    Parameters
    ----------
    settings : ScannerSettings, optional
        Defaults to :meth:`ScannerSettings.from_env`.
    session : aiohttp.ClientSession, optional
        Use this session (not closed by the client); by default the client opens its own and
        closes it on exit.
    """

    def __init__(
        self, settings: ScannerSettings | None = None, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.settings = settings if settings is not None else ScannerSettings.from_env()
        self._session = session
        self._owns_session = session is None
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self._limiter = _RateLimiter(self.settings.rate_per_s)
        self._timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        self._rng = random.Random()
        self._headers = dict(self.settings.headers)
        if self.settings.cookie:
            self._headers["Cookie"] = f"sessionid={self.settings.cookie}"

    def __repr__(self) -> str:
        return f"ScannerClient({self.settings!r})"

    async def __aenter__(self) -> ScannerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if the client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def scan(self, market: str, query: ScanQuery) -> pl.DataFrame:
        """The top ``query.limit`` rows of ``market``: ``symbol`` + ``query.columns``.

        Every page up to ``query.limit`` is requested at once: waiting for the first page's
        ``totalCount`` would add a whole round trip to every query, while a page past the
        matching rows costs one request that comes back empty. Rows are sorted by
        ``query.sort_by`` (nulls last, ties by symbol); a symbol repeated across pages (the
        market moved between requests) is kept once.

        Raises
        ------
        SourceResponseError
            The scanner rejected the query (e.g. an unknown field, named with the label) or
            kept answering unusably.
        SourceConnectionError
            The scanner could not be reached within the retry policy.
        """
        frame = _sorted_cut(await self._fetch_market(market, query), query)
        return frame.select("symbol", *(c for c in dict.fromkeys(query.columns) if c != "symbol"))

    async def _fetch_market(self, market: str, query: ScanQuery) -> pl.DataFrame:
        if query.limit < 1:
            raise ConfigError(f"{_asker(query.label)}: limit must be >= 1, got {query.limit}")
        page, limit = self.settings.page_size, query.limit
        columns = request_columns(query)
        responses = await _gather_or_cancel(
            self._request(market, build_scan_body(query, start, min(start + page, limit)), query.label)
            for start in range(0, limit, page)
        )
        pages = [_page_frame(response, columns) for response in responses]
        merged = pl.concat(pages, how="vertical_relaxed")
        return merged.unique(subset="symbol", keep="first", maintain_order=True)

    async def _scan_query(self, query: ScanQuery) -> pl.DataFrame:
        """Every market of ``query``, merged: ``symbol``, ``market`` + ``query.columns``."""
        if not query.markets:
            raise ConfigError(f"{_asker(query.label)} names no market")
        # Each market is cut to the limit on its own: the merged top rows may all come from one.
        frames = await _gather_or_cancel(self._fetch_market(market, query) for market in query.markets)
        merged = pl.concat(
            [frame.with_columns(market=pl.lit(market)) for market, frame in zip(query.markets, frames)],
            how="diagonal_relaxed",
        )
        wanted = [c for c in dict.fromkeys(query.columns) if c not in ("symbol", "market")]
        return _sorted_cut(merged, query).select("symbol", "market", *wanted)

    async def _scan_isolated(self, query: ScanQuery) -> pl.DataFrame | QuantAssetsError:
        try:
            return await self._scan_query(query)
        except QuantAssetsError as exc:
            return exc

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _request(self, market: str, body: ScanBody, label: str) -> ScanResponse:
        """POST ``body`` to ``/{market}/scan``, retrying per the policy; the validated answer.

        Raises
        ------
        SourceResponseError
            HTTP 400 (not retried; an unknown field is named with ``label``), another
            non-retryable status, or an unusable answer on the last attempt.
        SourceConnectionError
            A transport error or timeout on the last attempt.
        """
        url = f"{self.settings.base_url.rstrip('/')}/{market}/scan"
        path = urlsplit(url).path
        policy = self.settings.retry
        outcome = await self._attempt(url, path, body, label)
        for attempt in range(1, policy.max_attempts):
            if not isinstance(outcome, _Failure):
                return outcome
            delay = policy.delay(attempt, outcome.retry_after, self._rng)
            _LOGGER.warning(
                "%s: POST %s attempt %d/%d failed (%s); retrying in %.2f s",
                _asker(label), path, attempt, policy.max_attempts, outcome.reason, delay,
            )
            await asyncio.sleep(delay)
            outcome = await self._attempt(url, path, body, label)
        if not isinstance(outcome, _Failure):
            return outcome
        error = SourceConnectionError if outcome.transport else SourceResponseError
        raise error(
            f"{_asker(label)}: POST {path} failed after {policy.max_attempts} attempt"
            f"{'s' if policy.max_attempts > 1 else ''}; last cause: {outcome.reason}"
        ) from outcome.cause

    async def _attempt(self, url: str, path: str, body: ScanBody, label: str) -> ScanResponse | _Failure:
        session = self._ensure_session()
        try:
            # The semaphore is held only while a request is out, never during a backoff.
            async with self._semaphore:
                await self._limiter.wait()
                async with session.post(
                    url,
                    data=json.dumps(body),
                    headers=self._headers,
                    timeout=self._timeout,
                    raise_for_status=False,  # an injected session may raise; statuses are ours to judge
                ) as response:
                    status = response.status
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                    raw = await response.read()
        except asyncio.TimeoutError as exc:
            reason = f"no complete answer within {self.settings.timeout_s:g} s"
            return _Failure(reason, transport=True, cause=exc)
        except (aiohttp.ClientError, ConnectionError) as exc:
            return _Failure(f"{type(exc).__name__}: {exc}", transport=True, cause=exc)
        if 200 <= status < 300:
            try:
                return _parse_scan_response(raw, len(body["columns"]))
            except _BadBody as exc:
                return _Failure(str(exc), transport=False, cause=exc.__cause__)
        if status in (403, 429) or status >= 500:
            return _Failure(f"HTTP {status}: {_snippet(raw)}", transport=False, retry_after=retry_after)
        raise _rejection(status, raw, body, label, path)


async def scan_all(
    requests: Sequence[tuple[str, ScanQuery]],
    settings: ScannerSettings | None = None,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, pl.DataFrame | QuantAssetsError]:
    """Run every query, market and page concurrently over one session.

    Parameters
    ----------
    requests : sequence of (key, ScanQuery)
        ``key`` is the caller's id for the query (unique).
    settings : ScannerSettings, optional
        Concurrency, rate, paging, retries; defaults to :meth:`ScannerSettings.from_env`.
    session : aiohttp.ClientSession, optional
        Injected session (left open).

    Returns
    -------
    dict of key to polars.DataFrame or QuantAssetsError
        Per key, the query's rows: ``symbol``, ``market``, then ``query.columns``, every
        market's top rows merged, sorted by the query's sort (nulls last, ties by symbol) and
        cut to ``query.limit``; or the error that query met. One failing query does not
        cancel the others.

    Raises
    ------
    ConfigError
        A key is repeated.
    """
    keys = [key for key, _ in requests]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ConfigError(f"scan_all: request keys must be unique, {repeated[0]!r} is repeated")
    async with ScannerClient(settings, session) as client:
        results = await _gather_or_cancel(client._scan_isolated(query) for _, query in requests)
    return dict(zip(keys, results))


# ---------------------------------------------------------------------------------------------
# The MarketSource.
# ---------------------------------------------------------------------------------------------


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def _run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous code, even inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # A running loop (a notebook, an async caller) cannot be re-entered: use a fresh one aside.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class TradingViewSource:
    """The live :class:`~quant_assets.sources.base.MarketSource`: today's TradingView screen.

    Parameters
    ----------
    settings : ScannerSettings, optional
        Defaults to :meth:`ScannerSettings.from_env`.
    today : callable returning a date, optional
        The only date the live scanner can answer for; UTC today by default (tests pin it).
    chart_settings : ChartFeedSettings, optional
        The chart websocket that serves daily bars; its URL defaults to
        ``$QUANT_ASSETS_TRADINGVIEW_CHART_URL``, else TradingView's.
    bars_cache : BarsCache, optional
        Where bars for past screens are kept between runs (else they are fetched each time).

    A past date's screen is reconstructed (:mod:`quant_assets.sources.reconstruct`): today's
    ``universe_size`` most traded instruments of each market, their bars over the
    ``history_days`` before the date, the screen recomputed from them and the query answered
    from it; rows carry ``reconstructed = true``. Only instruments listed today can appear.
    """

    name = "tradingview"

    def __init__(
        self,
        settings: ScannerSettings | None = None,
        today: Callable[[], date] | None = None,
        chart_settings: ChartFeedSettings | None = None,
        bars_cache: BarsCache | None = None,
        history_days: int = 400,
        universe_size: int = 1000,
    ) -> None:
        self.settings = settings if settings is not None else ScannerSettings.from_env()
        self._today = today or _utc_today
        if chart_settings is None:
            from quant_assets.sources.chart_feed import ChartFeedSettings

            chart_settings = ChartFeedSettings()
        self.chart_settings = chart_settings
        self.bars_cache, self.history_days, self.universe_size = bars_cache, history_days, universe_size
        self._universe: dict[str, pl.DataFrame] = {}  # market -> today's rows, fetched once
        self._screens: dict[tuple[str, date], pl.DataFrame] = {}  # (market, day) -> reconstructed

    def __repr__(self) -> str:
        return f"TradingViewSource({self.settings!r})"

    def _reconstructed(self, market: str, as_of: date) -> pl.DataFrame:
        """The screen of ``market`` at the close of ``as_of``, recomputed from bars."""
        from quant_assets.sources.reconstruct import DESCRIPTIVE_COLUMNS, reconstruct_screen

        if market not in self._universe:
            columns = tuple(dict.fromkeys((*DESCRIPTIVE_COLUMNS, "close", "volume", "Value.Traded", "market_cap_calc")))
            query = ScanQuery(markets=(market,), columns=columns, limit=self.universe_size,
                              label=f"reconstruction universe ({market})")
            (rows,) = self.scan_many(self._today(), [query])
            if isinstance(rows, QuantAssetsError):
                raise rows
            self._universe[market] = rows.with_columns(market=pl.lit(market))
        if (market, as_of) not in self._screens:
            today = self._universe[market]
            symbols, start = today["symbol"].to_list(), as_of - timedelta(days=self.history_days)
            bars = (self.bars_cache.bars(self.daily_bars, symbols, start, as_of) if self.bars_cache is not None
                    else self.daily_bars(symbols, start, as_of))
            self._screens[(market, as_of)] = reconstruct_screen(bars, today, as_of)
        return self._screens[(market, as_of)]

    def _answer_past(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        from quant_assets.sources.scan_filters import answer_query

        screen = pl.concat([self._reconstructed(m, as_of) for m in query.markets], how="diagonal_relaxed")
        return answer_query(screen, query).with_columns(reconstructed=pl.lit(True))

    def scan(self, as_of: date, query: ScanQuery) -> pl.DataFrame:
        """The screen for ``query``: ``symbol`` + ``query.columns``, sorted and cut; live today,
        reconstructed from bars for a past date.

        Raises
        ------
        SourceResponseError
            ``as_of`` is after today, or the scanner rejected or kept failing the query.
        SourceConnectionError
            The scanner could not be reached.
        """
        (result,) = self.scan_many(as_of, [query])
        if isinstance(result, QuantAssetsError):
            raise result
        return result

    def scan_many(self, as_of: date, queries: Sequence[ScanQuery]) -> list[pl.DataFrame | QuantAssetsError]:
        """Every query; per query its frame or its error, in order. Today's are asked of the
        scanner at once over one session; a past date's are answered from reconstructed screens.

        Raises
        ------
        SourceResponseError
            ``as_of`` is after today.
        """
        today = self._today()
        if as_of > today:
            raise SourceResponseError(
                f"the TradingView source knows nothing after today ({today.isoformat()}), asked for {as_of.isoformat()}"
            )
        if as_of == today:
            results = _run_sync(scan_all([(str(i), q) for i, q in enumerate(queries)], self.settings))
            return [results[str(i)] for i in range(len(queries))]
        return answer_each(lambda query: self._answer_past(as_of, query), queries)

    def daily_bars(self, symbols: Sequence[str], start: date, end: date) -> pl.DataFrame:
        """Daily bars with ``start <= date <= end`` from the chart websocket (the feed serves the
        last N bars up to today, so N reaches back to ``start``), sorted by (symbol, date).

        Raises
        ------
        UnknownSymbolError
            The feed does not know a symbol.
        SourceConnectionError, SourceResponseError
            The feed could not be reached, or answered unusably, after the retries.
        """
        from quant_assets.sources.chart_feed import ChartFeedClient  # the websocket client, on demand

        if end < start:
            raise SourceResponseError(f"daily bars: end {end.isoformat()} is before start {start.isoformat()}")
        n_bars = (self._today() - start).days + 1
        bars = _run_sync(ChartFeedClient(self.chart_settings).fetch_many(list(symbols), n_bars))
        frames = [frame.filter(pl.col("date").is_between(start, end)) for frame in bars.values()]
        return pl.concat(frames).sort("symbol", "date") if frames else pl.DataFrame(schema=BAR_SCHEMA)
