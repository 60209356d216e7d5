"""The facts a result needs to be read: machine, OS, Python, Redis, library versions, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import sys
from importlib import metadata

import msgspec

from bench.redis_target import RedisBinary, redis_info

__all__ = ("Machine", "describe_machine", "load_average")

_LIBRARIES = ("relayq", "redis", "hiredis", "msgspec", "httpx", "anyio", "rich", "py-spy",
              "bullmq", "arq", "saq", "taskiq", "taskiq-redis", "faststream", "dramatiq",
              "celery", "kombu", "rq")  # fmt: skip


class Machine(msgspec.Struct, kw_only=True):
    cpu: str
    cores: int
    ram_gib: float
    os: str
    python: str
    redis: str
    redis_binary: str
    date: str
    command: str
    git: str
    libraries: dict[str, str]
    load_at_start: str = ""
    """1, 5 and 15-minute load averages when the run started (other work skews results)."""


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _git() -> str:
    head = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".git")
    try:
        import subprocess

        out = subprocess.run(
            ["git", "--git-dir", head, "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return out.stdout.strip() or "-"
    except OSError:
        return "-"


def describe_machine(url: str, binary: RedisBinary) -> Machine:
    server = redis_info(url, "server")
    return Machine(
        cpu=_cpu_model(),
        cores=os.cpu_count() or 1,
        ram_gib=round(_ram_gib(), 1),
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        redis=f"{server.get('redis_version', '?')} ({binary.malloc}, {binary.path})",
        redis_binary=binary.path,
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=" ".join(["python -m bench", shlex.join(sys.argv[1:])]).strip(),
        git=_git(),
        libraries={name: _version(name) for name in _LIBRARIES},
        load_at_start=load_average(),
    )
