"""Per-message attempts: ``send(..., max_attempts=N)`` replaces the workers' max_attempts
for that message alone, checked by a real worker against a provider that fails everything.
The field is appended to the Message, so entries written before it still decode."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest
import redis

from relayq.ops.local_provider import ProviderThread
from relayq.producers import SyncProducer
from relayq.streams.codec import ENTRY_FIELD, decode_entry
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.message import Message, Priority
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, dead_letters
from tests.test_sender import _MessageBeforeSender

DEFAULT_ATTEMPTS = 3


def _attempts_per_message(provider: ProviderThread) -> Counter[str]:
    return Counter(attempt.message_id for attempt in provider.provider.attempts)


def test_a_message_with_max_attempts_1_is_dead_lettered_after_one_attempt(
    settings: Settings,
    keys: Keys,
    redis_client: redis.Redis,
    make_provider: ProviderFactory,
    workers: WorkerPool,
) -> None:
    assert settings.max_attempts == DEFAULT_ATTEMPTS
    provider = make_provider(fail_rate=1.0)  # every request answered 503 (retryable)
    with SyncProducer(settings) as producer:
        once = producer.send(
            tenant="acme", conversation="otp", recipient="+1", payload={}, max_attempts=1
        )
        default = producer.send(tenant="acme", conversation="news", recipient="+1", payload={})

    worker = workers.start(provider.url, burst=True, settings=settings)
    assert worker.wait(timeout=60) == 0

    assert _attempts_per_message(provider) == {once: 1, default: DEFAULT_ATTEMPTS}
    attempts = {
        decode_entry({ENTRY_FIELD: letter["entry:m"]}).id: int(letter["attempts"])
        for letter in dead_letters(redis_client, keys)
    }
    assert attempts == {once: 1, default: DEFAULT_ATTEMPTS}


@pytest.mark.parametrize("bad", [0, 1001, -3, True, 2.5, "3"])
def test_max_attempts_out_of_range_is_refused_naming_it(
    settings: Settings, redis_client: redis.Redis, bad: object
) -> None:
    with SyncProducer(settings) as producer, pytest.raises(ValidationError) as raised:
        producer.send(
            tenant="acme",
            conversation="c",
            recipient="+1",
            payload={},
            max_attempts=bad,  # type: ignore[arg-type]
        )
    assert raised.value.field == "max_attempts"
    assert redis_client.dbsize() == 0


class _MessageBeforeMaxAttempts(_MessageBeforeSender, frozen=True):
    """Message as it was before ``max_attempts``: the one before ``sender``, plus it."""

    sender: str | None = None


def test_entries_written_before_max_attempts_decode_and_old_readers_skip_it() -> None:
    old = _MessageBeforeMaxAttempts(
        "01J0000000000000000000000", "acme", "c", "+1", Priority.HIGH, b"{}", 1_700_000_000_000
    )
    message = decode_entry({ENTRY_FIELD: msgspec.msgpack.encode(old)})
    assert message.max_attempts is None
    newer = msgspec.structs.replace(message, max_attempts=5)
    encoded = msgspec.msgpack.encode(newer)
    assert msgspec.msgpack.decode(encoded, type=_MessageBeforeMaxAttempts) == old
    assert msgspec.msgpack.decode(encoded, type=Message).max_attempts == 5
