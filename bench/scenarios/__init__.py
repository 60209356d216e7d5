"""The scenarios of ``python -m bench``, in the order they run.

Each module defines ``SCENARIO`` (a :class:`Scenario`); a run of it returns a
:class:`~bench.results.RunOutput`. The runner repeats it ``repeats(sizes)`` times.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from bench.context import BenchContext
from bench.results import RunOutput
from bench.sizes import Sizes

__all__ = ("ORDER", "Scenario", "load")


def _default_repeats(sizes: Sizes) -> int:
    return sizes.repeats


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    run: Callable[[BenchContext], RunOutput]
    repeats: Callable[[Sizes], int] = _default_repeats
    in_smoke: bool = True
    is_peers: bool = False


ORDER: tuple[str, ...] = (
    "ceilings",
    "send",
    "api",
    "dashboard",
    "memory",
    "deliver",
    "flow_control",
    "before_after",
    "outcomes",
    "search_index",
    "fairness",
    "fairness_spread",
    "redis_calls",
    "http",
    "latency",
    "seeds",
    "profile",
    "peers",
    "peers_http",
)
"""Scenario names in run order (each a module of this package)."""


def load(name: str) -> Scenario:
    if name not in ORDER:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(ORDER)}")
    scenario: Scenario = importlib.import_module(f"bench.scenarios.{name}").SCENARIO
    return scenario
