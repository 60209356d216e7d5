"""Durations on the command line (``30s``, ``5m``, ``1h``, ``2d``, ``250ms``, or plain
seconds) and ages in tables."""

from __future__ import annotations

import argparse
import re

__all__ = ("duration_argument", "format_age", "parse_duration")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError naming the text when it is not a duration."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 30m, 2h, 7d)")
    return float(match[1]) * _UNITS[match[2] or "s"]


def duration_argument(text: str) -> float:
    """``parse_duration`` as an argparse ``type``: a bad value is a usage error that
    names the option."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_age(milliseconds: int | float | None) -> str:
    """``milliseconds`` as a short age: ``850ms``, ``42s``, ``17m``, ``5.2h``, ``3.0d``."""
    if milliseconds is None:
        return "-"
    seconds = max(0.0, milliseconds / 1000)
    if seconds < 1:
        return f"{milliseconds:.0f}ms"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
