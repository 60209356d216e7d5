"""A repeatable message: a schedule (an interval or a cron expression) and the message
it enqueues each time it fires.

The template is a validated Message; each firing gets a fresh id and creation time.
Occurrences missed while no worker ran are not replayed one by one: the next firing
enqueues one message and the schedule continues from the next occurrence after now.
"""

from __future__ import annotations

import datetime as dt
import math

import msgspec
from croniter import CroniterBadDateError, croniter

from relayq.streams.errors import ValidationError
from relayq.streams.message import Message
from relayq.streams.message_id import new_message_id

__all__ = ("Schedule", "check_cron", "check_every", "decode_schedule", "encode_schedule")

MIN_EVERY_MS = 100
MAX_EVERY_MS = 3650 * 86_400_000
"""Ten years: longer intervals (``--every 1e12``) have no next time a date can hold."""
_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-7 or sun-sat"),
)
_encoder = msgspec.msgpack.Encoder()


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    template: Message
    every_ms: int | None = None
    cron: str | None = None
    """Five-field cron expression, evaluated in UTC."""

    def next_due_ms(self, after_ms: int) -> int:
        """The first occurrence strictly after ``after_ms`` (Unix ms)."""
        if self.every_ms is not None:
            return after_ms + self.every_ms
        assert self.cron is not None
        start = dt.datetime.fromtimestamp(after_ms / 1000, tz=dt.UTC)
        following: dt.datetime = croniter(self.cron, start).get_next(dt.datetime)
        return round(following.timestamp() * 1000)

    def next_after(self, due_ms: int, now_ms: int) -> int:
        """The next due time once the occurrence at ``due_ms`` fired at ``now_ms``.

        Intervals keep their phase (due + k * every); missed occurrences are skipped.
        """
        if self.every_ms is not None:
            behind = max(0, now_ms - due_ms)
            return due_ms + (behind // self.every_ms + 1) * self.every_ms
        return self.next_due_ms(max(due_ms, now_ms))

    def message(self, now_ms: int) -> Message:
        """This firing's message: the template with a new id and creation time."""
        return msgspec.structs.replace(self.template, id=new_message_id(), created_ms=now_ms)

    def describe(self) -> str:
        return f"every {self.every_ms / 1000:g}s" if self.every_ms else f"cron {self.cron!r}"


def check_every(value: object) -> int:
    """An interval in seconds (>= 0.1) as whole milliseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | dt.timedelta):
        raise ValidationError(
            "every", f"must be seconds or a timedelta, not {type(value).__name__}"
        )
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if not math.isfinite(seconds) or not MIN_EVERY_MS <= seconds * 1000 <= MAX_EVERY_MS:
        raise ValidationError(
            "every",
            f"must be from {MIN_EVERY_MS / 1000:g}s to {MAX_EVERY_MS // 1000}s "
            f"({MAX_EVERY_MS // 86_400_000} days), got {value!r}",
        )
    return round(seconds * 1000)


def check_cron(value: object) -> str:
    """A five-field cron expression that has a next occurrence; the error names the field."""
    if not isinstance(value, str) or len(value.split()) != 5:
        raise ValidationError("cron", f"{value!r} is not a five-field cron expression")
    fields = value.split()
    for index, (name, allowed) in enumerate(_CRON_FIELDS):
        alone = " ".join(field if i == index else "*" for i, field in enumerate(fields))
        if not croniter.is_valid(alone):
            raise ValidationError(
                "cron",
                f"{value!r}: the {name} field {fields[index]!r} is out of range or malformed "
                f"(allowed: {allowed})",
            )
    if not croniter.is_valid(value):
        raise ValidationError("cron", f"{value!r} is not a valid cron expression")
    try:
        croniter(value, dt.datetime.now(dt.UTC)).get_next(dt.datetime)
    except (CroniterBadDateError, OverflowError):
        raise ValidationError("cron", f"{value!r} never occurs") from None
    return value


def encode_schedule(schedule: Schedule) -> bytes:
    return _encoder.encode(schedule)


def decode_schedule(data: bytes) -> Schedule:
    """Raises ValidationError when ``data`` is not a schedule relayq wrote."""
    try:
        return msgspec.msgpack.decode(data, type=Schedule)
    except msgspec.DecodeError as exc:
        raise ValidationError("schedule", f"undecodable: {exc}") from None
