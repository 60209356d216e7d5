"""``relayq dlq list|show|replay|delete|purge``: the dead letters, read and repaired.

Dead letters are named ``<partition>-<entry id>`` (``dlq list`` shows them); ``show``,
``replay`` and ``delete`` also take a bare entry id or a dead-lettered message's id. The
work is in ``ops.dead_letter_inspection`` and ``ops.dead_letter_repair``, imported when a
command runs (the CLI's start-up stays light).
"""

from __future__ import annotations

import argparse
import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from relayq.ops.dead_letter_inspection import DeadLetter, DeadLetterFilter, DeadLetterPage
    from relayq.ops.dead_letter_repair import DeadLetterRepair, ReplayReport

__all__ = ("KINDS", "add_dlq_commands")

KINDS = ("permanent", "exhausted", "stalled", "poison")
"""The dead-letter kinds (``consumers.dead_letters.DeadLetterKind``; a test keeps them equal)."""

_ID = re.compile(r"^[^\s\x00-\x1f]{1,64}$")
_CURSOR = re.compile(r"^\d+-\d+-\d+$")


# -- argument types (argparse names the flag in its error: "argument --older-than: ...") --


def _ago_ms(text: str) -> int:
    """A duration (``ops.durations``: 90s, 2h, 7d) before now, as Unix ms."""
    from relayq.ops.durations import duration_argument

    return round((time.time() - duration_argument(text)) * 1000)


def _moment_ms(text: str) -> int:
    """An ISO 8601 time (UTC unless it says otherwise) or a duration before now: Unix ms."""
    from datetime import UTC, datetime

    from relayq.ops.durations import parse_duration

    try:
        return round((time.time() - parse_duration(text)) * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO 8601 time (2026-12-03T10:00:00Z) nor a duration "
            "before now (2h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _dlq_id(text: str) -> str:
    if not _ID.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a dead-letter id (<partition>-<ms>-<seq>) nor a message id"
        )
    return text


def _cursor(text: str) -> str:
    if not _CURSOR.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a cursor (the 'next' of a page: <partition>-<ms>-<seq>)"
        )
    return text


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a page size from 1 to 10000")
    return value


# -- the parser ---------------------------------------------------------------------------


def _add_common(command: argparse.ArgumentParser, *, json_help: str = "one JSON document") -> None:
    from relayq.ops.cli_settings import add_redis_options

    command.add_argument("--json", action="store_true", help=json_help)
    add_redis_options(command)


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--tenant", help="only this tenant's dead letters")
    command.add_argument("--conversation", help="only this conversation's")
    command.add_argument("--kind", choices=KINDS, help="only dead letters of this kind")
    command.add_argument(
        "--since", type=_moment_ms, dest="since_ms", metavar="TIME",
        help="dead-lettered at or after: ISO 8601 time (UTC) or a duration ago (2h)",
    )  # fmt: skip
    until = command.add_mutually_exclusive_group()
    until.add_argument(
        "--until", type=_moment_ms, dest="until_ms", metavar="TIME",
        help="dead-lettered before: ISO 8601 time (UTC) or a duration ago",
    )  # fmt: skip
    until.add_argument(
        "--older-than", type=_ago_ms, dest="until_ms", metavar="DURATION",
        help="dead-lettered longer ago than this (90s, 2h, 7d)",
    )  # fmt: skip


def add_dlq_commands(sub: Any) -> None:
    """Add the commands to the ``relayq`` parser's subcommands ``sub``."""
    dlq = sub.add_parser("dlq", help="list, show, replay, delete or purge dead letters")
    actions = dlq.add_subparsers(dest="dlq_action", required=True)

    listing = actions.add_parser("list", help="dead letters, a page at a time (filters)")
    _add_filters(listing)
    listing.add_argument("--limit", type=_page_size, default=50, metavar="N", help="page size (50)")
    listing.add_argument(
        "--after", type=_cursor, metavar="CURSOR", help="the cursor a page ended with"
    )
    _add_common(listing, json_help='{"items": [...], "next": cursor or null}')
    listing.set_defaults(handler=_cmd_list)

    show = actions.add_parser("show", help="one dead letter: why, and the message it holds")
    show.add_argument("dlq_id", metavar="DLQ_ID", type=_dlq_id, help="or a message id")
    _add_common(show)
    show.set_defaults(handler=_cmd_show)

    replay = actions.add_parser(
        "replay", help="queue dead letters again (ids, a filter or --all), exactly once"
    )
    replay.add_argument("dlq_ids", metavar="DLQ_ID", nargs="*", type=_dlq_id)
    _add_filters(replay)
    replay.add_argument("--all", action="store_true", help="every dead letter (needs --yes)")
    replay.add_argument("--yes", action="store_true", help="confirm --all")
    _add_common(replay)
    replay.set_defaults(handler=_cmd_replay)

    delete = actions.add_parser("delete", help="delete dead letters for good")
    delete.add_argument("dlq_ids", metavar="DLQ_ID", nargs="+", type=_dlq_id)
    _add_common(delete)
    delete.set_defaults(handler=_cmd_delete)

    purge = actions.add_parser("purge", help="delete the dead letters older than a duration")
    purge.add_argument(
        "--older-than", type=_ago_ms, dest="until_ms", metavar="DURATION", required=True,
        help="dead-lettered longer ago than this (90s, 2h, 7d)",
    )  # fmt: skip
    purge.add_argument("--tenant", help="only this tenant's dead letters")
    purge.add_argument("--yes", action="store_true", help="confirm (required)")
    _add_common(purge)
    purge.set_defaults(handler=_cmd_purge)


