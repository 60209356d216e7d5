"""The relayq of an earlier commit, extracted from this repository's history, to fill a
namespace the way that release did (upgrade tests)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from relayq.streams.settings import Settings
from tests.support import worker_environment

__all__ = ("BEFORE_FAIR_LAYOUT", "extract_release", "send_with_release")

BEFORE_FAIR_LAYOUT = "d0b228235f0703211e733af6f37457e9fb2d2c19"
"""The last commit where every message went straight into its level's stream."""

_REPOSITORY = Path(__file__).resolve().parent.parent

_SEND = """
import json, sys
import relayq
from relayq.producers import SyncProducer, SendRequest
requests = [SendRequest(**fields) for fields in json.load(sys.stdin)]
with SyncProducer() as producer:
    results = producer.send_many(requests)
print(json.dumps({"relayq": relayq.__file__, "ids": [r.message_id for r in results]}))
"""


def extract_release(commit: str, into: Path) -> Path:
    """The source tree of ``commit`` (``git archive``), ready to import from."""
    archive = subprocess.run(
        ["git", "-C", str(_REPOSITORY), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="tar")
    return into


def send_with_release(tree: Path, settings: Settings, fields: list[dict[str, object]]) -> list[str]:
    """Send with that release's ``SyncProducer.send_many`` in a child process whose
    ``relayq`` is imported from ``tree``; the message ids, in order."""
    env = worker_environment(settings)
    env["PYTHONPATH"] = str(tree)
    done = subprocess.run(
        [sys.executable, "-c", _SEND],
        input=json.dumps(fields),
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["relayq"].startswith(str(tree)), reply["relayq"]
    return [str(message_id) for message_id in reply["ids"]]
