"""WhatsApp Cloud API error codes, and what relayq does with each.

Meta asks clients to act on the error body's ``code`` (not the HTTP status, not the title in
``message``): ``{"error": {"message", "type", "code", "error_data": {"details"},
"error_subcode", "fbtrace_id"}}``. Each row of :data:`CODES` gives relayq's outcome for one
code, whom a throttle concerns, a short meaning and the page it comes from:

==============  ==========================================================================
outcome         what the worker does
==============  ==========================================================================
retry           RetryableDeliveryError: backoff, uses an attempt
throttle        ThrottledError with a scope: only that sender/recipient/channel waits,
                no attempt used
permanent       PermanentDeliveryError: dead-lettered at once, ``kind`` ``whatsapp_<code>``
channel_down    ChannelDownError: the channel pauses and an operator is alerted
==============  ==========================================================================

A code not in the table falls back on the HTTP status (:func:`classify`): 429 throttles the
sender, 408 and 5xx retry, any other status is permanent. Reasons carry the code, the
status and Meta's message and details, never a header (the access token travels only in
``Authorization``).
"""

from __future__ import annotations

from typing import NamedTuple

from relayq.consumers.adapters.provider_codes import Outcome, error_for, status_outcome
from relayq.streams.errors import (
    DeliveryError,
    ThrottleScope,
)

__all__ = (
    "CODES",
    "ERROR_CODES_URL",
    "CodeEntry",
    "Outcome",
    "classify",
)

ERROR_CODES_URL = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/"
)
"""Meta's error-code table (formerly developers.facebook.com/docs/whatsapp/cloud-api/support/
error-codes): code, title, details, HTTP status."""
_THROUGHPUT_URL = (
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput"
)
_GRAPH_ERRORS_URL = "https://developers.facebook.com/docs/graph-api/guides/error-handling"

_REASON_LIMIT = 600
"""Longest reason kept (the provider's details can be long; the dead letter holds it)."""


class CodeEntry(NamedTuple):
    outcome: Outcome
    meaning: str
    source: str
    scope: ThrottleScope | None = None
    """Who waits (``throttle`` only)."""
    wait: float | None = None
    """Seconds to wait when the answer carries no Retry-After (``throttle`` only)."""


def _retry(meaning: str, source: str = ERROR_CODES_URL) -> CodeEntry:
    return CodeEntry(Outcome.RETRY, meaning, source)


def _permanent(meaning: str, source: str = ERROR_CODES_URL) -> CodeEntry:
    return CodeEntry(Outcome.PERMANENT, meaning, source)


def _down(meaning: str, source: str = ERROR_CODES_URL) -> CodeEntry:
    return CodeEntry(Outcome.CHANNEL_DOWN, meaning, source)


def _throttle(
    meaning: str, scope: ThrottleScope, wait: float | None, source: str = ERROR_CODES_URL
) -> CodeEntry:
    return CodeEntry(Outcome.THROTTLE, meaning, source, scope, wait)


_PAIR_RATE_WAIT = 6.0
"""Meta's pair rate limit: one message every 6 s from a business number to one user."""
_THROUGHPUT_WAIT = 1.0
"""Our pause for 130429: throughput is counted per second (Meta gives no hint)."""
_ACCOUNT_RATE_WAIT = 60.0
"""Our pause for the app/WABA call limits (counted over a rolling hour; Meta gives no hint)."""

