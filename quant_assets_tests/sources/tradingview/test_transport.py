"""The retry policy (exponential backoff within jitter and cap, Retry-After honoured) and the
token-bucket rate limiter (a burst, then the rate; refill capped; call order kept); bad values
refused."""

from __future__ import annotations

import asyncio
import math
import random
import time

import pytest

from quant_assets.errors import ConfigError
from quant_assets.sources.tradingview.transport import RateLimiter, RetryPolicy


def test_retry_policy_backs_off_exponentially_within_jitter_and_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30.0, jitter=0.2)
    rng = random.Random(0)
    for attempt, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert nominal * 0.8 <= min(delays) and max(delays) <= nominal * 1.2
        assert max(delays) - min(delays) > 0.1 * nominal  # jittered, not constant
    assert policy.delay(20, None, rng) <= 30.0


def test_retry_policy_honours_retry_after_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=30.0, jitter=0.0)
    rng = random.Random(0)
    assert policy.delay(1, 3.0, rng) == 3.0
    assert policy.delay(4, 1.0, rng) == 4.0  # the backoff is longer than the server asks
    assert policy.delay(1, 3600.0, rng) == 30.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay_s": 5.0, "max_delay_s": 1.0}, "base_delay_s"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_retry_policy_rejects_impossible_values(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        RetryPolicy(**kwargs)


# ---------------------------------------------------------------------------------------------
# The rate limiter, on a clock the test moves: no wall time, nothing to flake.
# ---------------------------------------------------------------------------------------------


class FakeClock:
    """A clock that stands still unless ``advance``; its ``sleep`` records each wait and, when
    ``advance``, moves the clock on by it (a caller that waits its turn, then starts)."""

    def __init__(self, now: float = 1000.0, advance: bool = True) -> None:
        self.now, self.advance = now, advance
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.advance:
            self.now += seconds


def _start_times(limiter: RateLimiter, clock: FakeClock, n: int) -> list[float]:
    """When each of ``n`` requests, one after another, may start (relative to the first call)."""
    origin = clock.now

    async def run() -> list[float]:
        starts = []
        for _ in range(n):
            await limiter.wait()
            starts.append(clock.now - origin)
        return starts

    return asyncio.run(run())


def test_rate_limiter_lets_a_burst_through_then_spaces_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=4.0, burst=5, clock=clock, sleep=clock.sleep)
    starts = _start_times(limiter, clock, 8)
    assert starts == pytest.approx([0.0] * 5 + [0.25, 0.5, 0.75])
    assert clock.slept == pytest.approx([0.25] * 3)


def test_rate_limiter_of_burst_one_spaces_every_start() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, clock=clock, sleep=clock.sleep)
    assert _start_times(limiter, clock, 4) == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_rate_limiter_refills_while_idle_but_never_above_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock, sleep=clock.sleep)
    assert _start_times(limiter, clock, 3) == pytest.approx([0.0, 0.0, 0.0])  # drained
    clock.now += 0.5  # one token back
    assert _start_times(limiter, clock, 2) == pytest.approx([0.0, 0.5])
    clock.now += 3600.0  # an hour idle refills to the burst, not to 7200 tokens
    assert _start_times(limiter, clock, 5) == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0])


def test_rate_limiter_queues_concurrent_callers_in_call_order() -> None:
    # The clock stands still while every caller reserves: each waits one interval more than the
    # caller before it, whatever order the loop later wakes them in.
    clock = FakeClock(advance=False)
    limiter = RateLimiter(rate_per_s=10.0, burst=2, clock=clock, sleep=clock.sleep)

    async def run() -> None:
        await asyncio.gather(*(limiter.wait() for _ in range(6)))

    asyncio.run(run())
    assert clock.slept == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_rate_limiter_does_not_let_a_newcomer_overtake_a_waiting_caller() -> None:
    clock = FakeClock(advance=False)
    limiter = RateLimiter(rate_per_s=1.0, clock=clock, sleep=clock.sleep)

    async def run() -> None:
        await limiter.wait()  # the token
        await limiter.wait()  # waits 1 s: due at 1000.0 + 1
        clock.now += 0.5
        await limiter.wait()  # comes while the other still waits: due after it, at 1000.0 + 2

    asyncio.run(run())
    assert clock.slept == pytest.approx([1.0, 1.5])


def test_rate_limiter_wakes_concurrent_callers_in_call_order_on_the_event_loop() -> None:
    # Real clock and sleep: the deadlines differ by 5 ms, and the loop's timer heap wakes due
    # callers in deadline order however late it runs, so the order cannot flake.
    limiter = RateLimiter(rate_per_s=200.0, burst=2)
    served: list[int] = []

    async def caller(index: int) -> None:
        await limiter.wait()
        served.append(index)

    async def run() -> float:
        started = time.monotonic()
        await asyncio.gather(*(caller(i) for i in range(10)))
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert served == list(range(10))
    assert elapsed >= 0.8 * 8 / 200.0  # eight callers past the burst, 5 ms apart at least


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"rate_per_s": 0.0}, "rate_per_s"),
        ({"rate_per_s": -1.0}, "rate_per_s"),
        ({"rate_per_s": math.nan}, "rate_per_s"),
        ({"rate_per_s": math.inf}, "rate_per_s"),
        ({"rate_per_s": 1.0, "burst": 0}, "burst"),
        ({"rate_per_s": 1.0, "burst": 2.5}, "burst"),
        ({"rate_per_s": 1.0, "burst": True}, "burst"),
    ],
)
def test_rate_limiter_rejects_impossible_values(kwargs: dict, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        RateLimiter(**kwargs)
