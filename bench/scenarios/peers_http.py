"""The Python peers on the HTTP job: each job POSTs its message to the local provider.

For each peer in :data:`bench.peers.PEERS`: a fresh ``relayq provider --latency 0.005`` in its
own process (:class:`bench.provider.Provider`, as the http scenario starts it), then the
peer's usual run (:func:`bench.peers.run_peer`: enqueue N, one worker process drains them)
with the HTTP job of :mod:`bench.peers.jobs` at :data:`CONCURRENCY` jobs at once where the
peer has such a setting. The rate is the http scenario's: from the provider's first to last
accepted request, so it compares with relayq's ``relayq c=64`` row; the peer's own count
(first to last counted job) is beside it. Issue 15 wants relayq's HTTP rate at least
:data:`TARGET_FACTOR` times the fastest row here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from bench.context import BenchContext
from bench.peers import PEERS, run_peer
from bench.peers.harness import Budget, ConcurrencyMode, PeerResult, installed_version
from bench.peers.jobs import HTTP, Job
from bench.processes import ProcessGroup
from bench.provider import Provider
from bench.results import RunOutput
from bench.scenarios import Scenario
from bench.scenarios.http import LATENCY
from bench.scenarios.peers import budget_for, failed, fastest
from relayq.ops.local_provider import Delivery

__all__ = ("CONCURRENCY", "SCENARIO", "TARGET_FACTOR", "provider_rate", "row_name")

CONCURRENCY = 64
"""Jobs at once in each peer's worker (its max_jobs, concurrency, threads...): relayq's c=64."""
TARGET_FACTOR = 3.0
"""relayq's HTTP rate at c=64 over the fastest peer's here (issue 15)."""
_MODE: ConcurrencyMode = "high"  # rq's SimpleWorker (no fork per job); the others get CONCURRENCY


def row_name(result: PeerResult) -> str:
    """``arq 0.25.0, c=64`` (no ``c=`` when the peer never started)."""
    setting = f", c={result.concurrency}" if result.concurrency else ""
    return f"{result.peer} {result.version}{setting}"


def provider_rate(received: Sequence[Delivery]) -> float | None:
    """Accepted requests per second from the provider's first to its last accepted one
    (None for fewer than two, or all at one instant)."""
    if len(received) < 2:
        return None
    seconds = (received[-1].received_ns - received[0].received_ns) / 1e9
    return len(received) / seconds if seconds > 0 else None


def _broken(name: str, n: int, exc: Exception) -> PeerResult:
    """A peer run that raised, as a FAILED result (one broken peer must not sink the rest)."""
    return PeerResult(peer=name, version=installed_version(name), mode=_MODE, concurrency=0,
                      worker="", n=n, job=HTTP, error=f"{type(exc).__name__}: {exc}")  # fmt: skip


def _measure(ctx: BenchContext, name: str, n: int, budget: Budget) -> PeerResult:
    """One peer draining ``n`` HTTP jobs against a provider of its own; the provider's rate,
    in-flight peak and refusals go into the result's ``extra``."""
    log = ctx.step_dir(f"peers-http-{name}") / "provider.log"
    with ProcessGroup() as group:
        provider = Provider(group, log, latency=LATENCY)
        try:
            result = run_peer(name, ctx.url, n, _MODE, budget, job=Job(HTTP, provider.url),
                              concurrency=CONCURRENCY)  # fmt: skip
            received, stats = provider.received(), provider.stats()
        except Exception as exc:  # reported as the peer's FAILED row
            return _broken(name, n, exc)
        finally:
            provider.close()
    rate = provider_rate(received)
    if rate is not None:
        result.extra["provider_rate"] = rate
    result.extra["accepted"] = len(received)
    result.extra["refused"] = stats["failed"] + stats["rejected"] + stats["throttled"]
    result.extra["max_in_flight"] = stats["max_in_flight"]
    return result


def _rate(result: PeerResult) -> float:
    rate = result.extra.get("provider_rate", 0.0)
    return float(rate) if isinstance(rate, int | float) else 0.0


def _add(out: RunOutput, r: PeerResult) -> None:
    """The run's numbers (none for a failed run), with a note of the worker's command and
    of what cut a partial run."""
    row = row_name(r)
    if failed(out, row, r):
        return
    cut = f"; partial, {r.why}" if r.partial else ""
    out.notes.append(f"{row}: {r.worker}{cut}")
    if _rate(r):
        out.add(row, "msgs/s", _rate(r), "msgs/s")
    out.add(row, "counted msgs/s", r.process_rate, "msgs/s")
    out.add(row, "processed", r.processed)
    out.add(row, "max in flight", float(r.extra.get("max_in_flight", 0)))
    refused = r.extra.get("refused", 0)
    out.check(f"{row}: every request accepted", refused == 0,
              f"{r.extra.get('accepted', 0):,} accepted, {refused} refused")  # fmt: skip


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    n, budget = ctx.sizes.peers_http, budget_for(ctx)
    results: list[PeerResult] = []
    for name in PEERS:
        ctx.status(f"peer {name} (http): enqueue {n:,}, then one worker POSTs them")
        results.append(_measure(ctx, name, n, budget))
        _add(out, results[-1])
    best = fastest(results, rate=_rate)
    for _ in range(ctx.sizes.peer_repeats if best else 0):
        assert best is not None
        ctx.status(f"peer {best.peer} (http) again, for a median")
        results.append(_measure(ctx, best.peer, n, budget))
        _add(out, results[-1])
    details: list[dict[str, Any]] = [msgspec.to_builtins(r) for r in results]
    out.extra["peers"] = details
    out.extra["fastest"] = row_name(best) if best else None
    out.notes.append(_summary(best))
    return out


def _summary(best: PeerResult | None) -> str:
    fastest_row = row_name(best) if best else "none measured"
    return (
        "'msgs/s' runs from the provider's first to last accepted request (as in the http "
        "scenario); 'counted msgs/s' from the peer's first to last counted job. rq runs one "
        "job at a time (no concurrency setting): SimpleWorker, no fork per job. Issue 15: "
        f"relayq's HTTP rate at c={CONCURRENCY} (http scenario) >= {TARGET_FACTOR:g}x the "
        f"fastest peer here ({fastest_row})."
    )


SCENARIO = Scenario(
    name="peers_http",
    title=f"Python peers: one worker process, HTTP job (c={CONCURRENCY}, 5 ms provider)",
    description=(
        "Each peer enqueues N ~200-byte messages, then ONE worker process of it runs "
        f"{CONCURRENCY} jobs at once (arq max_jobs, saq concurrency, taskiq "
        "--max-async-tasks, faststream max_workers, bullmq concurrency, dramatiq --threads, "
        "celery threads pool --concurrency; rq one at a time); each job POSTs its message "
        "as JSON to `relayq provider --latency 0.005` (a provider process per peer) with "
        "the client its users would use: one aiohttp ClientSession per worker in the "
        "asyncio peers, one httpx.Client shared by the threads in dramatiq, celery and rq; "
        "then counts itself. Rate from the provider's first to last accepted request. "
        "MISSING or FAILED peers have no numbers; the fastest runs again for a median."
    ),
    run=_run,
    repeats=lambda _sizes: 1,
    in_smoke=False,
    is_peers=True,
)
