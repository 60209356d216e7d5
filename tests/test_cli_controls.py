"""The control commands never surprise: ``pause`` without a scope pauses nothing and asks
for ``--all``; ``paused`` lists pauses without changing them; ``limits`` shows every limit
in force, the defaults included, each marked default or override; ``provider`` on a busy
port is one error line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from relayq.ops.controls import Controls
from relayq.streams.keys import Keys
from relayq.streams.settings import Settings
from tests.cli_runner import assert_one_line_error, clean_environment, relayq
from tests.support import run_cli

FLOW_ON = {"tenant_cap": 5, "global_rate": 80.0, "global_burst": 10, "tenant_burst": 5}


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_pause_or_resume_without_a_scope_changes_nothing_and_asks_for_all(
    settings: Settings, redis_client: redis.Redis, keys: Keys, command: str
) -> None:
    Controls(redis_client, keys).pause(tenant="acme")
    done = run_cli(settings, command)
    assert_one_line_error(done, 2, f"`relayq {command}` needs a scope: --all")
    assert Controls(redis_client, keys).paused() == ["tenant:acme"]


def test_pause_all_is_listed_by_paused_which_changes_nothing(
    settings: Settings, redis_client: redis.Redis, keys: Keys
) -> None:
    done = run_cli(settings, "paused")
    assert (done.returncode, done.stdout) == (0, "nothing is paused\n"), done.stderr

    assert run_cli(settings, "pause", "--all").stdout.startswith("paused all\n")
    assert run_cli(settings, "pause", "--priority", "low").returncode == 0
    for _ in range(2):
        done = run_cli(settings, "paused")
        assert (done.returncode, done.stdout) == (0, "all\npriority:low\n"), done.stderr
    assert run_cli(settings, "resume", "--all").returncode == 0
    assert Controls(redis_client, keys).paused() == ["priority:low"]


def test_limits_show_the_defaults_in_force_and_mark_overrides(settings: Settings) -> None:
    flow_on = settings.replace(**FLOW_ON)
    done = run_cli(flow_on, "limits")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "global: cap off (default), rate 80/s (default), burst 10 (default)",
        "each tenant: cap 5 (default), rate off (default), burst 5 (default)",
        "each sender: rate off (default), burst 5 (default)",
    ]

    done = run_cli(flow_on, "limits", "--rate", "200")
    assert done.stdout.startswith(
        "global: cap off (default), rate 200/s (override), burst 10 (default)\n"
    )
    done = run_cli(flow_on, "limits", "--tenant", "acme", "--cap", "10")
    assert done.stdout.startswith(
        "tenant acme: cap 10 (override), rate off (default), burst 5 (default)\n"
    )
    done = run_cli(flow_on, "limits", "--tenant", "acme", "--clear")
    assert done.stdout.startswith(
        "tenant acme: cap 5 (default), rate off (default), burst 5 (default)\n"
    )


def test_limits_say_when_flow_control_is_off_and_overrides_do_nothing(
    settings: Settings,
) -> None:
    assert not settings.flow_control
    done = run_cli(settings, "limits")
    assert done.returncode == 0, done.stderr
    assert "note: flow control is off here" in done.stdout
    assert "ignore every override" in done.stdout


def test_a_provider_on_a_busy_port_is_one_error_line(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = relayq(clean_environment(tmp_path), "provider", "--port", str(port), cwd=tmp_path)
    assert_one_line_error(done, 1, f"port {port} on 127.0.0.1 is already in use")
