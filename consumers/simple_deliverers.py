"""Deliverers that need no provider: ``noop`` (benchmarks) and ``sink`` (demos, tests).

The sink appends ``"<tenant>\\x1f<conversation>\\x1f<message id>"`` to the Redis list
``<ns>:sink`` (``Keys.sink``) so a check from another process can see exactly what was
delivered, in order.
"""

from __future__ import annotations

from redis.asyncio import Redis

from relayq.streams.deliverer import DeliveryResult
from relayq.streams.keys import sink_key
from relayq.streams.message import Message

__all__ = ("NoopDeliverer", "SinkDeliverer")

_OK = DeliveryResult()


class NoopDeliverer:
    """Accepts every message at once."""

    async def deliver(self, message: Message) -> DeliveryResult:
        return _OK

    async def aclose(self) -> None:
        return None


class SinkDeliverer:
    """Records every delivery in a Redis list."""

    def __init__(self, client: Redis, namespace: str) -> None:
        self._client = client
        self._key = sink_key(namespace)

    async def deliver(self, message: Message) -> DeliveryResult:
        record = f"{message.tenant}\x1f{message.conversation}\x1f{message.id}"
        await self._client.rpush(self._key, record)
        return _OK

    async def aclose(self) -> None:
        return None
