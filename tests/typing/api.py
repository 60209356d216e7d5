"""The public API as a type checker sees it (as structlog's tests/typing/api.py): checked
by ``mypy --strict`` (the project's config, and tests/test_typing_api.py), never run.

Each line marked ``# type: ignore[<code>]`` must be an error: with ``warn_unused_ignores``
a line that stops being one (a signature gone loose again) fails the check.
"""

from __future__ import annotations

import datetime as dt

import redis

from relayq import (
    Controls,
    DirectSendError,
    Priority,
    Producer,
    RedisUnavailableError,
    RelayqError,
    SendFields,
    SendRequest,
    SendResult,
    Settings,
    SyncProducer,
    ValidationError,
)
from relayq.streams.keys import Keys

__all__ = ()


async def async_producer(settings: Settings) -> None:
    async with Producer(settings, direct=False) as producer:
        message_id: str = await producer.send(
            tenant="acme",
            conversation="c-1",
            recipient="+15550100",
            payload={"text": "hi"},
            priority=Priority.HIGH,
            dedup_key="order-1",
            delay=2.5,
            metadata={"order": "1"},
            sender="wa-1",
            max_attempts=5,
        )
        fields: SendFields = {
            "tenant": "acme",
            "conversation": "c-1",
            "recipient": "+1",
            "payload": {},
            "not_before": dt.datetime.now(dt.UTC),
        }
        await producer.send(**fields)
        result: SendResult = await producer.send_or_deliver(**fields)
        direct: bool = result.direct
        await producer.schedule(
            "digest", cron="0 9 * * *", tenant="acme", conversation="c", recipient="+1", payload={}
        )
        results: list[SendResult] = await producer.send_many(
            [SendRequest(tenant="acme", conversation="c", recipient="+1", payload={})]
        )
        del message_id, direct, results

        # Wrong names and types are caught at the call site.
        await producer.send(tenant=1, conversation="c", recipient="+1", payload={})  # type: ignore[arg-type]
        await producer.send(tenannt="acme", conversation="c", recipient="+1", payload={})  # type: ignore[call-arg]
        await producer.send(conversation="c", recipient="+1", payload={})  # type: ignore[call-arg]
        await producer.send(tenant="a", conversation="c", recipient="", payload=0, max_attempts="3")  # type: ignore[arg-type]
        await producer.send_or_deliver(tenant="acme", conversation="c", recipient=1, payload={})  # type: ignore[arg-type]
        await producer.schedule(  # type: ignore[call-arg]
            "x", every=5, tenant="a", conversation="c", recipient="+1", payload={}, delay=1.0
        )
        await producer.send_many([{"tenant": "acme"}])  # type: ignore[list-item]


def sync_producer() -> None:
    with SyncProducer() as producer:
        message_id: str = producer.send(
            tenant="acme", conversation="c", recipient="+1", payload=b"{}", max_attempts=1
        )
        result: SendResult = producer.send_or_deliver(
            tenant="acme", conversation="c", recipient="+1", payload={}, priority="low"
        )
        del message_id, result
        producer.send(tenant="acme", conversation="c", recipient="+1", payload={}, delay="1")  # type: ignore[arg-type]
        producer.send(tenant="acme", conversation="c", recipient="+1", payload={}, urgent=True)  # type: ignore[call-arg]
        producer.send_or_deliver(tenant=None, conversation="c", recipient="+1", payload={})  # type: ignore[arg-type]
        producer.schedule(  # type: ignore[call-arg]
            "x",
            cron="* * * * *",
            tenant="a",
            conversation="c",
            recipient="+1",
            payload={},
            dedup_key="k",
        )


def settings_and_errors() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/0", direct_send=True)
    Settings(max_attempts="3")  # type: ignore[arg-type]
    controls = Controls(redis.Redis.from_url("redis://127.0.0.1:6379/0"), Keys("relayq", 16))
    scope: str = controls.pause(tenant="acme")
    controls.pause(priority=10)  # a level number, when the namespace numbers its levels
    controls.pause(priority=2.5)  # type: ignore[arg-type]
    del scope
    try:
        SyncProducer(settings).send(tenant="a", conversation="c", recipient="+1", payload={})
    except ValidationError as exc:
        field: str = exc.field
        del field
    except (RedisUnavailableError, DirectSendError) as exc:
        maybe: RelayqError = exc
        del maybe
