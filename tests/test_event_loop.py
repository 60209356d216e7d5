"""A worker's event loop (``RELAYQ_EVENT_LOOP``): uvloop when installed (``auto``, the
default) or asked for, asyncio's own when asked for; a worker on either delivers a
conversation in order; a choice that is not one is refused naming the setting."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from relayq.ops.event_loop import loop_factory
from relayq.producers import SyncProducer
from relayq.streams.errors import ConfigurationError
from relayq.streams.settings import Settings
from tests.conftest import ProviderFactory
from tests.support import WorkerPool, worker_environment

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_the_choices_give_their_loops() -> None:
    assert loop_factory("asyncio") is None
    if HAS_UVLOOP:
        import uvloop

        assert loop_factory("auto") is uvloop.new_event_loop
        assert loop_factory("uvloop") is uvloop.new_event_loop
    else:
        assert loop_factory("auto") is None
        with pytest.raises(ConfigurationError, match="RELAYQ_EVENT_LOOP=uvloop"):
            loop_factory("uvloop")


@pytest.mark.parametrize("choice", ["auto", "asyncio"])
def test_a_worker_on_each_loop_delivers_in_order(
    settings: Settings,
    make_provider: ProviderFactory,
    workers: WorkerPool,
    choice: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tests.support.WORKER_LOG_LEVEL", "info")  # its start line names it
    with SyncProducer(settings) as producer:
        sent = [
            producer.send(tenant="acme", conversation="c1", recipient="+1555", payload={"n": n})
            for n in range(20)
        ]
    provider = make_provider()
    worker = workers.start(provider.url, burst=True, settings=settings, RELAYQ_EVENT_LOOP=choice)
    assert worker.wait(timeout=60) == 0
    assert [d.message_id for d in provider.deliveries()] == sent
    expected = "uvloop" if choice == "auto" and HAS_UVLOOP else "asyncio"
    assert f'"event_loop": "{expected}' in workers.logs()


def test_a_loop_that_is_not_one_is_refused_naming_the_setting(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="event_loop"):
        settings.replace(event_loop="fast")
    env = {**worker_environment(settings), "RELAYQ_EVENT_LOOP": "fast"}
    done = subprocess.run([sys.executable, "-m", "relayq.ops.cli", "env"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 2 and "RELAYQ_EVENT_LOOP" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
