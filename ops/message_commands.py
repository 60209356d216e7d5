"""``relayq message show ID`` and ``message list --state S``, ``relayq events [--follow]``,
``relayq send --file`` and ``relayq batch show ID``: where messages are, what happens to
them as it happens, and bulk sends with their progress."""

from __future__ import annotations

import argparse
from typing import Any

from relayq.ops.cli_settings import add_redis_options, settings_from_args

__all__ = ("add_message_commands",)


def _cmd_message_show(args: argparse.Namespace) -> int:
    from relayq.ops.message_view import show_message

    return show_message(settings_from_args(args), args.message_id, as_json=args.json)


def _cmd_message_list(args: argparse.Namespace) -> int:
    from relayq.ops.cli_errors import usage_error
    from relayq.ops.message_list_view import print_message_page

    if args.state is None and args.conversation is None and args.recipient is None:
        return usage_error("message list needs --state, or --conversation / --recipient")

    return print_message_page(
        settings_from_args(args),
        args.state,
        tenant=args.tenant,
        conversation=args.conversation,
        recipient=args.recipient,
        limit=args.limit,
        after=args.after,
        order=args.order,
        as_json=args.json,
    )


def _cmd_events(args: argparse.Namespace) -> int:
    from relayq.ops.message_view import print_events

    return print_events(
        settings_from_args(args),
        after=args.after,
        follow=args.follow,
        limit=args.limit,
        as_json=args.json,
    )


def _cmd_send(args: argparse.Namespace) -> int:
    from pathlib import Path

    from relayq.ops.batch_view import send_file

    return send_file(settings_from_args(args), Path(args.file), as_json=args.json)


def _cmd_batch_show(args: argparse.Namespace) -> int:
    from relayq.ops.batch_view import follow_batch

    return follow_batch(
        settings_from_args(args), args.batch_id, follow=args.follow, as_json=args.json
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_message_commands(sub: Any) -> None:
    """Add the commands to the ``relayq`` parser's subcommands ``sub``."""
    message = sub.add_parser("message", help="one message: where it is now")
    actions = message.add_subparsers(dest="action", required=True)
    show = actions.add_parser(
        "show", help="a message's state by id: waiting, delayed, in flight, retrying, ..."
    )
    show.add_argument("message_id", help="the id send() returned")
    show.add_argument("--json", action="store_true", help="one JSON document")
    add_redis_options(show)
    show.set_defaults(handler=_cmd_message_show)
    _add_message_list(actions)

    events = sub.add_parser(
        "events", help="outcome events: delivered, retrying, throttled, dead-lettered"
    )
    events.add_argument("--follow", "-f", action="store_true", help="wait for new events")
    events.add_argument(
        "--after",
        help="an event's cursor (resume just after it) or 'start' (every event kept); "
        "default: every event kept, or with --follow only new ones",
    )
    events.add_argument("--limit", type=_positive, help="stop after this many events")
    events.add_argument("--json", action="store_true", help="one JSON document per line")
    add_redis_options(events)
    events.set_defaults(handler=_cmd_events)
    _add_batch_commands(sub)


_STATES = ("waiting", "in_flight", "delayed", "delivered", "dead_lettered")
_ORDERS = ("newest", "oldest")
"""ops.message_listing.ORDERS (not imported here: the CLI starts without redis-py)."""


def _add_message_list(actions: Any) -> None:
    listing = actions.add_parser(
        "list",
        help="one page of messages in a state, or finished ones of a conversation or "
        "recipient (the next page: --after the cursor)",
    )
    listing.add_argument(
        "--state", choices=_STATES, help="which messages (required unless searching)"
    )
    listing.add_argument("--conversation", help="the finished messages of this conversation")
    listing.add_argument("--recipient", help="the finished messages sent to this recipient")
    listing.add_argument("--tenant", help="that tenant's only")
    listing.add_argument("--limit", type=_page_size, default=50, help="at most this many (1-1000)")
    listing.add_argument("--after", help="the cursor a previous page printed")
    listing.add_argument(
        "--order",
        choices=_ORDERS,
        help="delivered, dead_lettered, delayed: newest or oldest first (default: newest; "
        "delayed: soonest due)",
    )
    listing.add_argument("--json", action="store_true", help="the page as one JSON document")
    add_redis_options(listing)
    listing.set_defaults(handler=_cmd_message_list)


def _page_size(text: str) -> int:
    from relayq.ops.message_page import MAX_PAGE

    value = _positive(text)
    if value > MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_PAGE}, got {value}")
    return value


def _add_batch_commands(sub: Any) -> None:
    send = sub.add_parser("send", help="send every message of a JSONL file as one batch")
    send.add_argument(
        "--file",
        required=True,
        help="one JSON object per line: tenant, conversation, recipient, payload and any "
        "other send() field",
    )
    send.add_argument("--json", action="store_true", help="one JSON summary")
    add_redis_options(send)
    send.set_defaults(handler=_cmd_send)

    batch = sub.add_parser("batch", help="a batch's progress (send_many, relayq send)")
    actions = batch.add_subparsers(dest="action", required=True)
    show = actions.add_parser(
        "show", help="total / delivered / failed / pending and the estimated finish"
    )
    show.add_argument("batch_id", help="the id send_many or relayq send gave")
    show.add_argument("--follow", "-f", action="store_true", help="until it is done")
    show.add_argument("--json", action="store_true", help="JSON (a line per read with --follow)")
    add_redis_options(show)
    show.set_defaults(handler=_cmd_batch_show)
