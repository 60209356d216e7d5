"""``relayq env`` shows each setting in force and where it came from, stops on a value it
cannot use (naming the variable and the unit it expects), warns about RELAYQ_* variables
it does not know, and ends quietly when its reader stops reading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runner import assert_one_line_error, clean_environment, relayq


def _line(output: str, variable: str) -> str:
    [line] = [line for line in output.splitlines() if line.split()[:1] == [variable]]
    return line


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RELAYQ_GLOBAL_RATE", "fast", "RELAYQ_GLOBAL_RATE='fast' is not a number of sends per"),
        ("RELAYQ_PARTITIONS", "many", "RELAYQ_PARTITIONS='many' is not a whole number"),
        ("RELAYQ_SEND_TIMEOUT_SECONDS", "soon", "'soon' is not a number of seconds"),
        ("RELAYQ_TENANT_CAP", "-1", "RELAYQ_TENANT_CAP='-1': tenant_cap must be 0 (off)"),
        ("REDIS_URL", "http://:pw@host/", "REDIS_URL is not a Redis URL: Redis URL must spec"),
    ],
)
def test_a_bad_value_exits_2_naming_the_variable_and_the_unit(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    done = relayq(clean_environment(tmp_path, **{variable: value}), "env", cwd=tmp_path)
    assert_one_line_error(done, 2, expected)
    assert "_seconds" not in done.stderr and "_integer" not in done.stderr
    assert "pw" not in done.stderr


def test_an_unknown_relayq_variable_is_a_warning_naming_the_closest_known_one(
    tmp_path: Path,
) -> None:
    env = clean_environment(tmp_path, RELAYQ_PARTITONS="4", RELAYQ_NOTHING_LIKE_IT="1")
    done = relayq(env, "env", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "relayq: warning: RELAYQ_NOTHING_LIKE_IT is not a relayq setting and is ignored; "
        "`relayq env` lists them",
        "relayq: warning: RELAYQ_PARTITONS is not a relayq setting and is ignored; "
        "did you mean RELAYQ_PARTITIONS?",
    ]
    assert "16  (default;" in _line(done.stdout, "RELAYQ_PARTITIONS")


def test_each_value_shows_where_it_came_from(tmp_path: Path) -> None:
    env = clean_environment(tmp_path, RELAYQ_PARTITIONS="4", REDIS_URL="redis://:pw@h:1/2")
    done = relayq(env, "env", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert " 4  (environment;" in _line(done.stdout, "RELAYQ_PARTITIONS")
    assert " relayq  (default;" in _line(done.stdout, "RELAYQ_NAMESPACE")
    assert " redis://h:1/2  (environment;" in _line(done.stdout, "REDIS_URL")
    assert "pw" not in done.stdout


def test_the_data_folder_is_one_absolute_folder_whatever_the_working_directory(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    default = f" {home}/.local/share/relayq  (default;"
    for cwd in (tmp_path / "a", tmp_path / "b" / "c"):
        done = relayq(clean_environment(home), "env", cwd=cwd)
        assert default in _line(done.stdout, "RELAYQ_DATA_DIR"), done.stdout
        assert f"unset: embedded redis-server in {home}/.local/share/relayq" in done.stdout

    xdg = relayq(clean_environment(home, XDG_DATA_HOME="/srv/data"), "env", cwd=tmp_path)
    assert " /srv/data/relayq  (default;" in _line(xdg.stdout, "RELAYQ_DATA_DIR")

    relative = relayq(clean_environment(home, RELAYQ_DATA_DIR="q"), "env", cwd=tmp_path)
    assert f" {tmp_path}/q  (environment;" in _line(relative.stdout, "RELAYQ_DATA_DIR")


def test_a_reader_that_stops_early_ends_it_quietly(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "relayq.ops.cli", "env"],
        env=clean_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the command writes: every write meets a closed pipe
        stderr = process.stderr.read().decode()
        assert process.wait(timeout=30) == 0, stderr
    assert stderr == ""
