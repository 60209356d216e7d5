"""Redis memory per queued message: INFO used_memory before and after a 50,000 backlog
(of 50 tenants, and of 1,000 tenants whose messages mostly wait in their own lists), what
1,000 tenants leave behind once everything is delivered, and the memory per outcome
record (issue 14: accepted records at enqueue, delivered records and events kept).

Producer children read their settings from the arguments they get (``relayq_settings``),
not from their process environment, so a backlog filled with an ``env`` goes through
:func:`fill_with_settings`, which hands the ``RELAYQ_*`` variables to the producer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
import redis

from bench.context import BenchContext
from bench.namespace_state import Leftovers, drain_acknowledged, leftovers
from bench.payloads import payload_bytes
from bench.processes import ProcessGroup
from bench.redis_target import redis_info, used_memory
from bench.relayq_env import NAMESPACE
from bench.relayq_produce import fill, plan
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario
from relayq.producers.send_request import prepare
from relayq.streams.codec import encode_message
from relayq.streams.settings import Settings

__all__ = (
    "ACCEPTED_RECORD",
    "BEFORE_LAYOUT_BYTES",
    "COUNTERS",
    "DELIVERED_RECORD",
    "ENTRY",
    "EVENT",
    "FILL_WITH_SETTINGS",
    "IDLE",
    "OUTCOMES_OFF",
    "RAW",
    "RECORDS_LEFT",
    "RELAYQ",
    "RELAYQ_DEDUP",
    "RELAYQ_RECORDS_OFF",
    "RELAYQ_TENANTS",
    "SCENARIO",
    "TENANTS",
    "fill_backlog",
    "fill_with_settings",
    "key_kind",
    "measure_backlog",
    "relayq_variables",
)

TENANTS = 1_000
RELAYQ = "relayq backlog (send_many)"
RELAYQ_DEDUP = "relayq backlog, every message with a dedup_key"
RELAYQ_TENANTS = f"relayq backlog of {TENANTS:,} tenants"
IDLE = f"{TENANTS:,} tenants idle after delivery, per tenant"
RAW = "raw XADD of the same 200-byte payload"
ENTRY = "msgpack entry value stored per message"
COUNTERS = f"{TENANTS:,} tenants idle: durable counters per tenant ({{ns:P}}:counts)"
RELAYQ_RECORDS_OFF = "relayq backlog (send_many), outcome records and events off"
ACCEPTED_RECORD = "memory per outcome record: accepted (queued, records on - off)"
DELIVERED_RECORD = "memory per outcome record: delivered record kept"
EVENT = "memory per outcome record: outcome event kept"
RECORDS_LEFT = "memory per outcome record: left per message, delivered records not kept"
FILL_WITH_SETTINGS = "bench.scenarios.memory:fill_with_settings"
"""The child target that fills a backlog with a producer of given settings."""
_COLUMN = "bytes/msg"
_IDLE_COLUMN = "bytes/tenant"
_RECORD_COLUMN = "bytes/record"
OUTCOMES_OFF: dict[str, str] = {
    "RELAYQ_OUTCOME_RECORDS": "0",
    "RELAYQ_KEEP_DELIVERED_SECONDS": "0",
    "RELAYQ_KEEP_DEAD_LETTERED_SECONDS": "0",
    "RELAYQ_EVENTS_KEEP": "0",
}
"""Issue 14's outcome records and events off (the durable counters cannot be)."""
_KEEP_ALL = {"RELAYQ_KEEP_DELIVERED_COUNT": "100000", "RELAYQ_EVENTS_KEEP": "100000"}
"""Every delivered record and event of a backlog kept (per partition: far above it)."""
_NOT_KEPT = {"RELAYQ_KEEP_DELIVERED_SECONDS": "0", "RELAYQ_EVENTS_KEEP": "0"}
"""Outcome records on (accepted, in flight) but no delivered record or event kept."""
_TAG = re.escape(f"{{{NAMESPACE}:") + r"\d+\}:"
_KINDS = (
    ("counters", re.compile(_TAG + "counts$")),
    ("rate", re.compile(_TAG + r"rate:\d+$")),
    ("records", re.compile(_TAG + "outcomes(:[a-z_]+)?$")),
    ("events", re.compile(_TAG + "events$")),
    ("batches", re.compile(f"^({_TAG}|{re.escape(NAMESPACE)}:)batch:")),
)
BEFORE_LAYOUT_BYTES = 320
"""Bytes per queued message recorded before the fair layout (d0b2282, issue 13)."""
_WITHIN = 1.10


