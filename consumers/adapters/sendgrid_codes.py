"""What each SendGrid v3 Mail Send answer means for relayq, with the page it comes from.

SendGrid has no error codes of its own: an error is an HTTP status with a body
``{"errors": [{"message", "field", "help"}]}``. So the table is keyed by status; a row says
what relayq does (retry, throttle, permanent, pause the channel), whom a throttle concerns,
and the documentation it came from. :func:`classify` turns an answer into the exception
a deliverer raises (None for a success).

Where the documentation differs from the first plan (issue 15 said "401/403 pause the
channel"): SendGrid documents a 403 whose message is "The from address does not match a
verified Sender Identity" — that concerns the message's From, so it is permanent for that
message (``sendgrid_403_from``); the adapter pauses the channel instead when the From was
the channel's own default, as every message would fail the same way.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from relayq.consumers.adapters.provider_codes import Outcome, error_for, status_outcome
from relayq.streams.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ThrottleScope,
)

__all__ = (
    "CODES",
    "SENDER_IDENTITY_KIND",
    "Entry",
    "Outcome",
    "classify",
    "seconds_until_reset",
)

_ERRORS = "https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors"
_MAIL_ERRORS = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"
_RATE_LIMITS = (
    "https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/rate-limits"
)
_SUPPORT_4XX = (
    "https://support.sendgrid.com/hc/en-us/articles/"
    "18322114821403-4XX-API-Errors-and-Troubleshooting-Suggestions"
)
_SENDER_IDENTITY = (
    "https://support.sendgrid.com/hc/en-us/articles/18283315979931-Troubleshooting-"
    "The-from-address-does-not-match-a-verified-Sender-Identity-Error"
)
_MAIL_SEND_CODES = "https://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
"""The Mail Send page's own status table (2xx/4xx/5xx with meanings)."""

SENDER_IDENTITY_KIND = "sendgrid_403_from"
"""The kind of a 403 over the From address (not a verified Sender Identity)."""


class Entry(NamedTuple):
    outcome: Outcome
    scope: ThrottleScope | None
    meaning: str
    source: str


CODES: dict[int, Entry] = {
    400: Entry(
        Outcome.PERMANENT,
        None,
        "the body is invalid; errors[].field names the field (a bad address, no subject...)",
        _MAIL_ERRORS,
    ),
    401: Entry(
        Outcome.CHANNEL_DOWN,
        None,
        "API key invalid, expired or revoked, or the plan's credits exceeded",
        _SUPPORT_4XX,
    ),
    403: Entry(
        Outcome.CHANNEL_DOWN,
        None,
        "forbidden: the key lacks Mail Send access, IP access management, or a temporary "
        "block after too many bad requests (a From that is not a verified Sender Identity "
        "is permanent for that message instead)",
        _ERRORS,
    ),
    413: Entry(
        Outcome.PERMANENT,
        None,
        "payload too large: the JSON payload included in the request is too large",
        _MAIL_SEND_CODES,
    ),
    429: Entry(
        Outcome.THROTTLE,
        ThrottleScope.CHANNEL,
        "rate limit of the account reached: no request until X-RateLimit-Reset (Unix time)",
        _RATE_LIMITS,
    ),
    451: Entry(
        Outcome.CHANNEL_DOWN,
        None,
        "unavailable due to data residency (an EU subuser must use api.eu.sendgrid.com)",
        _ERRORS,
    ),
    500: Entry(Outcome.RETRY, None, "internal server error", _ERRORS),
    502: Entry(Outcome.RETRY, None, "bad gateway", _ERRORS),
    503: Entry(Outcome.RETRY, None, "the v3 Web API is not available", _MAIL_SEND_CODES),
    504: Entry(Outcome.RETRY, None, "gateway timeout", _ERRORS),
}
"""HTTP status -> what it means. Not listed: other 5xx retry, other 4xx are permanent."""


def seconds_until_reset(reset: str | None, now: float | None = None) -> float | None:
    """Seconds from ``now`` until ``X-RateLimit-Reset`` (a Unix time); None if absent/bad."""
    if not reset:
        return None
    try:
        moment = float(reset.strip())
    except ValueError:
        return None
    return max(0.0, moment - (time.time() if now is None else now))


def classify(
    status: int, code: str | None, message: str, retry_after: float | None
) -> DeliveryError | None:
    """The error a SendGrid answer means (None for 2xx). ``code``: the first error's
    ``field``; ``message``: SendGrid's error messages (never a credential: SendGrid does
    not repeat the key); ``retry_after``: seconds until the rate limit resets."""
    if 200 <= status < 300:
        return None
    kind = f"sendgrid_{status}"
    reason = f"SendGrid HTTP {status}" + (f" ({code})" if code else "") + f": {message}"
    if status == 403 and _over_sender_identity(code, message):
        return PermanentDeliveryError(reason, kind=SENDER_IDENTITY_KIND)
    entry = CODES.get(status)
    if entry is None:
        return error_for(status_outcome(status), reason, kind, retry_after)
    return error_for(entry.outcome, reason, kind, retry_after, scope=entry.scope)


def _over_sender_identity(field: str | None, message: str) -> bool:
    return field in ("from", "from.email") or "sender identity" in message.lower()
