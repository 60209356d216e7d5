"""Worker counters, and the metrics line logged every ``metrics_interval`` seconds."""

from __future__ import annotations

import dataclasses
from collections import Counter

__all__ = ("WorkerMetrics",)


@dataclasses.dataclass(slots=True)
class WorkerMetrics:
    delivered: int = 0
    retried: int = 0
    throttled: int = 0
    dead_lettered: int = 0
    released_on_handover: int = 0
    """Entries read but not started because the partition went to another worker (or the
    lease could no longer cover a send): left pending for the next owner, not lost."""
    skipped_delivered: int = 0
    """Entries not sent because their message was already recorded as delivered."""
    in_flight: int = 0
    tenant_in_flight: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per tenant; zeros are kept (cheaper per message) and left out of ``snapshot``."""

    def started(self, tenant: str) -> None:
        self.in_flight += 1
        counts = self.tenant_in_flight
        counts[tenant] = counts.get(tenant, 0) + 1

    def finished(self, tenant: str) -> None:
        self.in_flight -= 1
        self.tenant_in_flight[tenant] -= 1

    def snapshot(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "retried": self.retried,
            "throttled": self.throttled,
            "dead_lettered": self.dead_lettered,
            "released_on_handover": self.released_on_handover,
            "skipped_delivered": self.skipped_delivered,
            "in_flight": self.in_flight,
            "tenant_in_flight": dict(
                Counter({t: n for t, n in self.tenant_in_flight.items() if n}).most_common(20)
            ),
        }
