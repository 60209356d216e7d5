"""Numbers as the tables show them: by unit, and a cell as "median (min-max)"."""

from __future__ import annotations

import math

from bench.results import Cell

__all__ = ("cell_text", "number")


def number(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "%":
        return f"{value:.1%}"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "ms":
        return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:,.1f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def cell_text(cell: Cell | None) -> str:
    """``median (min-max)`` over the runs; just the value for one run."""
    if cell is None or not cell.samples:
        return ""
    s = cell.spread
    middle = number(s.median, cell.unit)
    if s.runs < 2 or s.low == s.high:
        return middle
    return f"{middle} ({number(s.low, cell.unit)}-{number(s.high, cell.unit)})"
