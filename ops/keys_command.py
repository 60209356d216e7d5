"""``relayq keys create|list|revoke``: the HTTP API's keys (``ops.api_keys``).

``create`` prints the key once (stdout only); nothing else ever shows it: ``list`` shows
key ids, names, roles and tenants, and no command puts a key on stderr or in the log.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import msgspec  # the CLI has imported it already (its settings): free here

if TYPE_CHECKING:  # the CLI imports this module on every start: the rest comes in handlers
    import redis

    from relayq.ops.api_keys import ApiKeyRecord, NewKey, Role
    from relayq.streams.keys import Keys

__all__ = ("add_key_commands",)


def add_key_commands(sub: Any) -> None:
    """Add the commands to the ``relayq`` parser's subcommands ``sub``."""
    from relayq.ops.cli_settings import add_redis_options

    keys_cmd = sub.add_parser("keys", help="create, list or revoke the HTTP API's keys")
    actions = keys_cmd.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", help="make a key and print it, once")
    role = create.add_mutually_exclusive_group(required=True)
    role.add_argument("--tenant", help="a key for this tenant's messages only")
    role.add_argument("--admin", action="store_true", help="a key that may do everything")
    role.add_argument(
        "--read-only", dest="read_only", action="store_true", help="an admin key that only reads"
    )
    create.add_argument("--name", default="", help="what the key is for (shown by `list`)")

    listing = actions.add_parser("list", help="the keys: id, name, role, tenant, created")
    listing.add_argument("--revoked", action="store_true", help="include revoked keys")

    revoke = actions.add_parser("revoke", help="refuse a key from now on (idempotent)")
    revoke.add_argument("key_id", metavar="KEY_ID", help="as `relayq keys list` shows it")

    for command in (create, listing, revoke):
        command.add_argument("--json", action="store_true", help="one JSON document")
        add_redis_options(command)
        command.set_defaults(handler=_run_keys)


def _role(args: argparse.Namespace) -> Role:
    if args.admin:
        return "admin"
    return "read" if args.read_only else "tenant"


def _run_keys(args: argparse.Namespace) -> int:
    from relayq.ops.api_keys import is_key_id, new_key
    from relayq.ops.cli_errors import usage_error
    from relayq.ops.repair_log import cli_actor

    # Usage problems first: they do not depend on which Redis answers.
    if args.action == "revoke" and not is_key_id(args.key_id):
        # Never echo the value: an operator may have pasted a key instead of its id.
        return usage_error("invalid KEY_ID: must be the 12 hex digits `relayq keys list` shows")
    new = None
    if args.action == "create":
        new = new_key(role=_role(args), created_by=cli_actor(), tenant=args.tenant, name=args.name)
    return _with_redis(args, new)


def _with_redis(args: argparse.Namespace, new: NewKey | None) -> int:
    from relayq.ops.cli_settings import settings_from_args
    from relayq.ops.running_redis import running_redis
    from relayq.streams.keys import Keys
    from relayq.streams.redis_client import create_sync_client, redis_address, redis_errors

    settings = running_redis(settings_from_args(args))
    keys = Keys.from_settings(settings)
    client = create_sync_client(settings)
    try:
        with redis_errors(redis_address(client)):
            if new is not None:
                return _create(client, keys, new, args.json)
            if args.action == "list":
                return _list(client, keys, args)
            return _revoke(client, keys, args)
    finally:
        client.close()


def _create(client: redis.Redis, keys: Keys, new: NewKey, as_json: bool) -> int:
    from relayq.ops.api_keys import store_key
    from relayq.ops.repair_log import RepairEntry, log_repair

    store_key(client, keys, new)
    record = new.record
    scope = f"key_id={record.key_id} role={record.role}" + (
        f" tenant={record.tenant}" if record.tenant is not None else ""
    )
    log_repair(
        client,
        keys,
        RepairEntry(actor=record.created_by, action="keys.create", scope=scope, count=1),
    )
    if as_json:
        document = {"key": new.key, **msgspec.structs.asdict(record)}
        print(msgspec.json.encode(document).decode())
        return 0
    _print_table([record], revoked=False)
    print(f"\nThe key, shown this once (store it now; relayq keeps only its hash):\n{new.key}")
    return 0


def _list(client: redis.Redis, keys: Keys, args: argparse.Namespace) -> int:
    from relayq.ops.api_keys import list_keys

    records = list_keys(client, keys, revoked=args.revoked)
    if args.json:
        print(msgspec.json.encode(records).decode())
    elif records:
        _print_table(records, revoked=args.revoked)
    else:
        print("no keys" if args.revoked else "no active keys (`--revoked` shows revoked ones)")
    return 0


def _revoke(client: redis.Redis, keys: Keys, args: argparse.Namespace) -> int:
    from relayq.ops.api_keys import revoke_key
    from relayq.ops.cli_errors import CommandError
    from relayq.ops.repair_log import RepairEntry, cli_actor, log_repair

    actor = cli_actor()
    outcome = revoke_key(client, keys, args.key_id, revoked_by=actor)
    if outcome == "unknown":
        raise CommandError(f"no key has id {args.key_id!r} (`relayq keys list` shows the ids)")
    count = 1 if outcome == "revoked" else 0
    entry = RepairEntry(
        actor=actor, action="keys.revoke", scope=f"key_id={args.key_id}", count=count
    )
    log_repair(client, keys, entry)
    if args.json:
        print(msgspec.json.encode({"key_id": args.key_id, "outcome": outcome}).decode())
    else:
        print(f"{outcome} {args.key_id}" if count else f"{args.key_id} was already revoked")
    return 0


def _utc(ms: int | None) -> str:
    import datetime as dt

    if ms is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_table(records: list[ApiKeyRecord], *, revoked: bool) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table()
    columns = ["key id", "name", "role", "tenant", "created", "created by"]
    for column in [*columns, "revoked"] if revoked else columns:
        table.add_column(column)
    for record in records:
        row = [
            record.key_id,
            record.name,
            record.role,
            record.tenant or "-",
            _utc(record.created_ms),
            record.created_by,
        ]
        table.add_row(*row, *([_utc(record.revoked_ms)] if revoked else []))
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(table)
