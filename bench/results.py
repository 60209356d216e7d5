"""What scenarios return and what a whole run keeps: rows of numbers, checks and notes.

A scenario run returns a :class:`RunOutput`: values by (row, column), verification checks
and notes. The runner merges the outputs of the repeats of one scenario into a
:class:`ScenarioResult` whose cells hold every repeat's value (median and min-max shown).
"""

from __future__ import annotations

import msgspec

from bench.stats import Spread, spread

__all__ = ("Cell", "Check", "RunOutput", "ScenarioResult", "Value")


class Value(msgspec.Struct, frozen=True, array_like=True):
    row: str
    column: str
    value: float
    unit: str = ""
    """``msgs/s``, ``ms``, ``B``, ``%`` (a fraction 0..1), ``x`` or ``""`` (a count)."""


class Check(msgspec.Struct, frozen=True):
    """A verification inside a scenario (nothing lost, order kept, ...)."""

    name: str
    ok: bool
    detail: str = ""


class RunOutput(msgspec.Struct):
    """One run of one scenario."""

    values: list[Value] = msgspec.field(default_factory=list)
    checks: list[Check] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, object] = msgspec.field(default_factory=dict)
    """Scenario-specific data for the report (profile summary, peer details)."""

    def add(self, row: str, column: str, value: float, unit: str = "") -> None:
        self.values.append(Value(row, column, value, unit))

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))


class Cell(msgspec.Struct):
    unit: str
    samples: list[float] = msgspec.field(default_factory=list)

    @property
    def spread(self) -> Spread:
        return spread(self.samples)


class ScenarioResult(msgspec.Struct):
    """Every run of one scenario, merged."""

    name: str
    title: str
    description: str
    runs: int = 0
    seconds: float = 0.0
    rows: list[str] = msgspec.field(default_factory=list)
    columns: list[str] = msgspec.field(default_factory=list)
    cells: dict[str, dict[str, Cell]] = msgspec.field(default_factory=dict)
    checks: list[Check] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, object] = msgspec.field(default_factory=dict)

    def merge(self, output: RunOutput) -> None:
        self.runs += 1
        for v in output.values:
            if v.row not in self.rows:
                self.rows.append(v.row)
            if v.column not in self.columns:
                self.columns.append(v.column)
            cell = self.cells.setdefault(v.row, {}).setdefault(v.column, Cell(v.unit))
            cell.samples.append(v.value)
        self.checks.extend(output.checks)
        for note in output.notes:
            if note not in self.notes:
                self.notes.append(note)
        self.extra.update(output.extra)

    def median(self, row: str, column: str) -> float | None:
        cell = self.cells.get(row, {}).get(column)
        if cell is None or not cell.samples:
            return None
        return cell.spread.median

    @property
    def ok(self) -> bool:
        return not self.errors and all(c.ok for c in self.checks)
