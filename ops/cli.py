"""The ``relayq`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from streams.errors import RelayqError
from streams.logging_setup import configure_logging
from streams.settings import ENVIRONMENT, Settings

__all__ = ("main",)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for field in ("concurrency", "deliverer", "webhook_url", "redis_url", "namespace"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return Settings.from_env(**overrides)


def _cmd_worker(args: argparse.Namespace) -> int:
    from ops.worker_command import run_worker

    return run_worker(_settings(args), burst=args.burst)


def _cmd_demo(args: argparse.Namespace) -> int:
    from ops.demo import DemoOptions, run_demo

    options = DemoOptions(
        messages=args.messages,
        conversations=args.conversations,
        tenants=args.tenants,
        workers=args.workers,
        fail_rate=args.fail_rate,
        throttle_rate=args.throttle_rate,
        data_dir=args.data_dir,
        timeout=args.timeout,
    )
    return run_demo(options)


def _cmd_provider(args: argparse.Namespace) -> int:
    from ops.provider_command import run_provider

    return run_provider(
        args.port, args.fail_rate, args.throttle_rate, args.retry_after, args.latency
    )


def _cmd_redis(args: argparse.Namespace) -> int:
    from streams.redis_server import ensure_embedded_redis, stop_embedded_redis

    settings = Settings.from_env()
    if args.action == "start":
        print(ensure_embedded_redis(settings.data_path))
        return 0
    stopped = stop_embedded_redis(settings.data_path)
    print("stopped" if stopped else "not running")
    return 0


def _cmd_env(_args: argparse.Namespace) -> int:
    for variable, (field, _parse, doc) in ENVIRONMENT.items():
        default = getattr(Settings(), field)
        print(f"{variable:34} {doc} (default: {default})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relayq", description=__doc__)
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    worker = sub.add_parser("worker", help="run a worker process")
    worker.add_argument("--burst", action="store_true", help="exit once everything is delivered")
    worker.add_argument("--deliverer", help="webhook | sink | noop | module:factory")
    worker.add_argument("--webhook-url", dest="webhook_url")
    worker.add_argument("--concurrency", type=int)
    worker.add_argument("--redis-url", dest="redis_url")
    worker.add_argument("--namespace")
    worker.set_defaults(handler=_cmd_worker)

    demo = sub.add_parser("demo", help="run the end-to-end demo on an embedded Redis")
    demo.add_argument("--messages", type=int, default=20_000)
    demo.add_argument("--conversations", type=int, default=2_000)
    demo.add_argument("--tenants", type=int, default=50)
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--fail-rate", type=float, default=0.05)
    demo.add_argument("--throttle-rate", type=float, default=0.01)
    demo.add_argument("--data-dir", default=".relayq/demo")
    demo.add_argument("--timeout", type=float, default=300.0)
    demo.set_defaults(handler=_cmd_demo)

    provider = sub.add_parser("provider", help="run the local test provider on 127.0.0.1")
    provider.add_argument("--port", type=int, default=8900)
    provider.add_argument("--fail-rate", type=float, default=0.0)
    provider.add_argument("--throttle-rate", type=float, default=0.0)
    provider.add_argument("--retry-after", type=float, default=1.0)
    provider.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    provider.set_defaults(handler=_cmd_provider)

    redis_cmd = sub.add_parser("redis", help="start or stop the embedded redis-server")
    redis_cmd.add_argument("action", choices=("start", "stop"))
    redis_cmd.set_defaults(handler=_cmd_redis)

    env = sub.add_parser("env", help="list the environment variables relayq reads")
    env.set_defaults(handler=_cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configure_logging(args.log_level)
        code: int = args.handler(args)
    except (RelayqError, ValueError) as exc:
        print(f"relayq: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