class TenantMemory(msgspec.Struct, frozen=True):
    per_message: float
    idle_per_tenant: float
    """The layout's bytes (:func:`key_kind`) the tenants leave once idle."""
    counters_per_tenant: float
    left: Leftovers
    others: dict[str, int]
    """Bytes of the other bookkeeping left (rate buckets, batch records), for a note."""


def measure_backlog(
    ctx: BenchContext,
    n: int,
    *,
    dedup: bool = False,
    tenants: int = 50,
    env: Mapping[str, str] | None = None,
) -> float:
    """Bytes of used_memory per message of an ``n`` backlog of ``tenants`` tenants (5,000
    conversations), queued by a producer child with ``env`` (see :func:`fill_backlog`; no
    worker)."""
    ctx.fresh()
    fill_backlog(ctx, min(n, 500), env, dedup=dedup, tenants=tenants)
    ctx.fresh()  # scripts loaded, buffers grown: measure only what the backlog adds
    before = used_memory(ctx.url)
    fill_backlog(ctx, n, env, timeout=120, dedup=dedup, tenants=tenants)
    return (used_memory(ctx.url) - before) / n


def relayq_variables(env: Mapping[str, str] | None) -> dict[str, str]:
    """The ``RELAYQ_*`` variables of a child's ``env`` (its producer's settings)."""
    return {k: v for k, v in (env or {}).items() if k.startswith("RELAYQ_")}


