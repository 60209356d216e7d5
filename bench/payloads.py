"""The ~200-byte message every benchmark sends, so ceilings, peers and relayq compare alike."""

from __future__ import annotations

import json
from typing import Any

__all__ = ("PAYLOAD_BYTES", "payload", "payload_bytes")

PAYLOAD_BYTES = 200
_TENANTS = 50
_CONVERSATIONS = 5_000


def payload(i: int) -> dict[str, Any]:
    """A job argument of ~200 bytes as JSON: tenant, conversation, sequence and text."""
    head = {
        "tenant_id": f"tenant-{i % _TENANTS:03d}",
        "conversation_id": f"conv-{i % _CONVERSATIONS:05d}",
        "seq": i,
        "text": "",
    }
    pad = PAYLOAD_BYTES - len(json.dumps(head, separators=(",", ":")))
    head["text"] = "x" * max(pad, 0)
    return head


def payload_bytes(i: int = 0) -> bytes:
    """The same message as compact JSON bytes (a stream field value for the raw ceilings)."""
    return json.dumps(payload(i), separators=(",", ":")).encode()
