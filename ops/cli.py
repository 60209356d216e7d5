"""The ``relayq`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from relayq.ops.api_command import add_api_command
from relayq.ops.cli_errors import (
    CommandParser,
    is_operator_problem,
    report_failure,
    silence_closed_stdout,
)
from relayq.ops.cli_settings import add_redis_options, settings_from_args
from relayq.ops.dlq_command import add_dlq_commands
from relayq.ops.early_signals import EarlySignals
from relayq.ops.keys_command import add_key_commands
from relayq.ops.message_commands import add_message_commands
from relayq.ops.repair_commands import add_repair_commands
from relayq.ops.systemd_command import add_systemd_command
from relayq.streams.settings import Settings

# streams.logging_setup (structlog) is imported in main(), after a worker's stop signals
# are caught: it alone took ~0.4 s of a worker's start-up.

__all__ = ("main",)


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args)


def _cmd_worker(args: argparse.Namespace) -> int:
    from relayq.ops.worker_command import run_worker

    return run_worker(_settings(args), burst=args.burst, early=args.early_signals)


def _cmd_demo(args: argparse.Namespace) -> int:
    from relayq.ops.demo import DemoOptions, run_demo

    options = DemoOptions(
        messages=args.messages,
        conversations=args.conversations,
        tenants=args.tenants,
        workers=args.workers,
        fail_rate=args.fail_rate,
        throttle_rate=args.throttle_rate,
        data_dir=args.data_dir or str(Settings.from_env().data_path / "demo"),
        timeout=args.timeout,
        tenant_cap=args.tenant_cap,
        global_rate=args.global_rate,
        channel=args.channel,
    )
    return run_demo(options)


def _cmd_provider(args: argparse.Namespace) -> int:
    from relayq.ops.provider_command import run_provider

    return run_provider(
        args.port,
        args.fail_rate,
        args.throttle_rate,
        args.retry_after,
        args.latency,
        status_callbacks=not args.no_status_callbacks,
    )


def _cmd_redis(args: argparse.Namespace) -> int:
    from relayq.streams.redis_server import ensure_embedded_redis, stop_embedded_redis

    settings = Settings.from_env()
    if args.action == "start":
        print(ensure_embedded_redis(settings.data_path))
        return 0
    stopped = stop_embedded_redis(settings.data_path)
    print("stopped" if stopped else "not running")
    return 0


def _cmd_pause(args: argparse.Namespace) -> int:
    from relayq.ops.controls_command import run_pause

    return run_pause(_settings(args), args)


def _cmd_paused(args: argparse.Namespace) -> int:
    from relayq.ops.controls_command import run_paused

    return run_paused(_settings(args), args.json)


def _cmd_status(args: argparse.Namespace) -> int:
    from relayq.ops.status_command import run_status

    return run_status(_settings(args), args)


def _cmd_limits(args: argparse.Namespace) -> int:
    from relayq.ops.controls_command import run_limits

    return run_limits(_settings(args), args)


def _cmd_schedules(args: argparse.Namespace) -> int:
    from relayq.ops.running_redis import running_redis
    from relayq.ops.schedules_command import check_arguments, run_schedules

    check_arguments(args)
    return run_schedules(running_redis(_settings(args)), args)


def _cmd_env(args: argparse.Namespace) -> int:
    from relayq.ops.env_command import run_env

    return run_env(as_json=args.json)


def _add_redis_options(command: argparse.ArgumentParser) -> None:
    add_redis_options(command)


def _add_control_commands(sub: Any) -> None:
    for name, text in (("pause", "pause sending"), ("resume", "resume after a pause")):
        cmd = sub.add_parser(
            name, help=f"{text}: --all, one --priority, one --tenant or one --channel"
        )
        scope = cmd.add_mutually_exclusive_group()
        scope.add_argument("--all", action="store_true", help="the whole namespace")
        scope.add_argument("--tenant")
        scope.add_argument("--channel", help="one channel (whatsapp, sms, email...)")
        scope.add_argument("--priority", help="a level's name or number (RELAYQ_PRIORITIES)")
        cmd.add_argument("--json", action="store_true", help="one JSON document")
        _add_redis_options(cmd)
        cmd.set_defaults(handler=_cmd_pause)
    status = sub.add_parser(
        "status", help="exact counts per priority and tenant: waiting, in flight, delivered..."
    )
    status.add_argument("--tenant", help="only this tenant's rows")
    status.add_argument("--json", action="store_true", help="one JSON document")
    _add_redis_options(status)
    status.set_defaults(handler=_cmd_status)
    paused = sub.add_parser("paused", help="list what is paused (changes nothing)")
    paused.add_argument("--json", action="store_true", help="one JSON document")
    _add_redis_options(paused)
    paused.set_defaults(handler=_cmd_paused)

    limits = sub.add_parser(
        "limits",
        help="show or change limits at run time (global, one --tenant's, --sender's or "
        "--channel's)",
    )
    scope = limits.add_mutually_exclusive_group()
    scope.add_argument("--tenant", help="change this tenant's limits (else the global ones)")
    scope.add_argument("--sender", help="change this sender's rate and burst")
    scope.add_argument("--channel", help="change this channel's cap, rate and burst")
    limits.add_argument(
        "--cap", type=int, help="sends in flight at once, over all workers (not --sender; 0 = off)"
    )
    limits.add_argument("--rate", type=float, help="sends per second (0 = off)")
    limits.add_argument("--burst", type=int, help="sends at once before the rate applies")
    limits.add_argument("--clear", action="store_true", help="back to the workers' defaults")
    limits.add_argument("--json", action="store_true", help="one JSON document")
    _add_redis_options(limits)
    limits.set_defaults(handler=_cmd_limits)


def _add_schedule_commands(sub: Any) -> None:
    schedules = sub.add_parser("schedules", help="list, add or remove repeatable messages")
    schedules.add_argument("--json", action="store_true", help="JSON instead of lines")
    _add_redis_options(schedules)
    actions = schedules.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="every schedule and its next due time (the default)")
    remove = actions.add_parser("remove", help="stop and delete a schedule")
    remove.add_argument("name")
    add = actions.add_parser("add", help="create or replace a schedule")
    add.add_argument("name")
    for action in (listing, remove, add):  # also after the action; SUPPRESS keeps an earlier one
        action.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="JSON instead of lines"
        )
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", type=float, help="seconds between firings")
    when.add_argument("--cron", help="five-field cron expression, UTC")
    for field in ("tenant", "conversation", "recipient"):
        add.add_argument(f"--{field}", required=True)
    add.add_argument("--sender", help="the provider-side sending identity (optional)")
    add.add_argument("--payload", default="{}", help="JSON document")
    add.add_argument(
        "--priority", help="a level's name or number (default: normal, else the lowest level)"
    )
    schedules.set_defaults(handler=_cmd_schedules, action="list")


def _parser() -> argparse.ArgumentParser:
    parser = CommandParser(prog="relayq", description=__doc__)
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run a worker process")
    worker.add_argument("--burst", action="store_true", help="exit once everything is delivered")
    worker.add_argument("--deliverer", help="webhook | channels | sink | noop | module:factory")
    worker.add_argument("--webhook-url", dest="webhook_url")
    worker.add_argument("--concurrency", type=int)
    _add_redis_options(worker)
    worker.set_defaults(handler=_cmd_worker)

    demo = sub.add_parser("demo", help="run the end-to-end demo on an embedded Redis")
    demo.add_argument("--messages", type=int, default=20_000)
    demo.add_argument("--conversations", type=int, default=2_000)
    demo.add_argument("--tenants", type=int, default=50)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--fail-rate", type=float, default=0.05)
    demo.add_argument("--throttle-rate", type=float, default=0.01)
    demo.add_argument("--tenant-cap", type=int, default=5, help="sends in flight per tenant")
    demo.add_argument("--global-rate", type=float, default=0.0, help="sends/s (0 = off)")
    demo.add_argument("--data-dir", help="emptied first; default: RELAYQ_DATA_DIR/demo")
    demo.add_argument("--timeout", type=float, default=300.0)
    demo.add_argument(
        "--channel",
        choices=("webhook", "whatsapp", "sms", "email", "mixed"),
        default="webhook",
        help="deliver to the local webhook (default) or through the WhatsApp, Twilio (sms) "
        "and SendGrid (email) adapters to the local provider's fakes; mixed: all three",
    )
    demo.set_defaults(handler=_cmd_demo)

    provider = sub.add_parser(
        "provider",
        help="run the local test provider on 127.0.0.1: a webhook and fakes of WhatsApp, "
        "Twilio and SendGrid (prints the RELAYQ_* variables that use them)",
    )
    provider.add_argument("--port", type=int, default=8900)
    provider.add_argument("--fail-rate", type=float, default=0.0)
    provider.add_argument("--throttle-rate", type=float, default=0.0)
    provider.add_argument("--retry-after", type=float, default=1.0)
    provider.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    provider.add_argument(
        "--no-status-callbacks",
        action="store_true",
        help="the Twilio fake sends no status callbacks (they cost the provider CPU)",
    )
    provider.set_defaults(handler=_cmd_provider)

    redis_cmd = sub.add_parser("redis", help="start or stop the embedded redis-server")
    redis_cmd.add_argument("action", choices=("start", "stop"))
    redis_cmd.set_defaults(handler=_cmd_redis)

    _add_control_commands(sub)
    _add_schedule_commands(sub)
    add_message_commands(sub)
    add_dlq_commands(sub)
    add_repair_commands(sub)
    add_key_commands(sub)
    add_api_command(sub)
    add_systemd_command(sub)

    env = sub.add_parser("env", help="the settings in force and where each came from")
    env.add_argument("--json", action="store_true", help="one JSON document")
    env.set_defaults(handler=_cmd_env)
    return parser


def _run(args: argparse.Namespace) -> int:
    from relayq.streams.logging_setup import configure_logging

    configure_logging(args.log_level)
    code: int = args.handler(args)
    sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.handler is _cmd_worker:
        args.early_signals = EarlySignals().catch()
    try:
        return _run(args)
    except BrokenPipeError:
        return silence_closed_stdout()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not is_operator_problem(exc):
            raise  # a bug: its traceback is what a report needs
        return report_failure(exc)


if __name__ == "__main__":
    sys.exit(main())
