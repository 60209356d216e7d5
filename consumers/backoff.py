"""Retry delays: exponential with jitter, capped, never shorter than the provider's hint."""

from __future__ import annotations

import random

__all__ = ("retry_delay",)


def retry_delay(
    failed_attempts: int, base: float, maximum: float, retry_after: float | None = None
) -> float:
    """Seconds to wait after the ``failed_attempts``-th failure (1 = first failure).

    Equal jitter: half of ``base * 2**(n-1)`` fixed plus a uniform random half, so retries
    of many conversations spread out but never come sooner than half the nominal delay.
    """
    nominal = min(maximum, base * (2 ** max(0, failed_attempts - 1)))
    delay: float = nominal / 2 + random.uniform(0, nominal / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, maximum))
    return delay
