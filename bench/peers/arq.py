"""Peer: arq: ArqRedis.enqueue_job (no bulk API), one asyncio Worker (max_jobs).

Jobs: ``noop``, and ``http`` POSTing over one aiohttp session per worker (:mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func

from bench.peers import jobs
from bench.peers.counter import JobCounter
from bench.peers.harness import (
    Budget,
    ConcurrencyMode,
    PeerResult,
    PeerSpec,
    ProduceReport,
    peer_main,
    run_peer,
    timed_loop_async,
)
from bench.peers.posters import AsyncPoster

COUNTER = JobCounter()
POSTER = AsyncPoster()

SPEC = PeerSpec(
    name="arq",
    module=__name__,
    distribution="arq",
    default_concurrency=10,
    high_concurrency=100,
    worker_desc=lambda c, _mode: f"Worker(max_jobs={c}), asyncio, poll_delay 0.5 s",
    notes="default poll_delay (0.5 s) and queue_read_limit",
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    assert not bulk, "arq has no bulk enqueue"

    async def main() -> ProduceReport:
        pool = await create_pool(RedisSettings.from_dsn(url))
        try:
            n, seconds = await timed_loop_async(
                single, deadline, lambda p: pool.enqueue_job(jobs.current().kind, p)
            )
        finally:
            await pool.aclose()
        return ProduceReport(single_n=n, single_s=seconds)

    return asyncio.run(main())


async def noop(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
    """The no-op job (its one argument is the ~200-byte payload)."""
    COUNTER.hit()


async def http(ctx: dict[Any, Any], payload: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """The HTTP job: POST the payload to the local provider."""
    await POSTER.post(payload)
    COUNTER.hit()


def work(url: str, concurrency: int, _mode: str) -> None:
    worker = Worker(
        functions=[func(noop, name=jobs.NOOP), func(http, name=jobs.HTTP)],
        redis_settings=RedisSettings.from_dsn(url),
        max_jobs=concurrency,
        handle_signals=True,
    )
    worker.run()


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce, work)
