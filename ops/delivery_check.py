"""Checking what a provider received against what was sent: loss, order, duplicates, latency.

Order is judged on first deliveries: within one conversation, the first delivery of each
message must come in send order. Repeated deliveries (at-least-once) are counted apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from relayq.ops.local_provider import Delivery

__all__ = ("DeliveryCheck", "check_deliveries", "percentile")


class DeliveryCheck(msgspec.Struct, frozen=True):
    sent: int
    delivered: int
    """Distinct sent messages the provider accepted."""
    dead_lettered: int
    lost: int
    """Sent, neither delivered nor dead-lettered."""
    duplicates: int
    """Deliveries beyond the first of a message."""
    order_violations: int
    """First deliveries that came after a later-sent message of the same conversation."""
    conversations_out_of_order: int
    unexpected: int
    """Deliveries of ids that were never sent (must be 0)."""
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.order_violations == 0 and self.unexpected == 0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def check_deliveries(
    sent_by_conversation: Mapping[tuple[str, str], Sequence[str]],
    deliveries: Iterable[Delivery],
    dead_lettered_ids: Iterable[str] = (),
) -> DeliveryCheck:
    """Compare the provider's deliveries (arrival order) with the per-conversation send order."""
    position = {
        message_id: (key, index)
        for key, ids in sent_by_conversation.items()
        for index, message_id in enumerate(ids)
    }
    seen: set[str] = set()
    last_index: dict[tuple[str, str], int] = defaultdict(lambda: -1)
    violations = duplicates = unexpected = 0
    bad_conversations: set[tuple[str, str]] = set()
    latencies: list[float] = []
    for delivery in deliveries:
        where = position.get(delivery.message_id)
        if where is None:
            unexpected += 1
            continue
        if delivery.message_id in seen:
            duplicates += 1
            continue
        seen.add(delivery.message_id)
        latencies.append(delivery.received_ns / 1e6 - delivery.created_ms)
        key, index = where
        if index < last_index[key]:
            violations += 1
            bad_conversations.add(key)
        else:
            last_index[key] = index
    dead = set(dead_lettered_ids) & position.keys()
    latencies.sort()
    return DeliveryCheck(
        sent=len(position),
        delivered=len(seen),
        dead_lettered=len(dead - seen),
        lost=len(position.keys() - seen - dead),
        duplicates=duplicates,
        order_violations=violations,
        conversations_out_of_order=len(bad_conversations),
        unexpected=unexpected,
        latency_p50_ms=percentile(latencies, 0.50),
        latency_p99_ms=percentile(latencies, 0.99),
    )
