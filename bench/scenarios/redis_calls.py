"""Redis commands per delivered message for 1, 100 and 1,000 tenants (issue 13)."""

from __future__ import annotations

import time

from bench.command_counts import CommandCounts, Monitor
from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario

__all__ = ("GROWTH", "SCENARIO", "TENANT_COUNTS", "row_name")

TENANT_COUNTS = (1, 100, 1_000)
GROWTH = f"{TENANT_COUNTS[-1]:,} tenants / 1 tenant"
_CONVERSATIONS = 5_000
_LIMIT = 1.10
"""'Does not grow': at most 10% more per message with 1,000 tenants than with 1."""
_COLUMNS = ("all commands/msg", "client-sent/msg", "EVALSHA/msg")
_TOP = 8


def row_name(tenants: int) -> str:
    return f"{tenants:,} tenant{'s' if tenants > 1 else ''}"


def _count(ctx: BenchContext, tenants: int, n: int) -> CommandCounts:
    """Commands while one worker delivers a backlog of ``n`` over ``tenants`` tenants."""
    ctx.fresh()
    with ProcessGroup() as group:
        fleet = Fleet(group, ctx.url, ctx.step_dir(f"calls-{tenants}")).start()
        fleet.pause()
        ctx.status(f"redis_calls: {n:,} messages of {row_name(tenants)}")
        ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False,
                  tenants=tenants, conversations=_CONVERSATIONS)  # fmt: skip
        with Monitor(ctx.url, "127.0.0.1", ctx.port) as monitor:
            fleet.resume()
            fleet.wait_for(n, timeout=180)
            time.sleep(0.3)  # the last acknowledgements
            counts = monitor.stop()
        fleet.stop()
    return counts


def _per_message(counts: CommandCounts, n: int) -> tuple[float, float, float]:
    return counts.total / n, counts.client_sent / n, counts.evalsha / n


def _differences(first: CommandCounts, last: CommandCounts, n: int) -> str:
    """The commands whose calls per message changed most from ``first`` to ``last``."""
    names = set(first.by_command) | set(last.by_command)
    change = {c: (first.by_command.get(c, 0) / n, last.by_command.get(c, 0) / n) for c in names}
    top = sorted(change.items(), key=lambda item: -abs(item[1][1] - item[1][0]))[:_TOP]
    return ", ".join(f"{c} {a:.2f} -> {b:.2f}" for c, (a, b) in top)


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n = ctx.sizes.calls_backlog
    counts = {t: _count(ctx, t, n) for t in TENANT_COUNTS}
    measured = {t: _per_message(c, n) for t, c in counts.items()}
    for tenants, values in measured.items():
        for column, value in zip(_COLUMNS, values, strict=True):
            out.add(row_name(tenants), column, value, "/msg")
    out.notes.append(
        f"Per message, {row_name(TENANT_COUNTS[0])} -> {row_name(TENANT_COUNTS[-1])} "
        f"(all commands, scripts' included; the {_TOP} that changed most): "
        f"{_differences(counts[TENANT_COUNTS[0]], counts[TENANT_COUNTS[-1]], n)}."
    )
    first, last = measured[TENANT_COUNTS[0]], measured[TENANT_COUNTS[-1]]
    for column, a, b in zip(_COLUMNS[:2], first, last, strict=False):
        ratio = b / a
        out.add(GROWTH, column, ratio, "x")
        out.check(f"{column}: {GROWTH} <= {_LIMIT}", ratio <= _LIMIT,
                  f"{b:.2f} / {a:.2f} = {ratio:.3f}")  # fmt: skip
    return out


SCENARIO = Scenario(
    name="redis_calls",
    title="Redis commands per delivered message, by number of tenants",
    description=(
        "One `relayq worker` (no-op deliverer, flow control off) delivers a backlog over "
        "5,000 conversations of 1, 100 or 1,000 tenants, queued while it was paused. "
        "Counted from its resume to the last acknowledgement, per delivered message: all "
        "commands (INFO commandstats, which counts the commands Lua scripts run too), the "
        "commands clients sent (MONITOR lines not from a script: EVALSHA and the "
        "top-level XACK, XREADGROUP, ...; a pipeline sends several in one round trip) "
        "and EVALSHA calls. The worker's timed work (lease renewal, promotion of due "
        "messages) is included; the bench's progress counter is not. Target: no growth "
        "with the number of tenants (1,000 tenants / 1 tenant <= 1.1). MONITOR slows "
        "Redis; these are counts, not rates."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
)
