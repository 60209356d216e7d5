"""relayq: ordered, rate-limited, at-least-once delivery of conversational messages through
Redis Streams consumer groups.

This is the one import name users need::

    from relayq import Producer

    async with Producer() as producer:              # settings from RELAYQ_* / REDIS_URL
        message_id = await producer.send(
            tenant="acme", conversation="order-1234", recipient="+15550100",
            payload={"text": "Your order is ready"}, priority="high",
        )

Everything listed in ``__all__`` is public and kept stable. The subpackages hold the
implementation, installed under this name: ``relayq.streams`` (the shared core),
``relayq.producers`` (the SDK), ``relayq.consumers`` (the worker) and ``relayq.ops``
(operating relayq); import their modules only for what this root does not re-export.

Names are imported on first use (PEP 562), so ``import relayq`` stays cheap: the ``relayq``
command imports this package before anything else, and a worker must be able to catch a
SIGTERM within a few milliseconds of starting.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from relayq.consumers.dead_letters import DeadLetterKind
    from relayq.consumers.worker import Worker
    from relayq.ops.controls import Controls, Limits
    from relayq.producers.async_producer import Producer
    from relayq.producers.send_fields import SendFields
    from relayq.producers.send_request import BatchResults, SendRequest, SendResult
    from relayq.producers.sync_producer import SyncProducer
    from relayq.streams.deliverer import Deliverer, DeliveryResult, check_send_allowed
    from relayq.streams.errors import (
        ConfigurationError,
        DeliveryError,
        DirectSendError,
        PermanentDeliveryError,
        PoisonEntryError,
        RedisUnavailableError,
        RelayqError,
        RetryableDeliveryError,
        SendFencedError,
        ThrottledError,
        ValidationError,
    )
    from relayq.streams.message import Message, Priority
    from relayq.streams.outcome import OutcomeRecord
    from relayq.streams.outcome_events import OutcomeEvent
    from relayq.streams.settings import Settings

__all__ = (
    "BatchResults",
    "ConfigurationError",
    "Controls",
    "DeadLetterKind",
    "Deliverer",
    "DeliveryError",
    "DeliveryResult",
    "DirectSendError",
    "Limits",
    "Message",
    "OutcomeEvent",
    "OutcomeRecord",
    "PermanentDeliveryError",
    "PoisonEntryError",
    "Priority",
    "Producer",
    "RedisUnavailableError",
    "RelayqError",
    "RetryableDeliveryError",
    "SendFencedError",
    "SendFields",
    "SendRequest",
    "SendResult",
    "Settings",
    "SyncProducer",
    "ThrottledError",
    "ValidationError",
    "Worker",
    "check_send_allowed",
)

_EXPORTS: dict[str, str] = {
    "BatchResults": "relayq.producers.send_request",
    "ConfigurationError": "relayq.streams.errors",
    "Controls": "relayq.ops.controls",
    "DeadLetterKind": "relayq.consumers.dead_letters",
    "Deliverer": "relayq.streams.deliverer",
    "DeliveryError": "relayq.streams.errors",
    "DeliveryResult": "relayq.streams.deliverer",
    "DirectSendError": "relayq.streams.errors",
    "Limits": "relayq.ops.controls",
    "Message": "relayq.streams.message",
    "OutcomeEvent": "relayq.streams.outcome_events",
    "OutcomeRecord": "relayq.streams.outcome",
    "PermanentDeliveryError": "relayq.streams.errors",
    "PoisonEntryError": "relayq.streams.errors",
    "Priority": "relayq.streams.message",
    "Producer": "relayq.producers.async_producer",
    "RedisUnavailableError": "relayq.streams.errors",
    "RelayqError": "relayq.streams.errors",
    "RetryableDeliveryError": "relayq.streams.errors",
    "SendFencedError": "relayq.streams.errors",
    "SendFields": "relayq.producers.send_fields",
    "SendRequest": "relayq.producers.send_request",
    "SendResult": "relayq.producers.send_request",
    "Settings": "relayq.streams.settings",
    "SyncProducer": "relayq.producers.sync_producer",
    "ThrottledError": "relayq.streams.errors",
    "ValidationError": "relayq.streams.errors",
    "Worker": "relayq.consumers.worker",
    "check_send_allowed": "relayq.streams.deliverer",
}
"""Public name -> the module that defines it."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'relayq' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
