"""Control and inspection commands never start a Redis: with none reachable they start no
redis-server, create no folder, and exit 1 with one line naming the Redis they looked for.
A Redis URL that is not Redis, or a peer that never answers, is the same one-line error.
Only ``relayq redis start`` (and workers, producers, the demo) start the embedded server,
in one absolute folder whatever the working directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relayq.ops.local_provider import ProviderThread
from relayq.streams.redis_server import free_port
from tests.cli_runner import (
    assert_one_line_error,
    clean_environment,
    killing_leftovers,
    processes_mentioning,
    relayq,
)
from tests.test_redis_timeouts import SilentPeer

SCHEDULE = ("--tenant", "acme", "--conversation", "c", "--recipient", "+1555")
COMMANDS = [
    ("pause", "--all"),
    ("resume", "--tenant", "acme"),
    ("paused",),
    ("limits",),
    ("limits", "--tenant", "acme", "--cap", "3"),
    ("schedules",),
    ("schedules", "add", "digest", "--every", "60", *SCHEDULE),
    ("schedules", "remove", "digest"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_with_no_redis_running_a_command_starts_nothing_and_names_where_it_looked(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    with killing_leftovers(tmp_path):
        done = relayq(clean_environment(home), *command, cwd=cwd)
        started = processes_mentioning(str(tmp_path))

    data_dir = home / ".local" / "share" / "relayq"
    assert_one_line_error(
        done, 1, f"no embedded redis-server runs in {data_dir}", "REDIS_URL", "RELAYQ_DATA_DIR"
    )
    assert started == {}
    assert not (home / ".local").exists()
    assert list(cwd.iterdir()) == []


def test_an_unreachable_redis_url_is_named_without_its_password(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(tmp_path, REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0")
    done = relayq(env, "paused", cwd=tmp_path)
    assert_one_line_error(done, 1, f"could not reach Redis at redis://127.0.0.1:{port}/0")
    assert "hunter2" not in done.stderr


def test_a_redis_url_that_is_an_http_server_is_one_line(
    tmp_path: Path, provider: ProviderThread
) -> None:
    port = provider.url.split(":")[2].split("/")[0]
    env = clean_environment(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    for command in (("paused",), ("limits",), ("schedules",)):
        done = relayq(env, *command, cwd=tmp_path)
        assert_one_line_error(done, 1, f"Redis at redis://127.0.0.1:{port}/0")


@pytest.fixture
def silent_peer() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    try:
        yield peer
    finally:
        peer.close()


def test_a_peer_that_never_answers_is_one_line_after_the_timeout(
    tmp_path: Path, silent_peer: SilentPeer
) -> None:
    env = clean_environment(tmp_path, REDIS_URL=silent_peer.url, RELAYQ_REDIS_TIMEOUT_SECONDS="0.5")
    done = relayq(env, "pause", "--tenant", "acme", cwd=tmp_path, timeout=15)
    assert_one_line_error(done, 1, silent_peer.url, "did not answer in time")


def test_redis_start_uses_one_absolute_folder_that_commands_find_from_anywhere(
    tmp_path: Path,
) -> None:
    env = clean_environment(tmp_path / "home", XDG_DATA_HOME=str(tmp_path / "xdg"))
    data_dir = tmp_path / "xdg" / "relayq"
    with killing_leftovers(tmp_path):
        started = relayq(env, "redis", "start", cwd=tmp_path / "a")
        assert started.returncode == 0, started.stderr
        assert str(data_dir / "redis.sock") in started.stdout

        paused = relayq(env, "pause", "--tenant", "acme", cwd=tmp_path / "b")
        assert paused.returncode == 0, paused.stderr
        listed = relayq(env, "paused", cwd=tmp_path / "c")
        assert listed.returncode == 0 and listed.stdout.split() == ["tenant:acme"], listed

        stopped = relayq(env, "redis", "stop", cwd=tmp_path / "d")
        assert stopped.stdout.strip() == "stopped", stopped
    assert all(not any((tmp_path / cwd).iterdir()) for cwd in "abcd")  # nothing written there


def test_redis_start_in_an_unusable_data_dir_names_the_variable_and_the_reason(
    tmp_path: Path,
) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("")
    env = clean_environment(tmp_path / "home", RELAYQ_DATA_DIR=str(in_the_way / "relayq"))
    done = relayq(env, "redis", "start", cwd=tmp_path / "cwd")
    assert_one_line_error(
        done,
        2,
        f"RELAYQ_DATA_DIR='{in_the_way}/relayq'",
        "Not a directory",
        f"{in_the_way} is a file",
    )
