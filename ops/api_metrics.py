"""``GET /metrics``: the namespace's Prometheus metrics (``ops.metrics_exposition``).

A key is required, as everywhere: an admin or read-only key (the counts name every
tenant; a tenant key gets 403). Prometheus sends it as a bearer token::

    scrape_configs:
      - job_name: relayq
        authorization: {credentials_file: /etc/prometheus/relayq.key}
        static_configs: [{targets: ["127.0.0.1:8080"]}]
"""

from __future__ import annotations

from litestar import Response, get
from litestar.exceptions import PermissionDeniedException

from relayq.ops.api_context import ApiRequest, context_of
from relayq.ops.api_keys import ApiPrincipal
from relayq.ops.metrics_exposition import CONTENT_TYPE, read_metrics

__all__ = ("METRICS_ROUTES",)


@get("/metrics", summary="Prometheus metrics of the namespace (admin or read-only key)")
async def metrics(request: ApiRequest, principal: ApiPrincipal) -> Response[bytes]:
    """Counters of delivered and dead-lettered messages by priority and tenant (the busiest
    tenants by name, the rest as ``other``), gauges of waiting, in flight, retrying,
    delayed and the oldest waiting age by priority, dead-letter entries and live
    workers: Prometheus's text format."""
    if principal.role == "tenant":
        raise PermissionDeniedException("metrics name every tenant: use a read-only key")
    context = context_of(request)
    body = await read_metrics(context.client, context.keys, context.settings.metrics_top_tenants)
    return Response(body, media_type=CONTENT_TYPE)


METRICS_ROUTES = [metrics]
