"""The webhook deliverer's socket-level fence: a write that sends bytes is checked; the
empty write httpcore makes after a complete request is not (fencing it reported a request
the provider had received as "not sent", and the next owner sent it again)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpcore
import pytest

from relayq.consumers.webhook_deliverer import _FencedStream
from relayq.streams.deliverer import SendFencedError, send_fence


class _Recorder(httpcore.AsyncNetworkStream):
    def __init__(self) -> None:
        self.written: list[bytes] = []

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.written.append(buffer)

    async def aclose(self) -> None:
        pass

    def get_extra_info(self, info: str) -> Any:
        return None


def test_only_writes_that_send_bytes_are_fenced() -> None:
    async def scenario() -> list[bytes]:
        inner = _Recorder()
        stream = _FencedStream(inner)
        with send_fence(lambda: True):
            await stream.write(b"POST / HTTP/1.1\r\n\r\n")
        with send_fence(lambda: False):  # the lease may have passed on meanwhile
            await stream.write(b"")  # the end of a request already on the wire
            with pytest.raises(SendFencedError):
                await stream.write(b"{}")
        return inner.written

    assert asyncio.run(scenario()) == [b"POST / HTTP/1.1\r\n\r\n", b""]
