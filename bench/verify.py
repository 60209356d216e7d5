"""Checking deliveries against what was sent: lost, duplicated, out of order.

Every benchmark producer is one process, and relayq's message ids from one process
strictly increase in send order (ULIDs, :mod:`streams.message_id`); each conversation is
sent in order by one task. So per-conversation FIFO holds exactly when, within each
conversation, first deliveries come in increasing id order.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from bench.relayq_deliverer import Record

__all__ = ("Verdict", "max_in_flight", "verify")


class Verdict(msgspec.Struct, frozen=True):
    sent: int
    delivered: int
    lost: int
    duplicates: int
    order_violations: int
    unexpected: int
    max_rate: float
    """Deliveries per second from the first to the last (intervals, so n - 1 of them)."""

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.order_violations == 0 and self.unexpected == 0

    def describe(self) -> str:
        return (
            f"{self.delivered:,}/{self.sent:,} delivered, {self.lost} lost, "
            f"{self.order_violations} out of order, {self.duplicates} duplicates"
        )


def max_in_flight(records: Iterable[Record]) -> dict[str, int]:
    """Per tenant, the most deliveries that overlapped in time (across all workers)."""
    events: dict[str, list[tuple[int, int]]] = {}
    for r in records:
        events.setdefault(r.tenant, []).extend(((r.started_ns, 1), (r.received_ns, -1)))
    peaks: dict[str, int] = {}
    for tenant, points in events.items():
        points.sort()  # at equal times an end (-1) sorts before a start (+1)
        level = peak = 0
        for _, step in points:
            level += step
            peak = max(peak, level)
        peaks[tenant] = peak
    return peaks


def verify(sent_ids: Iterable[str], deliveries: list[Record]) -> Verdict:
    """``deliveries`` in arrival order against the ids sent."""
    sent = set(sent_ids)
    seen: set[str] = set()
    last: dict[tuple[str, str], str] = {}
    duplicates = violations = unexpected = 0
    for d in deliveries:
        if d.message_id not in sent:
            unexpected += 1
            continue
        if d.message_id in seen:
            duplicates += 1
            continue
        seen.add(d.message_id)
        key = (d.tenant, d.conversation)
        if d.message_id < last.get(key, ""):
            violations += 1
        else:
            last[key] = d.message_id
    rate = 0.0
    if len(deliveries) > 1:
        span = (deliveries[-1].received_ns - deliveries[0].received_ns) / 1e9
        rate = (len(deliveries) - 1) / span if span > 0 else 0.0
    return Verdict(
        sent=len(sent),
        delivered=len(seen),
        lost=len(sent - seen),
        duplicates=duplicates,
        order_violations=violations,
        unexpected=unexpected,
        max_rate=rate,
    )
