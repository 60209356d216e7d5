"""Run one measurement in a fresh Python process and get its result back as JSON.

Client-side loops (producers, raw ceilings) run in a child so they own an interpreter and
its GIL, as they would in production, instead of sharing the runner's (which draws the
progress display). ``python -m bench.child module:function '<json kwargs>'`` calls the
function and prints ``BENCH_RESULT <json>`` on its last line; :func:`run_child` does that
in a subprocess, bounded in time, and decodes the result.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from bench.processes import ProcessGroup, child_env, python_argv

__all__ = ("ChildError", "main", "run_child")

_MARK = "BENCH_RESULT "


class ChildError(RuntimeError):
    """The child failed or timed out; the message ends with its output's tail."""


def run_child(
    target: str,
    kwargs: Mapping[str, Any],
    *,
    timeout: float,
    log: Path,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Call ``target`` (``module:function``) with ``kwargs`` in a child; return its result."""
    argv = python_argv("-m", "bench.child", target, msgspec.json.encode(dict(kwargs)).decode())
    with ProcessGroup() as group:
        proc = group.spawn(argv, env=child_env(env), stdout=subprocess.PIPE)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            group.stop(proc)
            raise ChildError(f"{target} did not finish within {timeout:.0f} s") from None
    text = out.decode(errors="replace")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        handle.write(f"== {target} {dict(kwargs)}\n{text}\n")
    for line in reversed(text.splitlines()):
        if line.startswith(_MARK):
            return msgspec.json.decode(line[len(_MARK) :])
    raise ChildError(f"{target} failed (exit {proc.returncode}): {text[-1500:]}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target, raw = args[0], args[1] if len(args) > 1 else "{}"
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = function(**msgspec.json.decode(raw))
    sys.stdout.write(_MARK + msgspec.json.encode(result).decode() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
