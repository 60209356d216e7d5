"""The deliverer relayq's benchmark workers run: a no-op that counts, and may record.

``RELAYQ_DELIVERER=bench.relayq_deliverer:counting``. Each delivery is counted with the
same :class:`~bench.peers.counter.JobCounter` the peers' no-op jobs use, so relayq and the
peers are timed the same way (first to last processed message, as the worker saw them).

With ``BENCH_OUT_DIR`` set it writes, at shutdown, ``<dir>/<pid>.stats.json``: how many it
delivered and the wall-clock times (ns) of its first and last delivery. With
``BENCH_RECORD=1`` as well it keeps ``(tenant, conversation, id, created_ms, received_ns)``
per delivery in memory and writes them to ``<dir>/<pid>.records.json``: the order and
latency checks read those.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from bench.peers.counter import JobCounter
from ops.local_provider import Delivery
from streams.deliverer import DeliveryResult
from streams.message import Message
from streams.settings import Settings

__all__ = (
    "OUT_DIR_ENV",
    "RECORD_ENV",
    "CountingDeliverer",
    "WorkerStats",
    "counting",
    "read_records",
    "read_stats",
)

OUT_DIR_ENV = "BENCH_OUT_DIR"
RECORD_ENV = "BENCH_RECORD"
_OK = DeliveryResult()


class WorkerStats(msgspec.Struct):
    """One worker process's deliveries: count, first and last (wall clock, ns)."""

    count: int = 0
    first_ns: int = 0
    last_ns: int = 0


class CountingDeliverer:
    """Accepts every message at once; counts it (and records it when asked to)."""

    def __init__(self, out_dir: str | None = None, record: bool = False) -> None:
        self._counter = JobCounter()
        self._dir = Path(out_dir) if out_dir else None
        self._record = record and self._dir is not None
        self._records: list[Delivery] = []
        self._stats = WorkerStats()

    async def deliver(self, message: Message) -> DeliveryResult:
        self._counter.hit()
        now = time.time_ns()
        stats = self._stats
        if not stats.count:
            stats.first_ns = now
        stats.count += 1
        stats.last_ns = now
        if self._record:
            self._records.append(
                Delivery(message.tenant, message.conversation, message.id, message.created_ms, now)
            )
        return _OK

    async def aclose(self) -> None:
        self._counter.flush()
        if self._dir is None:
            return
        pid = os.getpid()
        (self._dir / f"{pid}.stats.json").write_bytes(msgspec.json.encode(self._stats))
        if self._record:
            (self._dir / f"{pid}.records.json").write_bytes(msgspec.json.encode(self._records))


def counting(_settings: Settings) -> CountingDeliverer:
    """The ``module:factory`` entry point."""
    return CountingDeliverer(os.environ.get(OUT_DIR_ENV), os.environ.get(RECORD_ENV) == "1")


def read_stats(directory: Path) -> list[WorkerStats]:
    """What each worker that shut down cleanly wrote to ``directory``."""
    return [
        msgspec.json.decode(path.read_bytes(), type=WorkerStats)
        for path in sorted(directory.glob("*.stats.json"))
    ]


def read_records(directory: Path) -> list[Delivery]:
    """Every worker's records in ``directory``, merged in receive order."""
    records: list[Delivery] = []
    for path in sorted(directory.glob("*.records.json")):
        records.extend(msgspec.json.decode(path.read_bytes(), type=list[Delivery]))
    records.sort(key=lambda d: d.received_ns)
    return records
