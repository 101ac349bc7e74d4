"""Transport machinery shared by the scanner and the chart feed: the retry policy, a token-bucket
rate limiter, ``Retry-After`` parsing, and running coroutines from synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
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
    """A token bucket: up to ``burst`` request starts at once, then ``rate_per_s`` per second.

    The bucket holds at most ``burst`` tokens and refills continuously at ``rate_per_s``; each
    request start takes one. A caller that finds it empty reserves the next token anyway (the
    count goes below zero) and sleeps until that token has refilled, so concurrent callers are
    served in call order and none is starved, without a lock: nothing awaits between reading
    the bucket and taking from it.

    Parameters
    ----------
    rate_per_s : float
        Sustained request starts per second.
    burst : int
        Request starts allowed at once after an idle spell (1 = evenly spaced starts).
    clock : callable returning seconds, optional
        A monotonic clock; ``time.monotonic`` (the event loop's clock) by default.
    sleep : coroutine function, optional
        ``asyncio.sleep`` by default; tests pass a fake together with a fake clock.

    Raises
    ------
    ConfigError
        ``rate_per_s`` is not a positive finite number, or ``burst`` is not an int >= 1.
    """

    def __init__(
        self,
        rate_per_s: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if (not isinstance(rate_per_s, (int, float)) or isinstance(rate_per_s, bool)
                or not 0 < rate_per_s < math.inf):
            raise ConfigError(f"RateLimiter.rate_per_s must be a positive finite number, got {rate_per_s!r}")
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
            raise ConfigError(f"RateLimiter.burst must be an int >= 1, got {burst!r}")
        self.rate_per_s, self.burst = float(rate_per_s), burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()

    async def wait(self) -> None:
        """Take a token, sleeping until one is due if the bucket is empty.

        A caller cancelled while asleep forfeits its token: handing it back could let a later
        caller start alongside an earlier reservation and exceed ``burst``.
        """
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        self._tokens -= 1.0
        if self._tokens < 0.0:
            await self._sleep(-self._tokens / self.rate_per_s)


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
