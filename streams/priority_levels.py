"""A namespace's priority levels: their names, optional numbers, and the order they are served.

Levels are written highest first, as ``RELAYQ_PRIORITIES`` takes them::

    high,normal,low                          the default
    otp=10,notification=5,group=3,bulk=1     seed 000's four queues
    urgent=1,normal=5,later=10               Bull's numbers (1 = served first)

The order, not the numbers, says what is served first: numbers are only another name for
a level (``send(priority=10)``), so both conventions read naturally. Either every level has
a number or none does. A namespace's levels are fixed once used, like its partitions: each
level is a stream of its own, and a level renamed later would leave its messages behind.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from relayq.streams.errors import ConfigurationError, ValidationError

__all__ = (
    "DEFAULT_PRIORITIES",
    "MAX_PRIORITY_LEVELS",
    "RESERVED_LEVEL_NAMES",
    "PriorityLevel",
    "PriorityLevels",
)

DEFAULT_PRIORITIES = "high,normal,low"
MAX_PRIORITY_LEVELS = 16
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_NUMBER_LIMIT = 1_000_000
_INTEGER = re.compile(r"-?[0-9]{1,7}")
RESERVED_LEVEL_NAMES = frozenset(
    (
        "attempts",
        "batch",
        "counts",
        "dedup",
        "delayed",
        "dlq",
        "events",
        "lease",
        "outcomes",
        "rate",
        "schedules",
        "stalls",
    )
)
"""A level is the key ``{ns:P}:<level>``: these names are the partition's other keys."""


class PriorityLevel(NamedTuple):
    """One level: its name and, when the namespace numbers its levels, its number."""

    name: str
    number: int | None


class PriorityLevels:
    """The levels of a namespace, highest first. Build with ``PriorityLevels.parse``."""

    __slots__ = ("_by_name", "_by_number", "levels", "names")

    def __init__(self, levels: tuple[PriorityLevel, ...]) -> None:
        self.levels = levels
        self.names = tuple(level.name for level in levels)
        self._by_name = {level.name: level.name for level in levels}
        self._by_number = {level.number: level.name for level in levels if level.number is not None}

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def parse(text: str) -> PriorityLevels:
        """Levels from ``name[=number],...`` highest first; ConfigurationError says what
        is wrong with the text."""
        levels = tuple(_parse_level(part.strip()) for part in text.split(","))
        _check_levels(text, levels)
        return PriorityLevels(levels)

    def __str__(self) -> str:
        """The canonical text (as recorded in the namespace's meta hash)."""
        return ",".join(
            name if number is None else f"{name}={number}" for name, number in self.levels
        )

    def __repr__(self) -> str:
        return f"PriorityLevels({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriorityLevels) and self.levels == other.levels

    def __hash__(self) -> int:
        return hash(self.levels)

    @property
    def default(self) -> str:
        """The level of a message sent without one: ``normal`` if it is a level, else the
        lowest level (an unlabelled message never jumps ahead of labelled urgent ones)."""
        return "normal" if "normal" in self._by_name else self.names[-1]

    def resolve(self, value: object) -> str:
        """The level's name for ``value``: a level name, or a level's number (an int, or
        its digits as text, as a command line gives it). ValidationError otherwise."""
        if isinstance(value, str):
            name = self._by_name.get(value)
            if name is None and _is_integer_text(value):
                name = self._by_number.get(int(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            name = self._by_number.get(value)
        else:
            raise ValidationError(
                "priority", f"must be a level name or number, not {type(value).__name__}"
            )
        if name is None:
            raise ValidationError("priority", f"{value!r} is not a level; {self.describe()}")
        return name

    def describe(self) -> str:
        """The levels for an error message, e.g. ``levels are otp=10, bulk=1 (highest first)``."""
        return f"levels are {str(self).replace(',', ', ')} (highest first)"


def _is_integer_text(value: str) -> bool:
    return _INTEGER.fullmatch(value) is not None


def _parse_level(part: str) -> PriorityLevel:
    name, equals, number_text = part.partition("=")
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"priority level name {name!r} must be 1 to 32 characters: a lowercase letter, "
            "then lowercase letters, digits, '_' or '-'"
        )
    if name in RESERVED_LEVEL_NAMES:
        raise ConfigurationError(
            f"priority level name {name!r} is reserved (a partition key of that name exists); "
            f"reserved: {', '.join(sorted(RESERVED_LEVEL_NAMES))}"
        )
    if not equals:
        return PriorityLevel(name, None)
    number_text = number_text.strip()
    if not _is_integer_text(number_text) or abs(int(number_text)) > _NUMBER_LIMIT:
        raise ConfigurationError(
            f"priority level {name!r} has number {number_text!r}; a level's number is a "
            f"whole number from -{_NUMBER_LIMIT} to {_NUMBER_LIMIT}"
        )
    return PriorityLevel(name, int(number_text))


def _check_levels(text: str, levels: tuple[PriorityLevel, ...]) -> None:
    if not 1 <= len(levels) <= MAX_PRIORITY_LEVELS:
        raise ConfigurationError(
            f"priorities {text!r} has {len(levels)} levels; 1 to {MAX_PRIORITY_LEVELS} allowed"
        )
    names = [level.name for level in levels]
    numbers = [level.number for level in levels if level.number is not None]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"priorities {text!r} names a level twice")
    if numbers and len(numbers) != len(levels):
        raise ConfigurationError(
            f"priorities {text!r}: give every level a number (name=number) or none"
        )
    if len(set(numbers)) != len(numbers):
        raise ConfigurationError(f"priorities {text!r} gives two levels the same number")
