"""The HTTP clients of the peers' HTTP job (:mod:`bench.peers.jobs`), one per worker process.

Each is the client a peer's users would use in a job: :class:`AsyncPoster`, one aiohttp
``ClientSession``, in the asyncio peers; :class:`SyncPoster`, one ``httpx.Client`` shared by
the worker's threads, in the threaded and forking ones (``requests`` is not installed).
Either keeps as many connections alive as the worker runs jobs at once, and raises on an
answer that is not 2xx, so a refused request is not counted as processed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import aiohttp
import httpx

from bench.peers.jobs import connections, current, webhook_body

__all__ = ("AsyncPoster", "SyncPoster")

_TIMEOUT_S = 30.0


class AsyncPoster:
    """POSTs from an asyncio job over one ClientSession per worker process, opened in the
    worker's event loop on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._url = ""
        self._pid = -1

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._pid != os.getpid():
            self._pid, self._url = os.getpid(), current().url
            connector = aiohttp.TCPConnector(limit=connections())
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def post(self, payload: dict[str, Any]) -> None:
        """POST ``payload`` as the provider's JSON; raise on a status that is not 2xx."""
        session = self._open()
        async with session.post(self._url, json=webhook_body(payload)) as response:
            await response.read()
            response.raise_for_status()

    async def aclose(self) -> None:
        """Close this process's session (a worker that is killed needs not)."""
        if self._session is not None and self._pid == os.getpid():
            await self._session.close()
        self._session = None


class SyncPoster:
    """POSTs from a blocking job over one httpx.Client per worker process, shared by the
    worker's threads (a forked child opens its own)."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._url = ""
        self._pid = -1
        self._lock = threading.Lock()

    def _open(self) -> httpx.Client:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._pid, self._url = os.getpid(), current().url
                n = connections()
                limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
                self._client = httpx.Client(limits=limits, timeout=_TIMEOUT_S)
            return self._client

    def post(self, payload: dict[str, Any]) -> None:
        """POST ``payload`` as the provider's JSON; raise on a status that is not 2xx."""
        client = self._open()
        client.post(self._url, json=webhook_body(payload)).raise_for_status()

    def close(self) -> None:
        """Close this process's client (a worker that is killed needs not)."""
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None
