"""Which partitions a worker should own: live workers and bounded-load rendezvous hashing.

Each worker announces itself in ``ns:workers`` with an expiry (Redis server time). Every
worker computes the same assignment from the same live list: partitions in order, each
goes to its highest-scoring worker (rendezvous hashing) that still has room, where room is
``ceil(partitions / workers)``. Plain rendezvous can give one of two workers 7 of 8
partitions; the bound keeps the spread even while a join or leave still moves few.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ("assignment", "desired_partitions")


def _score(worker_id: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{worker_id}/{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assignment(workers: Iterable[str], partitions: int) -> dict[int, str]:
    """Partition -> owning worker, for the given live workers (empty when there are none)."""
    ordered = sorted(set(workers))
    if not ordered:
        return {}
    room = -(-partitions // len(ordered))
    load = dict.fromkeys(ordered, 0)
    owners: dict[int, str] = {}
    for partition in range(partitions):
        ranked = sorted(ordered, key=lambda w: (_score(w, partition), w), reverse=True)
        owner = next(w for w in ranked if load[w] < room)
        owners[partition] = owner
        load[owner] += 1
    return owners


def desired_partitions(worker_id: str, live_workers: Iterable[str], partitions: int) -> set[int]:
    """The partitions ``worker_id`` should own given the live workers (itself included)."""
    owners = assignment({*live_workers, worker_id}, partitions)
    return {p for p, owner in owners.items() if owner == worker_id}
