"""End-to-end latency at fixed offered rates: open-loop producer -> worker -> deliverer."""

from __future__ import annotations

import msgspec

from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario
from bench.stats import percentiles

__all__ = ("SCENARIO", "row_name")


def row_name(rate: int) -> str:
    return f"{rate:,} msg/s offered"


def _one(ctx: BenchContext, out: RunOutput, rate: int) -> None:
    seconds = ctx.sizes.latency_seconds
    ctx.fresh()
    workdir = ctx.step_dir(f"latency-{rate}")
    row = row_name(rate)
    with ProcessGroup() as group:
        ctx.status(f"latency: starting a worker for {rate:,} msg/s")
        fleet = Fleet(group, ctx.url, workdir, record=True).start()
        ctx.status(f"latency: {rate:,} msg/s for {seconds:g} s")
        intended_file = str(workdir / "intended.json")
        sent = ctx.child("bench.open_loop:open_loop", timeout=seconds + 60, url=ctx.url,
                         rate=rate, seconds=seconds, out=intended_file)  # fmt: skip
        fleet.wait_for(sent["sent"], timeout=60)
        fleet.stop()
    intended = msgspec.json.decode((workdir / "intended.json").read_bytes(), type=dict[str, int])
    latencies = [
        (d.received_ns - intended[d.message_id]) / 1e6
        for d in fleet.records()
        if d.message_id in intended
    ]
    p50, p99, p999, worst = percentiles(latencies, (0.5, 0.99, 0.999, 1.0))
    for column, value in (("p50", p50), ("p99", p99), ("p99.9", p999), ("max", worst)):
        out.add(row, column, value, "ms")
    out.add(row, "producer lag max", sent["worst_lag_ms"], "ms")
    out.check(f"{row}: all {sent['sent']:,} delivered", len(latencies) >= sent["sent"],
              f"{len(latencies):,} delivered")  # fmt: skip


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    for rate in ctx.sizes.latency_rates:
        _one(ctx, out, rate)
    out.notes.append(
        "Latency = delivery time in the worker's deliverer minus the message's intended send "
        "time on the producer's schedule (same host clock). 'producer lag max' is how far the "
        "producer itself ever fell behind its schedule (counted in the latency)."
    )
    return out


SCENARIO = Scenario(
    name="latency",
    title="End-to-end latency at fixed offered rates",
    description=(
        "An open-loop producer process sends on a fixed schedule (intended times recorded, "
        "so stalls are not hidden: no coordinated omission) to one `relayq worker` that "
        "was started and owned its partitions before the clock started; the no-op "
        "deliverer timestamps each message. 5,000 conversations, 50 tenants, flow control off."
    ),
    run=_run,
)
