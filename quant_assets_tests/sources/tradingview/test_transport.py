"""The retry policy: exponential backoff within jitter and cap, Retry-After honoured, bad values refused."""

from __future__ import annotations

import random

import pytest

from quant_assets.errors import ConfigError
from quant_assets.sources.tradingview.transport import RetryPolicy


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
