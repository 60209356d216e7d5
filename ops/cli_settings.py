"""The settings a ``relayq`` command runs with: the environment, then its flags."""

from __future__ import annotations

import argparse
from typing import Any

from relayq.streams.settings import Settings

__all__ = ("add_redis_options", "settings_from_args")

_FLAG_FIELDS = ("concurrency", "deliverer", "webhook_url", "redis_url", "namespace")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """``Settings.from_env()`` with the command's flags (``--redis-url``, ...) on top."""
    overrides: dict[str, Any] = {}
    for field in _FLAG_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return Settings.from_env(**overrides)


def add_redis_options(command: argparse.ArgumentParser) -> None:
    """``--redis-url`` and ``--namespace``: every command that talks to Redis takes them."""
    command.add_argument("--redis-url", dest="redis_url", help="else REDIS_URL, else embedded")
    command.add_argument("--namespace", help="else RELAYQ_NAMESPACE")
