"""Peer: BullMQ for Python (``bullmq``): Queue.add / Queue.addBulk, one asyncio Worker.

Jobs: ``noop``, and ``http`` POSTing over one aiohttp session per worker (:mod:`bench.peers.jobs`);
the worker's one processor runs the job its name says.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from bullmq import Queue, Worker

from bench.peers import jobs
from bench.peers.counter import JobCounter
from bench.peers.harness import (
    Budget,
    ConcurrencyMode,
    PeerResult,
    PeerSpec,
    ProduceReport,
    bulk_chunks,
    peer_main,
    run_peer,
    timed_loop_async,
)
from bench.peers.posters import AsyncPoster

QUEUE = "bench"
COUNTER = JobCounter()
POSTER = AsyncPoster()

SPEC = PeerSpec(
    name="bullmq",
    module=__name__,
    distribution="bullmq",
    default_concurrency=1,
    high_concurrency=100,
    worker_desc=lambda c, _mode: f"Worker(concurrency={c}), asyncio",
    bulk_api=f"Queue.addBulk ({100} per call)",
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    name = jobs.current().kind

    async def main() -> ProduceReport:
        queue = Queue(QUEUE, {"connection": url})
        try:
            single_n, single_s = await timed_loop_async(
                single, deadline, lambda p: queue.add(name, p)
            )
            batches = bulk_chunks(bulk)
            done, bulk_s = await timed_loop_async(
                batches,
                deadline,
                lambda chunk: queue.addBulk([{"name": name, "data": p} for p in chunk]),
            )
        finally:
            await queue.close()
        return ProduceReport(
            single_n=single_n,
            single_s=single_s,
            bulk_n=sum(len(c) for c in batches[:done]),
            bulk_s=bulk_s,
        )

    return asyncio.run(main())


async def _process(job: Any, _token: str) -> None:
    """The no-op job, or the HTTP job (POST the payload to the local provider)."""
    if job.name == jobs.HTTP:
        await POSTER.post(job.data)
    COUNTER.hit()


def work(url: str, concurrency: int, _mode: str) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = Worker(QUEUE, _process, {"connection": url, "concurrency": concurrency})
        await stop.wait()
        await worker.close()

    asyncio.run(main())


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce, work)
