"""``relayq provider``: the local test provider as a foreground process.

It serves the plain webhook endpoint and the WhatsApp, Twilio and SendGrid fakes
(``ops.local_fakes.LocalFakes``), and prints, after the webhook URL, the ``RELAYQ_*``
variables that point a worker at the fakes (their local test credentials, not secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno

from relayq.ops.cli_errors import CommandError
from relayq.ops.local_fakes import FAKE_CHANNELS
from relayq.ops.local_provider import LocalProvider, ProviderBehaviour

__all__ = ("run_provider",)


def _announce(provider: LocalProvider) -> None:
    print(f"provider listening on {provider.url}", flush=True)
    assert provider.fakes is not None
    print("fakes of WhatsApp, Twilio and SendGrid; a worker delivers to them with:")
    variables = {"RELAYQ_DELIVERER": "channels", "RELAYQ_CHANNELS": FAKE_CHANNELS}
    for name, value in {**variables, **provider.fakes.environment()}.items():
        print(f"{name}={value}")
    print(f"stats of the fakes: {provider.base_url('/local/stats')}", flush=True)


async def _serve(port: int, behaviour: ProviderBehaviour) -> None:
    try:
        provider = await LocalProvider(behaviour, port, fakes=True).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise CommandError(
            f"port {port} on 127.0.0.1 is already in use: choose another with --port"
        ) from None
    _announce(provider)
    try:
        await asyncio.Event().wait()
    finally:
        await provider.stop()


def run_provider(
    port: int,
    fail_rate: float,
    throttle_rate: float,
    retry_after: float,
    latency: float,
    *,
    status_callbacks: bool = True,
) -> int:
    behaviour = ProviderBehaviour(
        fail_rate=fail_rate,
        throttle_rate=throttle_rate,
        retry_after=retry_after,
        latency=latency,
        status_callbacks=status_callbacks,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(port, behaviour))
    return 0
