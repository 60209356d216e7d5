"""The peers' HTTP job (``python -m bench --only peers_http``), without a peer library: what a
job POSTs is what the local provider records, both clients reach it, the harness hands the
job down through the environment, and the scenario's rate and fastest row are the provider's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

import bench.peers
from bench.context import BenchContext
from bench.payloads import payload
from bench.peers.harness import PeerResult, PeerSpec
from bench.peers.jobs import CONCURRENCY_ENV, HTTP, NOOP, Job, current, webhook_body
from bench.peers.posters import AsyncPoster, SyncPoster
from bench.redis_target import RedisBinary
from bench.results import FAILED, MISSING
from bench.scenarios import ORDER, load, peers_http
from bench.scenarios.peers import fastest
from bench.scenarios.peers_http import provider_rate, row_name
from bench.sizes import sizes_for
from relayq.ops.local_provider import Delivery, ProviderBehaviour, ProviderThread


def _hand_down(job: Job, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the harness puts in a peer subprocess's environment."""
    for key, value in {**job.env(), CONCURRENCY_ENV: "4"}.items():
        monkeypatch.setenv(key, value)


def test_the_job_named_in_the_environment_is_the_one_a_subprocess_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BENCH_JOB", raising=False)
    assert current() == Job(NOOP)

    _hand_down(Job(HTTP, "http://127.0.0.1:9/deliver"), monkeypatch)
    assert current() == Job(HTTP, "http://127.0.0.1:9/deliver")

    monkeypatch.setenv("BENCH_JOB", "sleep")
    with pytest.raises(ValueError, match="BENCH_JOB='sleep'"):
        current()


def test_the_body_carries_what_the_provider_records() -> None:
    body = webhook_body(payload(7))

    assert (body["id"], body["tenant"]) == ("peer-7", "tenant-007")
    assert body["conversation"] == "conv-00007"
    assert body["payload"]["text"] == payload(7)["text"]


def test_both_clients_post_messages_the_provider_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    with ProviderThread() as provider:
        _hand_down(Job(HTTP, provider.url), monkeypatch)
        sync = SyncPoster()
        sync.post(payload(1))
        sync.close()
        poster = AsyncPoster()

        async def post_twice() -> None:
            await poster.post(payload(2))
            await poster.post(payload(3))
            await poster.aclose()

        asyncio.run(post_twice())
        accepted = [d.message_id for d in provider.deliveries()]

    assert accepted == ["peer-1", "peer-2", "peer-3"]


def test_a_refused_request_raises_so_the_job_is_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    throttled = ProviderBehaviour(throttle_tenants={"tenant-001": 2})  # its first two: 429
    with ProviderThread(throttled) as provider:
        _hand_down(Job(HTTP, provider.url), monkeypatch)
        sync, poster = SyncPoster(), AsyncPoster()
        with pytest.raises(httpx.HTTPStatusError, match="429"):
            sync.post(payload(1))
        sync.close()

        async def post_once() -> None:
            try:
                await poster.post(payload(1))
            finally:
                await poster.aclose()

        with pytest.raises(aiohttp.ClientResponseError, match="429"):
            asyncio.run(post_once())
        assert provider.deliveries() == []


def _spec(has_concurrency: bool) -> PeerSpec:
    return PeerSpec(name="p", module="m", distribution="p", default_concurrency=8,
                    high_concurrency=32, worker_desc=lambda c, _m: f"c={c}",
                    has_concurrency=has_concurrency)  # fmt: skip


def test_a_wanted_concurrency_applies_only_to_peers_that_have_the_setting() -> None:
    assert _spec(True).concurrency("high", 64) == 64
    assert _spec(True).concurrency("high") == 32
    assert _spec(False).concurrency("high", 64) == 32


def _delivery(ns: int) -> Delivery:
    return Delivery("t", "c", "m", 0, ns)


def test_the_rate_runs_from_the_first_to_the_last_accepted_request() -> None:
    assert provider_rate([_delivery(0), _delivery(500_000_000), _delivery(1_000_000_000)]) == 3.0
    assert provider_rate([_delivery(5)]) is None
    assert provider_rate([_delivery(5), _delivery(5)]) is None


def _peer(name: str, rate: float, *, partial: bool = False) -> PeerResult:
    return PeerResult(peer=name, version="1.0", mode="high", concurrency=64, worker="w", n=100,
                      job=HTTP, enqueued=100, processed=100, process_rate=rate * 2,
                      partial=partial, extra={"provider_rate": rate})  # fmt: skip


def test_the_fastest_peer_is_the_one_the_provider_saw_fastest_among_complete_runs() -> None:
    slow, quick = _peer("slow", 500.0), _peer("quick", 900.0)
    cut = _peer("cut", 2_000.0, partial=True)  # faster, but the budget stopped it

    best = fastest([slow, quick, cut], rate=lambda r: float(r.extra["provider_rate"]))

    assert best is quick
    assert row_name(quick) == "quick 1.0, c=64"


def test_the_scenario_runs_after_the_peers_and_like_them() -> None:
    scenario = load("peers_http")

    assert ORDER.index("peers_http") == ORDER.index("peers") + 1
    assert scenario.is_peers and not scenario.in_smoke


def test_a_peer_not_installed_or_breaking_is_a_row_with_its_reason_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_peer(name: str, *args: Any, **kwargs: Any) -> PeerResult:
        if name == "redis":
            raise RuntimeError("worker exploded")
        result: PeerResult = bench.peers.run_peer(name, *args, **kwargs)
        return result

    # "redis" stands for a peer that is installed (the status of a broken run depends on
    # it: MISSING if not installed); the peer queues themselves may not be, before
    # `python -m bench` installs its extra.
    registry = {"ghost": "tests.no_such_peer_module", "redis": "bench.peers.celery"}
    monkeypatch.setattr(bench.peers, "PEERS", registry)
    monkeypatch.setattr(peers_http, "PEERS", registry)
    monkeypatch.setattr(peers_http, "run_peer", run_peer)
    binary = RedisBinary(path="redis-server", version="?", malloc="?", benchmark=None)
    sizes = sizes_for(quick=True, smoke=False)
    ctx = BenchContext(url="redis://127.0.0.1:9/0", port=9, redis=binary, sizes=sizes,
                       workdir=tmp_path, quick=True)  # fmt: skip

    out = peers_http.SCENARIO.run(ctx)

    ghost, broken = out.failures
    assert (ghost.row, ghost.status) == ("ghost not installed", MISSING)
    assert ghost.reason == "import failed: No module named 'tests.no_such_peer_module'"
    assert (broken.status, broken.reason) == (FAILED, "RuntimeError: worker exploded")
    assert out.values == [] and out.extra["fastest"] is None
