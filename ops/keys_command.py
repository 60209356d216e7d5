"""Placeholder: filled in by the next commit."""

from __future__ import annotations

from typing import Any

__all__ = ("add_key_commands",)


def add_key_commands(sub: Any) -> None:
    """Add the commands to the ``relayq`` parser's subcommands ``sub``."""