CODES: dict[int, CodeEntry] = {
    # -- authorization: every send on these credentials fails until an operator acts
    0: _down("AuthException: unable to authenticate the app user (HTTP 401)"),
    10: _down("permission denied: permission not granted or removed (HTTP 403)"),
    190: _down(
        "access token expired or invalid (HTTP 401; subcodes 463/467)",
        f"{ERROR_CODES_URL} ; {_GRAPH_ERRORS_URL}",
    ),
    **{code: _down("API permission not granted or removed (HTTP 403)") for code in range(200, 300)},
    # -- throttling
    4: _throttle(
        "app reached its API call rate limit (HTTP 400)", ThrottleScope.CHANNEL, _ACCOUNT_RATE_WAIT
    ),
    80007: _throttle(
        "WhatsApp Business Account reached its rate limit (HTTP 400)",
        ThrottleScope.CHANNEL,
        _ACCOUNT_RATE_WAIT,
    ),
    130429: _throttle(
        "Cloud API message throughput reached for this business phone number (HTTP 400)",
        ThrottleScope.SENDER,
        _THROUGHPUT_WAIT,
        f"{ERROR_CODES_URL} ; {_THROUGHPUT_URL}",
    ),
    131048: _throttle(
        "spam rate limit hit: sends from this phone number restricted (HTTP 400)",
        ThrottleScope.SENDER,
        _ACCOUNT_RATE_WAIT,
    ),
    131056: _throttle(
        "(business, consumer) pair rate limit hit: wait before sending to this user again; "
        "other users can be sent to at once (HTTP 400)",
        ThrottleScope.RECIPIENT,
        _PAIR_RATE_WAIT,
    ),
    # -- integrity: the business account is blocked or locked
    368: _down("temporarily blocked for policy violations (HTTP 403)"),
    131031: _down("business account locked (HTTP 403)"),
    131042: _down("business eligibility payment issue (HTTP 400)"),
    # -- transient
    1: _retry("API unknown: invalid request or possible server error (HTTP 400)"),
    2: _retry("API service: temporary downtime or overload (HTTP 503)"),
    131000: _retry("something went wrong: unknown error (HTTP 500)"),
    131016: _retry("service unavailable: a service is temporarily unavailable"),
    131057: _retry("business account in maintenance mode (HTTP 500)"),
    # -- this message can never be sent as it is
    33: _permanent("parameter value not valid: the business phone number was deleted"),
    100: _permanent("invalid parameter: unsupported or misspelled parameter (HTTP 400)"),
    131008: _permanent("required parameter is missing (HTTP 400)"),
    131009: _permanent("parameter value is not valid (HTTP 400)"),
    131021: _permanent("recipient cannot be sender (HTTP 400)"),
    131026: _permanent(
        "message undeliverable: not a WhatsApp user, old app or terms not accepted (HTTP 400)"
    ),
    131030: _permanent("recipient phone number not in allowed list (HTTP 400)"),
    131047: _permanent(
        "re-engagement message: more than 24 hours since the user last replied (HTTP 400)"
    ),
    131049: _permanent("Meta chose not to deliver (per-user marketing limit) (HTTP 400)"),
    131050: _permanent("user stopped marketing messages from this business (HTTP 400)"),
    131051: _permanent("unsupported message type (HTTP 400)"),
    131052: _permanent("media download error (HTTP 400)"),
    131053: _permanent("media upload error (HTTP 400)"),
    132000: _permanent(
        "template param count mismatch: parameters given differ from the template (HTTP 400)"
    ),
    132001: _permanent("template does not exist in that name/language (HTTP 404)"),
    132005: _permanent("template hydrated text too long (HTTP 400)"),
    132007: _permanent("template format character policy violated (HTTP 400)"),
    132012: _permanent("template parameter format mismatch (HTTP 400)"),
    132015: _permanent("template is paused for low quality (HTTP 400)"),
    132016: _permanent("template is disabled (HTTP 400)"),
}
"""Meta's code -> relayq's outcome. Meta's HTTP status for each code is noted in its
meaning; :func:`classify` acts on the code whatever the status."""


def _reason(status: int, code: int | None, message: str) -> str:
    shown = f"whatsapp {code}" if code is not None else "whatsapp"
    reason = f"{shown} (HTTP {status}): {message}" if message else f"{shown} (HTTP {status})"
    return reason[:_REASON_LIMIT]


def _kind(status: int, code: int | None) -> str:
    return f"whatsapp_{code}" if code is not None else f"whatsapp_http_{status}"


def classify(
    status: int, code: int | None, message: str, retry_after: float | None
) -> DeliveryError | None:
    """The error a Cloud API answer stands for (None: a 2xx without an error code).

    ``message`` is Meta's message and details, already free of any credential;
    ``retry_after`` the answer's Retry-After in seconds (None when absent)."""
    if code is None and 200 <= status < 300:
        return None
    reason, kind = _reason(status, code, message), _kind(status, code)
    entry = CODES.get(code) if code is not None else None
    if entry is not None:
        return error_for(
            entry.outcome, reason, kind, retry_after, scope=entry.scope, wait=entry.wait
        )
    return error_for(status_outcome(status), reason, kind, retry_after)
