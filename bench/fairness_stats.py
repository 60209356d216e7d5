"""How evenly deliveries were shared: Jain's fairness index, max/min share, positions.

Jain's index of per-tenant amounts x1..xn is (sum x)^2 / (n * sum x^2): 1.0 when every tenant
got the same, 1/n when one tenant got everything. The max/min share is the largest amount
over the smallest (1.0 is perfect; infinite when a tenant got nothing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ("jain_index", "max_min_share", "positions_of")


def jain_index(amounts: Sequence[float]) -> float:
    """Jain's fairness index of ``amounts`` (NaN when there are none or all are 0)."""
    squares = sum(x * x for x in amounts)
    if not amounts or squares == 0:
        return math.nan
    return sum(amounts) ** 2 / (len(amounts) * squares)


def max_min_share(amounts: Sequence[float]) -> float:
    """The largest amount over the smallest (NaN when none, infinite when the least is 0)."""
    if not amounts:
        return math.nan
    least = min(amounts)
    return max(amounts) / least if least > 0 else math.inf


def positions_of(tenants_in_order: Iterable[str], tenant: str) -> list[int]:
    """1-based positions of ``tenant``'s deliveries in a delivery order."""
    return [i for i, name in enumerate(tenants_in_order, start=1) if name == tenant]
