"""How evenly a global rate is shared by 1,000 tenants of mixed backlog sizes (issue 13)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence

from bench.context import BenchContext
from bench.fairness_stats import jain_index, max_min_share
from bench.processes import ProcessGroup
from bench.relayq_deliverer import Record
from bench.relayq_produce import Backlog
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario

__all__ = ("BACKLOGGED", "BIGGEST", "REST", "SCENARIO", "backlogs")

BACKLOGGED = "tenants still backlogged at the window's end"
BIGGEST = "the 10 biggest backlogs among them"
REST = "the others among them"
_BIGGEST = 10
_RATE = 2_000
_RATE_LIMIT = {"RELAYQ_GLOBAL_RATE": str(_RATE), "RELAYQ_GLOBAL_BURST": "200"}
_TOP = 5_000
"""The largest tenant's backlog; tenant of rank r queues max(10, 5,000 / r)."""
_SMALLEST = 10
_PER_CONVERSATION = 4


def backlogs(tenants: int) -> list[Backlog]:
    """Zipf-like sizes: rank r queues max(10, 5,000 // r) messages (5 tenants with 1,000s,
    most with 10 to 50), about 4 per conversation; the biggest queued first."""
    plans = []
    for rank in range(1, tenants + 1):
        count = max(_SMALLEST, _TOP // rank)
        plans.append((f"t{rank:04d}", count, math.ceil(count / _PER_CONVERSATION)))
    return plans


def _window(ctx: BenchContext, plans: Sequence[Backlog]) -> tuple[list[Record], float]:
    """Queue the backlogs, run one worker for the window (and a little): what it delivered
    in the window, and its CPU time per second of wall clock meanwhile."""
    ctx.fresh()
    total = sum(n for _, n, _ in plans)
    ctx.status(f"fairness_spread: queuing {total:,} messages of {len(plans):,} tenants")
    ctx.child("bench.relayq_produce:fill_tenants", timeout=120, url=ctx.url,
              backlogs=[list(p) for p in plans])  # fmt: skip
    seconds = ctx.sizes.spread_seconds
    with ProcessGroup() as group:
        ctx.status(f"fairness_spread: 1 worker at {_RATE:,}/s for {seconds:.0f} s")
        fleet = Fleet(group, ctx.url, ctx.step_dir("fairness-spread"), env=_RATE_LIMIT,
                      record=True).start(timeout=60)  # fmt: skip
        fleet.wait_for(1, timeout=30)
        cpu = fleet.cpu_seconds()
        time.sleep(seconds + 0.5)
        busy = (fleet.cpu_seconds() - cpu) / (seconds + 0.5)
        fleet.stop()
    records = fleet.records()
    if not records:
        raise RuntimeError("fairness_spread: the worker delivered nothing")
    end = records[0].received_ns + int(seconds * 1e9)
    return [r for r in records if r.received_ns < end], busy


def _add(out: RunOutput, row: str, amounts: Sequence[float], seconds: float) -> None:
    """Per-tenant rates of the backlogged tenants: how many, Jain's index, max/min share,
    and the least and most a tenant got against an equal share (100%)."""
    rates = [a / seconds for a in amounts]
    out.add(row, "tenants", len(rates))
    out.add(row, "Jain index", jain_index(rates), "%")
    out.add(row, "max/min share", max_min_share(rates), "x")
    out.add(row, "min vs equal share", _vs_equal(min(amounts, default=0), amounts), "%")
    out.add(row, "max vs equal share", _vs_equal(max(amounts, default=0), amounts), "%")


def _vs_equal(amount: float, amounts: Sequence[float]) -> float:
    """``amount`` over the mean of ``amounts`` (NaN when that is 0 or there are none)."""
    total = sum(amounts)
    return amount * len(amounts) / total if total else math.nan


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    plans = backlogs(ctx.sizes.spread_tenants)
    seconds = ctx.sizes.spread_seconds
    records, busy = _window(ctx, plans)
    delivered = Counter(r.tenant for r in records)
    backlogged = [(t, delivered[t]) for t, count, _ in plans if delivered[t] < count]
    amounts = [n for _, n in backlogged]
    _add(out, BACKLOGGED, amounts, seconds)
    out.add(BACKLOGGED, "delivered msgs/s", len(records) / seconds, "msgs/s")
    out.add(BACKLOGGED, "worker CPU", busy, "%")
    biggest, rest = backlogged[:_BIGGEST], backlogged[_BIGGEST:]  # plans: biggest first
    for row, group in ((BIGGEST, biggest), (REST, rest)):
        out.add(row, "tenants", len(group))
        mean = sum(n for _, n in group) / len(group) if group else math.nan
        out.add(row, "mean vs equal share", _vs_equal(mean, amounts), "%")
    out.notes.append(
        f"{len(plans):,} tenants queued {sum(n for _, n, _ in plans):,} messages; "
        f"{len(records):,} delivered in the {seconds:.0f} s window against a {_RATE:,}/s "
        f"global rate; {len(backlogged):,} tenants still had messages queued at its end."
    )
    return out


SCENARIO = Scenario(
    name="fairness_spread",
    title="Fairness: 1,000 tenants of mixed backlogs under a global rate",
    description=(
        "Tenant of rank r (1..1,000) queues max(10, 5,000 / r) messages, about 4 per "
        "conversation, biggest first (5 tenants with 1,000s, most with 10 to 50; ~39,000 "
        "in all). One `relayq worker`, no-op deliverer, flow control off except a "
        "2,000/s global rate (burst 200), runs for a fixed window from its first delivery. "
        "Each tenant's rate is its deliveries in the window over the window; only tenants "
        "that still had messages queued at the window's end count (one that ran out got "
        "less because it had no more). Jain's index = (sum x)^2 / (n * sum x^2). A perfect "
        "result is Jain 100% and max/min share 1.0x: every tenant still backlogged got the "
        "same rate, whatever its backlog: every share 100% of the equal share, the 10 "
        "biggest backlogs' mean as much as the others'. Turns are taken per (partition, "
        "level): a tenant whose conversations span more of the 16 partitions has a turn "
        "in each. Worker CPU: its CPU time over the window's wall clock (100% = one core "
        "busy), which says whether the rate limit or the worker set the pace."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
)
