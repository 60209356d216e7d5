"""Which event loop a worker runs on (``RELAYQ_EVENT_LOOP``): ``auto`` (uvloop, a
dependency except on Windows, when it is installed; else asyncio's own), ``uvloop``
(required: an error naming the setting if it is missing) or ``asyncio``.

uvloop runs the same asyncio code with the loop's own work (callbacks, sockets, timers) in
C: on the HTTP path, where asyncio was 40% of a worker's samples at concurrency 64, a
worker delivered 18-26% more at concurrency 16 and 64 against a 5 ms provider (``python
-m bench --only http``, asyncio vs auto). The HTTP API server picks uvloop the same way
(``ops.api_server``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from relayq.streams.errors import ConfigurationError

__all__ = ("loop_factory",)


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the chosen loop (``Settings.event_loop``, checked there) for
    ``asyncio.Runner``; None: asyncio's default."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # not installed on this platform (Windows) or removed by hand
        if choice == "uvloop":
            raise ConfigurationError(
                "RELAYQ_EVENT_LOOP=uvloop but uvloop is not installed (pip install uvloop, "
                "or RELAYQ_EVENT_LOOP=auto)"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
