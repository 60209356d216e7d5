"""What issue 14's outcome work costs on the hot path: no-op delivery before it, and with
its pieces switched on one at a time, in interleaved runs; and send_many with the accepted
records on and off.

The pieces: the durable counters and the rate buckets (always on, in the scripts that
finish messages), the outcome records (accepted at enqueue, in flight at the start of an
attempt, delivered with the acknowledgement) and the outcome events (an XADD per finished
message). Each piece's share is its cost as a fraction of the throughput before issue 14
(:func:`shares`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import msgspec

from bench.baseline_tree import (
    BEFORE_OUTCOMES_COMMIT,
    BaselineError,
    baseline_env,
    extract_baseline,
)
from bench.context import BenchContext
from bench.results import MISSING, RunOutput
from bench.scenarios import Scenario
from bench.scenarios.deliver import Delivered, deliver_backlog
from bench.scenarios.memory import FILL_WITH_SETTINGS, OUTCOMES_OFF, fill_backlog, relayq_variables

__all__ = (
    "ALL_ON",
    "BEFORE",
    "COUNTERS",
    "COUNTERS_SHARE",
    "EVENTS",
    "EVENTS_SHARE",
    "RECORDS",
    "RECORDS_SHARE",
    "SCENARIO",
    "SEND_COST",
    "SEND_OFF",
    "SEND_ON",
    "TOTAL_SHARE",
    "shares",
)

BEFORE = f"before issue 14 ({BEFORE_OUTCOMES_COMMIT[:7]})"
COUNTERS = "counters and rate only (records, events off)"
RECORDS = "counters + outcome records"
EVENTS = "counters + outcome events"
ALL_ON = "all on (defaults)"
COUNTERS_SHARE = "share: durable counters and rate (1 - b/a)"
RECORDS_SHARE = "share: outcome records ((b - c)/a)"
EVENTS_SHARE = "share: outcome events ((b - d)/a)"
TOTAL_SHARE = "share: all on, total (1 - e/a)"
SEND_OFF = "send_many, outcome records off"
SEND_ON = "send_many, outcome records on (default)"
SEND_COST = "send_many: accepted records' cost (1 - on/off)"
_COST = "cost"
_BACKLOG_TIMES = 2
"""Twice the deliver scenario's backlog, as the flow-control scenario (a ~1 s run would
weigh its start as much as the noise)."""
_FILL = "bench.relayq_produce:fill"


class Side(msgspec.Struct, frozen=True):
    """One row of the delivery table: its name, a short label (work folder) and the
    environment of its worker and producer."""

    row: str
    label: str
    env: dict[str, str]


def _on(*variables: str) -> dict[str, str]:
    """:data:`OUTCOMES_OFF` without ``variables`` (those at their defaults: on)."""
    return {k: v for k, v in OUTCOMES_OFF.items() if k not in variables}


_THIS_TREE = (
    Side(COUNTERS, "b-counters", OUTCOMES_OFF),
    Side(RECORDS, "c-records", _on("RELAYQ_OUTCOME_RECORDS", "RELAYQ_KEEP_DELIVERED_SECONDS",
                                   "RELAYQ_KEEP_DEAD_LETTERED_SECONDS")),
    Side(EVENTS, "d-events", _on("RELAYQ_EVENTS_KEEP")),
    Side(ALL_ON, "e-all-on", {}),
)  # fmt: skip
"""(b) to (e); what is on is at its default (records kept 1 h / 24 h, 10,000 events)."""


def shares(rates: Mapping[str, float]) -> dict[str, float]:
    """Each piece's cost as a fraction of the rate before issue 14 (``rates`` by row):
    counters = 1 - b/a, records = (b - c)/a, events = (b - d)/a, total = 1 - e/a."""
    before, counters = rates[BEFORE], rates[COUNTERS]
    return {
        COUNTERS_SHARE: 1 - counters / before,
        RECORDS_SHARE: (counters - rates[RECORDS]) / before,
        EVENTS_SHARE: (counters - rates[EVENTS]) / before,
        TOTAL_SHARE: 1 - rates[ALL_ON] / before,
    }


@dataclasses.dataclass
class _SettingsReachProducer(BenchContext):
    """The context :func:`deliver_backlog` gets here: its producer child's fill runs with
    the ``RELAYQ_*`` variables of its environment as settings (a bench producer reads its
    settings from its arguments, not from its process environment), as its worker does."""

    def child(
        self, target: str, timeout: float, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Any:
        settings = relayq_variables(env)
        if target == _FILL and settings:
            return super().child(FILL_WITH_SETTINGS, timeout, env, relayq=settings, **kwargs)
        return super().child(target, timeout, env, **kwargs)


def _settings_reach_producer(ctx: BenchContext) -> BenchContext:
    fields = {field.name: getattr(ctx, field.name) for field in dataclasses.fields(ctx)}
    return _SettingsReachProducer(**fields)


def _before_side(ctx: BenchContext, out: RunOutput) -> Side | None:
    """Row (a), the extracted tree before issue 14, once its children are checked to
    import it; None (its rows MISSING) when it cannot be extracted."""
    try:
        tree = extract_baseline(ctx.workdir, BEFORE_OUTCOMES_COMMIT)
    except BaselineError as exc:
        out.fail(BEFORE, MISSING, str(exc))
        return None
    env = baseline_env(tree)
    where = str(ctx.child("bench.baseline_tree:relayq_file", timeout=60, env=env))
    out.check(f"'before' children import relayq from the {BEFORE_OUTCOMES_COMMIT[:7]} tree",
              where.startswith(str(tree)), where)  # fmt: skip
    return Side(BEFORE, "a-before", env)


def _add_delivery(out: RunOutput, row: str, delivered: Delivered, n: int) -> None:
    run = delivered.run
    out.add(row, "msgs/s", run.rate, "msgs/s")
    out.add(row, "worker CPU us/msg", delivered.cpu_us_per_msg)
    out.check(f"{row}: all {n:,} delivered", run.complete, f"{run.delivered:,} delivered")
    if delivered.killed:
        out.notes.append(f"{row}: a worker did not stop within 20 s of SIGTERM (killed)")


def _add_shares(out: RunOutput, rates: Mapping[str, float]) -> None:
    if BEFORE not in rates:
        for row in (COUNTERS_SHARE, RECORDS_SHARE, EVENTS_SHARE, TOTAL_SHARE):
            out.fail(row, MISSING, f"no {BEFORE} row")
        return
    for row, share in shares(rates).items():
        out.add(row, _COST, share, "%")


def _send_rate(ctx: BenchContext, env: Mapping[str, str]) -> float:
    ctx.fresh()
    filled = fill_backlog(ctx, ctx.sizes.send_many, env, timeout=120)
    return float(filled["n"]) / float(filled["seconds"])


def _add_producer(ctx: BenchContext, out: RunOutput) -> None:
    """send_many with the accepted records off, then on (a pair)."""
    ctx.status("outcomes: send_many, records off")
    off = _send_rate(ctx, OUTCOMES_OFF)
    ctx.status("outcomes: send_many, records on")
    on = _send_rate(ctx, {})
    out.add(SEND_OFF, "msgs/s", off, "msgs/s")
    out.add(SEND_ON, "msgs/s", on, "msgs/s")
    out.add(SEND_COST, _COST, 1 - on / off, "%")


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    before = _before_side(ctx, out)
    sides = (before, *_THIS_TREE) if before else _THIS_TREE
    n = ctx.sizes.backlog * _BACKLOG_TIMES
    producer_ctx = _settings_reach_producer(ctx)
    rates = {}
    for side in sides:
        delivered = deliver_backlog(producer_ctx, f"outcomes {side.label}", workers=1,
                                    env=side.env, backlog=n)  # fmt: skip
        _add_delivery(out, side.row, delivered, n)
        rates[side.row] = delivered.run.rate
    _add_shares(out, rates)
    _add_producer(ctx, out)
    return out


SCENARIO = Scenario(
    name="outcomes",
    title="Issue 14's outcome work on the hot path: counters, records, events",
    description=(
        "The 1-worker deliver scenario (no-op deliverer, flow control off) with twice its "
        "backlog, five rows per run, interleaved (five runs; the median of each row): (a) "
        f"the tree before issue 14 ({BEFORE_OUTCOMES_COMMIT[:7]}, from a `git archive` "
        "extract, as before_after), (b) this tree with outcome records and events off "
        "(RELAYQ_OUTCOME_RECORDS=0, RELAYQ_KEEP_DELIVERED_SECONDS=0, "
        "RELAYQ_KEEP_DEAD_LETTERED_SECONDS=0, RELAYQ_EVENTS_KEEP=0: the durable counters "
        "and rate buckets only, which cannot be switched off), (c) records on, (d) events "
        "on, (e) everything at its default; the worker and the producer both get each "
        "row's settings. Shares of the throughput before: counters 1 - b/a, records "
        "(b - c)/a, events (b - d)/a, total 1 - e/a (target: total under 15%). Then "
        "send_many (batches of 500, 50 tenants, fresh Redis) with the accepted records "
        "off and on, in a pair (its rate includes the first batch's script loading)."
    ),
    run=_run,
    repeats=lambda sizes: 2 * sizes.repeats - 1,
)
