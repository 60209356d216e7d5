"""What the fair layout costs: no-op delivery and send_many, this tree against the commit
before it, in interleaved pairs (issue 13)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping

from bench.baseline_tree import BASELINE_COMMIT, BaselineError, baseline_env, extract_baseline
from bench.context import BenchContext
from bench.namespace_state import leftovers
from bench.results import MISSING, RunOutput
from bench.scenarios import Scenario
from bench.scenarios.deliver import deliver_backlog
from bench.scenarios.memory import OUTCOMES_OFF, TENANTS, measure_backlog

__all__ = (
    "AFTER",
    "BEFORE",
    "DELIVER",
    "MEMORY",
    "RATIO",
    "SCENARIO",
    "SEND_MANY",
    "row_name",
)

BEFORE = f"before ({BASELINE_COMMIT[:7]})"
AFTER = "after (this tree)"
RATIO = "after / before"
DELIVER = "no-op delivery, 1 worker"
SEND_MANY = "send_many(), batches of 500"
MEMORY = f"Redis bytes per queued message, {TENANTS:,} tenants"
_TARGET = 0.85
"""Issue 13: each within 15% of the layout before."""


def row_name(measure: str, side: str) -> str:
    return f"{measure}: {side}"


def _deliver_rate(ctx: BenchContext, side: str, env: Mapping[str, str]) -> float:
    delivered = deliver_backlog(ctx, f"{side} deliver".replace(" ", "-"), workers=1, env=env)
    if not delivered.run.complete:
        raise RuntimeError(f"{side}: {delivered.run.delivered:,} of the backlog delivered")
    return delivered.run.rate


def _send_rate(ctx: BenchContext, side: str, env: Mapping[str, str]) -> float:
    ctx.fresh()
    ctx.status(f"before_after: send_many, {side}")
    many = ctx.child("bench.relayq_produce:send_many_rate", timeout=120, url=ctx.url,
                     n=ctx.sizes.send_many, batch=ctx.sizes.send_batch, env=dict(env))  # fmt: skip
    return float(many["rate"])


def _check_baseline(ctx: BenchContext, out: RunOutput, tree_env: Mapping[str, str]) -> None:
    """The 'before' children import the extracted tree, and it writes the old layout."""
    where = str(ctx.child("bench.baseline_tree:relayq_file", timeout=60, env=dict(tree_env)))
    tree = tree_env["PYTHONPATH"].split(os.pathsep)[0]
    out.check(f"'before' children import relayq from the {BASELINE_COMMIT[:7]} tree",
              where.startswith(tree), where)  # fmt: skip
    _send_rate(ctx, "checking the old layout", tree_env)
    lists = leftovers(ctx.url).waiting_lists
    out.check("'before' send_many writes the old layout (no waiting lists)", lists == 0,
              f"{lists} waiting lists")  # fmt: skip


def _pair_ratios(out: RunOutput, measure: str, rates: dict[str, list[float]]) -> None:
    before, after = rates[BEFORE], rates[AFTER]
    for side, values in rates.items():
        for value in values:
            out.add(row_name(measure, side), "msgs/s", value, "msgs/s")
    ratios = [a / b for a, b in zip(after, before, strict=True)]
    for ratio in ratios:
        out.add(row_name(measure, RATIO), "ratio", ratio, "%")
    median = statistics.median(ratios)
    out.check(f"{measure}: after / before >= {_TARGET:.0%} (median of {len(ratios)} pairs)",
              median >= _TARGET,
              ", ".join(f"{r:.1%}" for r in ratios) + f"; median {median:.1%}")  # fmt: skip


def _memory(ctx: BenchContext, out: RunOutput, sides: Mapping[str, Mapping[str, str]]) -> None:
    """The memory scenario's backlog of 1,000 tenants, queued by each side's producer once
    (the bytes do not vary between runs)."""
    n = ctx.sizes.backlog
    measured = {}
    for side, env in sides.items():
        ctx.status(f"before_after: memory, {side}")
        measured[side] = measure_backlog(ctx, n, tenants=TENANTS, env=dict(env))
        out.add(row_name(MEMORY, side), "bytes/msg", measured[side], "B")
    out.add(row_name(MEMORY, RATIO), "ratio", measured[AFTER] / measured[BEFORE], "%")
    out.check(f"{MEMORY}: after <= 110% of before", measured[AFTER] <= 1.1 * measured[BEFORE],
              f"{measured[AFTER]:.0f} / {measured[BEFORE]:.0f} B")  # fmt: skip


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    try:
        tree = extract_baseline(ctx.workdir)
    except BaselineError as exc:
        for measure in (DELIVER, SEND_MANY):
            out.fail(row_name(measure, RATIO), MISSING, str(exc))
        return out
    # The layout alone: issue 14's outcome records and events (which d0b2282 did not
    # have) are off on this side; the outcomes scenario measures their cost.
    sides = {BEFORE: baseline_env(tree), AFTER: dict(OUTCOMES_OFF)}
    _check_baseline(ctx, out, sides[BEFORE])
    delivery: dict[str, list[float]] = {BEFORE: [], AFTER: []}
    sending: dict[str, list[float]] = {BEFORE: [], AFTER: []}
    for index in range(ctx.sizes.pairs):
        for side, env in sides.items():
            ctx.status(f"before_after: pair {index + 1}, delivery {side}")
            delivery[side].append(_deliver_rate(ctx, side, env))
        for side, env in sides.items():
            sending[side].append(_send_rate(ctx, side, env))
    _pair_ratios(out, DELIVER, delivery)
    _pair_ratios(out, SEND_MANY, sending)
    _memory(ctx, out, sides)
    out.notes.append(
        f"{ctx.sizes.pairs} pair(s), interleaved: delivery before, after; send_many before, "
        "after. Each cell is the median (min-max) of the pairs; the ratio row is each "
        "pair's after / before. 'After' runs with outcome records and events off "
        "(RELAYQ_OUTCOME_RECORDS=0, RELAYQ_KEEP_*_SECONDS=0, RELAYQ_EVENTS_KEEP=0): the "
        "fair layout alone; the outcomes scenario measures what they add."
    )
    return out


SCENARIO = Scenario(
    name="before_after",
    title="Before/after the fair layout: no-op delivery and send_many",
    description=(
        "This tree against commit "
        f"{BASELINE_COMMIT[:7]} (the last before the fair layout), run from a `git archive` "
        "extract: the 'before' worker and producer child processes import that relayq "
        "(PYTHONPATH), with this tree's bench deliverer and producer loops. Delivery: the "
        "deliver scenario's 1-worker run (backlog over 5,000 conversations of 50 tenants, "
        "filled by the same side's send_many, no-op deliverer, flow control off); "
        "send_many: the send scenario's batches of 500. Pairs interleaved, fresh Redis "
        "each time. Target: after / before >= 85% for each (median of the pairs). Memory: "
        "the memory scenario's backlog of 1,000 tenants queued by each side's send_many, "
        "once each (target: after within 110% of before)."
    ),
    run=_run,
    repeats=lambda _sizes: 1,  # the pairs are the repeats
)
