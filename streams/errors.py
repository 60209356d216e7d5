"""The exceptions relayq raises, as one tree.

RelayqError
├── ValidationError (also ValueError)    a message or setting is invalid; nothing was written
├── ConfigurationError (also ValueError) settings disagree with what Redis already holds
├── RedisUnavailableError                Redis could not be reached; nothing is known sent
├── DirectSendError                      Redis was away and the direct-send fallback failed too
├── PoisonEntryError (also ValueError)   a stream entry is not a valid message (worker: DLQ)
├── SendFencedError                      the worker's lease may have lapsed: request not sent
└── DeliveryError                        raised by deliverers (see relayq.streams.deliverer)
    ├── RetryableDeliveryError           try again later (5xx, timeout, connection reset)
    │   └── ThrottledError               the provider asked us to slow down (429)
    ├── ChannelDownError                 the channel cannot send at all (credentials
    │                                    rejected): paused until an operator resumes it
    └── PermanentDeliveryError           never retry (4xx other than 408/429)
"""

from __future__ import annotations

import enum

__all__ = (
    "ChannelDownError",
    "ConfigurationError",
    "DeliveryError",
    "DirectSendError",
    "PermanentDeliveryError",
    "PoisonEntryError",
    "RedisUnavailableError",
    "RelayqError",
    "RetryableDeliveryError",
    "SendFencedError",
    "ThrottleScope",
    "ThrottledError",
    "ValidationError",
)


class RelayqError(Exception):
    """Base class of every error relayq raises on purpose."""


class ValidationError(RelayqError, ValueError):
    """An input is invalid. ``field`` names it; nothing was written anywhere."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid {field}: {problem}")
        self.field = field
        self.problem = problem


class ConfigurationError(RelayqError, ValueError):
    """Settings are invalid or disagree with what the namespace in Redis already holds."""


class RedisUnavailableError(RelayqError):
    """Redis could not be reached; the operation did not happen (or is not known to have).

    ``maybe_done`` is True when the request may have reached Redis (a timeout): the
    message may be enqueued after all, so the producer does not fall back to a direct send.
    """

    def __init__(self, reason: str, *, maybe_done: bool = False) -> None:
        super().__init__(reason)
        self.maybe_done = maybe_done


class DirectSendError(RelayqError):
    """Redis was unreachable and the producer's direct-send fallback failed as well."""


class PoisonEntryError(RelayqError, ValueError):
    """A stream entry that is not a valid relayq message (written by hand, by a foreign
    writer, or corrupted). A worker dead-letters it as ``poison`` on first sight."""


class SendFencedError(RelayqError):
    """The worker can no longer prove its lease: the request was not sent."""


class DeliveryError(RelayqError):
    """A deliverer failed to hand a message to the provider."""

    kind: str = "delivery"

    def __init__(self, reason: str, *, kind: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if kind is not None:
            self.kind = kind


class RetryableDeliveryError(DeliveryError):
    """The attempt failed but may succeed later. ``retry_after`` is the provider's hint (s)."""

    kind = "retryable"

    def __init__(
        self, reason: str, *, retry_after: float | None = None, kind: str | None = None
    ) -> None:
        super().__init__(reason, kind=kind)
        self.retry_after = retry_after


class ThrottleScope(enum.StrEnum):
    """Whom a provider's throttling concerns, so only they wait."""

    SENDER = "sender"
    """The sending identity (a WhatsApp phone number id, a from-number); a message without
    a sender pauses its tenant instead."""
    RECIPIENT = "recipient"
    """One recipient (WhatsApp 131056, a pair rate limit): only that conversation waits."""
    TENANT = "tenant"
    CHANNEL = "channel"
    """The whole channel's account (SendGrid's 429): no worker sends on it meanwhile."""


class ThrottledError(RetryableDeliveryError):
    """The provider throttled us (HTTP 429, or a provider's throttling code). Waiting does
    not use up an attempt. ``scope`` says who waits (the sender by default)."""

    kind = "throttled"

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        kind: str | None = None,
        scope: ThrottleScope = ThrottleScope.SENDER,
    ) -> None:
        super().__init__(reason, retry_after=retry_after, kind=kind)
        self.scope = scope


class ChannelDownError(DeliveryError):
    """The channel cannot send anything (WhatsApp 190: the access token expired or was
    revoked). The worker pauses the channel cluster-wide and raises an alert; the message
    keeps its place and its attempts. An operator resumes the channel once fixed."""

    kind = "channel_down"


class PermanentDeliveryError(DeliveryError):
    """The provider rejected the message for good; it goes to the dead-letter stream."""

    kind = "permanent"
