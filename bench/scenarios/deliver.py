"""Delivery of a backlog to the counting no-op deliverer by 1 and 2 worker processes."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.relayq_workers import DeliveryRun, Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario

__all__ = ("ONE", "SCENARIO", "TWO", "Delivered", "deliver_backlog")

ONE = "1 worker process"
TWO = "2 worker processes"
TENANTS = 50
CONVERSATIONS = 5_000


class Delivered(msgspec.Struct, frozen=True):
    run: DeliveryRun
    cpu_us_per_msg: float
    """Worker CPU time (all worker processes) per delivered message, in microseconds."""
    killed: bool = False
    """A worker did not stop within 20 s of SIGTERM."""


def deliver_backlog(
    ctx: BenchContext,
    label: str,
    *,
    workers: int,
    env: Mapping[str, str] | None = None,
    backlog: int | None = None,
) -> Delivered:
    """Start ``workers`` on an empty namespace, pause them, enqueue the backlog (default
    ``ctx.sizes.backlog``), resume, and time the first to the last delivery (see
    :mod:`bench.relayq_workers`)."""
    n = backlog or ctx.sizes.backlog
    ctx.fresh()
    workdir = ctx.step_dir(label.replace(" ", "-"))
    with ProcessGroup() as group:
        ctx.status(f"{label}: starting {workers} worker(s)")
        fleet = Fleet(group, ctx.url, workdir, count=workers, env=dict(env or {})).start()
        fleet.pause()
        ctx.status(f"{label}: enqueuing {n:,} messages ({CONVERSATIONS:,} conversations)")
        ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False,
                  tenants=TENANTS, conversations=CONVERSATIONS, env=dict(env or {}))  # fmt: skip
        cpu_before = fleet.cpu_seconds()
        fleet.resume()
        ctx.status(f"{label}: delivering {n:,}")
        fleet.wait_for(n, timeout=120)
        cpu = fleet.cpu_seconds() - cpu_before
        fleet.stop()
    run = fleet.result(n)
    return Delivered(run, 1e6 * cpu / max(run.delivered, 1), fleet.killed)


def _add(out: RunOutput, row: str, delivered: Delivered, n: int) -> None:
    run = delivered.run
    out.add(row, "msgs/s", run.rate, "msgs/s")
    out.add(row, "seconds", run.seconds, "s")
    out.add(row, "worker CPU us/msg", delivered.cpu_us_per_msg)
    out.check(f"{row}: all {n:,} delivered", run.complete, f"{run.delivered:,} delivered")
    if delivered.killed:
        out.notes.append(f"{row}: a worker did not stop within 20 s of SIGTERM (killed)")


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n = ctx.sizes.backlog
    _add(out, ONE, deliver_backlog(ctx, "deliver 1 worker", workers=1), n)
    _add(out, TWO, deliver_backlog(ctx, "deliver 2 workers", workers=2), n)
    return out


SCENARIO = Scenario(
    name="deliver",
    title="Delivery of a backlog, no-op deliverer",
    description=(
        "A backlog of ~200-byte messages over 5,000 conversations of 50 tenants (order "
        "per conversation kept, every message acknowledged), delivered by `relayq worker` "
        "processes to a no-op deliverer that counts (the peers' no-op jobs count the same "
        "way). Workers start on an empty queue and are paused while the backlog is "
        "written; the rate runs from the first delivery to the last. Flow control off."
    ),
    run=_run,
)
