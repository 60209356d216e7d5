"""A message's attempts as rows, oldest first: its record's history (the attempts that
failed or were throttled), then the attempt its state is about (the one that delivered or
dead-lettered it, or the one in flight). What ``relayq message show`` and the
dashboard's message page list."""

from __future__ import annotations

import msgspec

from relayq.streams.outcome import THROTTLED, OutcomeRecord, OutcomeState

__all__ = ("AttemptRow", "attempt_rows")


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    at_ms: int
    outcome: str
    """The failure's kind (``throttled``: no attempt used), or the state it led to."""
    detail: str = ""
    """The error, or what the state says (the provider's id of a delivered message)."""
    worker: str | None = None
    counted: bool = True
    """False for a throttle: it used no attempt (the same number is made again)."""


def attempt_rows(record: OutcomeRecord) -> list[AttemptRow]:
    rows = [
        AttemptRow(
            attempt=note.attempt,
            at_ms=note.at_ms,
            outcome=note.kind,
            detail=note.error,
            worker=note.worker,
            counted=note.counted,
        )
        for note in record.history or ()
    ]
    current = _current(record, noted=bool(rows))
    return [*rows, current] if current is not None else rows


def _current(record: OutcomeRecord, *, noted: bool) -> AttemptRow | None:
    """The row of the record's own state; None for a message not yet tried, or retrying
    with its failure noted already (its history's last row)."""
    state = record.state
    if state == OutcomeState.DELIVERED:
        provider = record.provider_message_id
        detail = f"provider id {provider}" if provider else ""
    elif state == OutcomeState.DEAD_LETTERED:
        state, detail = f"dead_lettered: {record.kind}", record.error or ""
    elif state == OutcomeState.IN_FLIGHT:
        return AttemptRow(
            attempt=record.attempts + 1,
            at_ms=record.at_ms,
            outcome=state,
            detail="being sent",
            worker=record.worker,
        )
    elif state == OutcomeState.RETRYING and not noted:  # a record without history
        state, detail = record.kind or state, record.error or ""
    else:
        return None
    return AttemptRow(
        attempt=record.attempts,
        at_ms=record.at_ms,
        outcome=state,
        detail=detail,
        worker=record.worker,
        counted=state != THROTTLED,
    )
