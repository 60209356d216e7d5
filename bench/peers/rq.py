"""Peer: RQ (``rq``): Queue.enqueue and Queue.enqueue_many, one ``rq worker`` process.

An RQ worker runs one job at a time and has no concurrency setting. Its default ``Worker``
forks a work horse per job; the "high" mode here is ``SimpleWorker`` (no fork), the fastest
one-process configuration RQ offers. Jobs count themselves with one round trip each, on the
worker's own connection, because a forked horse exits without running exit handlers. Jobs:
``noop``, and ``http`` POSTing with an httpx.Client (one per process: per horse in the default
worker, one for all jobs in SimpleWorker; :mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import sys
from typing import Any

import redis
from rq import Queue

from bench.peers import jobs
from bench.peers.harness import (
    BULK_BATCH,
    Budget,
    ConcurrencyMode,
    PeerResult,
    PeerSpec,
    ProduceReport,
    bulk_chunks,
    peer_main,
    run_peer,
    timed_loop,
)

QUEUE = "bench"
JOBS = "bench.peers.rq_jobs"


def _job() -> str:
    """The dotted path of the job the harness asked for."""
    return f"{JOBS}.{jobs.current().kind}"


def _worker_class(mode: str) -> str:
    return "rq.worker.SimpleWorker" if mode == "high" else "rq.worker.Worker"


def _argv(url: str, _concurrency: int, mode: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rq.cli",
        "worker",
        "--url",
        url,
        "--worker-class",
        _worker_class(mode),
        "--logging_level",
        "WARNING",
        QUEUE,
    ]


SPEC = PeerSpec(
    name="rq",
    module=__name__,
    distribution="rq",
    default_concurrency=1,
    high_concurrency=1,
    worker_desc=lambda _c, mode: f"rq worker -w {_worker_class(mode)} (one job at a time)",
    bulk_api=f"Queue.enqueue_many ({BULK_BATCH} per call)",
    worker_argv=_argv,
    notes="no in-process concurrency: high = SimpleWorker (no fork per job)",
    has_concurrency=False,
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    connection = redis.Redis.from_url(url)
    queue = Queue(QUEUE, connection=connection)
    job = _job()
    single_n, single_s = timed_loop(single, deadline, lambda p: queue.enqueue(job, p))
    batches = bulk_chunks(bulk)
    done, bulk_s = timed_loop(
        batches,
        deadline,
        lambda chunk: queue.enqueue_many([Queue.prepare_data(job, (p,)) for p in chunk]),
    )
    connection.close()
    return ProduceReport(
        single_n=single_n,
        single_s=single_s,
        bulk_n=sum(len(c) for c in batches[:done]),
        bulk_s=bulk_s,
    )


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce)
