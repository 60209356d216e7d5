"""Twilio's error codes and what each does to a message, from Twilio's error dictionary.

Every row names its source page (``https://www.twilio.com/docs/api/errors/<code>``). A
failed Messages API request answers with a JSON body
``{"code": 21211, "message": "...", "more_info": "...", "status": 400}``
(https://www.twilio.com/docs/api/errors/400); :func:`classify` turns the HTTP status and
that body into one of relayq's delivery errors.

Where a code shows up: the 2xxxx codes (authentication, request validation, opt-outs)
answer the ``POST .../Messages.json`` itself. The 30xxx codes are carrier delivery
errors (log type CARRIER): the request was accepted (201) and the code arrives later, in
the message's ``ErrorCode`` and in ``StatusCallback`` requests with status ``failed`` or
``undelivered``; they are listed here so the receipts endpoint reads them from the same
table (``callback_only``). The 63xxx channel (WhatsApp) codes are documented for both
the message log and the API; the table classifies them wherever they appear.

Codes not listed fall back on the HTTP status: 429 throttles the sender (Retry-After
honoured), 408 and 5xx are retried, 401 pauses the channel, any other 4xx is permanent.
"""

from __future__ import annotations

from typing import NamedTuple

from relayq.consumers.adapters.provider_codes import Outcome, error_for, status_outcome
from relayq.streams.errors import (
    DeliveryError,
    ThrottleScope,
)

__all__ = ("CODES", "Code", "Outcome", "classify")

_DOCS = "https://www.twilio.com/docs/api/errors/"


class Code(NamedTuple):
    """One row of the table: a Twilio code, relayq's outcome, and where it is documented."""

    code: int
    outcome: Outcome
    meaning: str
    source: str
    scope: ThrottleScope | None = None
    """Who waits, for THROTTLE."""
    wait: float | None = None
    """Seconds to wait when the answer carries no Retry-After (THROTTLE)."""
    callback_only: bool = False
    """Reported in status callbacks / the message's ErrorCode, not by the API call."""


def _row(
    code: int,
    outcome: Outcome,
    meaning: str,
    *,
    scope: ThrottleScope | None = None,
    wait: float | None = None,
    callback_only: bool = False,
) -> Code:
    return Code(code, outcome, meaning, f"{_DOCS}{code}", scope, wait, callback_only)


_R, _T, _P, _D = Outcome.RETRY, Outcome.THROTTLE, Outcome.PERMANENT, Outcome.CHANNEL_DOWN
_ROWS = (
    # Account and authentication (HTTP 401/403): nothing on this account can send.
    _row(10001, _D, "account is not active"),
    _row(20003, _D, "permission denied: wrong Account SID / Auth Token, or account suspended"),
    _row(20403, _D, "403 forbidden: the account is suspended or closed"),
    # Too many requests. 20429 is "never processed and always safe to retry"; it is the
    # account's REST concurrency, so the whole channel (one account) backs off.
    _row(20429, _T, "too many concurrent REST API requests", scope=ThrottleScope.CHANNEL),
    _row(63017, _T, "account above 2000 messages per second", scope=ThrottleScope.CHANNEL),
    _row(63018, _T, "rate limit exceeded for the channel sender", scope=ThrottleScope.SENDER),
    _row(
        63038,
        _T,
        "account exceeded its daily message limit",
        scope=ThrottleScope.CHANNEL,
        wait=3600.0,
    ),
    # Request validation and recipients (HTTP 400): never sent.
    _row(20404, _P, "resource not found (wrong Account SID in the URL?)"),
    _row(21211, _P, "invalid 'To' number (not E.164, a short code, or the From number)"),
    _row(21408, _P, "permission to send an SMS to this region is not enabled"),
    _row(21602, _P, "message body (Body or MediaUrl) is required"),
    _row(21603, _P, "a 'From' number (or MessagingServiceSid) is required"),
    _row(21604, _P, "a 'To' number is required"),
    _row(21606, _P, "'From' is not a message-capable number of this account"),
    _row(21608, _P, "trial account: the 'To' number is not verified"),
    _row(21610, _P, "recipient unsubscribed (replied STOP)"),
    _row(21612, _P, "'To' cannot be reached from this 'From' (unroutable pair)"),
    _row(21614, _P, "'To' is not a valid mobile number"),
    _row(21635, _P, "'To' is a landline"),
    _row(63016, _P, "outside the WhatsApp 24-hour window: send an approved template"),
    # Carrier delivery errors: they arrive in status callbacks (failed/undelivered).
    _row(30003, _R, "unreachable destination handset (off, no signal)", callback_only=True),
    _row(30006, _P, "landline or unreachable carrier", callback_only=True),
)

CODES: dict[int, Code] = {row.code: row for row in _ROWS}
"""Twilio error code -> its row."""


def classify(
    status: int, code: int | None, message: str, retry_after: float | None
) -> DeliveryError | None:
    """The error a Twilio answer means, or None for a 2xx. ``message`` is Twilio's own
    message (it never holds a credential; the adapter scrubs it anyway)."""
    if 200 <= status < 300:
        return None
    row = CODES.get(code) if code is not None else None
    reason = _reason(status, code, message)
    kind = f"twilio_{code}" if code is not None else f"twilio_http_{status}"
    if row is not None:
        return error_for(row.outcome, reason, kind, retry_after, scope=row.scope, wait=row.wait)
    return error_for(status_outcome(status, unauthorized_down=True), reason, kind, retry_after)


def _reason(status: int, code: int | None, message: str) -> str:
    shown = f"twilio {code}" if code is not None else "twilio"
    return f"{shown}: {message or 'no message'} (HTTP {status})"
