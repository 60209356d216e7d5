"""The seed's load tests (shared/seeds/001: the BullMQ WhatsApp send queue) at 100x scale.

The seed's queue promises FIFO per conversation, at most 5 sends in flight per tenant
and 80 msg/s globally, and tests it with six load scenarios. Each runs here with its
message counts (and rates) multiplied by the scale, on the seed's limits scaled the same
way: tenant cap 5 (a property of the provider, not scaled) and a global rate of
80 x scale msg/s. Two `relayq worker` processes deliver to the bench deliverer playing
the provider (1 ms per send, 429s where the scenario asks), which records when each send
started and ended: how many sends of a tenant overlapped is measured across both workers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import redis

from bench.context import BenchContext
from bench.processes import ProcessGroup
from bench.relayq_deliverer import (
    LATENCY_ENV,
    RETRY_AFTER_ENV,
    THROTTLE_ENV,
    THROTTLE_PREFIX_ENV,
    Record,
)
from bench.relayq_env import NAMESPACE
from bench.relayq_workers import Fleet
from bench.results import RunOutput
from bench.scenarios import Scenario
from bench.stats import percentiles
from bench.verify import max_in_flight, verify

__all__ = ("SCENARIO", "SEEDS", "Seed")

TENANT_CAP = 5
GLOBAL_RATE_PER_SCALE = 80
PROVIDER_LATENCY_MS = 1
WORKERS = 2
GLOBAL_BURST = 10
THROTTLE_RATE = 0.1
THROTTLED = "rate_limit"
"""The seed whose tenants the provider throttles."""


@dataclasses.dataclass(frozen=True)
class Seed:
    key: str
    title: str
    original: str
    per_scale: int
    """Messages (or, for ``open_loop``, messages per second) per unit of scale."""
    tenants: int
    conversations: int
    produce: str = "fill"
    throttle_rate: float = 0.0
    """Share of this seed's sends the provider answers with 429 (see THROTTLE_RATE)."""
    verifies: str = ""

    def n(self, scale: int) -> int:
        return self.per_scale * scale


SEEDS: tuple[Seed, ...] = (
    Seed("burst", "Burst traffic", "100 messages enqueued rapidly", 100, 10, 1_000,
         produce="burst", verifies="enqueue time (100 concurrent send()), all delivered, "
         "FIFO, tenant cap, global rate"),
    Seed("tenant_cap", "Per-tenant concurrency", "50 messages from one restaurant", 50, 1, 500,
         verifies="never more than 5 of the tenant's sends in flight across both workers"),
    Seed("fifo", "FIFO ordering", "20 messages to one conversation", 20, 1, 1,
         verifies="delivered in send order, one at a time"),
    Seed("multi_tenant", "Multi-tenant", "100 messages across 10 tenants", 100, 1_000, 2_000,
         verifies="all tenants served, FIFO, tenant cap, global rate"),
    Seed("sustained", "Sustained load", "10 messages/second for 5 seconds", 10, 10, 1_000,
         produce="open_loop", verifies="keeps up with the offered rate; latency"),
    Seed("rate_limit", "Rate-limit recovery", "150 messages to test rate limiting", 150, 50,
         1_500, throttle_rate=THROTTLE_RATE, verifies="the provider answers 10% of sends with 429 "
         "(Retry-After 0.1 s): all delivered, none dead-lettered (a 429 uses no attempt), "
         "FIFO, global rate"),
)  # fmt: skip


def _flow_env(scale: int) -> dict[str, str]:
    return {
        "RELAYQ_TENANT_CAP": str(TENANT_CAP),
        "RELAYQ_GLOBAL_RATE": str(GLOBAL_RATE_PER_SCALE * scale),
        "RELAYQ_TENANT_RATE": "0",
        "RELAYQ_GLOBAL_BURST": str(GLOBAL_BURST),
        "RELAYQ_BACKOFF_BASE_SECONDS": "0.1",
    }


def _produce(ctx: BenchContext, seed: Seed, env: dict[str, str], workdir: Any) -> dict[str, Any]:
    scale, n = ctx.sizes.seed_scale, seed.n(ctx.sizes.seed_scale)
    common: dict[str, Any] = {"url": ctx.url, "tenants": seed.tenants, "prefix": seed.key,
                              "conversations": seed.conversations, "env": env}  # fmt: skip
    if seed.produce == "burst":
        return dict(ctx.child("bench.relayq_produce:burst", timeout=120, n=n, **common))
    if seed.produce == "open_loop":
        out = workdir / "intended.json"
        seconds = ctx.sizes.sustained_seconds
        sent = ctx.child("bench.open_loop:open_loop", timeout=seconds + 60, rate=n,
                         seconds=seconds, out=str(out), **common)  # fmt: skip
        ids = list(msgspec.json.decode(out.read_bytes(), type=dict[str, int]))
        return {"n": sent["sent"], "seconds": seconds, "ids": ids}
    del scale
    return dict(ctx.child("bench.relayq_produce:fill", timeout=120, n=n, **common))


def _dead_letters(url: str, partitions: int = 16) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(int(client.xlen(f"{{{NAMESPACE}:{p}}}:dlq")) for p in range(partitions))
    finally:
        client.close()


