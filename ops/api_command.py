"""``relayq api [--host 127.0.0.1] [--port 8080]``: serve the HTTP API (``ops.api_app``)
with uvicorn on uvloop + httptools, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
from typing import Any

from relayq.ops.cli_settings import add_redis_options, settings_from_args

__all__ = ("add_api_command",)


def _cmd_api(args: argparse.Namespace) -> int:
    from relayq.ops.api_server import serve

    return serve(settings_from_args(args), host=args.host, port=args.port)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return int(text)


def add_api_command(sub: Any) -> None:
    """Add ``relayq api`` to the ``relayq`` parser's subcommands ``sub``."""
    api = sub.add_parser("api", help="serve the HTTP API (needs the api extra)")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0 = any)")
    add_redis_options(api)
    api.set_defaults(handler=_cmd_api)
