"""What scenarios return and what a whole run keeps: rows of numbers, checks and notes.

A scenario run returns a :class:`RunOutput`: values by (row, column), verification checks,
notes, and the rows it could not measure (:class:`Failure`: a ceiling whose tool is missing,
a peer that is not installed or broke), which the report names with their reason instead of
showing zeros. The runner merges the outputs of the repeats of one scenario into a
:class:`ScenarioResult` whose cells hold every repeat's value (median and min-max shown).
"""

from __future__ import annotations

import msgspec

from bench.stats import Spread, spread

__all__ = (
    "FAILED",
    "MISSING",
    "Cell",
    "Check",
    "Failure",
    "RunOutput",
    "ScenarioResult",
    "Value",
    "error_summary",
)

MISSING = "MISSING"
"""What a row needs is absent (a tool not found, a library not installed)."""
FAILED = "FAILED"
"""The row's measurement ran and broke (crashed, timed out, processed nothing)."""

_SUMMARY_CHARS = 300


def error_summary(error: str) -> str:
    """An error in one line, for a :class:`Failure`: its label (the text before the first
    ": ", as in ``producer failed (exit 1): <log>``) and the last line of the output or
    traceback after it."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    if len(lines) < 2:
        return "".join(lines)[:_SUMMARY_CHARS]
    label = lines[0].split(": ", 1)[0]
    return f"{label}: {lines[-1]}"[:_SUMMARY_CHARS]


class Value(msgspec.Struct, frozen=True, array_like=True):
    row: str
    column: str
    value: float
    unit: str = ""
    """``msgs/s``, ``ms``, ``B``, ``%`` (a fraction 0..1), ``x``, ``/msg`` (a count per
    message, two decimals) or ``""`` (a count)."""


class Check(msgspec.Struct, frozen=True):
    """A verification inside a scenario (nothing lost, order kept, ...)."""

    name: str
    ok: bool
    detail: str = ""


class Failure(msgspec.Struct, frozen=True):
    """A row this run could not measure: :data:`MISSING` or :data:`FAILED`, and why."""

    row: str
    status: str
    reason: str


class RunOutput(msgspec.Struct):
    """One run of one scenario."""

    values: list[Value] = msgspec.field(default_factory=list)
    checks: list[Check] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    failures: list[Failure] = msgspec.field(default_factory=list)
    extra: dict[str, object] = msgspec.field(default_factory=dict)
    """Scenario-specific data for the report (profile summary, peer details)."""

    def add(self, row: str, column: str, value: float, unit: str = "") -> None:
        self.values.append(Value(row, column, value, unit))

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))

    def fail(self, row: str, status: str, reason: str) -> None:
        """Record ``row`` as not measured (``status`` MISSING or FAILED) instead of a value."""
        self.failures.append(Failure(row, status, reason))


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
    failures: list[Failure] = msgspec.field(default_factory=list)
    """Rows some run could not measure (the first reason of each row)."""
    extra: dict[str, object] = msgspec.field(default_factory=dict)

    def _add_row(self, row: str) -> None:
        if row not in self.rows:
            self.rows.append(row)

    def merge(self, output: RunOutput) -> None:
        self.runs += 1
        for v in output.values:
            self._add_row(v.row)
            if v.column not in self.columns:
                self.columns.append(v.column)
            cell = self.cells.setdefault(v.row, {}).setdefault(v.column, Cell(v.unit))
            cell.samples.append(v.value)
        self.checks.extend(output.checks)
        for note in output.notes:
            if note not in self.notes:
                self.notes.append(note)
        for failure in output.failures:
            self._add_row(failure.row)
            if self.failure(failure.row) is None:
                self.failures.append(failure)
        self.extra.update(output.extra)

    def failure(self, row: str) -> Failure | None:
        """Why ``row`` was not measured in some run, if it was not."""
        return next((f for f in self.failures if f.row == row), None)

    def measured(self, row: str) -> bool:
        """Whether any run has a value in ``row``."""
        return any(cell.samples for cell in self.cells.get(row, {}).values())

    def median(self, row: str, column: str) -> float | None:
        cell = self.cells.get(row, {}).get(column)
        if cell is None or not cell.samples:
            return None
        return cell.spread.median

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failures and all(c.ok for c in self.checks)
