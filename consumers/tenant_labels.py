"""The cardinality guard of the ``tenant`` label: the busiest N tenants get a label value
of their own, every other tenant is counted as ``other``.

Series are keyed by label tuples whose last element is the tenant. Two ways to fold:

- ``fold_tenants(counts, busiest_tenants(...))``, stateless: what the API's ``/metrics``
  does with the durable counters in Redis, so that every API server shows the same
  series, each named tenant with its whole count. When a tenant enters the top N,
  ``other`` drops by its count once (a counter reset to ``rate()``).
- ``TenantLabels``, sticky: what a worker's endpoint does with its process-local counts.
  The first N tenants seen (the busiest first, when several arrive between two scrapes)
  keep their label for the life of the process, so that no series ever goes down.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from typing import TypeVar

__all__ = ("OTHER", "TenantLabels", "busiest_tenants", "fold_tenants")

OTHER = "other"
"""The tenant label value of every tenant outside the top N (a tenant actually named
``other`` shares it)."""

Key = tuple[str, ...]
_K = TypeVar("_K", bound=Key)


def _totals(counts: Mapping[_K, int], skip: Collection[str] = ()) -> dict[str, int]:
    totals: dict[str, int] = {}
    for key, value in counts.items():
        tenant = key[-1]
        if tenant not in skip:
            totals[tenant] = totals.get(tenant, 0) + value
    return totals


def _ranked(totals: Mapping[str, int], top: int) -> list[str]:
    """The ``top`` tenants of ``totals`` with the largest totals (ties: by name)."""
    return sorted(totals, key=lambda tenant: (-totals[tenant], tenant))[:top]


def busiest_tenants(counts: Mapping[_K, int], top: int) -> set[str]:
    """The ``top`` tenants with the largest counts over all their series."""
    return set(_ranked(_totals(counts), top))


def _add(folded: dict[Key, int], key: Key, value: int) -> None:
    folded[key] = folded.get(key, 0) + value


def fold_tenants(counts: Mapping[_K, int], named: Collection[str]) -> dict[Key, int]:
    """``counts`` with every tenant outside ``named`` replaced by ``OTHER`` (summed)."""
    folded: dict[Key, int] = {}
    for key, value in counts.items():
        _add(folded, key if key[-1] in named else (*key[:-1], OTHER), value)
    return folded


class TenantLabels:
    """Names up to ``top`` tenants, the busiest at each scrape while names are left, and
    never takes a name back. A tenant counted in ``other`` is one that found no name left,
    so it stays there: no series ever goes down. Safe for concurrent scrapes (a lock;
    never on a hot path)."""

    def __init__(self, top: int) -> None:
        self._top = top
        self._named: set[str] = set()
        self._lock = threading.Lock()

    def fold(self, counts: Mapping[_K, int]) -> dict[Key, int]:
        """The series to show for ``counts``."""
        with self._lock:
            room = self._top - len(self._named)
            if room > 0:
                self._named.update(_ranked(_totals(counts, skip=self._named), room))
            return fold_tenants(counts, self._named)
