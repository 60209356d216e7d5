"""``relayq provider``: the local test provider as a foreground process."""

from __future__ import annotations

import asyncio
import contextlib
import errno

from relayq.ops.cli_errors import CommandError
from relayq.ops.local_provider import LocalProvider, ProviderBehaviour

__all__ = ("run_provider",)


async def _serve(port: int, behaviour: ProviderBehaviour) -> None:
    try:
        provider = await LocalProvider(behaviour, port).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise CommandError(
            f"port {port} on 127.0.0.1 is already in use: choose another with --port"
        ) from None
    print(f"provider listening on {provider.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await provider.stop()


def run_provider(
    port: int, fail_rate: float, throttle_rate: float, retry_after: float, latency: float
) -> int:
    behaviour = ProviderBehaviour(
        fail_rate=fail_rate, throttle_rate=throttle_rate, retry_after=retry_after, latency=latency
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port, behaviour))
    return 0
