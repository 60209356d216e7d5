"""Peer: SAQ (``saq``): Queue.enqueue (no bulk API), one asyncio Worker (concurrency).

Jobs: ``noop``, and ``http`` POSTing over one aiohttp session per worker (:mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from saq import Queue, Worker

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

QUEUE = "bench"
COUNTER = JobCounter()
POSTER = AsyncPoster()

SPEC = PeerSpec(
    name="saq",
    module=__name__,
    distribution="saq",
    default_concurrency=10,
    high_concurrency=100,
    worker_desc=lambda c, _mode: f"Worker(concurrency={c}), asyncio",
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    assert not bulk, "saq has no bulk enqueue"

    async def main() -> ProduceReport:
        queue = Queue.from_url(url, name=QUEUE)
        await queue.connect()
        try:
            n, seconds = await timed_loop_async(
                single, deadline, lambda p: queue.enqueue(jobs.current().kind, payload=p)
            )
        finally:
            await queue.disconnect()
        return ProduceReport(single_n=n, single_s=seconds)

    return asyncio.run(main())


async def noop(_ctx: Any, *, payload: dict[str, Any]) -> None:
    COUNTER.hit()


async def http(_ctx: Any, *, payload: dict[str, Any]) -> None:
    """The HTTP job: POST the payload to the local provider."""
    await POSTER.post(payload)
    COUNTER.hit()


def work(url: str, concurrency: int, _mode: str) -> None:
    async def main() -> None:
        queue = Queue.from_url(url, name=QUEUE)
        worker = Worker(queue, functions=[noop, http], concurrency=concurrency)
        await queue.connect()
        try:
            await worker.start()  # returns on SIGTERM / SIGINT
        finally:
            await queue.disconnect()

    asyncio.run(main())


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce, work)
