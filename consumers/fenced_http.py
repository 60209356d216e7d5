"""HTTP requests under the send fence, over aiohttp: no byte of a request reaches the socket
once ``check_send_allowed()`` would raise.

How. aiohttp (3.12 and later) holds a request's status line and headers back and writes
them together with the first chunk of its body, in one ``transport.write``. The body here is
a :class:`FencedBody`, whose write calls ``check_send_allowed()`` and hands its bytes to that
write with no ``await`` in between: the check and the socket write run in one step of the
event loop, with no other task and no wait for the loop between them (a process paused
before the check checks on waking up). When the check raises, nothing was written:
:func:`post` raises the SendFencedError itself (aiohttp reports it wrapped in a connection
error, which would otherwise count as a failed attempt).

What is not fenced: what aiohttp does once the body is written (the end of a request with
a Content-Length writes nothing; then the response is read). The request is on the wire by
then; fencing it would report "not sent" for a request the provider got, and the next owner
of the partition would send it again.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import msgspec
from aiohttp.abc import AbstractStreamWriter

from relayq.streams.deliverer import check_send_allowed
from relayq.streams.errors import SendFencedError

__all__ = ("FencedBody", "Reply", "post")


class Reply(msgspec.Struct, frozen=True):
    """A provider's answer, read in full."""

    status: int
    retry_after: str | None
    """The Retry-After header, as sent."""
    body: bytes
    headers: Mapping[str, str] = {}
    """Every response header (case-insensitive names): a provider's id or rate-limit
    headers (SendGrid's ``X-Message-Id``, ``X-RateLimit-Reset``)."""


class FencedBody(aiohttp.BytesPayload):
    """A request body whose write is the fence: checked, then written in the same step."""

    fenced: SendFencedError | None = None
    """The error the check raised (nothing of the request was written), if it did."""

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        try:
            check_send_allowed()
        except SendFencedError as exc:
            self.fenced = exc
            raise
        value = self._value if content_length is None else self._value[:content_length]
        await writer.write(value)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    content_type: str = "application/json",
    proxy: str | None = None,
) -> Reply:
    """POST ``body`` to ``url`` under the send fence; redirects are not followed (a 3xx is
    the provider's answer). Raises SendFencedError when the fence stopped the request, and
    aiohttp's errors (``aiohttp.ClientError``, ``TimeoutError``) for the transport's."""
    payload = FencedBody(body, content_type=content_type)
    try:
        async with session.post(
            url, data=payload, headers=headers, proxy=proxy, allow_redirects=False
        ) as response:
            headers = response.headers
            return Reply(
                response.status, headers.get("Retry-After"), await response.read(), headers
            )
    except aiohttp.ClientError:
        if payload.fenced is not None:
            raise payload.fenced from None
        raise
