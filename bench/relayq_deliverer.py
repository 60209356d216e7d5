"""The deliverer relayq's benchmark workers run: a no-op that counts, and may record.

``RELAYQ_DELIVERER=bench.relayq_deliverer:counting``. Each delivery is counted in process
(an integer and the clock, no lock) and the count is added to the peers' Redis counter
(:mod:`bench.peers.counter`) by a task on the worker's loop every 10 ms, for the runner's
progress. Rates come from the first and last delivery as each worker saw them, like the
peers' (first to last processed job).

With ``BENCH_OUT_DIR`` set it writes, at shutdown, ``<dir>/<pid>.stats.json``: how many it
delivered and the wall-clock times (ns) of its first and last delivery. With
``BENCH_RECORD=1`` as well it keeps a :class:`Record` per delivery in memory and writes
them to ``<dir>/<pid>.records.json``: the order, latency and concurrency checks read those.

For the seed's load scenarios it can also play a provider: ``BENCH_LATENCY_MS`` per
delivery (an ``asyncio.sleep``), and ``BENCH_THROTTLE_RATE`` of the attempts of tenants
whose name starts with ``BENCH_THROTTLE_PREFIX`` (all, when unset) answered like a 429
(``ThrottledError`` with ``BENCH_RETRY_AFTER`` seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from pathlib import Path

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.peers import counter
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.errors import ThrottledError
from relayq.streams.message import Message
from relayq.streams.settings import Settings

__all__ = (
    "LATENCY_ENV",
    "OUT_DIR_ENV",
    "RECORD_ENV",
    "RETRY_AFTER_ENV",
    "THROTTLE_ENV",
    "THROTTLE_PREFIX_ENV",
    "CountingDeliverer",
    "Record",
    "WorkerStats",
    "counting",
    "read_records",
    "read_stats",
)

OUT_DIR_ENV = "BENCH_OUT_DIR"
RECORD_ENV = "BENCH_RECORD"
LATENCY_ENV = "BENCH_LATENCY_MS"
THROTTLE_ENV = "BENCH_THROTTLE_RATE"
THROTTLE_PREFIX_ENV = "BENCH_THROTTLE_PREFIX"
RETRY_AFTER_ENV = "BENCH_RETRY_AFTER"
_OK = DeliveryResult()
_FLUSH_INTERVAL = 0.01


class Record(msgspec.Struct, frozen=True, array_like=True):
    """One accepted delivery, as the deliverer saw it (wall clock, ns)."""

    tenant: str
    conversation: str
    message_id: str
    created_ms: int
    started_ns: int
    received_ns: int


class WorkerStats(msgspec.Struct):
    """One worker process's deliveries: count, first and last (wall clock, ns), 429s."""

    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    throttled: int = 0


class CountingDeliverer:
    """Accepts every message (after ``latency`` s); counts it, records it when asked to."""

    def __init__(
        self,
        out_dir: str | None = None,
        *,
        record: bool = False,
        latency: float = 0.0,
        throttle_rate: float = 0.0,
        retry_after: float = 0.1,
        throttle_prefix: str = "",
    ) -> None:
        self._flushed = 0
        self._flusher: asyncio.Task[None] | None = None
        self._dir = Path(out_dir) if out_dir else None
        self._record = record and self._dir is not None
        self._records: list[Record] = []
        self._stats = WorkerStats()
        self._latency = latency
        self._throttle = throttle_rate
        self._retry_after = retry_after
        self._throttle_prefix = throttle_prefix

    async def deliver(self, message: Message) -> DeliveryResult:
        started = time.time_ns() if self._record else 0
        if self._latency:
            await asyncio.sleep(self._latency)
        if (
            self._throttle
            and message.tenant.startswith(self._throttle_prefix)
            and random.random() < self._throttle
        ):
            self._stats.throttled += 1
            raise ThrottledError("bench: 429", retry_after=self._retry_after)
        now = time.time_ns()
        stats = self._stats
        if not stats.count:
            stats.first_ns = now
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        stats.count += 1
        stats.last_ns = now
        if self._record:
            self._records.append(
                Record(message.tenant, message.conversation, message.id, message.created_ms,
                       started, now)
            )  # fmt: skip
        return _OK

    async def _flush_loop(self) -> None:
        client = Redis.from_url(os.environ[counter.URL_ENV])
        try:
            while True:
                await asyncio.sleep(_FLUSH_INTERVAL)
                with contextlib.suppress(RedisError):  # progress only: try again next time
                    await self._flush(client)
        finally:
            with contextlib.suppress(RedisError):
                await self._flush(client)
            await client.aclose()

    async def _flush(self, client: Redis) -> None:
        stats = self._stats
        count = stats.count
        if count > self._flushed:
            async with client.pipeline(transaction=False) as pipe:
                pipe.incrby(counter.COUNT_KEY, count - self._flushed)
                pipe.set(counter.FIRST_KEY, repr(stats.first_ns / 1e9), nx=True)
                pipe.set(counter.LAST_KEY, repr(stats.last_ns / 1e9))  # one worker: exact
                await pipe.execute()
            self._flushed = count

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._dir is None:
            return
        pid = os.getpid()
        (self._dir / f"{pid}.stats.json").write_bytes(msgspec.json.encode(self._stats))
        if self._record:
            (self._dir / f"{pid}.records.json").write_bytes(msgspec.json.encode(self._records))


def counting(_settings: Settings) -> CountingDeliverer:
    """The ``module:factory`` entry point."""
    env = os.environ
    return CountingDeliverer(
        env.get(OUT_DIR_ENV),
        record=env.get(RECORD_ENV) == "1",
        latency=float(env.get(LATENCY_ENV, "0")) / 1000,
        throttle_rate=float(env.get(THROTTLE_ENV, "0")),
        retry_after=float(env.get(RETRY_AFTER_ENV, "0.1")),
        throttle_prefix=env.get(THROTTLE_PREFIX_ENV, ""),
    )


def read_stats(directory: Path) -> list[WorkerStats]:
    """What each worker that shut down cleanly wrote to ``directory``."""
    return [
        msgspec.json.decode(path.read_bytes(), type=WorkerStats)
        for path in sorted(directory.glob("*.stats.json"))
    ]


def read_records(directory: Path) -> list[Record]:
    """Every worker's records in ``directory``, merged in receive order."""
    records: list[Record] = []
    for path in sorted(directory.glob("*.records.json")):
        records.extend(msgspec.json.decode(path.read_bytes(), type=list[Record]))
    records.sort(key=lambda d: d.received_ns)
    return records
