"""The email a message carries, as the SendGrid and SMTP adapters read it.

Payload (UTF-8 JSON)::

    {"subject": "Your order", "text": "plain body", "html": "<p>html body</p>",
     "reply_to": "help@example.com"}

``subject`` is required, and at least one of ``text``/``html``; ``reply_to`` is optional.
To is the message's ``recipient``; From is its ``sender`` or, without one, the channel's
default (``RELAYQ_EMAIL_FROM``). An address is ``user@domain`` or ``Name <user@domain>``.
A payload that breaks any of this raises PermanentDeliveryError (kind ``invalid_payload``)
naming the problem: no provider would ever accept it.
"""

from __future__ import annotations

import email.utils
import re
from typing import NoReturn

import msgspec

from relayq.streams.errors import PermanentDeliveryError
from relayq.streams.message import Message

__all__ = ("Address", "Email", "email_of", "parse_address")

INVALID = "invalid_payload"

_ADDR_SPEC = re.compile(r"^[^@\s<>\",;:()\[\]]+@[^@\s<>\",;:()\[\]]+$")
_LINE_BREAK = re.compile(r"[\r\n]")


class Address(msgspec.Struct, frozen=True):
    """One mailbox: the address and an optional display name."""

    email: str
    name: str | None = None

    def formatted(self) -> str:
        """``Name <user@domain>`` (the name encoded if it needs it) or the bare address."""
        return email.utils.formataddr((self.name or "", self.email))


class Email(msgspec.Struct, frozen=True):
    """An email ready for a provider: every field checked."""

    to: Address
    sender: Address
    subject: str
    text: str | None
    html: str | None
    reply_to: Address | None


class _Payload(msgspec.Struct, frozen=True):
    subject: str
    text: str | None = None
    html: str | None = None
    reply_to: str | None = None


_decoder = msgspec.json.Decoder(_Payload)


def parse_address(value: str) -> Address | None:
    """``user@domain`` or ``Name <user@domain>`` as an Address; None when it is neither."""
    if _LINE_BREAK.search(value) or value.count("@") != 1:
        return None  # one mailbox only (parseaddr would quietly take the first of a list)
    name, address = email.utils.parseaddr(value)
    if not address or not _ADDR_SPEC.match(address):
        return None
    return Address(address, name or None)


def email_of(message: Message, default_sender: str | None) -> Email:
    """The message's email; PermanentDeliveryError (``invalid_payload``) when it has none."""
    payload = _payload(message.payload)
    if not payload.subject.strip():
        _invalid("subject must not be empty")
    if _LINE_BREAK.search(payload.subject):
        _invalid("subject must be one line (no CR or LF)")
    if not payload.text and not payload.html:
        _invalid("text or html is required (a non-empty string)")
    return Email(
        to=_address("recipient", message.recipient),
        sender=_sender(message.sender, default_sender),
        subject=payload.subject,
        text=payload.text or None,
        html=payload.html or None,
        reply_to=_address("reply_to", payload.reply_to) if payload.reply_to else None,
    )


def _payload(raw: bytes) -> _Payload:
    try:
        return _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        _invalid(f"email payload: {exc}")
    except msgspec.DecodeError as exc:
        _invalid(f"email payload is not JSON: {exc}")


def _sender(sender: str | None, default_sender: str | None) -> Address:
    if sender is not None:
        return _address("sender", sender)
    if default_sender is None:
        _invalid("the message has no sender and the channel no default From (RELAYQ_EMAIL_FROM)")
    return _address("RELAYQ_EMAIL_FROM", default_sender)


def _address(field: str, value: str) -> Address:
    address = parse_address(value)
    if address is None:
        _invalid(f"{field} is not an email address ('user@domain' or 'Name <user@domain>')")
    return address


def _invalid(problem: str) -> NoReturn:
    raise PermanentDeliveryError(f"invalid email: {problem}", kind=INVALID)
