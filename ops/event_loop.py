"""Which event loop a worker runs on (``RELAYQ_EVENT_LOOP``): ``auto`` (uvloop when it is
installed, else asyncio's own), ``uvloop`` (required: an error naming the setting if it is
missing) or ``asyncio``.

uvloop runs the same asyncio code with the loop's own work (callbacks, sockets, timers) in
C: on the HTTP path, where asyncio was 40% of a worker's samples at concurrency 64, that is
most of relayq's overhead per request (``python -m bench --only http``). The HTTP API server
picks uvloop the same way (``ops.api_server``).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Callable

from relayq.streams.errors import ConfigurationError

__all__ = ("loop_factory",)


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the chosen loop (``Settings.event_loop``, checked there) for
    ``asyncio.Runner``; None: asyncio's default."""
    if choice == "asyncio":
        return None
    if importlib.util.find_spec("uvloop") is None:
        if choice == "uvloop":
            raise ConfigurationError(
                "RELAYQ_EVENT_LOOP=uvloop but uvloop is not installed "
                "(pip install 'relayq[fast]', or RELAYQ_EVENT_LOOP=auto)"
            )
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = importlib.import_module(
        "uvloop"
    ).new_event_loop
    return factory
