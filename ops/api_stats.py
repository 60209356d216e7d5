"""``GET /v1/stats`` (exact counts: overall, per priority, per tenant, and seed 001's
``tenantConcurrency`` shape) and ``GET /v1/health`` (for probes: 200 or 503)."""

from __future__ import annotations

from typing import Any

import msgspec
import redis.exceptions
from litestar import Response, get

from relayq.ops.api_auth import tenant_scope
from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.api_models import StatsOut
from relayq.ops.counts import NamespaceCounts, read_counts
from relayq.ops.health_check import Health, check_health, unreachable

__all__ = ("STATS_ROUTES",)

_PER_LEVEL = ("waiting", "in_flight", "retrying", "delayed", "delivered", "dead_lettered")


def stats_of(counts: NamespaceCounts, tenant_cap: int) -> StatsOut:
    """The API's view of ``counts`` (already limited to what the key may see)."""
    priorities: dict[str, dict[str, int]] = {}
    for row in counts.rows:
        level = priorities.setdefault(row.priority, dict.fromkeys(_PER_LEVEL, 0))
        for name in _PER_LEVEL:
            level[name] += getattr(row, name)
    concurrency: dict[str, int] = {}
    for row in counts.rows:
        if row.in_flight:
            concurrency[row.tenant] = concurrency.get(row.tenant, 0) + row.in_flight
    rows: list[dict[str, Any]] = msgspec.to_builtins(counts.rows)
    return StatsOut(
        namespace=counts.namespace,
        at_ms=counts.at_ms,
        waiting=counts.total("waiting"),
        active=counts.total("in_flight"),
        retrying=counts.total("retrying"),
        delayed=counts.total("delayed"),
        completed=counts.total("delivered"),
        failed=counts.total("dead_lettered"),
        delivered_per_second=sum(row.delivered_per_second for row in counts.rows),
        tenantConcurrency=concurrency,
        maxConcurrencyPerTenant=tenant_cap,
        priorities=priorities,
        rows=rows,
    )


@get("/v1/stats", summary="Exact counts per priority and tenant")
async def stats(
    request: ApiRequest, principal: ApiPrincipal, tenant: str | None = None
) -> StatsOut:
    """Waiting, in flight (``active``), retrying, delayed, delivered (``completed``) and
    dead-lettered (``failed``), overall, per priority and per tenant (``rows``), with the
    delivered rate over the last minute. A tenant key sees its own tenant only; ``tenant``
    limits an admin's view to one."""
    context = context_of(request)
    scope = tenant_scope(principal, tenant)
    counts = await read_counts(context.client, context.keys)
    if scope is not None:
        counts.rows = [row for row in counts.rows if row.tenant == scope]
    return stats_of(counts, context.settings.tenant_cap)


@get("/v1/health", summary="For probes: 200 healthy, 503 not", exclude_from_auth=True)
async def health(request: ApiRequest) -> Response[Health]:
    """Redis answers, the namespace's shape matches, and at least one worker is live. No
    key needed (probes carry none); it names the failed check and nothing else."""
    context = context_of(request)
    try:
        report = await check_health(context.client, context.keys)
    except redis.exceptions.RedisError as exc:
        report = unreachable(f"Redis did not answer: {type(exc).__name__}")
    return Response(report, status_code=200 if report.healthy else 503)


STATS_ROUTES = [stats, health]
