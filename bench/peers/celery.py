"""Peer: Celery with its Redis broker (kombu), no result backend.

Producer: ``task.delay()`` one at a time (Celery has no bulk publish; ``group`` publishes each
task on its own). Worker: ``celery worker`` with the threads pool, so the work stays in ONE
process (the default prefork pool forks a child per CPU); concurrency defaults to the CPU count,
as Celery's does. Tasks: ``noop``, and ``http`` POSTing over one httpx.Client per worker,
shared by its threads (:mod:`bench.peers.jobs`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery

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

app = Celery("bench", broker=redis_url())
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")  # type: ignore[untyped-decorator]
def noop(payload: dict[str, Any]) -> None:
    COUNTER.hit()


@app.task(name="http")  # type: ignore[untyped-decorator]
def http(payload: dict[str, Any]) -> None:
    """The HTTP job: POST the payload to the local provider."""
    POSTER.post(payload)
    COUNTER.hit()


TASKS = {jobs.NOOP: noop, jobs.HTTP: http}


def _argv(_url: str, concurrency: int, _mode: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        __name__,
        "worker",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--queues",
        QUEUE,
        "--loglevel",
        "WARNING",
    ]


SPEC = PeerSpec(
    name="celery",
    module=__name__,
    distribution="celery",
    default_concurrency=os.cpu_count() or 1,
    high_concurrency=32,
    worker_desc=lambda c, _mode: f"celery worker --pool threads --concurrency {c}",
    worker_argv=_argv,
    notes="threads pool (one process); default prefetch multiplier 4",
)


def produce(
    url: str, single: list[dict[str, Any]], bulk: list[dict[str, Any]], deadline: float
) -> ProduceReport:
    assert not bulk, "celery has no bulk publish"
    assert url == redis_url()
    n, seconds = timed_loop(single, deadline, TASKS[jobs.current().kind].delay)
    return ProduceReport(single_n=n, single_s=seconds)


def run(
    url: str, n: int, concurrency_mode: ConcurrencyMode = "default", budget: Budget | None = None
) -> PeerResult:
    """Enqueue ``n`` ~200-byte jobs, drain them with one worker process at ``concurrency_mode``."""
    return run_peer(SPEC, url, n, concurrency_mode, budget)


if __name__ == "__main__":
    peer_main(produce)
