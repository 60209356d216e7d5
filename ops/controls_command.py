"""``relayq pause`` / ``resume`` / ``paused`` / ``limits``: run-time controls from a shell.

Each connects to a Redis that already runs (``ops.running_redis``); a pause or resume
needs its scope spelled out (``--all`` for the whole namespace), and ``limits`` shows every
limit in force, each marked ``default`` (this shell's settings) or ``override``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from relayq.ops.cli_errors import usage_error
from relayq.ops.controls import Controls, Limits, channel_defaults, default_limits
from relayq.ops.running_redis import running_redis
from relayq.streams.keys import Keys
from relayq.streams.namespace_shape import compare_namespace_sync
from relayq.streams.redis_client import create_sync_client, redis_address, redis_errors
from relayq.streams.settings import Settings

__all__ = ("run_limits", "run_pause", "run_paused")


@contextmanager
def _controls(settings: Settings) -> Iterator[Controls]:
    """Controls on the running Redis; any Redis failure inside names its URL."""
    client = create_sync_client(running_redis(settings))
    try:
        keys = Keys.from_settings(settings)
        with redis_errors(redis_address(client)):
            compare_namespace_sync(client, keys)
            yield Controls(client, keys)
    finally:
        client.close()


def run_pause(settings: Settings, args: argparse.Namespace) -> int:
    """Pause or resume (``args.command``) exactly the scope given; none given is refused."""
    if not (args.all or args.tenant or args.priority or args.channel):
        return usage_error(
            f"`relayq {args.command}` needs a scope: --all (the whole namespace), "
            "--tenant TENANT, --priority PRIORITY or --channel CHANNEL"
        )
    scope_of = {"priority": args.priority, "tenant": args.tenant, "channel": args.channel}
    with _controls(settings) as controls:
        if args.command == "pause":
            changed, scope = True, controls.pause(**scope_of)
            text = f"paused {scope}"
        else:
            changed = controls.resume(**scope_of)
            text, scope = ("resumed" if changed else "was not paused"), None
        paused = controls.paused()
    if getattr(args, "json", False):
        print(json.dumps({"action": args.command, "scope": scope, "changed": changed,
                          "paused": paused}))  # fmt: skip
    else:
        print(text)
        print("paused now: " + (", ".join(paused) or "nothing"))
    return 0


def run_paused(settings: Settings, as_json: bool = False) -> int:
    """List the paused scopes, one a line (read-only)."""
    with _controls(settings) as controls:
        scopes = controls.paused()
        reasons = controls.pause_reasons()
    if as_json:
        print(json.dumps({"paused": scopes, "reasons": reasons}))
    else:
        lines = [f"{s}: {reasons[s]}" if s in reasons else s for s in scopes]
        print("\n".join(lines) if lines else "nothing is paused")
    return 0


def _shown(field: str, value: float) -> str:
    if field != "burst" and value == 0:
        return "off"
    return f"{value:g}/s" if field == "rate" else f"{value:g}"


def describe_limits(overrides: Limits, defaults: Limits) -> str:
    """``cap 10 (override), rate off (default), burst 5 (default)``: each limit in force."""
    parts = []
    for field in ("cap", "rate", "burst"):
        default = getattr(defaults, field)
        if default is None:
            continue
        override = getattr(overrides, field)
        value, source = (default, "default") if override is None else (override, "override")
        parts.append(f"{field} {_shown(field, value)} ({source})")
    return ", ".join(parts)


def _change(controls: Controls, args: argparse.Namespace) -> None:
    values = {"rate": args.rate, "burst": args.burst}
    if args.tenant is not None:
        if args.clear:
            controls.clear_tenant_limits(args.tenant)
        elif args.cap is not None or any(v is not None for v in values.values()):
            controls.set_tenant_limits(args.tenant, cap=args.cap, **values)
    elif args.sender is not None:
        if args.clear:
            controls.clear_sender_limits(args.sender)
        elif any(v is not None for v in values.values()):
            controls.set_sender_limits(args.sender, **values)
    elif args.channel is not None:
        if args.clear:
            controls.clear_channel_limits(args.channel)
        elif args.cap is not None or any(v is not None for v in values.values()):
            controls.set_channel_limits(args.channel, cap=args.cap, **values)
    elif args.clear:
        controls.clear_global_limits()
    elif args.cap is not None or any(v is not None for v in values.values()):
        controls.set_global_limits(cap=args.cap, **values)


def _show(controls: Controls, args: argparse.Namespace, settings: Settings) -> None:
    defaults = default_limits(settings)
    if args.tenant is not None:
        limits = describe_limits(controls.tenant_limits(args.tenant), defaults["tenant"])
        print(f"tenant {args.tenant}: {limits}")
    elif args.sender is not None:
        limits = describe_limits(controls.sender_limits(args.sender), defaults["sender"])
        print(f"sender {args.sender}: {limits}")
    elif args.channel is not None:
        default = channel_defaults(settings, args.channel)
        limits = describe_limits(controls.channel_limits(args.channel), default)
        print(f"channel {args.channel}: {limits}")
    else:
        print(f"global: {describe_limits(controls.global_limits(), defaults['global'])}")
        print(f"each tenant: {describe_limits(Limits(), defaults['tenant'])}")
        print(f"each sender: {describe_limits(Limits(), defaults['sender'])}")
    if not settings.flow_control:
        print("note: flow control is off here (RELAYQ_TENANT_CAP and every RELAYQ_*_RATE 0):")
        print("workers run with these settings ignore every override")
    else:
        print("(default = RELAYQ_* of this shell; workers apply their own environment's)")


def run_limits(settings: Settings, args: argparse.Namespace) -> int:
    """Change limits if asked, then show those of the scope in force."""
    changes = any(v is not None for v in (args.rate, args.burst, args.cap))
    if args.clear and changes:
        return usage_error("--clear takes no --cap, --rate or --burst")
    if args.cap is not None and args.sender is not None:
        return usage_error("--cap is for a --tenant, a --channel or the global limits")
    with _controls(settings) as controls:
        _change(controls, args)
        if getattr(args, "json", False):
            print(json.dumps(_limits_document(controls, args, settings)))
        else:
            _show(controls, args, settings)
    return 0


def _limits_document(
    controls: Controls, args: argparse.Namespace, settings: Settings
) -> dict[str, object]:
    """The overrides in force and this shell's defaults, for ``--json``."""
    defaults = default_limits(settings)
    if args.tenant is not None:
        scope, overrides, default = "tenant", controls.tenant_limits(args.tenant), "tenant"
    elif args.sender is not None:
        scope, overrides, default = "sender", controls.sender_limits(args.sender), "sender"
    elif args.channel is not None:
        defaults["channel"] = channel_defaults(settings, args.channel)
        scope, overrides, default = "channel", controls.channel_limits(args.channel), "channel"
    else:
        scope, overrides, default = "global", controls.global_limits(), "global"
    return {
        "scope": scope,
        "name": args.tenant or args.sender,
        "overrides": msgspec.to_builtins(overrides),
        "defaults": msgspec.to_builtins(defaults[default]),
        "flow_control": settings.flow_control,
    }
