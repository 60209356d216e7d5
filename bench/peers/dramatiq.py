"""Peer: Dramatiq with its Redis broker.

Producer: ``actor.send()`` one at a time (Dramatiq has no bulk enqueue; ``group`` sends each
message on its own). Worker: the ``dramatiq`` CLI with ``--processes 1`` (one worker process
under Dramatiq's supervisor) and ``--threads`` as the concurrency (default 8). Actors: ``noop``,
and ``http`` POSTing over one httpx.Client per worker, shared by its threads
(:mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import sys
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.peers import jobs
from bench.peers.counter import JobCounter
from bench.peers.harness import (
    Budget,
    ConcurrencyMode,
    PeerResult,
    PeerSpec,
    ProduceReport,
    peer_main,
    redis_url,
    run_peer,
    timed_loop,
)
from bench.peers.posters import SyncPoster

QUEUE = "bench"
COUNTER = JobCounter()
POSTER = SyncPoster()

broker = RedisBroker(url=redis_url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)  # type: ignore[untyped-decorator]
def noop(payload: dict[str, Any]) -> None:
    COUNTER.hit()


@dramatiq.actor(queue_name=QUEUE, max_retries=0)  # type: ignore[untyped-decorator]
def http(payload: dict[str, Any]) -> None:
    """The HTTP job: POST the payload to the local provider."""
    POSTER.post(payload)
    COUNTER.hit()


ACTORS = {jobs.NOOP: noop, jobs.HTTP: http}


def _argv(_url: str, concurrency: int, _mode: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dramatiq",
        __name__,
        "--processes",
        "1",
        "--threads",
        str(concurrency),
        "--queues",
        QUEUE,
    ]


SPEC = PeerSpec(
    name="dramatiq",
    module=__name__,
    distribution="dramatiq",
    default_concurrency=8,
    high_concurrency=32,
    worker_desc=lambda c, _mode: f"dramatiq --processes 1 --threads {c}",
    worker_argv=_argv,
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    assert not bulk, "dramatiq has no bulk enqueue"
    assert url == redis_url()
    n, seconds = timed_loop(single, deadline, ACTORS[jobs.current().kind].send)
    broker.close()
    return ProduceReport(single_n=n, single_s=seconds)


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce)
