"""Small line charts as inline SVG, drawn on the server: no chart library, no script, and
nothing a message carries goes into them (only numbers and our own labels)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ("line_chart",)

_WIDTH, _HEIGHT, _PAD = 600, 140, 24


def _scale(values: Sequence[float]) -> float:
    top = max(values, default=0.0)
    return top if top > 0 else 1.0


def _points(values: Sequence[float], top: float) -> str:
    step = (_WIDTH - 2 * _PAD) / max(1, len(values) - 1)
    inner = _HEIGHT - 2 * _PAD
    return " ".join(
        f"{_PAD + index * step:.1f},{_HEIGHT - _PAD - inner * value / top:.1f}"
        for index, value in enumerate(values)
    )


def line_chart(title: str, values: Sequence[float], unit: str) -> Markup:
    """One series (oldest first, one value per minute) as an SVG with its title, its
    highest value and the last one."""
    top = _scale(values)
    last = values[-1] if values else 0.0
    label = escape(f"{title}: last {last:g} {unit}, highest {top if values else 0:g}")
    drawn = _points(values, top)
    line = f'<polyline class="series" points="{drawn}"/>' if len(values) > 1 else ""
    x, _, y = drawn.rpartition(" ")[2].partition(",")
    dot = f'<circle class="last" cx="{x}" cy="{y}" r="3"/>' if values else ""
    empty = (
        f'<text x="{_WIDTH // 2}" y="{_HEIGHT // 2}" text-anchor="middle">'
        "fills in as minutes pass (a point a minute)</text>"
        if len(values) < 2
        else ""
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="{label}"><title>{label}</title>'
        f'<line class="axis" x1="{_PAD}" y1="{_HEIGHT - _PAD}" x2="{_WIDTH - _PAD}" '
        f'y2="{_HEIGHT - _PAD}"/>'
        f'<text x="{_PAD}" y="14">{escape(title)} (max {top:g} {escape(unit)})</text>'
        f"{line}{dot}{empty}</svg>"
    )
