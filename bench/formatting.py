"""Numbers as the tables show them: by unit, a cell as "median (min-max)", a scenario's grid."""

from __future__ import annotations

import math
from collections.abc import Callable

from bench.results import Cell, ScenarioResult

__all__ = ("STATUS_COLUMN", "cell_text", "number", "scenario_grid")

STATUS_COLUMN = "status"
"""The only column of a scenario none of whose rows was measured."""


def number(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "%":
        return f"{value:.1%}"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "ms":
        return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 10 else f"{value:,.1f}"
    if unit in ("s", "/msg"):
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


def _row_cells(
    result: ScenarioResult, row: str, width: int, emphasis: Callable[[str], str]
) -> list[str]:
    failure = result.failure(row)
    if failure is not None and not result.measured(row):
        return [emphasis(failure.status), *[""] * (width - 1)]
    cells = result.cells.get(row, {})
    return [cell_text(cells.get(column)) for column in result.columns]


def scenario_grid(
    result: ScenarioResult, emphasis: Callable[[str], str] = str
) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of a scenario's table, each row led by its name. A row no run measured
    shows its status (MISSING or FAILED, through ``emphasis``) in its first cell, never zeros;
    the reasons are for the caller to list under the table (``result.failures``)."""
    columns = result.columns or [STATUS_COLUMN]
    rows = [[row, *_row_cells(result, row, len(columns), emphasis)] for row in result.rows]
    return columns, rows
