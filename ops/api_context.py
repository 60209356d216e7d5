"""What every HTTP API request works with: the settings, the namespace's keys, one asyncio
Redis client and a Producer on it, made when the server starts and closed when it stops."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Request
from litestar.datastructures import State
from redis.asyncio import Redis

from relayq.ops.controls import Controls
from relayq.producers.async_producer import Producer
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client, create_sync_client
from relayq.streams.settings import Settings

__all__ = ("ApiContext", "ApiRequest", "context_of")

ApiRequest = Request[Any, Any, State]


@dataclasses.dataclass(slots=True)
class ApiContext:
    settings: Settings
    keys: Keys
    client: Redis
    producer: Producer
    controls: Controls
    """Pauses and limits (a blocking client: call them through ``asyncio.to_thread``)."""

    @classmethod
    def open(cls, settings: Settings) -> ApiContext:
        client = create_client(settings)
        producer = Producer(settings, client=client)
        keys = Keys.from_settings(settings)
        controls = Controls(create_sync_client(settings), keys)
        return cls(settings, keys, client, producer, controls)

    async def aclose(self) -> None:
        await self.producer.aclose()
        await self.client.aclose()
        self.controls.close()


def context_of(request: ApiRequest) -> ApiContext:
    """The context the server made at start-up (``app.state.relayq``)."""
    context: ApiContext = request.app.state.relayq
    return context
