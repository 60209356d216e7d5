"""Build the deliverer named by ``settings.deliverer``: webhook, channels (one adapter per
channel: ``consumers.channel_router``), sink, noop or module:factory.

A ``module:factory`` is imported and called with the Settings; it returns a Deliverer.
"""

from __future__ import annotations

import importlib

from redis.asyncio import Redis

from relayq.consumers.channel_router import build_router
from relayq.consumers.simple_deliverers import NoopDeliverer, SinkDeliverer
from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.streams.deliverer import Deliverer
from relayq.streams.errors import ConfigurationError
from relayq.streams.settings import Settings, parse_headers

__all__ = ("build_deliverer",)


def build_deliverer(settings: Settings, client: Redis | None) -> Deliverer:
    """``client`` None: no Redis at hand (a producer's direct send), so no ``sink``."""
    name = settings.deliverer
    if name == "webhook":
        if not settings.webhook_url:
            raise ConfigurationError(
                "the webhook deliverer needs RELAYQ_WEBHOOK_URL (or --webhook-url); "
                "use RELAYQ_DELIVERER=sink to record deliveries in Redis instead"
            )
        return WebhookDeliverer(
            settings.webhook_url,
            timeout=settings.send_timeout,
            max_connections=settings.concurrency,
            secret=settings.webhook_secret,
            headers=parse_headers(settings.webhook_headers) if settings.webhook_headers else None,
        )
    if name == "channels":
        return build_router(settings, client)
    if name == "sink":
        if client is None:
            raise ConfigurationError("RELAYQ_DELIVERER=sink writes to Redis: not for direct send")
        return SinkDeliverer(client, settings.namespace)
    if name == "noop":
        return NoopDeliverer()
    if ":" not in name:
        raise ConfigurationError(
            f"RELAYQ_DELIVERER={name!r}: expected webhook, channels, sink, noop or module:factory"
        )
    module_name, _, attribute = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"RELAYQ_DELIVERER={name!r} cannot be loaded: {exc}") from None
    deliverer = factory(settings)
    if not isinstance(deliverer, Deliverer):
        raise ConfigurationError(f"{name} returned {type(deliverer).__name__}, not a Deliverer")
    return deliverer
