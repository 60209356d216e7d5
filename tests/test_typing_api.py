"""The SDK is typed at the call site: tests/typing/api.py passes ``mypy --strict`` with
every line marked as an error really one (an unused ignore fails), and ``SendFields``
(what a type checker sees of ``send(**fields)``) matches ``SendRequest`` field for field."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from relayq import SendFields, SendRequest
from relayq.producers.send_fields import ScheduleFields

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "tests" / "typing" / "api.py"
NOT_ON_A_SCHEDULE = {"dedup_key", "delay", "not_before"}


def _mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", *map(str, paths)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_typed_usage_file_passes_mypy_strict() -> None:
    result = _mypy(API)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_call_that_stops_being_an_error_fails_the_check(tmp_path: Path) -> None:
    loose = tmp_path / "loose_api.py"
    loose.write_text(
        "from relayq import SyncProducer\n"
        "SyncProducer().send(tenant='a', conversation='c', recipient='+1', payload={})"
        "  # type: ignore[arg-type]\n"
    )
    result = _mypy(loose)
    assert result.returncode == 1
    assert 'Unused "type: ignore" comment' in result.stdout


def test_send_fields_agree_with_send_request() -> None:
    fields = dataclasses.fields(SendRequest)
    assert {f.name for f in fields} == set(SendFields.__annotations__)
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    assert SendFields.__required_keys__ == required
    assert SendFields.__optional_keys__ == {f.name for f in fields} - required
    assert set(ScheduleFields.__annotations__) == {f.name for f in fields} - NOT_ON_A_SCHEDULE
    assert ScheduleFields.__required_keys__ == required
