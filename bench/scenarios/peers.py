"""The Python peers on the same Redis with the same payloads (:mod:`bench.peers`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from bench.context import BenchContext
from bench.peers import MODES, PEERS, run_peer
from bench.peers.harness import Budget, PeerResult
from bench.results import FAILED, MISSING, RunOutput
from bench.scenarios import Scenario

__all__ = ("SCENARIO", "budget_for", "failed", "fastest", "row_name")


def row_name(result: PeerResult) -> str:
    return f"{result.peer} {result.version}, {result.setting}"


def failed(out: RunOutput, row: str, r: PeerResult) -> bool:
    """Whether the peer run has no numbers (missing, broken or nothing processed): its row
    then says MISSING or FAILED, and why."""
    if r.status in (MISSING, FAILED):
        out.fail(row, r.status, r.why)
        return True
    return False


def _add(out: RunOutput, r: PeerResult) -> None:
    """The run's numbers (none for a failed run, see :func:`failed`); a partial one has
    them and a note of what cut it."""
    row = row_name(r)
    if failed(out, row, r):
        return
    if r.partial:
        out.notes.append(f"{row}: partial, {r.why}")
    out.add(row, "enqueue/s", r.enqueue_rate, "msgs/s")
    if r.bulk_enqueue_rate:
        out.add(row, "bulk enqueue/s", r.bulk_enqueue_rate, "msgs/s")
    out.add(row, "processed", r.processed)
    out.add(row, "msgs/s", r.process_rate, "msgs/s")


def _process_rate(result: PeerResult) -> float:
    return result.process_rate


def fastest(
    results: list[PeerResult], rate: Callable[[PeerResult], float] = _process_rate
) -> PeerResult | None:
    """The peer run with the highest ``rate`` (its processing rate unless told) that processed
    everything (else the fastest partial one); never a MISSING or FAILED one, nor one without
    a rate."""
    measured = [r for r in results if r.status not in (MISSING, FAILED) and rate(r) > 0]
    complete = [r for r in measured if r.ok] or measured
    return max(complete, key=rate, default=None)


def budget_for(ctx: BenchContext) -> Budget:
    """The harness's bounds, with 10 s to drain in the default run (the slow peers would
    take minutes; their partial rate is what they did in 10 s)."""
    if ctx.quick or ctx.smoke:  # --quick must stay under 2 minutes in all
        return Budget(produce_s=4.0, startup_s=15.0, process_s=2.0, stop_s=2.0)
    return Budget(produce_s=10.0, startup_s=20.0, process_s=10.0, stop_s=5.0)


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n, budget = ctx.sizes.peers_n, budget_for(ctx)
    modes = MODES if not ctx.quick else ("default",)
    results: list[PeerResult] = []
    for name in PEERS:
        for mode in modes:
            ctx.status(f"peer {name} ({mode}): enqueue {n:,}, then one worker drains them")
            result = run_peer(name, ctx.url, n, mode, budget)
            results.append(result)
            _add(out, result)
    best = fastest(results)
    for _ in range(ctx.sizes.peer_repeats if best else 0):
        assert best is not None
        ctx.status(f"peer {best.peer} ({best.mode}) again, for a median")
        again = run_peer(best.peer, ctx.url, n, best.mode, budget)  # type: ignore[arg-type]
        results.append(again)
        _add(out, again)
    details: list[dict[str, Any]] = [msgspec.to_builtins(r) for r in results]
    out.extra["peers"] = details
    out.extra["fastest"] = row_name(best) if best else None
    return out


SCENARIO = Scenario(
    name="peers",
    title="Python peers: one worker process, no-op job",
    description=(
        "Each peer enqueues N ~200-byte messages with its normal producer API (half with its "
        "bulk API where it has one), then ONE worker process of it drains them at its default "
        "and at a high concurrency; each no-op job counts itself (the same counter relayq's "
        "deliverer uses) and the rate runs from the first to the last processed job. "
        "Peers give no per-conversation order. A run cut by its time budget is 'partial' "
        "with the rate of what it processed; a peer not installed (MISSING) or that broke or "
        "processed nothing (FAILED) has no numbers. The fastest peer is run again for a median."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
    in_smoke=False,
    is_peers=True,
)
