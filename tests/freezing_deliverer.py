"""A deliverer that wedges its worker's event loop on a message whose payload asks for it,
as a blocking call slipped into async code would (a sync HTTP client, a sync DNS lookup).

``{"freeze": seconds}`` calls ``time.sleep(seconds)`` inside ``deliver``: nothing else on
the worker's loop runs meanwhile, the systemd watchdog pings included. Every message is
then recorded as the sink records it. Loaded by a worker as
``RELAYQ_DELIVERER=tests.freezing_deliverer:build``.
"""

from __future__ import annotations

import time

from relayq.consumers.simple_deliverers import SinkDeliverer
from relayq.streams.deliverer import DeliveryResult
from relayq.streams.message import Message
from relayq.streams.redis_client import create_client
from relayq.streams.settings import Settings

__all__ = ("FreezingDeliverer", "build")


class FreezingDeliverer:
    def __init__(self, settings: Settings) -> None:
        self._client = create_client(settings)
        self._sink = SinkDeliverer(self._client, settings.namespace)

    async def deliver(self, message: Message) -> DeliveryResult:
        payload = message.payload_json()
        if isinstance(payload, dict) and "freeze" in payload:
            # Blocks the whole event loop: the point of this deliverer.
            time.sleep(float(payload["freeze"]))  # noqa: ASYNC251
        return await self._sink.deliver(message)

    async def aclose(self) -> None:
        await self._client.aclose()


def build(settings: Settings) -> FreezingDeliverer:
    return FreezingDeliverer(settings)
