"""Counting processed jobs from inside a peer's worker, cheaply and for real.

Every no-op job calls :meth:`JobCounter.hit`. Hits are summed in process and flushed to Redis
every few milliseconds by a background thread (and at exit), so the count costs a peer almost
nothing; the parent process polls the count. Each flush also records the wall-clock time of
the first and the latest counted job, which gives the processing rate without worker startup.

``hit_direct`` counts with one pipelined round trip per job, for workers that fork a process
per job (rq), where an in-process buffer would die with the child.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any

import redis

__all__ = ("COUNT_KEY", "FIRST_KEY", "LAST_KEY", "URL_ENV", "JobCounter", "hit_direct", "read")

URL_ENV = "BENCH_REDIS_URL"
COUNT_KEY = "bench:peer:processed"
FIRST_KEY = "bench:peer:first_ts"
LAST_KEY = "bench:peer:last_ts"
_FLUSH_INTERVAL = 0.01


class JobCounter:
    """Buffered job counter; safe from threads and asyncio tasks, restarts itself after fork."""

    def __init__(self, url: str | None = None, interval: float = _FLUSH_INTERVAL) -> None:
        self._url = url
        self._interval = interval
        self._lock = threading.Lock()
        self._pid = -1
        self._pending = 0
        self._first: float | None = None
        self._first_sent = False
        self._last = 0.0
        self._client: redis.Redis | None = None

    def hit(self) -> None:
        """Count one processed job."""
        if self._pid != os.getpid():
            self._start()
        with self._lock:
            now = time.time()
            self._pending += 1
            if self._first is None:
                self._first = now
            self._last = now

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._pending = 0
            self._first = None
            self._first_sent = False
            url = self._url or os.environ[URL_ENV]
            self._client = redis.Redis.from_url(url)
        thread = threading.Thread(target=self._loop, name="bench-job-counter", daemon=True)
        thread.start()
        atexit.register(self.flush)

    def _loop(self) -> None:
        while True:
            time.sleep(self._interval)
            try:
                self.flush()
            except redis.RedisError:
                time.sleep(0.1)

    def flush(self) -> None:
        """Send the hits counted since the last flush (a no-op when there are none)."""
        with self._lock:
            pending, first, last = self._pending, self._first, self._last
            send_first = first is not None and not self._first_sent
            self._pending = 0
            self._first_sent = self._first_sent or send_first
            client = self._client
        if not pending or client is None:
            return
        pipe = client.pipeline(transaction=False)
        pipe.incrby(COUNT_KEY, pending)
        if send_first:
            pipe.set(FIRST_KEY, repr(first), nx=True)
        pipe.set(LAST_KEY, repr(last))
        pipe.execute()


def hit_direct(client: Any) -> None:
    """Count one processed job with one round trip on the worker's own sync Redis client."""
    now = repr(time.time())
    pipe = client.pipeline(transaction=False)
    pipe.incr(COUNT_KEY)
    pipe.set(FIRST_KEY, now, nx=True)
    pipe.set(LAST_KEY, now)
    pipe.execute()


def read(client: redis.Redis) -> tuple[int, float | None, float | None]:
    """(processed, first job time, last job time) as the workers recorded them."""
    count, first, last = client.mget(COUNT_KEY, FIRST_KEY, LAST_KEY)
    return (
        int(count or 0),
        float(first) if first is not None else None,
        float(last) if last is not None else None,
    )
