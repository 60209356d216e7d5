"""The report on the terminal: one rich table per scenario, and the targets."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.formatting import scenario_grid
from bench.report import Report
from bench.results import ScenarioResult
from bench.targets import evaluate

__all__ = ("print_report",)


def _red(text: str) -> str:
    return f"[red]{text}[/red]"


def _scenario_table(result: ScenarioResult) -> Table:
    runs = "" if result.runs < 2 else f" - median (min-max) of {result.runs} runs"
    table = Table(title=f"{result.title}{runs}", title_justify="left")
    columns, rows = scenario_grid(result, _red)
    table.add_column("")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def print_report(report: Report, console: Console) -> None:
    for result in report.results:
        if result.rows:
            console.print(_scenario_table(result))
        for check in result.checks:
            if not check.ok:
                console.print(f"[red]FAILED[/red] {check.name}: {check.detail}")
        for failure in result.failures:
            console.print(f"{_red(failure.status)} {escape(failure.row)}: "
                          f"{escape(failure.reason)}")  # fmt: skip
        for error in result.errors:
            console.print(f"[red]error[/red] {result.name}: {error}")
    targets = Table(title="Targets", title_justify="left")
    for column in ("target", "goal", "this run", ""):
        targets.add_column(column)
    marks = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "-"}
    for t in evaluate(report.results):
        targets.add_row(t.name, t.goal, escape(t.measured), marks[t.met])
    console.print(targets)
    m = report.machine
    console.print(f"{m.cpu}, {m.cores} cores, {m.python}, Redis {m.redis}; "
                  f"{report.seconds / 60:.1f} min")  # fmt: skip
