"""Which partitions a worker should own: live workers and rendezvous hashing.

Each worker announces itself in ``ns:workers`` with an expiry (Redis server time) and
owns the partitions for which it has the highest rendezvous score among live workers.
When a worker joins or leaves, only the partitions whose top scorer changed move.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ("desired_partitions", "rendezvous_owner")


def _score(worker_id: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{worker_id}/{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_owner(partition: int, workers: Iterable[str]) -> str | None:
    """The worker that should own ``partition``, or None when there are no workers."""
    return max(workers, key=lambda w: (_score(w, partition), w), default=None)


def desired_partitions(worker_id: str, live_workers: Iterable[str], partitions: int) -> set[int]:
    """The partitions ``worker_id`` should own given the live workers (itself included)."""
    workers = sorted(set(live_workers) | {worker_id})
    return {p for p in range(partitions) if rendezvous_owner(p, workers) == worker_id}
