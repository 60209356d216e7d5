"""Delivery over HTTP to the local provider (5 ms per request) at several concurrencies."""

from __future__ import annotations

from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.provider import Provider
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario

__all__ = ("LATENCY", "SCENARIO", "row_name")

LATENCY = 0.005


def row_name(concurrency: int) -> str:
    return f"RELAYQ_CONCURRENCY={concurrency}"


def _one(ctx: BenchContext, out: RunOutput, concurrency: int) -> None:
    n = ctx.sizes.http
    ctx.fresh()
    workdir = ctx.step_dir(f"http-{concurrency}")
    row = row_name(concurrency)
    with ProcessGroup() as group:
        provider = Provider(group, workdir / "provider.log", latency=LATENCY)
        env = {"RELAYQ_DELIVERER": "webhook", "RELAYQ_WEBHOOK_URL": provider.url,
               "RELAYQ_CONCURRENCY": str(concurrency)}  # fmt: skip
        ctx.status(f"http: starting a worker, concurrency {concurrency}")
        fleet = Fleet(group, ctx.url, workdir, env=env).start()
        fleet.pause()
        ctx.status(f"http: enqueuing {n:,}")
        ctx.child("bench.relayq_produce:fill", timeout=120, url=ctx.url, n=n, ids=False)
        fleet.resume()
        ctx.status(f"http: delivering {n:,} over HTTP, concurrency {concurrency}")
        complete = fleet.wait_for(n, timeout=ctx.sizes.http_seconds, count=provider.accepted)
        fleet.stop()  # in-flight requests finish; then the provider's record is final
        received, stats = provider.received(), provider.stats()
        provider.close()
    if len(received) > 1:
        seconds = (received[-1].received_ns - received[0].received_ns) / 1e9
        out.add(row, "msgs/s", len(received) / seconds, "msgs/s")
    out.add(row, "max in flight", float(stats["max_in_flight"]))
    out.add(row, "bound c/latency", concurrency / LATENCY, "msgs/s")
    if fleet.killed:
        out.notes.append(f"{row}: the worker did not stop within 20 s of SIGTERM (killed)")
    if not complete:
        out.notes.append(f"{row}: {len(received):,} of {n:,} delivered within the "
                         f"{ctx.sizes.http_seconds:g} s bound; the rate is over those")  # fmt: skip
    errors = stats["failed"] + stats["rejected"] + stats["throttled"]
    out.check(f"{row}: every request accepted", errors == 0 and stats["accepted"] == len(received),
              f"{len(received):,} accepted, {errors} refused")  # fmt: skip


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    for concurrency in ctx.sizes.http_concurrency:
        _one(ctx, out, concurrency)
    out.notes.append(
        "'bound c/latency' is what the concurrency would allow if the worker cost nothing "
        "(concurrency / 5 ms); 'max in flight' is the most requests the provider saw at once."
    )
    return out


SCENARIO = Scenario(
    name="http",
    title="Delivery over HTTP (local provider, 5 ms per request)",
    description=(
        "One `relayq worker` with the webhook deliverer (httpx, keep-alive) POSTing to "
        "`relayq provider --latency 0.005` in its own process; the backlog is enqueued "
        "while the worker is paused. Rate from the provider's first to last accepted request."
    ),
    run=_run,
)
