"""The local HTTP provider (``relayq provider``) as a separate process, and reading it back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from bench.processes import ProcessGroup, python_argv
from relayq.ops.local_provider import Delivery
from relayq.streams.redis_server import free_port

__all__ = ("Provider",)


class Provider:
    """``relayq provider`` on 127.0.0.1 in its own process (it does not share our GIL)."""

    def __init__(
        self,
        group: ProcessGroup,
        log: Path,
        *,
        latency: float = 0.0,
        throttle_rate: float = 0.0,
        retry_after: float = 1.0,
    ) -> None:
        self.base = f"http://127.0.0.1:{free_port()}"
        port = self.base.rsplit(":", 1)[1]
        argv = python_argv("-m", "relayq.ops.cli", "--log-level", "warning", "provider",
                           "--port", port, "--latency", repr(latency),
                           "--throttle-rate", repr(throttle_rate),
                           "--retry-after", repr(retry_after))  # fmt: skip
        self.proc = group.spawn(argv, log=log)
        self._client = httpx.Client(timeout=30)
        self._wait_up()

    @property
    def url(self) -> str:
        """Where the webhook deliverer POSTs."""
        return f"{self.base}/deliver"

    def _wait_up(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._client.get(f"{self.base}/stats")
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the local provider did not come up at {self.base}"
                    ) from None
                time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._client.get(f"{self.base}/stats").json()
        return stats

    def accepted(self) -> int:
        return int(self.stats()["accepted"])

    def received(self) -> list[Delivery]:
        """Accepted deliveries in arrival order."""
        body = self._client.get(f"{self.base}/received").content
        return msgspec.json.decode(body, type=list[Delivery])

    def close(self) -> None:
        self._client.close()
