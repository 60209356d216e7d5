"""relayq's producer: send() one at a time (latency and rate) and send_many (rate)."""

from __future__ import annotations

from bench.context import BenchContext
from bench.results import RunOutput
from bench.scenarios import Scenario

__all__ = ("SCENARIO", "SEND_MANY", "SEND_ONE")

SEND_ONE = "send(), one at a time"
SEND_MANY = "send_many(), batches of 500"


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    sizes = ctx.sizes
    ctx.fresh()
    ctx.status(f"send: {sizes.send_single:,} x send()")
    single = ctx.child("bench.relayq_produce:send_single", timeout=120, url=ctx.url,
                       n=sizes.send_single)  # fmt: skip
    out.add(SEND_ONE, "msgs/s", single["rate"], "msgs/s")
    out.add(SEND_ONE, "p50", single["p50_ms"], "ms")
    out.add(SEND_ONE, "p99", single["p99_ms"], "ms")
    out.add(SEND_ONE, "p99.9", single["p999_ms"], "ms")
    ctx.fresh()
    ctx.status(f"send: {sizes.send_many:,} with send_many({sizes.send_batch})")
    many = ctx.child("bench.relayq_produce:send_many_rate", timeout=120, url=ctx.url,
                     n=sizes.send_many, batch=sizes.send_batch)  # fmt: skip
    out.add(SEND_MANY, "msgs/s", many["rate"], "msgs/s")
    return out


SCENARIO = Scenario(
    name="send",
    title="Producer: send() and send_many()",
    description=(
        "One producer process, one connection. send(): each call awaited before the next "
        "(latency per call, from the caller's side). send_many(): batches of 500 requests, "
        "each one pipelined round trip of XADDs."
    ),
    run=_run,
)
