"""What cluster-wide flow control costs: the deliver scenario with admission on, limits high."""

from __future__ import annotations

from bench.context import BenchContext
from bench.results import RunOutput
from bench.scenarios import Scenario
from bench.scenarios.deliver import deliver_backlog

__all__ = ("HIGH_LIMITS", "OFF", "ON", "SCENARIO")

OFF = "flow control off (cap 0, rates 0)"
ON = "flow control on, limits never reached"
HIGH_LIMITS = {
    "RELAYQ_TENANT_CAP": "1000000",
    "RELAYQ_GLOBAL_RATE": "1000000000",
    "RELAYQ_GLOBAL_BURST": "1000000",
    "RELAYQ_TENANT_RATE": "1000000000",
    "RELAYQ_TENANT_BURST": "1000000",
}


_BACKLOG_TIMES = 2
"""The backlog is twice the deliver scenario's: at ~50,000 msgs/s one is a second, and
its first ~0.1 s (each tenant's first round) would weigh as much as the noise."""


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n = ctx.sizes.backlog * _BACKLOG_TIMES
    off = deliver_backlog(ctx, "flow control off", workers=1, backlog=n)
    on = deliver_backlog(ctx, "flow control on", workers=1, env=HIGH_LIMITS, backlog=n)
    for row, delivered in ((OFF, off), (ON, on)):
        run = delivered.run
        out.add(row, "msgs/s", run.rate, "msgs/s")
        out.add(row, "worker CPU us/msg", delivered.cpu_us_per_msg)
        out.check(f"{row}: all {n:,} delivered", run.complete, f"{run.delivered:,} delivered")
        if delivered.killed:
            out.notes.append(f"{row}: a worker did not stop within 20 s of SIGTERM (killed)")
    out.add(ON, "cost", 1 - on.run.rate / off.run.rate, "%")
    return out


SCENARIO = Scenario(
    name="flow_control",
    title="Flow-control cost",
    description=(
        "The 1-worker deliver scenario with twice its backlog, twice per run (off, then "
        "on; five runs, so the median pair is less at the mercy of this VM's noise): "
        "flow control off, and on with every limit (tenant cap, tenant and global rates "
        "and bursts) far above what is reached, so the difference is the admission "
        "machinery itself (its Redis round trips and bookkeeping). Target: under 15% of "
        "throughput."
    ),
    run=_run,
    repeats=lambda sizes: 2 * sizes.repeats - 1,
)
