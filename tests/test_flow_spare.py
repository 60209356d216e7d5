"""Spare capacity: a worker far below its limits gets extra tokens and slots in one round
(so it rarely waits for the next), and none once a limit comes close to binding."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from relayq.consumers.admission import Admission
from relayq.consumers.budget import TOKEN_LIFETIME
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import admission_envelope, run_admission

TENANT = "t1"
RATE, BURST = 1000.0, 1000  # 1 ms a token; tokens live burst/rate = 1 s


def _redis_ms(redis_client: redis.Redis) -> float:
    seconds, micros = redis_client.time()
    return float(seconds) * 1000 + float(micros) / 1000


@pytest.fixture
def rated(settings: Settings) -> Settings:
    return settings.replace(tenant_cap=0, global_rate=RATE, global_burst=BURST)


def test_a_full_bucket_grants_extra_tokens_and_charges_them_in_redis(
    rated: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    async def scenario(admission: Admission) -> None:
        before = _redis_ms(redis_client)
        assert await admission.admit(admission_envelope(TENANT)) is None
        held = admission._global.tokens  # what the round left this worker
        assert held >= 8, "one waiting send should bring extra tokens from a full bucket"
        # Every token granted (the one taken and the extras) moved the bucket on.
        tat = float(redis_client.get(keys.global_rate) or 0)
        assert tat >= before + (held + 1) * 1000 / RATE - 5

    run_admission(rated, keys, scenario)


def test_a_bucket_below_half_grants_only_what_is_asked(
    rated: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    # Another worker has taken 900 of the 1000: 100 left, less than half the burst.
    redis_client.set(keys.global_rate, str(_redis_ms(redis_client) + 900), px=10_000)

    async def scenario(admission: Admission) -> None:
        assert await admission.admit(admission_envelope(TENANT)) is None
        assert admission._global.tokens == 0  # no extras: none spare

    run_admission(rated, keys, scenario)


@pytest.mark.parametrize(("cap", "expected"), [(100, 50), (5, 4)])
def test_a_tenant_cap_with_room_leases_half_the_free_slots(
    settings: Settings, keys: Keys, redis_client: redis.Redis, cap: int, expected: int
) -> None:
    """cap 100: half the free slots (50, under the worker's concurrency of 64); cap 5: the
    usual 2 x (1 waiting) + 2, which is more than half of 5."""
    settings = settings.replace(tenant_cap=cap, global_rate=0)

    async def scenario(admission: Admission) -> None:
        envelope = admission_envelope(TENANT)
        assert await admission.admit(envelope) is None
        assert int(redis_client.hget(keys.tenant_leases(TENANT), "h:w1") or 0) == expected
        admission.release(envelope)

    run_admission(settings, keys, scenario)


def test_a_lease_stays_while_the_tenant_sends_and_goes_once_it_is_quiet(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    """A tenant that sent since the last round keeps its lease even if nothing is in flight
    at that moment (a fast provider); one that sends nothing gives it back."""
    settings = settings.replace(tenant_cap=100, global_rate=0)
    leases = keys.tenant_leases(TENANT)

    def held() -> int:
        return int(redis_client.hget(leases, "h:w1") or 0)

    async def scenario(admission: Admission) -> None:
        async def send_now_and_then() -> None:
            while True:
                envelope = admission_envelope(TENANT)
                assert await admission.admit(envelope) is None
                admission.release(envelope)  # at once: nothing in flight at any round
                await asyncio.sleep(0.15)

        sender = asyncio.create_task(send_now_and_then())
        await asyncio.sleep(0.3)
        samples = []
        budget = admission._tenants[TENANT]  # the lease as this worker sees it
        for _ in range(60):  # 1.2 s: a dozen lease renewals (TICK = 0.1 s)
            samples.append(min(held(), budget.slots))
            await asyncio.sleep(0.02)
        sender.cancel()
        assert min(samples) > 0, " ".join(map(str, samples))
        deadline = time.monotonic() + 3.0
        while held() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert held() == 0

    run_admission(settings, keys, scenario)


def test_tokens_of_a_tight_burst_live_the_floor(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    """burst/rate = 10 ms: the tokens live TOKEN_LIFETIME (the floor lease_round.lua sets),
    the term the documented window bound uses."""
    settings = settings.replace(tenant_cap=0, global_rate=1000.0, global_burst=10)

    async def scenario(admission: Admission) -> None:
        assert await admission.admit(admission_envelope(TENANT)) is None
        assert admission._global.token_life == TOKEN_LIFETIME

    run_admission(settings, keys, scenario)
