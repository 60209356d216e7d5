"""The webhook's signature, so a receiver can tell that a request came from relayq and was
not replayed: header ``X-Relayq-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the shared secret (``RELAYQ_WEBHOOK_SECRET``), of ``<t>.`` followed
by the raw request body. A receiver recomputes it over the bytes it received, compares in
constant time, and refuses a ``t`` too far from its clock (:func:`verify` does all three).
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ("HEADER", "sign", "verify")

HEADER = "X-Relayq-Signature"
_TOLERANCE = 300.0
"""Seconds a signature's time may differ from the receiver's clock."""


def _mac(secret: bytes, at: int, body: bytes) -> str:
    return hmac.new(secret, b"%d." % at + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, now: float) -> str:
    """The header's value for ``body`` sent at ``now`` (Unix seconds)."""
    at = int(now)
    return f"t={at},v1={_mac(secret, at, body)}"


def verify(
    secret: bytes, body: bytes, header: str | None, now: float, tolerance: float = _TOLERANCE
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` of ``now``."""
    if not header:
        return False
    parts = dict(part.partition("=")[::2] for part in header.split(","))
    at, given = parts.get("t", ""), parts.get("v1", "")
    if not at.isdigit() or abs(now - int(at)) > tolerance:
        return False
    return hmac.compare_digest(_mac(secret, int(at), body), given)
