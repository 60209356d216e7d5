"""Running the HTTP API under uvicorn: checks first (the api extra installed, Redis
reachable, the namespace's shape), so a mistake is one line, not a traceback."""

from __future__ import annotations

import importlib.util

from relayq.ops.cli_errors import CommandError
from relayq.ops.running_redis import running_redis
from relayq.streams.keys import Keys
from relayq.streams.namespace_shape import compare_namespace_sync
from relayq.streams.redis_client import create_sync_client, redis_address, redis_errors
from relayq.streams.settings import Settings

__all__ = ("serve",)

_NEEDED = ("litestar", "uvicorn")


def serve(settings: Settings, *, host: str, port: int) -> int:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise CommandError(f"relayq api needs {', '.join(missing)}: pip install 'relayq[api]'")
    settings = running_redis(settings)
    client = create_sync_client(settings)
    try:
        with redis_errors(redis_address(client)):
            compare_namespace_sync(client, Keys.from_settings(settings))
    finally:
        client.close()
    import uvicorn

    from relayq.ops.api_app import create_app

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, loop=loop, http=http,
        log_level="warning", access_log=False, server_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)
    server.run()
    return 0