def fill_with_settings(relayq: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    """A child target: :func:`bench.relayq_produce.fill` whose producer has the settings
    ``relayq`` (``RELAYQ_*`` variables) on top of the bench's."""
    return fill(env=relayq, **kwargs)


def fill_backlog(
    ctx: BenchContext,
    n: int,
    env: Mapping[str, str] | None,
    *,
    timeout: float = 60,
    **plan_kwargs: Any,
) -> dict[str, Any]:
    """Queue ``n`` messages (``plan_kwargs`` as :func:`bench.relayq_produce.fill` takes
    them) in a producer child with ``env``: its ``RELAYQ_*`` variables as the producer's
    settings, the rest (a 'before' tree's ``PYTHONPATH``) as the process environment.
    Returns the fill's result (count, seconds)."""
    kwargs = {"url": ctx.url, "n": n, "ids": False, **plan_kwargs}
    settings = relayq_variables(env)
    result: dict[str, Any]
    if settings:  # only then: a 'before' tree's child runs the plain fill
        result = ctx.child(FILL_WITH_SETTINGS, timeout=timeout, env=env, relayq=settings,
                           **kwargs)  # fmt: skip
    else:
        result = ctx.child("bench.relayq_produce:fill", timeout=timeout, env=env, **kwargs)
    return result


def key_kind(key: str) -> str:
    """What a key of the namespace holds: counters, rate, records, events, batches (issue
    14's bookkeeping) or layout (messages and the structures that order them)."""
    return next((kind for kind, pattern in _KINDS if pattern.match(key)), "layout")


def _bytes_by_kind(url: str) -> dict[str, int]:
    """``MEMORY USAGE`` (every element counted) summed per :func:`key_kind`."""
    client = redis.Redis.from_url(url)
    try:
        keys = [k.decode() for k in client.scan_iter(count=1_000)]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes = pipe.execute()
    finally:
        client.close()
    kinds = dict.fromkeys(("layout", *(kind for kind, _ in _KINDS)), 0)
    for key, size in zip(keys, sizes, strict=True):
        kinds[key_kind(key)] += int(size or 0)
    return kinds


class Finished(msgspec.Struct, frozen=True):
    """Bytes per delivered message of each key kind once a backlog was delivered."""

    per_message: dict[str, float]


def _data_memory(url: str) -> int:
    """used_memory without the clients' buffers (a worker's connection pool grows with
    its concurrency; that is not what the namespace holds)."""
    info = redis_info(url, "memory")
    return int(str(info["used_memory"])) - int(str(info["mem_clients_normal"]))


def _deliver_all(ctx: BenchContext, fleet: Fleet, total: int) -> dict[str, int]:
    """Let the worker deliver up to ``total``, trim what it acknowledged, pause it; what
    the keys then hold, by kind."""
    fleet.resume()
    fleet.wait_for(total, timeout=120)
    drain_acknowledged(ctx.url)
    fleet.pause()
    return _bytes_by_kind(ctx.url)


def _measure_tenants(ctx: BenchContext, n: int) -> TenantMemory:
    """``n`` messages of :data:`TENANTS` tenants queued beside a paused worker, then
    delivered, and what is left. The empty namespace is measured after a warm-up delivery
    (streams, groups, scripts, counters made), so the differences are the tenants'. Outcome
    records and events are off in the worker and the producers (this measures the layout;
    the records' own bytes are measured apart)."""
    ctx.fresh()
    warm = min(n, 500)
    with ProcessGroup() as group:
        fleet = Fleet(group, ctx.url, ctx.step_dir("memory-tenants"), env=OUTCOMES_OFF).start()
        fleet.pause()
        fill_backlog(ctx, warm, OUTCOMES_OFF, tenants=TENANTS)
        empty_keys = _deliver_all(ctx, fleet, warm)
        empty = _data_memory(ctx.url)
        ctx.status(f"memory: {n:,} queued messages of {TENANTS:,} tenants")
        fill_backlog(ctx, n, OUTCOMES_OFF, timeout=120, tenants=TENANTS)
        queued = _data_memory(ctx.url)
        ctx.status(f"memory: delivering {n:,} of {TENANTS:,} tenants")
        idle_keys = _deliver_all(ctx, fleet, warm + n)
        left = leftovers(ctx.url)
        fleet.stop()
    others = {kind: idle_keys[kind] for kind in ("rate", "batches")}
    return TenantMemory(
        per_message=(queued - empty) / n,
        idle_per_tenant=(idle_keys["layout"] - empty_keys["layout"]) / TENANTS,
        counters_per_tenant=idle_keys["counters"] / TENANTS,
        left=left,
        others=others,
    )


def _add_tenants(out: RunOutput, measured: TenantMemory) -> None:
    limit = BEFORE_LAYOUT_BYTES * _WITHIN
    out.add(RELAYQ_TENANTS, _COLUMN, measured.per_message, "B")
    out.add(IDLE, _IDLE_COLUMN, measured.idle_per_tenant, "B")
    out.add(COUNTERS, _IDLE_COLUMN, measured.counters_per_tenant, "B")
    out.check(f"{RELAYQ_TENANTS}: within 10% of {BEFORE_LAYOUT_BYTES} B (before the fair "
              f"layout), <= {limit:.0f} B", measured.per_message <= limit,
              f"{measured.per_message:.0f} B/msg")  # fmt: skip
    left = measured.left
    out.check(f"{TENANTS:,} tenants idle: no waiting list, ring entry or stream entry left",
              left == Leftovers(0, 0, 0), f"{left.waiting_lists} lists, {left.ring_entries} "
              f"ring entries, {left.stream_entries} stream entries")  # fmt: skip
    out.notes.append(
        f"{TENANTS:,} tenants idle: outcome records and events off (worker and producers); "
        "the idle bytes are the layout's keys only. Apart from them: the durable counters "
        "(their own row: one field per partition and level a tenant used, never removed), "
        f"the rate buckets ({measured.others['rate']:,} B in all, expire after 80 s) and "
        f"the batch records ({measured.others['batches']:,} B in all: one per send_many "
        "call, kept a week)."
    )


def _deliver_kept(ctx: BenchContext, n: int, env: Mapping[str, str], label: str) -> Finished:
    """``n`` messages delivered by one worker with ``env`` (worker and producer): the
    bytes of each key kind then held, per message."""
    ctx.fresh()
    with ProcessGroup() as group:
        fleet = Fleet(group, ctx.url, ctx.step_dir(label), env=dict(env)).start()
        fleet.pause()
        fill_backlog(ctx, n, env, timeout=120)
        kinds = _deliver_all(ctx, fleet, n)
        fleet.stop()
    return Finished({kind: size / n for kind, size in kinds.items()})


def _add_outcome_records(ctx: BenchContext, out: RunOutput, queued: float) -> None:
    """Issue 14: the memory per outcome record. Accepted: the same backlog queued with
    records off against ``queued`` (records on, the default); delivered records and
    events: what their keys hold once a backlog was delivered keeping every one (with them
    off, those keys do not exist); and what the records still hold when records are on
    but no delivered record is kept (should be nothing)."""
    n = ctx.sizes.backlog
    ctx.status(f"memory: {n:,} queued relayq messages, outcome records off")
    off = measure_backlog(ctx, n, env=OUTCOMES_OFF)
    out.add(RELAYQ_RECORDS_OFF, _COLUMN, off, "B")
    out.add(ACCEPTED_RECORD, _RECORD_COLUMN, queued - off, "B")
    ctx.status(f"memory: {n:,} delivered, every record and event kept")
    kept = _deliver_kept(ctx, n, _KEEP_ALL, "memory-records-kept").per_message
    out.add(DELIVERED_RECORD, _RECORD_COLUMN, kept["records"], "B")
    out.add(EVENT, _RECORD_COLUMN, kept["events"], "B")
    ctx.status(f"memory: {n:,} delivered, no delivered record or event kept")
    left = _deliver_kept(ctx, n, _NOT_KEPT, "memory-records-none").per_message["records"]
    out.add(RECORDS_LEFT, _COLUMN, left, "B")
    out.check("records on, RELAYQ_KEEP_DELIVERED_SECONDS=0: no record left once delivered",
              left == 0, f"{left:,.0f} B per message left in {{ns:P}}:outcomes*")  # fmt: skip
    out.notes.append(
        f"Memory per outcome record: accepted = bytes per queued message with records on "
        f"minus off (used_memory, {n:,} messages of 50 tenants); delivered and event = "
        f"MEMORY USAGE of the records hash and index ({{ns:P}}:outcomes*) and of the "
        f"events streams ({{ns:P}}:events) after delivering {n:,} with "
        f"RELAYQ_KEEP_DELIVERED_COUNT and RELAYQ_EVENTS_KEEP at 100,000 (all kept), per "
        "message (with records and events off these keys do not exist). 'Left per "
        "message': the same delivery with records on but RELAYQ_KEEP_DELIVERED_SECONDS=0 "
        "and RELAYQ_EVENTS_KEEP=0, what {ns:P}:outcomes* still holds (the accepted/in-flight "
        "records the acknowledgement did not remove)."
    )


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
    queued = measure_backlog(ctx, n)
    out.add(RELAYQ, _COLUMN, queued, "B")
    if not ctx.quick:
        ctx.status(f"memory: {n:,} queued relayq messages with dedup keys")
        out.add(RELAYQ_DEDUP, _COLUMN, measure_backlog(ctx, n, dedup=True), "B")
    ctx.status(f"memory: {n:,} raw XADDs")
    out.add(RAW, _COLUMN, _measure_raw(ctx, n), "B")
    out.add(ENTRY, _COLUMN, _entry_bytes(), "B")
    _add_tenants(out, _measure_tenants(ctx, n))
    _add_outcome_records(ctx, out, queued)
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
        "fair layout), and what those tenants cost once idle (target: ~0), both with "
        "outcome records and events off; what the durable counters hold per idle tenant; "
        "and the memory per outcome record (issue 14): accepted, delivered, event."
    ),
    run=_run,
    repeats=lambda _sizes: 1,  # the same bytes every run: once is enough
)