# -- running a command --------------------------------------------------------------------


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    from relayq.ops.dead_letter_inspection import DeadLetterFilter

    return DeadLetterFilter(
        tenant=args.tenant,
        conversation=getattr(args, "conversation", None),
        kind=getattr(args, "kind", None),
        since_ms=getattr(args, "since_ms", None),
        until_ms=args.until_ms,
    )


def _with_repair(
    args: argparse.Namespace, work: Callable[[DeadLetterRepair], Awaitable[int]]
) -> int:
    """Run ``work`` against the namespace's Redis (``ops.command_session``: one that runs
    now, of the namespace's shape); a Redis failure becomes one error line, exit 1."""
    from redis.asyncio import Redis

    from relayq.ops.cli_settings import settings_from_args
    from relayq.ops.command_session import run_work
    from relayq.ops.dead_letter_repair import DeadLetterRepair
    from relayq.ops.repair_log import cli_actor
    from relayq.streams.keys import Keys
    from relayq.streams.redis_client import redis_address, redis_errors

    settings = settings_from_args(args)

    async def session(client: Redis, keys: Keys) -> int:
        with redis_errors(redis_address(client)):
            repair = DeadLetterRepair(
                client,
                keys,
                admission_window=settings.read_count,
                actor=cli_actor(),
                records=settings.outcome_records,
            )
            return await work(repair)

    return run_work(settings, session)


def _print_json(document: Any) -> None:
    import msgspec

    print(msgspec.json.encode(document).decode())


def _console() -> Any:
    import sys

    from rich.console import Console

    # Piped or captured, rich would wrap a table at 80 columns, breaking its rows.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) if ms else "-"


# -- list ---------------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    async def work(repair: DeadLetterRepair) -> int:
        from relayq.ops.dead_letter_inspection import read_page

        page = await read_page(
            repair.client, repair.keys, _filter(args), limit=args.limit, after=args.after
        )
        _show_page(page, as_json=args.json)
        return 0

    return _with_repair(args, work)


def _show_page(page: DeadLetterPage, *, as_json: bool) -> None:
    from rich.table import Table

    from relayq.ops.dead_letter_inspection import letter_view

    if as_json:
        _print_json({"items": [letter_view(item) for item in page.items], "next": page.next})
        return
    table = Table(title="dead letters")
    for column in ("id", "dead-lettered (UTC)", "tenant", "conversation", "level", "kind"):
        table.add_column(column)
    table.add_column("attempts", justify="right")
    table.add_column("error")
    table.add_column("message")
    for letter in page.items:
        view = letter_view(letter)
        table.add_row(
            view["id"], _when(int(view["dlq_id"].split("-")[0])),
            view["tenant"] or "-", view["conversation"] or "-", view["priority"] or "-",
            view["kind"], str(view["attempts"]), view["error"][:60],
            view["message_id"] or "(poison: no message)",
        )  # fmt: skip
    console = _console()
    console.print(table)
    if page.next is not None:
        console.print(f"more: --after {page.next}")


# -- show ---------------------------------------------------------------------------------


def _cmd_show(args: argparse.Namespace) -> int:
    async def work(repair: DeadLetterRepair) -> int:
        from relayq.ops.dead_letter_inspection import letter_view

        letter = await _find(repair, args.dlq_id)
        if letter is None:
            from relayq.ops.cli_errors import CommandError

            raise CommandError(f"no dead letter {args.dlq_id!r} (replayed, deleted, or never)")
        view = letter_view(letter, detail=True)
        if args.json:
            _print_json(view)
        else:
            _show_detail(view)
        return 0

    return _with_repair(args, work)


async def _find(repair: DeadLetterRepair, text: str) -> DeadLetter | None:
    from relayq.ops.dead_letter_inspection import read_dead_letter

    ref = await _resolve(repair, text)
    return None if ref is None else await read_dead_letter(repair.client, repair.keys, ref)


