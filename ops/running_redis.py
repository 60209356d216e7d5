"""The Redis a control or inspection command talks to: one that already runs, never a new one.

``relayq pause``, ``resume``, ``paused``, ``limits`` and ``schedules`` connect to
``REDIS_URL`` or, with none, to the embedded redis-server of the data folder, and only if
it answers. Starting a server here (as producers and workers do) would change a Redis no
worker reads and report success; instead the command fails naming the Redis it looked for
and how to point it at the right one.
"""

from __future__ import annotations

from relayq.streams.errors import RedisUnavailableError
from relayq.streams.redis_client import create_sync_client, redis_address, redis_errors
from relayq.streams.redis_server import embedded_redis_url
from relayq.streams.settings import Settings

__all__ = ("running_redis",)


def _explained(settings: Settings, exc: RedisUnavailableError) -> RedisUnavailableError:
    """``exc`` with which Redis was looked for and how to point the command elsewhere."""
    if settings.redis_url:
        return RedisUnavailableError(
            f"{exc}; set REDIS_URL (or --redis-url) to the Redis your workers use"
        )
    return RedisUnavailableError(
        f"no embedded redis-server runs in {settings.data_path} ({exc}); set REDIS_URL to "
        "the Redis your workers use, or RELAYQ_DATA_DIR to the embedded server's data "
        "folder (`relayq env` shows both)"
    )


def running_redis(settings: Settings) -> Settings:
    """``settings`` with ``redis_url`` pinned to a Redis that answers PING now.

    Raises RedisUnavailableError naming the URL tried and what to set instead; starts
    nothing and creates no folder.
    """
    url = settings.redis_url or embedded_redis_url(settings.data_path)
    pinned = settings.replace(redis_url=url)
    client = create_sync_client(pinned)
    try:
        with redis_errors(redis_address(client)):
            client.ping()
    except RedisUnavailableError as exc:
        raise _explained(settings, exc) from None
    finally:
        client.close()
    return pinned
