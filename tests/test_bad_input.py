"""Contract 7: bad input gets a clear error naming the field and changes nothing in Redis;
bad settings get a ConfigurationError naming the variable."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import msgspec
import pytest
import redis

from relayq.producers import Producer, SendRequest, SyncProducer
from relayq.producers.send_request import prepare
from relayq.streams.errors import ConfigurationError, ValidationError
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.support import stream_length


class Reading(msgspec.Struct):
    """A payload that is not a plain dict: msgspec encodes it as a JSON object."""

    value: float


GOOD: dict[str, Any] = {
    "tenant": "acme",
    "conversation": "c-1",
    "recipient": "+15550100",
    "payload": {"text": "hello"},
}
PAYLOAD_LIMIT = 1024

# (what is wrong, the fields to change, the field the error must name)
BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("empty tenant", {"tenant": ""}, "tenant"),
    ("over-long tenant", {"tenant": "t" * 129}, "tenant"),
    ("tenant with a newline", {"tenant": "ac\nme"}, "tenant"),
    ("tenant not a string", {"tenant": 42}, "tenant"),
    ("empty conversation", {"conversation": ""}, "conversation"),
    ("over-long conversation", {"conversation": "c" * 257}, "conversation"),
    ("conversation with NUL", {"conversation": "c\x00"}, "conversation"),
    ("conversation with DEL", {"conversation": "c\x7f"}, "conversation"),
    ("conversation with a C1 control", {"conversation": "c\x85"}, "conversation"),
    ("empty recipient", {"recipient": ""}, "recipient"),
    ("empty sender", {"sender": ""}, "sender"),
    ("over-long sender", {"sender": "s" * 129}, "sender"),
    ("sender with a newline", {"sender": "wa\n1"}, "sender"),
    ("sender with a C1 control", {"sender": "wa\x851"}, "sender"),
    ("sender not a string", {"sender": 15550100}, "sender"),
    ("oversized payload", {"payload": {"text": "x" * PAYLOAD_LIMIT}}, "payload"),
    ("payload bytes that are not JSON", {"payload": b"{not json"}, "payload"),
    ("payload that cannot be JSON", {"payload": object()}, "payload"),
    ("unknown priority", {"priority": "urgent"}, "priority"),
    ("priority of the wrong type", {"priority": 3}, "priority"),
    ("naive not_before", {"not_before": dt.datetime(2030, 1, 1)}, "not_before"),
    ("negative not_before", {"not_before": -5.0}, "not_before"),
    ("negative delay", {"delay": -1}, "delay"),
    ("infinite delay", {"delay": float("inf")}, "delay"),
    ("delay not a number", {"delay": "10"}, "delay"),
    ("both delay and not_before", {"delay": 1, "not_before": 2e9}, "delay"),
    ("metadata not a mapping", {"metadata": ["a", "b"]}, "metadata"),
    ("metadata value not a string", {"metadata": {"order": 7}}, "metadata"),
    ("metadata with an empty key", {"metadata": {"": "v"}}, "metadata key"),
    ("metadata value too long", {"metadata": {"k": "v" * 1025}}, "metadata"),
    ("too many metadata entries", {"metadata": {f"k{i}": "v" for i in range(33)}}, "metadata"),
    ("empty dedup key", {"dedup_key": ""}, "dedup_key"),
    ("dedup key with NUL", {"dedup_key": "k\x00"}, "dedup_key"),
    # Lone surrogates cannot be encoded as UTF-8 (they used to escape as UnicodeEncodeError).
    ("tenant with a lone surrogate", {"tenant": "a\ud800"}, "tenant"),
    ("conversation with a lone surrogate", {"conversation": "c\udfff"}, "conversation"),
    ("recipient with a lone surrogate", {"recipient": "+1\udc00"}, "recipient"),
    ("sender with a lone surrogate", {"sender": "wa\ud83d"}, "sender"),
    ("dedup key with a lone surrogate", {"dedup_key": "k\ud800"}, "dedup_key"),
    ("metadata key with a lone surrogate", {"metadata": {"k\ud800": "v"}}, "metadata key"),
    ("metadata value with a lone surrogate", {"metadata": {"k": "v\ud800"}}, "metadata"),
    ("payload string with a lone surrogate", {"payload": {"text": "hi \ud83d"}}, "payload"),
    ("payload key with a lone surrogate", {"payload": {"t\ud800": 1}}, "payload"),
    # JSON has no NaN or Infinity (msgspec would silently write null).
    ("payload holding NaN", {"payload": {"score": math.nan}}, "payload"),
    ("payload holding Infinity deep down", {"payload": {"a": [1, {"b": math.inf}]}}, "payload"),
    ("payload that is -Infinity", {"payload": -math.inf}, "payload"),
    ("payload Struct holding NaN", {"payload": Reading(math.nan)}, "payload"),
    ("zero max_attempts", {"max_attempts": 0}, "max_attempts"),
    ("max_attempts not an integer", {"max_attempts": "3"}, "max_attempts"),
    # A misspelt field is named (it used to be the dataclass's bare TypeError).
    ("unknown field", {"tenannt": "acme"}, "tenannt"),
]
IDS = [case[0] for case in BAD_FIELDS]


@pytest.fixture
def small_payloads(settings: Settings) -> Settings:
    return settings.replace(max_payload_bytes=PAYLOAD_LIMIT)


def _assert_names(error: ValidationError, field: str) -> None:
    assert error.field.startswith(field)
    assert str(error).startswith(f"invalid {field}")


@pytest.mark.parametrize(("_what", "changes", "field"), BAD_FIELDS, ids=IDS)
async def test_async_send_rejects_bad_field(
    small_payloads: Settings,
    redis_client: redis.Redis,
    _what: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    async with Producer(small_payloads) as producer:
        with pytest.raises(ValidationError) as raised:
            await producer.send(**{**GOOD, **changes})
    _assert_names(raised.value, field)
    assert redis_client.dbsize() == 0, "a rejected send wrote nothing"


@pytest.mark.parametrize(("_what", "changes", "field"), BAD_FIELDS, ids=IDS)
def test_sync_send_rejects_bad_field(
    small_payloads: Settings,
    redis_client: redis.Redis,
    _what: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    with SyncProducer(small_payloads) as producer, pytest.raises(ValidationError) as raised:
        producer.send(**{**GOOD, **changes})
    _assert_names(raised.value, field)
    assert redis_client.dbsize() == 0, "a rejected send wrote nothing"


@pytest.mark.parametrize("missing", ["tenant", "conversation", "recipient", "payload"])
def test_a_missing_field_is_named(
    settings: Settings, redis_client: redis.Redis, missing: str
) -> None:
    fields = {name: value for name, value in GOOD.items() if name != missing}
    with SyncProducer(settings) as producer, pytest.raises(ValidationError) as raised:
        producer.send(**fields)
    assert str(raised.value) == f"invalid {missing}: is required"
    assert redis_client.dbsize() == 0


def test_payload_limit_is_the_configured_one(
    small_payloads: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    # {"text":"..."} is 11 bytes of JSON around the text.
    at_limit = {"text": "x" * (PAYLOAD_LIMIT - 11)}
    over_limit = {"text": "x" * (PAYLOAD_LIMIT - 10)}
    with SyncProducer(small_payloads) as producer:
        producer.send(**{**GOOD, "payload": at_limit})
        with pytest.raises(ValidationError, match="payload"):
            producer.send(**{**GOOD, "payload": over_limit})
    assert stream_length(redis_client, keys) == 1


async def test_async_send_many_enqueues_the_good_items(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    requests = [SendRequest(**{**GOOD, "conversation": f"c-{i}"}) for i in range(5)]
    requests.insert(2, SendRequest(**{**GOOD, "tenant": "bad\ttenant"}))
    async with Producer(settings) as producer:
        results = await producer.send_many(requests)
    assert [r.ok for r in results] == [True, True, False, True, True, True]
    error = results[2].error
    assert isinstance(error, ValidationError) and error.field == "tenant"
    assert results[2].message_id is None
    assert stream_length(redis_client, keys) == 5
    assert len({r.message_id for r in results if r.ok}) == 5


async def test_a_bad_sender_fails_alone_in_send_many(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    requests = [
        SendRequest(**{**GOOD, "sender": "wa-1"}),
        SendRequest(**{**GOOD, "sender": "x" * 129}),
    ]
    async with Producer(settings) as producer:
        results = await producer.send_many(requests)
    with SyncProducer(settings) as sync_producer:
        results += sync_producer.send_many(requests)
    assert [r.ok for r in results] == [True, False, True, False]
    for bad in (results[1], results[3]):
        assert isinstance(bad.error, ValidationError) and bad.error.field == "sender"
    assert stream_length(redis_client, keys) == 2


def test_sync_send_many_enqueues_the_good_items(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    requests = [SendRequest(**{**GOOD, "conversation": f"c-{i}"}) for i in range(3)]
    requests.append(SendRequest(**{**GOOD, "priority": "asap"}))
    with SyncProducer(settings) as producer:
        results = producer.send_many(requests)
    assert [r.ok for r in results] == [True, True, True, False]
    error = results[3].error
    assert isinstance(error, ValidationError) and error.field == "priority"
    assert stream_length(redis_client, keys) == 3


# Items that used to get past validation: the surrogate one raised UnicodeEncodeError out of
# send_many (failing the whole batch), the NaN one was enqueued with a null.
UNENCODABLE_ITEMS: list[tuple[dict[str, Any], str]] = [
    ({"tenant": "a\ud800"}, "tenant"),
    ({"payload": {"score": math.nan}}, "payload"),
    ({"metadata": {"k": "v\udfff"}}, "metadata"),
    ({"dedup_key": "d\ud800"}, "dedup_key"),
]


def _mixed_batch() -> tuple[list[SendRequest], list[str | None]]:
    """Good and unencodable requests interleaved; per item, the field its error must name."""
    requests: list[SendRequest] = []
    expected: list[str | None] = []
    for i, (changes, field) in enumerate(UNENCODABLE_ITEMS):
        requests.append(SendRequest(**{**GOOD, "conversation": f"c-{i}", "dedup_key": f"k{i}"}))
        requests.append(SendRequest(**{**GOOD, **changes}))
        expected += [None, field]
    requests.append(SendRequest(**{**GOOD, "conversation": "c-last"}))
    expected.append(None)
    return requests, expected


def _check_mixed_results(results: list[Any], expected: list[str | None]) -> None:
    assert [r.ok for r in results] == [field is None for field in expected]
    for result, field in zip(results, expected, strict=True):
        if field is not None:
            assert isinstance(result.error, ValidationError), result.error
            assert result.error.field.startswith(field)
            assert result.message_id is None


async def test_async_send_many_fails_an_unencodable_item_alone(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    requests, expected = _mixed_batch()
    async with Producer(settings) as producer:
        results = await producer.send_many(requests)
    _check_mixed_results(results, expected)
    assert stream_length(redis_client, keys) == expected.count(None)


def test_sync_send_many_fails_an_unencodable_item_alone(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    requests, expected = _mixed_batch()
    with SyncProducer(settings) as producer:
        results = producer.send_many(requests)
    _check_mixed_results(results, expected)
    assert stream_length(redis_client, keys) == expected.count(None)


@pytest.mark.parametrize(
    ("payload", "where", "what"),
    [
        ({"a": [1, {"b": math.inf}]}, "payload['a'][1]['b']", "inf"),
        ([math.nan], "payload[0]", "nan"),
        (Reading(-math.inf), "payload['value']", "-inf"),
        ({"text": "x\ud800"}, "payload['text']", "U+D800"),
        ({"ok": [{"t\udc00": 1}]}, "payload['ok'][0]", "U+DC00"),
    ],
)
def test_payload_errors_say_where(payload: Any, where: str, what: str) -> None:
    with pytest.raises(ValidationError) as raised:
        prepare(SendRequest(**{**GOOD, "payload": payload}), Settings(), trace=False)
    assert raised.value.field == "payload"
    assert where in str(raised.value) and what in str(raised.value)


def test_a_payload_with_null_but_no_nan_is_accepted() -> None:
    payload = {"reply_to": None, "score": 1.5, "tags": ["null", None], "nested": Reading(2.0)}
    prepared = prepare(SendRequest(**{**GOOD, "payload": payload}), Settings(), trace=False)
    assert msgspec.json.decode(prepared.message.payload) == {
        "reply_to": None, "score": 1.5, "tags": ["null", None], "nested": {"value": 2.0}
    }  # fmt: skip


# -- settings -----------------------------------------------------------------------------

BAD_ENVIRONMENT: list[dict[str, str]] = [
    {"RELAYQ_PARTITIONS": "many"},
    {"RELAYQ_PARTITIONS": "0"},
    {"RELAYQ_MAX_ATTEMPTS": "-3"},
    {"RELAYQ_CONCURRENCY": "1.5"},
    {"RELAYQ_LEASE_TTL_SECONDS": "soon"},
    {"RELAYQ_SEND_TIMEOUT_SECONDS": "nan"},
    {"RELAYQ_BACKOFF_BASE_SECONDS": "-1"},
    {"RELAYQ_NAMESPACE": "a:b"},
    {"RELAYQ_LEASE_TTL_SECONDS": "1"},  # shorter than 3x the default send timeout
]


@pytest.mark.parametrize("environ", BAD_ENVIRONMENT, ids=lambda e: "=".join(next(iter(e.items()))))
def test_bad_environment_names_the_variable(environ: dict[str, str]) -> None:
    [variable] = environ
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env(environ)


def test_good_environment_is_read() -> None:
    settings = Settings.from_env(
        {
            "RELAYQ_PARTITIONS": "4",
            "RELAYQ_LEASE_TTL_SECONDS": "6",
            "RELAYQ_SEND_TIMEOUT_SECONDS": "2",
        }
    )
    assert (settings.partitions, settings.lease_ttl, settings.send_timeout) == (4, 6.0, 2.0)


async def test_partition_count_must_match_the_namespace(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    async with Producer(settings) as producer:
        await producer.send(**GOOD)
    keys_before: Any = sorted(redis_client.keys("*"))
    other = settings.replace(partitions=settings.partitions * 2)
    async with Producer(other) as producer:
        with pytest.raises(ConfigurationError, match="partitions"):
            await producer.send(**GOOD)
    with (
        SyncProducer(other) as sync_producer,
        pytest.raises(ConfigurationError, match="partitions"),
    ):
        sync_producer.send(**GOOD)
    # The mismatching producers wrote nothing.
    assert sorted(redis_client.keys("*")) == keys_before
    assert stream_length(redis_client, keys) == 1
