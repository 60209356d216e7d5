"""Small statistics: percentiles of a sample and the median/min/max of repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import msgspec

__all__ = ("Spread", "percentile", "percentiles", "spread")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(fraction * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(rank, 1)) - 1]


def percentiles(values: Sequence[float], fractions: Sequence[float]) -> list[float]:
    ordered = sorted(values)
    return [percentile(ordered, f) for f in fractions]


class Spread(msgspec.Struct, frozen=True):
    """Median, min and max of the runs of one measurement."""

    median: float
    low: float
    high: float
    runs: int


def spread(samples: Sequence[float]) -> Spread:
    values = [v for v in samples if not math.isnan(v)]
    if not values:
        return Spread(math.nan, math.nan, math.nan, 0)
    return Spread(statistics.median(values), min(values), max(values), len(values))