def _run_all(ctx: BenchContext) -> tuple[list[dict[str, Any]], list[Record], int, int]:
    """Every seed in turn on one fleet (each seed's tenants are named after it, so their
    records and caps do not mix): what each sent, all records, 429s, dead letters."""
    scale = ctx.sizes.seed_scale
    ctx.fresh()
    workdir = ctx.step_dir("seeds")
    provider = {
        LATENCY_ENV: str(PROVIDER_LATENCY_MS),
        RETRY_AFTER_ENV: "0.1",
        THROTTLE_ENV: repr(THROTTLE_RATE),
        THROTTLE_PREFIX_ENV: f"{THROTTLED}-",
    }
    env = _flow_env(scale) | provider
    sent: list[dict[str, Any]] = []
    with ProcessGroup() as group:
        ctx.status(f"seeds: starting {WORKERS} workers")
        fleet = Fleet(group, ctx.url, workdir, count=WORKERS, env=env, record=True).start()
        total = 0
        for seed in SEEDS:
            ctx.status(f"seed {seed.title}: {seed.n(scale):,} messages")
            sent.append(_produce(ctx, seed, env, workdir))
            total += sent[-1]["n"]
            limit = GLOBAL_RATE_PER_SCALE * scale
            fleet.wait_for(total, timeout=30 + 3 * sent[-1]["n"] / limit)
        fleet.stop()
    throttled = sum(s.throttled for s in fleet.stats())
    return sent, fleet.records(), throttled, _dead_letters(ctx.url)


def _report(
    out: RunOutput, seed: Seed, scale: int, sent: dict[str, Any], received: list[Record],
    throttled: int, dead: int,
) -> None:  # fmt: skip
    verdict = verify(sent["ids"], received)
    row = f"{seed.title} ({seed.n(scale):,}{' msg/s' if seed.produce == 'open_loop' else ''})"
    limit = GLOBAL_RATE_PER_SCALE * scale
    tenant_max = max(max_in_flight(received).values(), default=0)
    latencies = [d.received_ns / 1e6 - d.created_ms for d in received]
    p50, p99 = percentiles(latencies, (0.5, 0.99))
    out.add(row, "delivered", verdict.delivered)
    out.add(row, "msgs/s", verdict.max_rate, "msgs/s")
    out.add(row, "order violations", verdict.order_violations)
    out.add(row, "tenant max in flight", tenant_max)
    out.add(row, "send->deliver p50", p50, "ms")
    out.add(row, "send->deliver p99", p99, "ms")
    if seed.produce == "burst":
        out.add(row, "enqueue s", sent["seconds"], "s")
    out.check(f"{seed.title}: nothing lost, FIFO", verdict.ok and dead == 0,
              f"{verdict.describe()}, {dead} dead-lettered in all seeds")  # fmt: skip
    out.check(f"{seed.title}: tenant cap {TENANT_CAP}", tenant_max <= TENANT_CAP,
              f"max {tenant_max} in flight for one tenant")  # fmt: skip
    if verdict.delivered >= 5 * GLOBAL_BURST:  # enough for the rate to mean something
        allowed = _allowed_rate(limit, verdict.delivered)
        detail = f"{verdict.max_rate:,.0f} msgs/s (at most {allowed:,.0f} with the burst)"
        out.check(f"{seed.title}: global rate {limit:,}/s", verdict.max_rate <= allowed, detail)
    if seed.throttle_rate:
        out.check(f"{seed.title}: 429s seen and recovered", throttled > 0 and dead == 0,
                  f"{throttled:,} answered 429, {dead} dead-lettered")  # fmt: skip


def _allowed_rate(limit: float, n: int) -> float:
    """The highest first-to-last rate the limit allows for ``n`` sends: the burst goes at
    once, the rest at the rate (10% slack for clocks and timer slop)."""
    return 1.1 * limit * (n - 1) / max(n - 1 - (GLOBAL_BURST + 1), 1)


def _run(ctx: BenchContext) -> RunOutput:
    out = RunOutput()
    scale = ctx.sizes.seed_scale
    sent, records, throttled, dead = _run_all(ctx)
    for seed, seed_sent in zip(SEEDS, sent, strict=True):
        mine = [r for r in records if r.tenant.startswith(f"{seed.key}-")]
        _report(out, seed, scale, seed_sent, mine, throttled if seed.throttle_rate else 0, dead)
    out.notes.extend(
        f"{s.title}: seed '{s.original}' -> {s.n(scale):,}"
        f"{' msg/s' if s.produce == 'open_loop' else ' messages'}, {s.tenants:,} tenant(s), "
        f"{s.conversations:,} conversation(s). Verifies: {s.verifies}."
        for s in SEEDS
    )
    out.notes.append(
        "The six run one after another on the same two workers; dead letters are counted "
        "over all of them (each check says how many there were in total)."
    )
    return out


SCENARIO = Scenario(
    name="seeds",
    title="The seed's load scenarios at 100x",
    description=__doc__.split("\n\n", 1)[1].replace("\n", " ").strip() if __doc__ else "",
    run=_run,
    repeats=lambda sizes: min(2, sizes.repeats),
)
