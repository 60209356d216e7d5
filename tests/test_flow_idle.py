"""A worker whose sends stopped goes quiet: one admission round per tick, not a busy loop.

Regression: a budget left holding unused tokens past its top-up time, whose recent use was
too low to want a top-up, kept the round loop's timer in the past, so an idle worker ran
thousands of empty Lua rounds a second until its next send.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from relayq.consumers.admission import TICK, Admission
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import admission_envelope, run_admission

_IDLE = 1.0
_MOST_ROUNDS = round(_IDLE / TICK) + 3
"""One round per tick while idle, and a few more to finish what the sends left."""


def _script_calls(redis_client: redis.Redis) -> int:
    stats = redis_client.info("commandstats")
    calls = (stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))
    return sum(int(count) for count in calls)


async def _send(admission: Admission, count: int, tenants: int) -> None:
    for index in range(count):
        envelope = admission_envelope(f"t{index % tenants}")
        if not admission.try_admit(envelope):
            assert await admission.admit(envelope) is None
        admission.release(envelope)
        await asyncio.sleep(0.001)


@pytest.mark.parametrize(
    ("limits", "sends"),
    [
        ({}, 20),  # the defaults: cap 5, 80/s globally with a burst of 10
        ({"global_rate": 1000.0, "global_burst": 10}, 50),
        ({"global_rate": 100_000.0, "global_burst": 1000, "tenant_rate": 50_000.0}, 200),
    ],
    ids=["defaults", "global-1000-per-s", "global-and-tenant-rates"],
)
def test_an_idle_worker_runs_one_round_per_tick(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    limits: dict[str, float],
    sends: int,
) -> None:
    settings = settings.replace(**limits)

    async def scenario(admission: Admission) -> tuple[int, int]:
        await _send(admission, sends, tenants=3)
        await asyncio.sleep(1.0)  # the prefetch for the recent use decays, leases go back
        rounds, calls = admission.rounds, _script_calls(redis_client)
        await asyncio.sleep(_IDLE)
        return admission.rounds - rounds, _script_calls(redis_client) - calls

    rounds, calls = run_admission(settings, keys, scenario)
    assert rounds <= _MOST_ROUNDS, f"{rounds} admission rounds in {_IDLE} s of idle"
    assert calls <= _MOST_ROUNDS, f"{calls} script calls reached Redis in {_IDLE} s of idle"