async def _resolve(repair: DeadLetterRepair, text: str) -> str | None:
    from relayq.ops.dead_letter_inspection import resolve_ref

    try:
        return await resolve_ref(repair.client, repair.keys, text)
    except ValueError as exc:
        raise ValueError(f"DLQ_ID: {exc}") from None


def _show_detail(view: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(show_header=False, title=f"dead letter {view['id']}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in view.items():
        shown = _when(value) if name.endswith("_ms") and isinstance(value, int) else value
        table.add_row(name, "-" if shown is None else str(shown))
    _console().print(table)


# -- replay -------------------------------------------------------------------------------


def _replay_mode(args: argparse.Namespace) -> str | None:
    """The replay asked for: "ids", "all" or "filter"; None (after an error line) for a
    bad combination."""
    from relayq.ops.cli_errors import usage_error

    filtered = any(
        getattr(args, name) is not None
        for name in ("tenant", "conversation", "kind", "since_ms", "until_ms")
    )
    if args.all and (args.dlq_ids or filtered):
        usage_error("--all: replays every dead letter; give no DLQ_ID or filter with it")
    elif args.all and not args.yes:
        usage_error("--all: replays every dead letter; add --yes to confirm")
    elif args.dlq_ids and filtered:
        usage_error("DLQ_ID: name dead letters or give filters (--tenant, ...), not both")
    elif not (args.all or args.dlq_ids or filtered):
        usage_error("replay: name DLQ_IDs, give filters (--tenant, --kind, ...) or --all")
    else:
        return "all" if args.all else "ids" if args.dlq_ids else "filter"
    return None


def _cmd_replay(args: argparse.Namespace) -> int:
    from relayq.ops.cli_errors import USAGE_PROBLEM

    mode = _replay_mode(args)
    if mode is None:
        return USAGE_PROBLEM

    async def work(repair: DeadLetterRepair) -> int:
        from relayq.ops.dead_letter_inspection import count_dead_letters

        if mode == "ids":
            refs, missing = await _resolve_all(repair, args.dlq_ids)
            with _Bar(args, len(args.dlq_ids)) as progress:
                report = await repair.replay_ids(refs, progress)
            report.gone += missing
        else:
            total = await count_dead_letters(repair.client, repair.keys) if mode == "all" else None
            with _Bar(args, total) as progress:
                report = await repair.replay_matching(_filter(args), progress)
        _show_replay(report, as_json=args.json)
        return 0

    return _with_repair(args, work)


async def _resolve_all(repair: DeadLetterRepair, texts: list[str]) -> tuple[list[str], int]:
    """The references of ``texts`` (repeats once) and how many name nothing any more."""
    refs: list[str] = []
    missing = 0
    for text in dict.fromkeys(texts):
        ref = await _resolve(repair, text)
        if ref is None:
            missing += 1
        elif ref not in refs:
            refs.append(ref)
    return refs, missing


def _show_replay(report: ReplayReport, *, as_json: bool) -> None:
    if as_json:
        _print_json(report)
        return
    console = _console()
    for refusal in report.refused:
        console.print(f"not replayed {refusal.id}: {refusal.reason}", markup=False)
    console.print(
        f"replayed {report.replayed:,}; already gone (replayed or deleted before) "
        f"{report.gone:,}; not replayable {len(report.refused):,}"
    )


class _Bar:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, args: argparse.Namespace, total: int | None) -> None:
        import sys

        self.total = total
        self.progress: Any = None
        if sys.stdout.isatty() and not args.json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn())
            self.progress = Progress(*columns, transient=True)

    def __call__(self, handled: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=handled)

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("replay", total=self.total)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


# -- delete, purge ------------------------------------------------------------------------


def _cmd_delete(args: argparse.Namespace) -> int:
    async def work(repair: DeadLetterRepair) -> int:
        refs, missing = await _resolve_all(repair, args.dlq_ids)
        report = await repair.delete_ids(refs)
        report.gone += missing
        if args.json:
            _print_json(report)
        else:
            _console().print(f"deleted {report.deleted:,}; already gone {report.gone:,}")
        return 0

    return _with_repair(args, work)


def _cmd_purge(args: argparse.Namespace) -> int:
    from relayq.ops.cli_errors import USAGE_PROBLEM, usage_error

    if not args.yes:
        usage_error("--yes: purge deletes dead letters for good; add --yes to confirm")
        return USAGE_PROBLEM

    async def work(repair: DeadLetterRepair) -> int:
        deleted = await repair.purge(_filter(args))
        if args.json:
            _print_json({"deleted": deleted, "before_ms": args.until_ms})
        else:
            _console().print(
                f"purged {deleted:,} dead letters from before {_when(args.until_ms)} UTC"
            )
        return 0

    return _with_repair(args, work)
