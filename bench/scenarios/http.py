"""Delivery over HTTP to the local provider (5 ms per request) at several concurrencies,
beside the raw Python clients and the provider alone, in the same run.

For each concurrency c: a relayq worker (webhook deliverer, RELAYQ_CONCURRENCY=c), then
raw aiohttp and raw httpx doing the same number of POSTs at most c at a time (a child
process each, :mod:`bench.raw_http`), each against a provider process of its own; every
rate is taken the same way, from the provider's first to last accepted request. At the
largest c, ``wrk`` measures the provider alone: if it serves well above the Python clients,
the provider is not what caps them.
"""

from __future__ import annotations

import itertools

from bench.child import ChildError
from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.provider import Provider
from bench.raw_http import CLIENTS, wrk_rate
from bench.relayq_workers import Fleet
from bench.results import FAILED, MISSING, RunOutput, error_summary
from bench.scenarios import Scenario
from relayq.ops.local_provider import Delivery

__all__ = ("LATENCY", "SCENARIO", "ratio_row", "raw_row", "row_name", "wrk_row")

LATENCY = 0.005
TARGET_RATIO = 0.8
"""relayq's rate at the largest concurrency, over the best raw client's (issue 15)."""
_WRK_SECONDS = 3.0
_CHILD_TIMEOUT = 120.0


def row_name(concurrency: int) -> str:
    return f"relayq c={concurrency}"


def raw_row(client: str, concurrency: int) -> str:
    return f"raw {client} c={concurrency}"


def ratio_row(concurrency: int) -> str:
    return f"relayq / best raw c={concurrency}"


def wrk_row(concurrency: int) -> str:
    return f"provider alone (wrk) c={concurrency}"


def _record(
    out: RunOutput, row: str, received: list[Delivery], stats: dict[str, int]
) -> float | None:
    """The row's rate and in-flight peak from the provider's record; its rate (None when
    fewer than two requests were accepted)."""
    rate = None
    if len(received) > 1:
        seconds = (received[-1].received_ns - received[0].received_ns) / 1e9
        rate = len(received) / seconds
        out.add(row, "msgs/s", rate, "msgs/s")
    out.add(row, "max in flight", float(stats["max_in_flight"]))
    errors = stats["failed"] + stats["rejected"] + stats["throttled"]
    out.check(f"{row}: every request accepted", errors == 0 and stats["accepted"] == len(received),
              f"{len(received):,} accepted, {errors} refused")  # fmt: skip
    return rate


def _relayq(ctx: BenchContext, out: RunOutput, concurrency: int) -> float | None:
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
        ctx.status(f"http: relayq delivering {n:,} over HTTP, concurrency {concurrency}")
        complete = fleet.wait_for(n, timeout=ctx.sizes.http_seconds, count=provider.accepted)
        fleet.stop()  # in-flight requests finish; then the provider's record is final
        received, stats = provider.received(), provider.stats()
        provider.close()
    out.add(row, "bound c/latency", concurrency / LATENCY, "msgs/s")
    if fleet.killed:
        out.notes.append(f"{row}: the worker did not stop within 20 s of SIGTERM (killed)")
    if not complete:
        out.notes.append(f"{row}: {len(received):,} of {n:,} delivered within the "
                         f"{ctx.sizes.http_seconds:g} s bound; the rate is over those")  # fmt: skip
    return _record(out, row, received, stats)


def _raw(ctx: BenchContext, out: RunOutput, client: str, concurrency: int) -> float | None:
    n = ctx.sizes.http
    row = raw_row(client, concurrency)
    workdir = ctx.step_dir(f"http-raw-{client}-{concurrency}")
    ctx.status(f"http: raw {client} posting {n:,}, concurrency {concurrency}")
    with ProcessGroup() as group:
        provider = Provider(group, workdir / "provider.log", latency=LATENCY)
        try:
            ctx.child("bench.raw_http:post_many", timeout=_CHILD_TIMEOUT, url=provider.url,
                      n=n, concurrency=concurrency, client=client)  # fmt: skip
        except ChildError as exc:
            out.fail(row, FAILED, error_summary(str(exc)))
            return None
        finally:
            received, stats = provider.received(), provider.stats()
            provider.close()
    return _record(out, row, received, stats)


def _provider_alone(ctx: BenchContext, out: RunOutput, concurrency: int) -> None:
    row = wrk_row(concurrency)
    ctx.status(f"http: the provider alone (wrk), concurrency {concurrency}")
    with ProcessGroup() as group:
        provider = Provider(group, ctx.step_dir("http-wrk") / "provider.log", latency=LATENCY)
        try:
            rate = wrk_rate(provider.url, concurrency, _WRK_SECONDS)
        finally:
            provider.close()
    if rate is None:
        out.fail(row, MISSING, "wrk is not installed (apt-get install wrk)")
    else:
        out.add(row, "msgs/s", rate, "msgs/s")


def _compare(out: RunOutput, relayq: dict[int, float | None], best: dict[int, float]) -> None:
    """relayq over the best raw client at each concurrency; the checks of issue 15."""
    for concurrency, rate in relayq.items():
        if rate is not None and best.get(concurrency):
            out.add(ratio_row(concurrency), "ratio", rate / best[concurrency], "%")
    top = max(relayq)
    top_rate = relayq[top]
    if top_rate is not None and best.get(top):
        ratio = top_rate / best[top]
        out.check(f"relayq c={top} >= {TARGET_RATIO:.0%} of the best raw client",
                  ratio >= TARGET_RATIO, f"{ratio:.2f}")  # fmt: skip
    rates = [relayq[c] for c in sorted(relayq)]
    if len(rates) > 1 and None not in rates:
        rising = all(b > a for a, b in itertools.pairwise(r for r in rates if r is not None))
        out.check("relayq's rate rises with concurrency", rising,
                  " -> ".join(f"{r:,.0f}" for r in rates if r is not None))  # fmt: skip


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    relayq: dict[int, float | None] = {}
    best: dict[int, float] = {}
    for concurrency in ctx.sizes.http_concurrency:
        relayq[concurrency] = _relayq(ctx, out, concurrency)
        raw = [_raw(ctx, out, client, concurrency) for client in CLIENTS]
        best[concurrency] = max((r for r in raw if r is not None), default=0.0)
    _provider_alone(ctx, out, max(ctx.sizes.http_concurrency))
    _compare(out, relayq, best)
    out.notes.append(
        "'bound c/latency' is what the concurrency would allow if the client cost nothing "
        "(concurrency / 5 ms); 'max in flight' is the most requests the provider saw at once; "
        "'provider alone (wrk)' is the provider under a C load generator: where the Python "
        "clients stay well below it, their own cost caps them, not the provider's."
    )
    return out


SCENARIO = Scenario(
    name="http",
    title="Delivery over HTTP (local provider, 5 ms per request), beside the raw clients",
    description=(
        "One `relayq worker` with the webhook deliverer (aiohttp, keep-alive, send fence) "
        "POSTing to `relayq provider --latency 0.005` in its own process; the backlog is "
        "enqueued while the worker is paused. Beside it, in the same run and against the "
        "same provider: raw aiohttp and raw httpx POSTing as many requests at the same "
        "concurrency from a child process, and the provider alone under wrk. Every rate "
        "from the provider's first to last accepted request."
    ),
    run=_run,
)
