"""Redis memory per queued message: INFO used_memory before and after a 50,000 backlog."""

from __future__ import annotations

from bench.context import BenchContext
from bench.payloads import payload_bytes
from bench.redis_target import used_memory
from bench.relayq_env import NAMESPACE
from bench.relayq_produce import plan
from bench.results import RunOutput
from bench.scenarios import Scenario
from relayq.producers.send_request import prepare
from relayq.streams.codec import encode_message
from relayq.streams.settings import Settings

__all__ = ("ENTRY", "RAW", "RELAYQ", "RELAYQ_DEDUP", "SCENARIO")

RELAYQ = "relayq backlog (send_many)"
RELAYQ_DEDUP = "relayq backlog, every message with a dedup_key"
RAW = "raw XADD of the same 200-byte payload"
ENTRY = "msgpack entry value stored per message"
_COLUMN = "bytes/msg"


def _measure_relayq(ctx: BenchContext, n: int, dedup: bool) -> float:
    ctx.fresh()
    ctx.child("bench.relayq_produce:fill", timeout=60, url=ctx.url, n=min(n, 500), ids=False,
              dedup=dedup)  # fmt: skip
    ctx.fresh()  # scripts loaded, buffers grown: measure only what the backlog adds
    before = used_memory(ctx.url)
    ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False,
              dedup=dedup)  # fmt: skip
    return (used_memory(ctx.url) - before) / n


def _entry_bytes() -> int:
    request = plan(1)[0]
    return len(encode_message(prepare(request, Settings(), trace=False).message))


def _measure_raw(ctx: BenchContext, n: int) -> float:
    ctx.fresh()
    before = used_memory(ctx.url)
    ctx.child("bench.relayq_produce:raw_fill", timeout=120, url=ctx.url, n=n,
              value_hex=payload_bytes(0).hex())  # fmt: skip
    return (used_memory(ctx.url) - before) / n


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n = ctx.sizes.backlog
    ctx.status(f"memory: {n:,} queued relayq messages")
    out.add(RELAYQ, _COLUMN, _measure_relayq(ctx, n, dedup=False), "B")
    if not ctx.quick:
        ctx.status(f"memory: {n:,} queued relayq messages with dedup keys")
        out.add(RELAYQ_DEDUP, _COLUMN, _measure_relayq(ctx, n, dedup=True), "B")
    ctx.status(f"memory: {n:,} raw XADDs")
    out.add(RAW, _COLUMN, _measure_raw(ctx, n), "B")
    out.add(ENTRY, _COLUMN, _entry_bytes(), "B")
    out.notes.append(
        f"Keys of namespace {NAMESPACE!r}: one stream per partition and priority; "
        "a plain send writes only the stream entry (no dedup key, no attempts record)."
    )
    return out


SCENARIO = Scenario(
    name="memory",
    title="Redis memory per queued message",
    description=(
        "INFO memory used_memory after enqueuing the backlog minus before, divided by the "
        "number of messages (~200-byte payloads, 5,000 conversations, 50 tenants, 16 "
        "partitions), next to a raw XADD of the bare payload into one stream."
    ),
    run=_run,
    repeats=lambda _sizes: 1,  # the same bytes every run: once is enough
)
