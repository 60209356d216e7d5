"""What every scenario gets: the shared Redis, the sizes, a work folder and a status line."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import redis

from bench.child import run_child
from bench.redis_target import RedisBinary
from bench.sizes import Sizes

__all__ = ("BenchContext",)

_counter = itertools.count(1)


def _no_status(_text: str) -> None:
    return None


@dataclasses.dataclass
class BenchContext:
    url: str
    port: int
    redis: RedisBinary
    sizes: Sizes
    workdir: Path
    quick: bool = False
    smoke: bool = False
    status: Callable[[str], None] = _no_status
    """Shows what is running now (the progress line)."""

    def fresh(self) -> None:
        """Empty the database: every run starts from nothing."""
        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def step_dir(self, name: str) -> Path:
        """A new, empty folder for one run's logs and records."""
        path = self.workdir / f"{next(_counter):03d}-{name}"
        path.mkdir(parents=True)
        return path

    def child(
        self,
        target: str,
        timeout: float,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``target`` in a child process (:func:`bench.child.run_child`)."""
        return run_child(
            target, kwargs, timeout=timeout, log=self.workdir / "children.log", env=env
        )
