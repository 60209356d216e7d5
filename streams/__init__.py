"""relayq's shared core: message schema, settings, keys, Lua scripts, Redis client, telemetry.

Import the modules directly (``from streams.message import Message``); this package
root re-exports nothing so that importing one piece never pulls in the rest.
"""

__all__ = ()
