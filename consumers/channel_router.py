"""``RELAYQ_DELIVERER=channels``: one worker delivers several channels, each message by
its channel's adapter (``Message.channel``, else ``RELAYQ_DEFAULT_CHANNEL``).

``RELAYQ_CHANNELS`` maps each channel to its adapters, ``name=adapter[>fallback...]``
comma-separated (default ``whatsapp=whatsapp,sms=twilio,email=sendgrid>smtp,
webhook=webhook``). With more than one adapter, each is tried in turn within one attempt
(``consumers.adapters.fallback_chain``). Adapters: ``whatsapp`` (Cloud API), ``twilio``
(SMS and WhatsApp), ``sendgrid``, ``smtp``, ``webhook``, ``sink``, ``noop``. They share
one HTTP client (``consumers.provider_http``): one pool of ``RELAYQ_CONCURRENCY``
connections per worker.

Of the default map, channels whose adapters lack their credentials are left out (and
named at start); a map given explicitly must be complete, or the worker does not start.
A message on a channel this worker does not deliver is dead-lettered as
``unknown_channel`` (replay it once a worker delivers that channel).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping

import structlog
from redis.asyncio import Redis

from relayq.consumers.provider_http import ProviderHttp
from relayq.consumers.simple_deliverers import NoopDeliverer, SinkDeliverer
from relayq.consumers.webhook_deliverer import WebhookDeliverer
from relayq.streams.deliverer import Deliverer, DeliveryResult
from relayq.streams.errors import ConfigurationError, PermanentDeliveryError
from relayq.streams.message import CHANNEL_PATTERN, Message
from relayq.streams.settings import DEFAULT_CHANNELS, Settings, parse_headers

__all__ = ("ADAPTERS", "ChannelRouter", "build_channels", "build_router", "parse_channel_map")

_log = structlog.get_logger(__name__)
_CHANNEL = re.compile(CHANNEL_PATTERN)

AdapterFactory = Callable[[Settings, ProviderHttp, Redis | None], Deliverer]


def _class_factory(path: str) -> AdapterFactory:
    """An adapter class's ``from_settings(settings, http)``, imported when first used (an
    optional extra, such as SMTP's, is needed only where that adapter is)."""

    def build(settings: Settings, http: ProviderHttp, _client: Redis | None) -> Deliverer:
        module, _, name = path.partition(":")
        adapter: Deliverer = getattr(importlib.import_module(module), name).from_settings(
            settings, http
        )
        return adapter

    return build


def _webhook(settings: Settings, http: ProviderHttp, _client: Redis | None) -> Deliverer:
    if not settings.webhook_url:
        raise ConfigurationError("the webhook adapter needs RELAYQ_WEBHOOK_URL")
    headers = parse_headers(settings.webhook_headers) if settings.webhook_headers else None
    return WebhookDeliverer(
        settings.webhook_url, headers=headers, secret=settings.webhook_secret, http=http
    )


def _sink(settings: Settings, _http: ProviderHttp, client: Redis | None) -> Deliverer:
    if client is None:
        raise ConfigurationError("the sink adapter writes to Redis: not for direct send")
    return SinkDeliverer(client, settings.namespace)


def _noop(_settings: Settings, _http: ProviderHttp, _client: Redis | None) -> Deliverer:
    return NoopDeliverer()


_ADAPTERS = "relayq.consumers.adapters"
ADAPTERS: dict[str, AdapterFactory] = {
    "whatsapp": _class_factory(f"{_ADAPTERS}.whatsapp_cloud:WhatsAppAdapter"),
    "twilio": _class_factory(f"{_ADAPTERS}.twilio_messages:TwilioAdapter"),
    "sendgrid": _class_factory(f"{_ADAPTERS}.sendgrid_mail:SendGridAdapter"),
    "smtp": _class_factory(f"{_ADAPTERS}.smtp_mail:SmtpAdapter"),
    "webhook": _webhook,
    "sink": _sink,
    "noop": _noop,
}
"""Adapter name -> what builds it from the settings."""


def parse_channel_map(text: str) -> dict[str, list[str]]:
    """``RELAYQ_CHANNELS`` as channel -> adapter names; ConfigurationError naming the part."""
    channels: dict[str, list[str]] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        channel, equals, chain = part.partition("=")
        channel = channel.strip()
        adapters = [a.strip() for a in chain.split(">")]
        if not equals or not _CHANNEL.fullmatch(channel):
            raise ConfigurationError(
                f"RELAYQ_CHANNELS: {part!r} is not channel=adapter[>fallback] "
                "(a channel name is lowercase letters, digits, _ and -)"
            )
        unknown = [a for a in adapters if a not in ADAPTERS]
        if unknown:
            raise ConfigurationError(
                f"RELAYQ_CHANNELS: channel {channel!r} names {unknown[0]!r}, not an adapter "
                f"({', '.join(ADAPTERS)})"
            )
        channels[channel] = adapters
    if not channels:
        raise ConfigurationError("RELAYQ_CHANNELS names no channel")
    return channels


def build_channels(
    settings: Settings, client: Redis | None, http: ProviderHttp
) -> dict[str, Deliverer]:
    """Each channel's deliverer. Of the default map, channels missing credentials are left
    out; of an explicit map, none may be."""
    explicit = settings.channels != DEFAULT_CHANNELS
    built: dict[str, Deliverer] = {}
    skipped: dict[str, str] = {}
    for channel, names in parse_channel_map(settings.channels).items():
        try:
            adapters = [ADAPTERS[name](settings, http, client) for name in names]
        except ConfigurationError as exc:
            if explicit:
                raise ConfigurationError(f"channel {channel!r}: {exc}") from None
            skipped[channel] = str(exc)
            continue
        built[channel] = adapters[0] if len(adapters) == 1 else _chain(adapters)
    if not built:
        reasons = "; ".join(f"{c}: {r}" for c, r in skipped.items())
        raise ConfigurationError(f"RELAYQ_DELIVERER=channels: no channel is configured ({reasons})")
    if skipped:
        _log.info("channels_skipped", **skipped)
    return built


def _chain(adapters: list[Deliverer]) -> Deliverer:
    """The adapters tried in turn within one attempt."""
    module = importlib.import_module(f"{_ADAPTERS}.fallback_chain")
    chain: Deliverer = module.FallbackChain(adapters)
    return chain


class ChannelRouter:
    """A Deliverer that hands each message to its channel's adapter."""

    def __init__(
        self,
        channels: Mapping[str, Deliverer],
        default_channel: str,
        http: ProviderHttp | None = None,
    ) -> None:
        self.channels = dict(channels)
        self._default = default_channel
        self._http = http

    async def deliver(self, message: Message) -> DeliveryResult:
        channel = message.channel or self._default
        adapter = self.channels.get(channel)
        if adapter is None:
            raise PermanentDeliveryError(
                f"channel {channel!r} is not delivered by this worker "
                f"(RELAYQ_CHANNELS gives {', '.join(sorted(self.channels))})",
                kind="unknown_channel",
            )
        return await adapter.deliver(message)

    async def aclose(self) -> None:
        for adapter in self.channels.values():
            await adapter.aclose()
        if self._http is not None:
            await self._http.aclose()


def build_router(settings: Settings, client: Redis | None) -> ChannelRouter:
    """The router of ``RELAYQ_DELIVERER=channels``."""
    http = ProviderHttp(timeout=settings.send_timeout, max_connections=settings.concurrency)
    channels = build_channels(settings, client, http)
    _log.info("channels", **{c: type(d).__name__ for c, d in channels.items()})
    return ChannelRouter(channels, settings.default_channel, http)
