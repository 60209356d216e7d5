"""Every command that reads or changes a namespace takes ``--json`` and prints JSON that
parses (issue 14 item 8): the older controls, schedules and env included."""

from __future__ import annotations

import json
from typing import Any

from relayq.streams.settings import Settings
from tests.support import run_cli


def _json(settings: Settings, *args: str) -> Any:
    done = run_cli(settings, *args, "--json")
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout)


def test_controls_schedules_and_env_print_json(settings: Settings) -> None:
    paused = _json(settings, "pause", "--tenant", "acme")
    assert paused == {"action": "pause", "scope": "tenant:acme", "changed": True,
                      "paused": ["tenant:acme"]}  # fmt: skip
    assert _json(settings, "paused") == {"paused": ["tenant:acme"], "reasons": {}}
    assert _json(settings, "resume", "--tenant", "acme")["changed"] is True
    assert _json(settings, "resume", "--tenant", "acme")["changed"] is False
    limits = _json(settings, "limits", "--tenant", "acme", "--cap", "3")
    assert limits["scope"] == "tenant" and limits["overrides"]["cap"] == 3
    assert _json(settings, "limits")["scope"] == "global"
    added = _json(settings, "schedules", "add", "daily", "--every", "60", "--tenant", "a",
                  "--conversation", "c", "--recipient", "+1")  # fmt: skip
    assert [s["name"] for s in added] == ["daily"] and added[0]["every_ms"] == 60_000
    assert _json(settings, "schedules", "list")[0]["tenant"] == "a"
    assert _json(settings, "schedules", "remove", "daily") == {"name": "daily", "removed": True}
    variables = {row["variable"]: row for row in _json(settings, "env")}
    assert variables["RELAYQ_NAMESPACE"]["value"] == settings.namespace
