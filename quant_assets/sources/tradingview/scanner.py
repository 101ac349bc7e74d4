"""An async client of the TradingView scanner (``POST {base_url}/{market}/scan``).

Every request of a session goes through one semaphore (requests in flight) and one token-bucket
rate limiter (a burst at once, then requests per second), and every failure is retried per a
:class:`RetryPolicy` or mapped to our own errors: :class:`~quant_assets.errors.SourceConnectionError`
when the scanner could not be reached, :class:`~quant_assets.errors.SourceResponseError` when it
answered unusably. Messages name the config asking (``ScanQuery.label``) and the URL path; the
optional session cookie never appears in a message, a log record or a ``repr``.

The scanner answers one market per request and at most a page of rows per request;
:func:`scan_all` fetches every query, market and page concurrently over one session and keeps
one failing query from sinking the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import polars as pl

from quant_assets.errors import ConfigError, QuantAssetsError, SourceConnectionError, SourceResponseError
from quant_assets.sources.base import ScanQuery, scan_query_name
from quant_assets.sources.screener.fields import field_dtype
from quant_assets.sources.tradingview.transport import (
    RateLimiter, RetryPolicy, gather_or_cancel, retry_after_seconds,
)
from quant_assets.sources.tradingview.wire import (
    BadBody, ScanBody, ScanResponse, build_scan_body, page_frame, parse_scan_response, rejection_error,
    request_columns, snippet,
)

_LOGGER = logging.getLogger(__name__)

#: Environment variable overriding :attr:`ScannerSettings.base_url`.
URL_ENV = "QUANT_ASSETS_TRADINGVIEW_URL"
#: Environment variable holding the optional TradingView ``sessionid`` cookie.
COOKIE_ENV = "QUANT_ASSETS_TRADINGVIEW_COOKIE"

DEFAULT_BASE_URL = "https://scanner.tradingview.com"
# Honest about who is asking: the scanner's operators can tell this traffic apart and reach us.
DEFAULT_USER_AGENT = "quant_assets/0.1 (+https://github.com/quant-assets/quant_assets)"


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
        Sustained request starts per second, over the whole session (retries included).
    burst : int
        Request starts allowed at once before ``rate_per_s`` spaces them (a token bucket's
        depth; 1 spaces every start ``1 / rate_per_s`` apart).
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
    # Eight: a daily screen of every shipped config is 7 requests (4 configs, 300-row prefilters
    # in 150-row pages), so it goes out at once instead of over 6 s of spacing; anything larger
    # (a reconstruction universe, a retry storm) still settles to rate_per_s after the eighth,
    # and eight idle seconds refill the bucket, so a day's traffic stays at the polite rate.
    burst: int = 8
    page_size: int = 150
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cookie: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if urlsplit(self.base_url).scheme not in ("http", "https") or not urlsplit(self.base_url).netloc:
            raise ConfigError(f"ScannerSettings.base_url must be an http(s) URL, got {self.base_url!r}")
        for name, value in (("timeout_s", self.timeout_s), ("rate_per_s", self.rate_per_s)):
            if not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
                raise ConfigError(f"ScannerSettings.{name} must be a positive number, got {value!r}")
        for name, value in (
            ("concurrency", self.concurrency), ("burst", self.burst), ("page_size", self.page_size)
        ):
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


@dataclass(frozen=True)
class _Failure:
    """A retryable failure of one attempt."""

    reason: str
    transport: bool  # True: no usable HTTP exchange; False: the scanner answered unusably
    retry_after: float | None = None
    cause: BaseException | None = None


def _sorted_cut(frame: pl.DataFrame, query: ScanQuery) -> pl.DataFrame:
    # Ties broken by symbol so the answer does not depend on page arrival or market order.
    frame = frame.sort([query.sort_by, "symbol"], descending=[query.descending, False], nulls_last=True)
    return frame.unique(subset="symbol", keep="first", maintain_order=True).head(query.limit)


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
        self._limiter = RateLimiter(self.settings.rate_per_s, self.settings.burst)
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
            raise ConfigError(f"{scan_query_name(query.label)}: limit must be >= 1, got {query.limit}")
        page, limit = self.settings.page_size, query.limit
        columns = request_columns(query, market)
        responses = await gather_or_cancel(
            self._request(market, build_scan_body(query, market, start, min(start + page, limit)), query.label)
            for start in range(0, limit, page)
        )
        pages = [page_frame(response, columns) for response in responses]
        merged = pl.concat(pages, how="vertical_relaxed")
        # A column the market does not have was not asked for: null, of its field's type.
        lacking = [c for c in query.columns if c not in merged.columns]
        merged = merged.with_columns(pl.lit(None, field_dtype(c) or pl.Float64).alias(c) for c in lacking)
        return merged.unique(subset="symbol", keep="first", maintain_order=True)

    async def _scan_query(self, query: ScanQuery) -> pl.DataFrame:
        """Every market of ``query``, merged: ``symbol``, ``market`` + ``query.columns``."""
        if not query.markets:
            raise ConfigError(f"{scan_query_name(query.label)} names no market")
        # Each market is cut to the limit on its own: the merged top rows may all come from one.
        frames = await gather_or_cancel(self._fetch_market(market, query) for market in query.markets)
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
                scan_query_name(label), path, attempt, policy.max_attempts, outcome.reason, delay,
            )
            await asyncio.sleep(delay)
            outcome = await self._attempt(url, path, body, label)
        if not isinstance(outcome, _Failure):
            return outcome
        error = SourceConnectionError if outcome.transport else SourceResponseError
        raise error(
            f"{scan_query_name(label)}: POST {path} failed after {policy.max_attempts} attempt"
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
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                    raw = await response.read()
        except asyncio.TimeoutError as exc:
            reason = f"no complete answer within {self.settings.timeout_s:g} s"
            return _Failure(reason, transport=True, cause=exc)
        except (aiohttp.ClientError, ConnectionError) as exc:
            return _Failure(f"{type(exc).__name__}: {exc}", transport=True, cause=exc)
        if 200 <= status < 300:
            try:
                return parse_scan_response(raw, len(body["columns"]))
            except BadBody as exc:
                return _Failure(str(exc), transport=False, cause=exc.__cause__)
        if status in (403, 429) or status >= 500:
            return _Failure(f"HTTP {status}: {snippet(raw)}", transport=False, retry_after=retry_after)
        raise rejection_error(status, raw, body, label, path)


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
        results = await gather_or_cancel(client._scan_isolated(query) for _, query in requests)
    return dict(zip(keys, results))
