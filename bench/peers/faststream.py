"""Peer: FastStream (``faststream[redis]``) subscribed to a Redis stream with a consumer group.

Producer: ``broker.publish(..., stream=)`` one at a time, and in bulk through a Redis pipeline
(``publish(..., pipeline=)``, one round trip per 100). Worker: the ``faststream run`` CLI (one
process); concurrency is the subscriber's ``max_workers`` (default 1). The consumer group is
created before the backlog, as an earlier worker start would have. The subscriber is the job
the harness asked for: ``noop``, or ``http`` POSTing over one aiohttp session per worker
(:mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import redis.asyncio as aioredis
from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub

from bench.peers import jobs
from bench.peers.counter import JobCounter
from bench.peers.harness import (
    BULK_BATCH,
    Budget,
    ConcurrencyMode,
    PeerResult,
    PeerSpec,
    ProduceReport,
    bulk_chunks,
    concurrency_from_env,
    peer_main,
    redis_url,
    run_peer,
    timed_loop_async,
)
from bench.peers.posters import AsyncPoster

STREAM = "bench"
GROUP = "bench"
COUNTER = JobCounter()
POSTER = AsyncPoster()

broker = RedisBroker(redis_url())
app = FastStream(broker)


async def noop(body: dict[str, Any]) -> None:
    COUNTER.hit()


async def http(body: dict[str, Any]) -> None:
    """The HTTP job: POST the message to the local provider."""
    await POSTER.post(body)
    COUNTER.hit()


broker.subscriber(
    stream=StreamSub(STREAM, group=GROUP, consumer="bench-1"),
    max_workers=concurrency_from_env(1),
)(http if jobs.current().kind == jobs.HTTP else noop)


def _argv(_url: str, _concurrency: int, _mode: str) -> list[str]:
    # The concurrency reaches the subscriber through BENCH_CONCURRENCY.
    return [sys.executable, "-m", "faststream", "run", f"{__name__}:app", "--log-level", "warning"]


SPEC = PeerSpec(
    name="faststream",
    module=__name__,
    distribution="faststream",
    default_concurrency=1,
    high_concurrency=100,
    worker_desc=lambda c, _mode: f"faststream run, stream subscriber max_workers={c}",
    bulk_api=f"publish(pipeline=) ({BULK_BATCH} per pipeline)",
    worker_argv=_argv,
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    async def main() -> ProduceReport:
        raw = aioredis.Redis.from_url(url)
        await raw.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        publisher = RedisBroker(url)
        await publisher.connect()

        async def publish_many(chunk: list[dict[str, Any]]) -> None:
            pipe = raw.pipeline(transaction=False)
            for p in chunk:
                await publisher.publish(p, stream=STREAM, pipeline=pipe)
            await pipe.execute()

        try:
            single_n, single_s = await timed_loop_async(
                single, deadline, lambda p: publisher.publish(p, stream=STREAM)
            )
            batches = bulk_chunks(bulk)
            done, bulk_s = await timed_loop_async(batches, deadline, publish_many)
        finally:
            await publisher.stop()
            await raw.aclose()
        return ProduceReport(
            single_n=single_n,
            single_s=single_s,
            bulk_n=sum(len(c) for c in batches[:done]),
            bulk_s=bulk_s,
        )

    return asyncio.run(main())


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce)
