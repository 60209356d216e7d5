"""How far a batch (``send_many``) has got: total, delivered, failed, pending, and when it
should finish (``relayq batch show``, the HTTP API).

One pipelined round trip: the batch's record and its counts in every partition. The
estimate divides what is pending by the rate that applies: the batch's own observed rate
(done / time since it was created; with ``--follow``, the rate between two reads), capped
by the global rate limit when one is set (``ns:flow`` limits, else the settings).
"""

from __future__ import annotations

import time

import msgspec
from redis.asyncio import Redis

from relayq.streams.batch import check_batch_id, parse_batch_record
from relayq.streams.keys import Keys

__all__ = ("BatchProgress", "estimate", "read_batch")


class BatchProgress(msgspec.Struct, kw_only=True):
    batch_id: str
    created_ms: int
    total: int
    """Messages the batch queued (duplicates and refused items excluded)."""
    delivered: int
    failed: int
    """Dead-lettered."""
    pending: int
    requested: int
    refused: int
    duplicates: int
    tenants: list[str]
    rate_per_second: float | None = None
    """The rate the estimate used (None: nothing finished yet and no global limit)."""
    estimated_finish_ms: int | None = None
    """Unix ms (None while the rate is unknown; ``created_ms`` + elapsed when done)."""

    @property
    def done(self) -> bool:
        return self.pending == 0


async def read_batch(
    client: Redis, keys: Keys, batch_id: str, *, global_rate: float
) -> BatchProgress | None:
    """The batch's progress, or None when no batch of that id is kept (unknown, or older
    than a week). ``global_rate``: the settings' limit, used when Redis holds none."""
    check_batch_id(batch_id)
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.batch(batch_id))
        pipe.hget(keys.global_limits, "rate")
        for partition in range(keys.partitions):
            pipe.hmget(keys.batch_counts(partition, batch_id), "delivered", "dead_lettered")
        blob, runtime_rate, *counts = await pipe.execute()
    if not blob:
        return None
    record = parse_batch_record(batch_id, blob)
    delivered = sum(int(pair[0] or 0) for pair in counts)
    failed = sum(int(pair[1] or 0) for pair in counts)
    progress = BatchProgress(
        batch_id=batch_id,
        created_ms=record.created_ms,
        total=record.accepted,
        delivered=delivered,
        failed=failed,
        pending=max(0, record.accepted - delivered - failed),
        requested=record.requested,
        refused=record.refused,
        duplicates=record.duplicates,
        tenants=record.tenants,
    )
    limit = float(runtime_rate) if runtime_rate is not None else global_rate
    elapsed = max(0.001, (time.time_ns() // 1_000_000 - record.created_ms) / 1000)
    return estimate(progress, (delivered + failed) / elapsed if delivered + failed else None, limit)


def estimate(progress: BatchProgress, observed: float | None, limit: float) -> BatchProgress:
    """``progress`` with its rate and estimated finish: pending / min(observed, limit)
    (a limit of 0 is none)."""
    rates = [rate for rate in (observed, limit) if rate]
    now_ms = time.time_ns() // 1_000_000
    if progress.done:
        progress.estimated_finish_ms = now_ms
    elif rates:
        progress.rate_per_second = min(rates)
        progress.estimated_finish_ms = now_ms + round(
            1000 * progress.pending / progress.rate_per_second
        )
    return progress
