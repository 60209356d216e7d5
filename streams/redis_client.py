"""Redis clients (redis.asyncio with hiredis) and what their failures mean to a user.

Every client relayq makes has explicit timeouts (``RELAYQ_REDIS_CONNECT_TIMEOUT_SECONDS``,
``RELAYQ_REDIS_TIMEOUT_SECONDS``) instead of redis-py's defaults, which differ by version
(none at all before redis-py 6: a frozen Redis or a silent peer hung a producer for good).
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from typing import Any

import redis
from redis.asyncio import Redis

from relayq.streams.errors import ConfigurationError, RedisUnavailableError
from relayq.streams.redis_server import ensure_embedded_redis
from relayq.streams.settings import Settings

__all__ = (
    "BLOCKING_READ_ALLOWANCE",
    "REDIS_UNAVAILABLE",
    "create_client",
    "create_sync_client",
    "redis_address",
    "redis_errors",
    "redis_failure",
    "resolve_redis_url",
)

REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
"""What a Redis call raises when Redis cannot be reached in time: transient for a worker."""

BLOCKING_READ_ALLOWANCE = 1.0
"""Seconds an asyncio client's read timeout adds to ``redis_timeout``: the longest a relayq
command waits inside Redis on purpose (the worker's XREADGROUP BLOCK, capped at 1 s in
consumers/worker.py). Without it a read timeout shorter than the block would fail every
idle read and drop the connection, leaving what the read delivered pending."""


def resolve_redis_url(settings: Settings) -> str:
    """``settings.redis_url``, or the embedded server's URL (started on first use)."""
    if settings.redis_url:
        return settings.redis_url
    return ensure_embedded_redis(settings.data_path)


def _connection_options(url: str, settings: Settings, read_timeout: float) -> dict[str, Any]:
    """Timeouts, and TCP keep-alive for TCP URLs (unix sockets take no such option)."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": read_timeout,
    }
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    return options


def _without_password(url: str) -> str:
    """``url`` without its user part and any ``password=`` query parameter."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "(unparsable URL)"
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(p for p in parts.query.split("&") if not p.lower().startswith("password"))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _invalid_url(url: str, exc: ValueError) -> ConfigurationError:
    return ConfigurationError(f"REDIS_URL {_without_password(url)!r} is not a Redis URL: {exc}")


def create_client(
    settings: Settings, *, max_connections: int | None = None, blocking_reads: bool = False
) -> Redis:
    """An asyncio client on raw bytes (no decoding), with keep-alive and health checks.

    Its read timeout is ``redis_timeout``, plus ``BLOCKING_READ_ALLOWANCE`` for a client
    that carries blocking stream reads (a worker's).
    """
    url = resolve_redis_url(settings)
    read_timeout = settings.redis_timeout + (BLOCKING_READ_ALLOWANCE if blocking_reads else 0)
    try:
        return Redis.from_url(
            url,
            decode_responses=False,
            health_check_interval=30,
            max_connections=max_connections,
            **_connection_options(url, settings, read_timeout),
        )
    except ValueError as exc:
        raise _invalid_url(url, exc) from None


def create_sync_client(settings: Settings) -> redis.Redis:
    """A blocking client, for the synchronous producer and the CLI (no blocking commands)."""
    url = resolve_redis_url(settings)
    options = _connection_options(url, settings, settings.redis_timeout)
    try:
        return redis.Redis.from_url(url, decode_responses=False, **options)
    except ValueError as exc:
        raise _invalid_url(url, exc) from None


def redis_address(client: Redis | redis.Redis) -> str:
    """Where ``client`` connects, as a URL without credentials (for error messages)."""
    pool = client.connection_pool
    options = pool.connection_kwargs
    db = options.get("db", 0)
    if options.get("path"):
        return f"unix://{options['path']}?db={db}"
    host = str(options.get("host", "localhost"))
    if ":" in host:
        host = f"[{host}]"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    return f"{scheme}://{host}:{options.get('port', 6379)}/{db}"


_CONNECT_TIMEOUT = "Timeout connecting to server"
"""How redis-py (5.0 to 8.x, both clients) words a TCP connect that timed out: no command
has been sent then."""


def redis_failure(address: str, exc: BaseException) -> RedisUnavailableError:
    """The RedisUnavailableError a user sees for ``exc``, raised by a call to ``address``.

    ``maybe_done`` (the request may have been carried out) after a reply that did not come
    in time, and after an error reply (a Lua script that fails midway keeps what it wrote).
    A connection that failed or timed out, or an answer that is not Redis's, means nothing
    was written.
    """
    if isinstance(exc, redis.exceptions.TimeoutError) and str(exc).startswith(_CONNECT_TIMEOUT):
        return RedisUnavailableError(f"could not connect to {address} in time ({exc})")
    if isinstance(exc, redis.exceptions.TimeoutError | TimeoutError):
        return RedisUnavailableError(
            f"{address} did not answer in time ({exc}); "
            "the request may or may not have been carried out",
            maybe_done=True,
        )
    if isinstance(exc, redis.exceptions.InvalidResponse):
        return RedisUnavailableError(f"{address} did not answer as a Redis server ({exc})")
    if isinstance(exc, redis.exceptions.ResponseError):
        return RedisUnavailableError(f"{address} refused the request: {exc}", maybe_done=True)
    return RedisUnavailableError(f"could not reach Redis at {address}: {exc}")


@contextlib.contextmanager
def redis_errors(address: str) -> Iterator[None]:
    """Turn any redis-py failure (or socket error) inside into ``redis_failure``.

    A plain ``with``: it serves async code as well (awaits inside the block are fine).
    """
    try:
        yield
    except (redis.exceptions.RedisError, OSError) as exc:
        raise redis_failure(address, exc) from exc
