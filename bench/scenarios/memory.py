"""Redis memory per queued message: INFO used_memory before and after a 50,000 backlog
(of 50 tenants, and of 1,000 tenants whose messages mostly wait in their own lists), and
what 1,000 tenants leave behind once everything is delivered."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from bench.context import BenchContext
from bench.namespace_state import Leftovers, drain_acknowledged, key_bytes, leftovers
from bench.payloads import payload_bytes
from bench.processes import ProcessGroup
from bench.redis_target import redis_info, used_memory
from bench.relayq_env import NAMESPACE
from bench.relayq_produce import plan
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario
from relayq.producers.send_request import prepare
from relayq.streams.codec import encode_message
from relayq.streams.settings import Settings

__all__ = (
    "BEFORE_LAYOUT_BYTES",
    "ENTRY",
    "IDLE",
    "RAW",
    "RELAYQ",
    "RELAYQ_DEDUP",
    "RELAYQ_TENANTS",
    "SCENARIO",
    "TENANTS",
    "measure_backlog",
)

TENANTS = 1_000
RELAYQ = "relayq backlog (send_many)"
RELAYQ_DEDUP = "relayq backlog, every message with a dedup_key"
RELAYQ_TENANTS = f"relayq backlog of {TENANTS:,} tenants"
IDLE = f"{TENANTS:,} tenants idle after delivery, per tenant"
RAW = "raw XADD of the same 200-byte payload"
ENTRY = "msgpack entry value stored per message"
_COLUMN = "bytes/msg"
_IDLE_COLUMN = "bytes/tenant"
BEFORE_LAYOUT_BYTES = 320
"""Bytes per queued message recorded before the fair layout (d0b2282, issue 13)."""
_WITHIN = 1.10


class TenantMemory(msgspec.Struct, frozen=True):
    per_message: float
    idle_per_tenant: float
    left: Leftovers


def measure_backlog(
    ctx: BenchContext,
    n: int,
    *,
    dedup: bool = False,
    tenants: int = 50,
    env: Mapping[str, str] | None = None,
) -> float:
    """Bytes of used_memory per message of an ``n`` backlog of ``tenants`` tenants (5,000
    conversations), queued by a producer child whose process environment has ``env`` (no
    worker)."""
    fill = {"url": ctx.url, "ids": False, "dedup": dedup, "tenants": tenants}
    ctx.fresh()
    ctx.child("bench.relayq_produce:fill", timeout=60, env=env, n=min(n, 500), **fill)
    ctx.fresh()  # scripts loaded, buffers grown: measure only what the backlog adds
    before = used_memory(ctx.url)
    ctx.child("bench.relayq_produce:fill", timeout=120, env=env, n=n, **fill)
    return (used_memory(ctx.url) - before) / n


def _data_memory(url: str) -> int:
    """used_memory without the clients' buffers (a worker's connection pool grows with
    its concurrency; that is not what the namespace holds)."""
    info = redis_info(url, "memory")
    return int(str(info["used_memory"])) - int(str(info["mem_clients_normal"]))


def _deliver_all(ctx: BenchContext, fleet: Fleet, total: int) -> int:
    """Let the worker deliver up to ``total``, trim what it acknowledged, pause it; what
    the keys then hold."""
    fleet.resume()
    fleet.wait_for(total, timeout=120)
    drain_acknowledged(ctx.url)
    fleet.pause()
    return key_bytes(ctx.url)[1]


def _measure_tenants(ctx: BenchContext, n: int) -> TenantMemory:
    """``n`` messages of :data:`TENANTS` tenants queued beside a paused worker, then
    delivered, and what is left. The empty namespace is measured after a warm-up delivery
    (streams, groups, scripts, counters made), so the differences are the tenants'."""
    ctx.fresh()
    warm = min(n, 500)
    with ProcessGroup() as group:
        fleet = Fleet(group, ctx.url, ctx.step_dir("memory-tenants")).start()
        fleet.pause()
        ctx.child("bench.relayq_produce:fill", timeout=60, url=ctx.url, n=warm, ids=False,
                  tenants=TENANTS)  # fmt: skip
        empty_keys = _deliver_all(ctx, fleet, warm)
        empty = _data_memory(ctx.url)
        ctx.status(f"memory: {n:,} queued messages of {TENANTS:,} tenants")
        ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False,
                  tenants=TENANTS)  # fmt: skip
        queued = _data_memory(ctx.url)
        ctx.status(f"memory: delivering {n:,} of {TENANTS:,} tenants")
        idle_keys = _deliver_all(ctx, fleet, warm + n)
        left = leftovers(ctx.url)
        fleet.stop()
    return TenantMemory((queued - empty) / n, (idle_keys - empty_keys) / TENANTS, left)


