"""Peer: taskiq with taskiq-redis's RedisStreamBroker (a Redis stream consumer group).

Producer: ``task.kiq()`` one at a time (taskiq has no bulk kick). Worker: the ``taskiq worker``
CLI with ``--workers 1`` (one worker process under taskiq's supervisor) and
``--max-async-tasks`` as the concurrency. Tasks: ``noop``, and ``http`` POSTing over one aiohttp
session per worker (:mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from taskiq_redis import RedisStreamBroker

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
    timed_loop_async,
)
from bench.peers.posters import AsyncPoster

COUNTER = JobCounter()
POSTER = AsyncPoster()
broker = RedisStreamBroker(url=redis_url(), queue_name="bench")


@broker.task(task_name="noop")  # type: ignore[untyped-decorator]
async def noop(payload: dict[str, Any]) -> None:
    COUNTER.hit()


@broker.task(task_name="http")  # type: ignore[untyped-decorator]
async def http(payload: dict[str, Any]) -> None:
    """The HTTP job: POST the payload to the local provider."""
    await POSTER.post(payload)
    COUNTER.hit()


TASKS = {jobs.NOOP: noop, jobs.HTTP: http}


def _argv(_url: str, concurrency: int, _mode: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        f"{__name__}:broker",
        "--workers",
        "1",
        "--max-async-tasks",
        str(concurrency),
        "--log-level",
        "WARNING",
    ]


SPEC = PeerSpec(
    name="taskiq-redis",
    module=__name__,
    distribution="taskiq-redis",
    default_concurrency=100,
    high_concurrency=1000,
    worker_desc=lambda c, _mode: f"taskiq worker --workers 1 --max-async-tasks {c}",
    worker_argv=_argv,
    notes="RedisStreamBroker: XREADGROUP COUNT 100, an XACK per message; the worker child "
    "ignores SIGTERM (cf. taskiq#646): killed after 2 s",
    stop_timeout=2.0,
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    assert not bulk, "taskiq has no bulk kick"
    assert url == redis_url()

    async def main() -> ProduceReport:
        await broker.startup()  # declares the consumer group before the backlog exists
        try:
            n, seconds = await timed_loop_async(single, deadline, TASKS[jobs.current().kind].kiq)
        finally:
            await broker.shutdown()
        return ProduceReport(single_n=n, single_s=seconds)

    return asyncio.run(main())


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce)
