"""Summarising py-spy's collapsed stacks (``--format raw``): where a worker spends its time."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import msgspec

__all__ = ("ProfileSummary", "summarise")

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_OURS = ("consumers/", "streams/", "producers/", "ops/")


class ProfileSummary(msgspec.Struct):
    samples: int
    self_top: list[tuple[str, float]]
    """Functions by share of samples spent in their own code (not their callees)."""
    inclusive_ours: list[tuple[str, float]]
    """relayq functions by share of samples with them anywhere on the stack."""
    by_area: list[tuple[str, float]]
    """Self time grouped by where the code lives (relayq, redis-py, asyncio, ...)."""


def _function(frame: str) -> tuple[str, str]:
    """(``file:function`` without the line, file) of one collapsed-stack frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    file = match["file"]
    short = file.split("site-packages/")[-1]
    return f"{short}:{match['function']}", short


def _area(file: str) -> str:
    if file.startswith(_OURS):
        return "relayq (" + file.split("/", maxsplit=1)[0] + ")"
    for prefix, name in (("redis/", "redis-py"), ("hiredis", "redis-py"),
                         ("asyncio/", "asyncio"), ("msgspec", "msgspec"),
                         ("structlog", "structlog"), ("opentelemetry", "opentelemetry"),
                         ("bench/", "bench")):  # fmt: skip
        if file.startswith(prefix):
            return name
    return "other (stdlib, idle)" if file else "other (native)"


def summarise(path: Path, top: int = 20) -> ProfileSummary:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_function(f) for f in stack.split(";")]
        leaf, leaf_file = frames[-1]
        self_time[leaf] += count
        areas[_area(leaf_file)] += count
        for name in {name for name, file in frames if file.startswith(_OURS)}:
            inclusive[name] += count
    share = 1 / total if total else 0.0
    return ProfileSummary(
        samples=total,
        self_top=[(k, v * share) for k, v in self_time.most_common(top)],
        # Entry points (the CLI, run_worker) are on every stack: leave them out.
        inclusive_ours=[(k, v * share) for k, v in inclusive.most_common() if v < 0.99 * total][
            :top
        ],
        by_area=[(k, v * share) for k, v in areas.most_common()],
    )
