"""``relayq pending, clean, empty, drain, trim, consumers [list|prune], health``.

Parsers only: each handler imports its module when it runs, so ``relayq worker`` pays
nothing for them at start-up.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

__all__ = ("add_repair_commands",)

_RELEASE_HELP = (
    "hand the listed entries back for the partition's next owner, only in partitions whose "
    "lease does not exist: a worker sends only while it holds its partition's lease, so none "
    "can be sending them (a killed worker's lease runs out after the lease TTL); entries of "
    "leased partitions are left alone and counted as held. Released entries stay pending, "
    "in id order, and the next owner reclaims them before anything newer (FIFO kept)"
)


def _duration(text: str) -> float:
    from relayq.ops.durations import duration_argument

    return duration_argument(text)


def _count(text: str) -> int:
    """A whole number >= 0, as an argparse type."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _handler(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """A handler that imports ``relayq.ops.<module>`` when it runs and calls its
    ``function(settings, args)``."""

    def handle(args: argparse.Namespace) -> int:
        from relayq.ops.cli_settings import settings_from_args

        run = getattr(importlib.import_module(f"relayq.ops.{module}"), function)
        code: int = run(settings_from_args(args), args)
        return code

    return handle


_cmd_pending = _handler("pending_command", "run_pending")
_cmd_clean = _handler("cleanup_commands", "run_clean")
_cmd_empty = _handler("cleanup_commands", "run_empty")
_cmd_trim = _handler("cleanup_commands", "run_trim")
_cmd_drain = _handler("drain_command", "run_drain")
_cmd_consumers = _handler("consumers_command", "run_consumers")
_cmd_health = _handler("health_command", "run_health")


def _common(command: argparse.ArgumentParser, json_help: str = "one JSON document") -> None:
    from relayq.ops.cli_settings import add_redis_options

    command.add_argument("--json", action="store_true", help=json_help)
    add_redis_options(command)


def _add_pending(sub: Any) -> None:
    pending = sub.add_parser(
        "pending", help="entries read by a worker and not acknowledged: per partition, "
        "per consumer, and filtered (--release hands some back)",
    )  # fmt: skip
    pending.add_argument("--partition", type=_count, help="only this partition")
    pending.add_argument("--consumer", help="only entries held by this consumer (worker id)")
    pending.add_argument("--tenant", help="only this tenant's entries")
    pending.add_argument(
        "--min-idle", type=_duration, default=0.0, help="idle at least this long (30s, 5m)"
    )
    pending.add_argument(
        "--min-deliveries", type=_count, default=0, help="handed out at least N times"
    )
    pending.add_argument("--limit", type=_positive, default=100, help="most entries listed")
    pending.add_argument("--release", action="store_true", help=_RELEASE_HELP)
    _common(pending)
    pending.set_defaults(handler=_cmd_pending)


def _add_deleting(sub: Any) -> None:
    clean = sub.add_parser(
        "clean", help="delete delivered/dead-lettered outcome records and dead letters "
        "older than --older-than (both kinds unless one is chosen)",
    )  # fmt: skip
    clean.add_argument("--older-than", type=_duration, required=True, help="e.g. 24h, 7d")
    clean.add_argument("--delivered", action="store_true", help="delivered records")
    clean.add_argument(
        "--dead-lettered", action="store_true", help="dead-lettered records and DLQ entries"
    )
    _common(clean)
    clean.set_defaults(handler=_cmd_clean)

    empty = sub.add_parser(
        "empty", help="drop waiting (accepted, not yet read) messages of one tenant or all; "
        "in-flight ones are never touched. Without --yes: say what would go, exit 2",
    )  # fmt: skip
    scope = empty.add_mutually_exclusive_group(required=True)
    scope.add_argument("--tenant", help="this tenant's waiting messages")
    scope.add_argument("--all", action="store_true", help="every tenant's")
    empty.add_argument("--priority", help="only this level (a name or number)")
    empty.add_argument("--yes", action="store_true", help="really remove them")
    _common(empty)
    empty.set_defaults(handler=_cmd_empty)

    trim = sub.add_parser(
        "trim", help="delete acknowledged stream entries now, never past the oldest pending "
        "or unread entry (what workers do as they go)",
    )  # fmt: skip
    _common(trim)
    trim.set_defaults(handler=_cmd_trim)


def _add_consumers(sub: Any) -> None:
    from relayq.ops.cli_settings import add_redis_options

    consumers = sub.add_parser("consumers", help="list the streams' consumers, or prune them")
    _common(consumers)
    actions = consumers.add_subparsers(dest="action")
    # Options repeated after the action are only set when given (SUPPRESS), so that they
    # do not reset what was given before it.
    listing = actions.add_parser(
        "list", help="every consumer: pending, idle, live (default)",
        argument_default=argparse.SUPPRESS,
    )  # fmt: skip
    prune = actions.add_parser(
        "prune", help="delete consumers with nothing pending that are no live worker's",
        argument_default=argparse.SUPPRESS,
    )  # fmt: skip
    prune.add_argument(
        "--idle", type=_duration, default=3600.0, help="idle at least this long (default 1h)"
    )
    for action in (listing, prune):
        action.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        add_redis_options(action)
    consumers.set_defaults(handler=_cmd_consumers, action="list", idle=3600.0)


def _add_watching(sub: Any) -> None:
    drain = sub.add_parser(
        "drain", help="wait until nothing is waiting or in flight (exit 0), or --timeout "
        "runs out (exit 1)",
    )  # fmt: skip
    drain.add_argument("--timeout", type=_duration, help="give up after this long")
    _common(drain)
    drain.set_defaults(handler=_cmd_drain)

    health = sub.add_parser(
        "health", help="exit 0 healthy / 1 unhealthy, naming the failed check: Redis, "
        "namespace shape, a live worker, oldest waiting age",
    )  # fmt: skip
    health.add_argument(
        "--max-oldest-waiting", type=_duration, help="unhealthy when a message waits longer"
    )
    _common(health)
    health.set_defaults(handler=_cmd_health)


def add_repair_commands(sub: Any) -> None:
    """Add the commands to the ``relayq`` parser's subcommands ``sub``."""
    _add_pending(sub)
    _add_deleting(sub)
    _add_consumers(sub)
    _add_watching(sub)
