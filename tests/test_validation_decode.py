"""Contract 7, the worker's side: decoding a stream entry applies the same checks as
``send()``, so an entry that ``send()`` would have refused is poison (see test_poison.py for
the worker dead-lettering it), never a message handed to a deliverer."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from relayq.producers.send_request import SendRequest, prepare
from relayq.streams.codec import ENTRY_FIELD, PoisonEntryError, decode_entry, encode_message
from relayq.streams.message import Message, Priority
from relayq.streams.settings import Settings

VALID: dict[str, Any] = {
    "id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
    "tenant": "acme",
    "conversation": "c-1",
    "recipient": "+15550100",
    "priority": Priority.NORMAL,
    "payload": b'{"text":"hello"}',
    "created_ms": 1,
}

# (what is wrong, the fields to change, the field the reason must name)
CORRUPT: list[tuple[str, dict[str, Any], str]] = [
    ("payload that is not JSON", {"payload": b"{not json"}, "payload"),
    ("empty payload", {"payload": b""}, "payload"),
    ("payload NaN literal", {"payload": b'{"score":NaN}'}, "payload"),
    ("payload with invalid UTF-8", {"payload": b'"\xff"'}, "payload"),
    ("payload with a lone surrogate escape", {"payload": b'"\\ud800"'}, "payload"),
    ("payload with trailing garbage", {"payload": b"{} {}"}, "payload"),
    ("tenant with NUL", {"tenant": "ac\x00me"}, "tenant"),
    ("conversation with ESC", {"conversation": "c\x1b[31m"}, "conversation"),
    ("recipient with a newline", {"recipient": "+1\n555"}, "recipient"),
    ("sender with a C1 control", {"sender": "wa\x85"}, "sender"),
    ("empty sender", {"sender": ""}, "sender"),
    ("dedup key with NUL", {"dedup_key": "k\x00"}, "dedup_key"),
    ("empty dedup key", {"dedup_key": ""}, "dedup_key"),
    ("id with a newline", {"id": "01HZ\r\nX"}, "id"),
    ("metadata key with a tab", {"metadata": {"k\t": "v"}}, "metadata key"),
    ("metadata value too long", {"metadata": {"k": "v" * 1025}}, "metadata['k']"),
    ("too many metadata entries", {"metadata": {f"k{i}": "v" for i in range(33)}}, "metadata"),
    ("metadata value not a string", {"metadata": {"k": 7}}, "metadata"),
    ("over-long tenant", {"tenant": "t" * 129}, "tenant"),
    ("empty conversation", {"conversation": ""}, "conversation"),
    ("tenant not a string", {"tenant": 42}, "tenant"),
    ("empty priority", {"priority": ""}, "priority"),
    ("over-long priority", {"priority": "p" * 33}, "priority"),
    # A level name that is not the stream's level is refused by the reader, which knows
    # the stream (tests/test_priority_levels.py).
]


def _entry(**changes: Any) -> dict[bytes, bytes]:
    return {ENTRY_FIELD: encode_message(Message(**{**VALID, **changes}))}


@pytest.mark.parametrize(("_what", "changes", "field"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_a_corrupt_message_is_poison_naming_the_field(
    _what: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(PoisonEntryError) as raised:
        decode_entry(_entry(**changes))
    assert f"invalid {field}:" in str(raised.value)


def test_a_message_send_builds_decodes_unchanged() -> None:
    request = SendRequest(
        tenant="acme", conversation="c-1", recipient="+1", payload={"a": [1, None, "é😀"]},
        priority="high", dedup_key="d-1", delay=60, metadata={"k": "line 1\nline 2"},
        sender="wa-1",
    )  # fmt: skip
    message = prepare(request, Settings(), trace=False).message
    assert decode_entry({ENTRY_FIELD: encode_message(message)}) == message


def test_decoding_does_not_apply_the_payload_size_limit() -> None:
    # The limit is the producer's setting (RELAYQ_MAX_PAYLOAD_BYTES): a worker configured
    # with a smaller one must still deliver what a producer accepted (contract 1).
    limit = Settings().max_payload_bytes
    big = msgspec.json.encode({"text": "x" * limit})
    assert decode_entry(_entry(payload=big)).payload == big
