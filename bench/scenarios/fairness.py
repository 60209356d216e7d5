"""Fairness at any backlog (issue 13): ten messages of tenant B queued behind tenant A's backlog."""

from __future__ import annotations

import msgspec

from bench.context import BenchContext
from bench.fairness_stats import positions_of
from bench.processes import ProcessGroup
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario
from relayq.streams.settings import Settings

__all__ = (
    "BULK",
    "FULL",
    "RATE_LIMIT",
    "RSS_LIMIT",
    "RSS_RATIO",
    "SCENARIO",
    "SMALL",
    "TENTH",
    "WITHIN",
)

BULK = "bulk"
SMALL = "small"
FULL = "behind A's full backlog"
TENTH = "behind a tenth of it"
RSS_RATIO = "worker peak RSS, full / tenth"
WITHIN = 1_000
"""Issue 13: B's ten are delivered within the first 1,000 sends after they were queued."""
RSS_LIMIT = 1.3
_B_MESSAGES = 10
_A_CONVERSATIONS = 5_000
_RATE = 5_000
RATE_LIMIT = {
    "RELAYQ_GLOBAL_RATE": str(_RATE),
    "RELAYQ_GLOBAL_BURST": "1000",
}
"""Flow control off except a 5,000/s global rate (as in the issue's report)."""
_FILL_LIMIT = 120.0
_HELD_AT_MOST = 16 * Settings().read_ahead
"""What one worker holding all 16 partitions reads ahead at most (entries): the bound."""


class Behind(msgspec.Struct, frozen=True):
    """One run: A's backlog, where B's messages were delivered, what the worker held."""

    backlog: int
    fill_seconds: float
    positions: list[int]
    delivered: int
    seconds_to_last: float
    peak_rss: int


def _deliver_behind(ctx: BenchContext, backlog: int) -> Behind:
    """Queue A's backlog then B's ten, start one worker, stop it after ``fair_watch``
    deliveries (all of them when fewer), and read the order it delivered in."""
    ctx.fresh()
    ctx.status(f"fairness: queuing {backlog:,} of tenant A, then {_B_MESSAGES} of B")
    queued = [[BULK, backlog, _A_CONVERSATIONS], [SMALL, _B_MESSAGES, 2]]
    fill = ctx.child("bench.relayq_produce:fill_tenants", timeout=3 * _FILL_LIMIT, url=ctx.url,
                     backlogs=queued)  # fmt: skip
    watch = min(ctx.sizes.fair_watch, backlog + _B_MESSAGES)
    with ProcessGroup() as group:
        ctx.status(f"fairness: 1 worker, {watch:,} deliveries behind {backlog:,}")
        fleet = Fleet(group, ctx.url, ctx.step_dir(f"fairness-{backlog}"), env=RATE_LIMIT,
                      record=True).start(timeout=60)  # fmt: skip
        fleet.wait_for(watch, timeout=30 + 3 * watch / _RATE)
        peak = fleet.peak_rss_bytes()
        fleet.stop()
    records = fleet.records()
    positions = positions_of((r.tenant for r in records), SMALL)
    small = [r for r in records if r.tenant == SMALL]
    last = (small[-1].received_ns - records[0].received_ns) / 1e9 if small else float("nan")
    return Behind(backlog, float(fill["seconds"]), positions, len(records), last, peak)


def _add(out: RunOutput, row: str, behind: Behind) -> None:
    found = behind.positions
    all_found = len(found) == _B_MESSAGES
    out.add(row, "A's backlog", behind.backlog)
    out.add(row, "fill s", behind.fill_seconds, "s")
    out.add(row, "B's first position", found[0] if found else float("nan"))
    out.add(row, "B's last position", found[-1] if all_found else float("nan"))
    out.add(row, "s to B's last", behind.seconds_to_last if all_found else float("nan"), "s")
    out.add(row, "worker peak RSS MiB", behind.peak_rss / 2**20)
    where = f"positions {found} of {behind.delivered:,} delivered"
    out.check(f"{row}: B's {_B_MESSAGES} within the first {WITHIN:,} sends",
              all_found and found[-1] <= WITHIN, where)  # fmt: skip
    out.check(f"{row}: {behind.backlog:,} queued in under {_FILL_LIMIT:.0f} s",
              behind.fill_seconds < _FILL_LIMIT, f"{behind.fill_seconds:.1f} s")  # fmt: skip


def _add_rss(out: RunOutput, full: Behind, tenth: Behind) -> None:
    """The bound: peak RSS behind the full backlog over behind a tenth of it, when both
    backlogs are larger than what a worker reads ahead (else the smaller one is all held)."""
    ratio = full.peak_rss / tenth.peak_rss if tenth.peak_rss else float("nan")
    detail = f"{full.peak_rss / 2**20:.1f} / {tenth.peak_rss / 2**20:.1f} MiB = {ratio:.3f}"
    if tenth.backlog < _HELD_AT_MOST:
        out.notes.append(
            f"Peak RSS ratio {detail}, not checked: {tenth.backlog:,} is less than one "
            f"worker reads ahead ({_HELD_AT_MOST:,} entries, RELAYQ_READ_AHEAD x 16 "
            "partitions), so it held all of it; the default sizes compare two backlogs "
            "above that bound."
        )
        return
    out.add(RSS_RATIO, "ratio", ratio, "x")
    out.check(f"worker memory bounded: peak RSS behind {full.backlog:,} / behind "
              f"{tenth.backlog:,} < {RSS_LIMIT}", ratio < RSS_LIMIT, detail)  # fmt: skip


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n = ctx.sizes.fair_backlog
    full = _deliver_behind(ctx, n)
    tenth = _deliver_behind(ctx, n // 10)
    _add(out, FULL, full)
    _add(out, TENTH, tenth)
    _add_rss(out, full, tenth)
    out.notes.append(
        f"Positions count every delivery from the worker's start (B's were queued before "
        f"it); the worker is stopped after {ctx.sizes.fair_watch:,} deliveries, so a "
        "position beyond that shows as '-' and fails the check."
    )
    return out


SCENARIO = Scenario(
    name="fairness",
    title="Fairness: ten messages behind a tenant's backlog",
    description=(
        "Tenant A queues its backlog with send_many (~200-byte messages, 5,000 "
        "conversations, one priority), then tenant B queues 10 at the same priority (2 "
        "conversations). One `relayq worker` starts (no-op deliverer that records the "
        "order; flow control off except a 5,000/s global rate, burst 1,000) and is stopped "
        "after a bounded number of deliveries. Reported: the positions of B's 10 among the "
        "deliveries (target: all within the first 1,000) and the worker's peak RSS "
        "(VmHWM) behind the full backlog and behind a tenth of it (target: ratio < 1.3, "
        "i.e. worker memory does not grow with the backlog)."
    ),
    run=_run,
    repeats=lambda _sizes: 1,  # a million-message fill per run: once is enough
)