def _add_tenants(out: RunOutput, measured: TenantMemory) -> None:
    limit = BEFORE_LAYOUT_BYTES * _WITHIN
    out.add(RELAYQ_TENANTS, _COLUMN, measured.per_message, "B")
    out.add(IDLE, _IDLE_COLUMN, measured.idle_per_tenant, "B")
    out.check(f"{RELAYQ_TENANTS}: within 10% of {BEFORE_LAYOUT_BYTES} B (before the fair "
              f"layout), <= {limit:.0f} B", measured.per_message <= limit,
              f"{measured.per_message:.0f} B/msg")  # fmt: skip
    left = measured.left
    out.check(f"{TENANTS:,} tenants idle: no waiting list, ring entry or stream entry left",
              left == Leftovers(0, 0, 0), f"{left.waiting_lists} lists, {left.ring_entries} "
              f"ring entries, {left.stream_entries} stream entries")  # fmt: skip


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
    out.add(RELAYQ, _COLUMN, measure_backlog(ctx, n), "B")
    if not ctx.quick:
        ctx.status(f"memory: {n:,} queued relayq messages with dedup keys")
        out.add(RELAYQ_DEDUP, _COLUMN, measure_backlog(ctx, n, dedup=True), "B")
    ctx.status(f"memory: {n:,} raw XADDs")
    out.add(RAW, _COLUMN, _measure_raw(ctx, n), "B")
    out.add(ENTRY, _COLUMN, _entry_bytes(), "B")
    _add_tenants(out, _measure_tenants(ctx, n))
    out.notes.append(
        f"{TENANTS:,} tenants: {n / TENANTS:,.0f} message(s) each over 5 conversations; "
        "what waits sits in one list per (partition, tenant), each with its own key "
        "overhead, so with fewer messages per tenant (--quick, --smoke) the bytes per "
        "message read higher than at the default 50,000."
    )
    out.notes.append(
        f"Keys of namespace {NAMESPACE!r}: one stream per partition and priority holding "
        "a window of about RELAYQ_READ_COUNT unread entries, the rest of a backlog in "
        "per-tenant waiting lists; a plain send writes only the entry (no dedup key, no "
        "attempts record)."
    )
    out.notes.append(
        f"{TENANTS:,} tenants: used_memory without client buffers (mem_clients_normal), "
        "beside one paused worker, after a warm-up delivery of 500 (the empty namespace). "
        "Idle: the sum of MEMORY USAGE over every key once all were delivered and the "
        "acknowledged entries trimmed, minus the same sum for the empty namespace, over "
        "the tenants (used_memory itself swings by hundreds of KB with the worker's "
        "connection buffers)."
    )
    return out


SCENARIO = Scenario(
    name="memory",
    title="Redis memory per queued message",
    description=(
        "INFO memory used_memory after enqueuing the backlog minus before, divided by the "
        "number of messages (~200-byte payloads, 5,000 conversations, 50 tenants, 16 "
        "partitions), next to a raw XADD of the bare payload into one stream. The same "
        "backlog of 1,000 tenants (target: within 10% of the 320 B recorded before the "
        "fair layout), and what those tenants cost once idle (target: ~0)."
    ),
    run=_run,
    repeats=lambda _sizes: 1,  # the same bytes every run: once is enough
)
