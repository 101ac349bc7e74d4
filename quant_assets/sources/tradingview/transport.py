"""Transport machinery shared by the scanner and the chart feed: the retry policy, a request-rate
limiter, ``Retry-After`` parsing, and running coroutines from synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import random
from collections.abc import Awaitable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from quant_assets.errors import ConfigError

T = TypeVar("T")


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


class RateLimiter:
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


def retry_after_seconds(value: str | None) -> float | None:
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


async def gather_or_cancel(aws: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather``, but the first error cancels the siblings instead of orphaning them."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous code, even inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # A running loop (a notebook, an async caller) cannot be re-entered: use a fresh one aside.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
