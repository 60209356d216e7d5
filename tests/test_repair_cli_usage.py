"""Every repair command: a bad argument exits 2 with one error line naming it (nothing
changed, no traceback), and ``--json`` prints one document that parses."""

from __future__ import annotations

import json

import pytest

from relayq.streams.settings import Settings
from tests.cli_runner import assert_one_line_error
from tests.support import run_cli

BAD_ARGUMENTS = [
    (("pending", "--min-idle", "banana"), "--min-idle"),
    (("pending", "--limit", "0"), "--limit"),
    (("pending", "--min-deliveries", "-1"), "--min-deliveries"),
    (("pending", "--partition", "99"), "--partition"),
    (("clean", "--older-than", "banana"), "--older-than"),
    (("clean",), "--older-than"),
    (("empty", "--yes"), "--tenant"),
    (("empty", "--tenant", "a", "--all"), "--all"),
    (("empty", "--tenant", "a", "--priority", "urgent", "--yes"), "--priority"),
    (("drain", "--timeout", "soon"), "--timeout"),
    (("trim", "--older-than", "1h"), "--older-than"),
    (("consumers", "prune", "--idle", "banana"), "--idle"),
    (("consumers", "remove"), "remove"),
    (("health", "--max-oldest-waiting", "5 minutes"), "--max-oldest-waiting"),
]


@pytest.mark.parametrize(("args", "named"), BAD_ARGUMENTS)
def test_bad_arguments_exit_2_naming_the_argument(
    settings: Settings, args: tuple[str, ...], named: str
) -> None:
    assert_one_line_error(run_cli(settings, *args), 2, named)


JSON_COMMANDS = [
    (("pending",), 0),
    (("pending", "--release"), 0),
    (("clean", "--older-than", "7d"), 0),
    (("empty", "--all"), 2),
    (("empty", "--tenant", "acme", "--yes"), 0),
    (("drain", "--timeout", "5s"), 0),
    (("trim",), 0),
    (("consumers",), 0),
    (("consumers", "list"), 0),
    (("consumers", "prune"), 0),
    (("health",), 1),
]


@pytest.mark.parametrize(("args", "code"), JSON_COMMANDS)
def test_json_parses(settings: Settings, args: tuple[str, ...], code: int) -> None:
    done = run_cli(settings, *args, "--json")
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    json.loads(done.stdout)


def test_empty_without_yes_says_what_it_would_remove(settings: Settings) -> None:
    done = run_cli(settings, "empty", "--tenant", "acme")
    assert_one_line_error(done, 2, "--yes", "0 waiting messages", "tenant=acme")
    assert "would remove" in done.stdout
