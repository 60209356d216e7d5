"""How the ``relayq`` command line reports a failure: one line on stderr, never a traceback.

``relayq: error: <what went wrong, naming the value or the Redis>`` and an exit code:

- 2, a usage problem: the command line or the environment must change (a bad flag or
  value, an invalid cron expression, settings that disagree with the namespace);
- 1, a runtime problem: the world must change (Redis unreachable, a port in use).

A reader that closes the pipe early (``relayq env | head -1``) ends the command quietly
with exit 0: the output was wanted only in part, nothing failed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from relayq.streams.errors import RelayqError

# redis-py is imported where a failure is reported, not here: the CLI imports this module
# before a worker has caught its stop signals.

__all__ = (
    "RUNTIME_PROBLEM",
    "USAGE_PROBLEM",
    "CommandError",
    "CommandParser",
    "exit_code",
    "is_operator_problem",
    "report_failure",
    "silence_closed_stdout",
    "usage_error",
)

USAGE_PROBLEM = 2
RUNTIME_PROBLEM = 1


class CommandError(RelayqError):
    """A runtime problem a command met (a port in use): reported as such, exit 1."""


class CommandParser(argparse.ArgumentParser):
    """argparse, with its errors as one ``relayq: error:`` line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        usage_error(f"{message} (see `{self.prog} --help`)")
        sys.exit(USAGE_PROBLEM)


def usage_error(problem: str) -> int:
    """Print ``problem`` as the command's error; the usage exit code."""
    print(f"relayq: error: {problem}", file=sys.stderr)
    return USAGE_PROBLEM


def exit_code(exc: BaseException) -> int:
    """2 for a bad value (ValidationError, ConfigurationError: both ValueErrors), else 1."""
    return USAGE_PROBLEM if isinstance(exc, ValueError) else RUNTIME_PROBLEM


def is_operator_problem(exc: BaseException) -> bool:
    """Whether ``exc`` is something an operator can fix (a value, Redis, the network,
    the machine), reported in one line; anything else is a bug and keeps its traceback."""
    import redis

    return isinstance(exc, RelayqError | ValueError | OSError | redis.exceptions.RedisError)


def report_failure(exc: BaseException) -> int:
    """Print ``exc`` as one error line; its exit code. A redis-py error that escaped the
    commands' own ``redis_errors`` blocks is still named as a Redis failure."""
    import redis

    from relayq.streams.redis_client import redis_failure

    if isinstance(exc, redis.exceptions.RedisError):
        exc = redis_failure("the configured Redis", exc)
    elif isinstance(exc, OSError) and not isinstance(exc, RelayqError):
        exc = CommandError(str(exc))
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"relayq: error: {first_line.rstrip(':')}", file=sys.stderr)
    return exit_code(exc)


def silence_closed_stdout() -> int:
    """After a BrokenPipeError: point stdout at /dev/null so the interpreter's final flush
    does not complain, and end quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
