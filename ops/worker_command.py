"""``relayq worker``: run one worker process until SIGTERM/SIGINT (or, with --burst, until done).

The first SIGTERM/SIGINT starts a graceful shutdown; a second one cancels at once
(in-flight deliveries are then redelivered by the next owner). SIGUSR1 writes every
asyncio task's stack and the worker's counters to stderr (to see what a stuck worker waits on).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys

import structlog

from relayq.consumers.deliverer_factory import build_deliverer
from relayq.consumers.worker import Worker
from relayq.ops.early_signals import EarlySignals
from relayq.ops.event_loop import loop_factory
from relayq.streams.redis_client import create_client, redis_address, redis_errors
from relayq.streams.settings import Settings

__all__ = ("run_worker",)

_log = structlog.get_logger(__name__)


async def _serve(settings: Settings, burst: bool, early: EarlySignals | None) -> int:
    client = create_client(settings, blocking_reads=True)
    deliverer = build_deliverer(settings, client)
    worker = Worker(deliverer, settings, client=client, burst=burst)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        _log.info("signal", signal=signal.Signals(signum).name, count=signals_seen)
        if signals_seen == 1:
            worker.request_stop()
        elif main is not None:
            main.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGUSR1, _dump_state, worker)
    for caught in early.received if early is not None else ():
        on_signal(caught)
    try:
        with redis_errors(redis_address(client)):  # what escapes the worker names its Redis
            await worker.run()
    finally:
        await client.aclose()
    return 0


def _dump_state(worker: Worker) -> None:
    print(f"--- worker {worker.worker_id}: {worker.describe()}", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


def _tune_gc() -> None:
    """Collect the young generation less often, and never scan what startup built.

    A worker holds up to partitions x read_ahead decoded messages; with CPython's default
    threshold (700 allocations) the collector runs every few dozen messages and a worker
    spent a third of its decode time in it (py-spy, bench profile). Cycles are still
    collected, a few hundred times less often.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_worker(
    settings: Settings, *, burst: bool = False, early: EarlySignals | None = None
) -> int:
    """Run a worker in this process; returns the exit code. ``early`` holds stop signals
    caught while the process was starting (they stop the worker as soon as it can)."""
    _tune_gc()
    try:
        with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
            return runner.run(_serve(settings, burst, early))
    except asyncio.CancelledError:
        return 130
