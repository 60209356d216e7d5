"""What the search index (``RELAYQ_SEARCH_INDEX``, ``{ns:P}:outcomes:lookup``) costs Redis on
the acknowledging path, and in memory per kept record.

One partition per side (two namespaces in one redis-server), the current tree's
``acknowledge_8.lua`` called the way the Acknowledger calls it: batches of delivered
entries read by a consumer, records kept and trimmed to a fixed count on every call (the
steady state of a busy partition, where each call also trims as many as it adds). Sides
interleaved call by call: index on, index off. Per side, the median time of one call
divided by its entries (client-side: EVALSHA to reply on loopback; the script's own time
dominates at these batch sizes), then ``MEMORY USAGE`` of the records hash, its retention
index and the lookup index per kept record.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import msgspec
import redis

from bench.context import BenchContext
from bench.results import RunOutput
from bench.scenarios import Scenario
from relayq.streams.keys import GROUP, Keys
from relayq.streams.message import Message
from relayq.streams.outcome import OutcomeState, counter_field, delivered_record
from relayq.streams.scripts import script_source

__all__ = ("SCENARIO", "ack_cost")

_SIDES = {"index on": "1", "index off": ""}
_BATCH = 200
_KEEP = 2_000
_PAYLOAD = b'{"text":"hello"}'


def _entries(keys: Keys, ids: list[bytes], first: int, now_ms: int) -> bytes:
    stream = keys.stream(0, "normal")
    entries = []
    for offset, entry_id in enumerate(ids):
        c = (first + offset) % 20_000
        message = Message(
            f"01KB{first + offset:022d}", f"tenant-{c % 1000:04d}", f"conv-{c:06d}",
            f"+1555{c:07d}", "normal", _PAYLOAD, now_ms - 50,
        )  # fmt: skip
        record = delivered_record(message, 0, entry_id, "w1", 1, f"prov-{c}", now_ms)
        field = counter_field(OutcomeState.DELIVERED, "normal", message.tenant)
        entries.append([stream, entry_id.decode(), field, message.id, record.decode(), "", ""])
    return msgspec.msgpack.encode(entries)


def _one_call(client: redis.Redis, script: Any, keys: Keys, flag: str, first: int) -> float:
    """Queue and read ``_BATCH`` entries, then time one acknowledge call: µs per entry."""
    stream = keys.stream(0, "normal")
    pipe = client.pipeline(transaction=False)
    for _ in range(_BATCH):
        pipe.xadd(stream, {"m": "x"})
    ids: list[bytes] = pipe.execute()
    client.xreadgroup(GROUP, "w1", {stream: ">"})
    now_ms = time.time_ns() // 1_000_000
    packed = _entries(keys, ids, first, now_ms)
    script_keys = (keys.stalls(0), keys.attempts(0), *keys.outcome_keys(0, "delivered", now_ms))
    args = (GROUP, now_ms, 3_600_000, _KEEP, 0, keys.batch_counts_prefix(0), packed, flag)
    started = time.perf_counter()
    script(keys=script_keys, args=args)
    return (time.perf_counter() - started) / _BATCH * 1e6


def _memory(client: redis.Redis, keys: Keys) -> float:
    """Bytes per kept record of the records hash, its index and the lookup index."""
    names = (keys.outcomes(0), keys.outcome_index(0, "delivered"), keys.outcome_lookup(0))
    used = sum(int(client.memory_usage(name, samples=0) or 0) for name in names)
    return used / max(int(client.hlen(keys.outcomes(0))), 1)


def ack_cost(url: str, calls: int) -> dict[str, Any]:
    """In a child: per side, µs per acknowledged entry (median after warm-up) and bytes per
    kept record."""
    client = redis.Redis.from_url(url)
    script = client.register_script(script_source("acknowledge_8"))
    sides = {label: Keys(f"search-{n}", 1) for n, label in enumerate(_SIDES)}
    for keys in sides.values():
        client.xgroup_create(keys.stream(0, "normal"), GROUP, id="0", mkstream=True)
    times: dict[str, list[float]] = {label: [] for label in sides}
    for call in range(calls):
        for label, keys in sides.items():
            times[label].append(_one_call(client, script, keys, _SIDES[label], call * _BATCH))
    warm = (calls * _BATCH > _KEEP and _KEEP // _BATCH) or 0  # once trimming runs every call
    result = {
        label: {"us": statistics.median(times[label][warm:]), "bytes": _memory(client, keys)}
        for label, keys in sides.items()
    }
    client.close()
    return result


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    ctx.fresh()
    calls = 20 if ctx.smoke else 60 if ctx.quick else 200
    measured = ctx.child(f"{__name__}:ack_cost", timeout=600, url=ctx.url, calls=calls)
    for label, values in measured.items():
        out.add(f"acknowledge, {label}", "us/msg", values["us"], "us")
        out.add(f"acknowledge, {label}", "bytes/record", values["bytes"], "B")
    on, off = measured["index on"], measured["index off"]
    out.add("index's share of the call", "cost", 1 - off["us"] / on["us"], "%")
    out.add("index's memory per kept record", "bytes/record", on["bytes"] - off["bytes"], "B")
    return out


SCENARIO = Scenario(
    name="search_index",
    title="The search index's cost: Redis time per acknowledged message, memory per record",
    description=(
        f"acknowledge_8.lua as the Acknowledger calls it, batches of {_BATCH} delivered "
        f"entries, records kept and trimmed to {_KEEP:,} on every call (steady state), with "
        "RELAYQ_SEARCH_INDEX on and off interleaved call by call in one redis-server; "
        "client-side time of the call per entry (median after the records reach the trim "
        "count), and MEMORY USAGE of the records hash, its index and the lookup index per "
        "kept record."
    ),
    run=_run,
)
