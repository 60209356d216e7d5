"""``relayq send --file F.jsonl`` (a bulk send with a progress bar) and ``relayq batch
show ID [--follow]`` (a batch's progress and estimated finish)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from relayq.ops.batch_progress import BatchProgress, estimate, read_batch
from relayq.ops.cli_errors import CommandError
from relayq.ops.running_redis import running_redis
from relayq.producers.async_producer import Producer
from relayq.producers.send_request import SendRequest, SendResult
from relayq.streams.batch import check_batch_id
from relayq.streams.errors import ValidationError
from relayq.streams.keys import Keys
from relayq.streams.redis_client import create_client, redis_address, redis_errors
from relayq.streams.settings import Settings

__all__ = ("follow_batch", "load_requests", "send_file")

_CHUNK = 1000
_SHOWN_ERRORS = 5
_FIELDS = frozenset(SendRequest.__dataclass_fields__)
_FOLLOW_EVERY = 1.0


def _bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def load_requests(path: Path) -> list[SendRequest]:
    """Every line of a JSONL file as a SendRequest; a line that is not a JSON object of
    SendRequest's fields is a ValidationError naming its line (nothing is sent)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("--file", f"cannot read {str(path)!r}: {exc}") from None
    return [_request(number, line) for number, line in enumerate(lines, 1) if line.strip()]


def _request(number: int, line: str) -> SendRequest:
    try:
        fields = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"line {number}", f"not JSON: {exc.msg}") from None
    if not isinstance(fields, dict):
        raise ValidationError(f"line {number}", "must be a JSON object of a message's fields")
    unknown = sorted(set(fields) - _FIELDS)
    missing = sorted({"tenant", "conversation", "recipient", "payload"} - set(fields))
    if unknown or missing:
        problem = f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}"
        raise ValidationError(f"line {number}", problem)
    return SendRequest(**fields)


def _chunks(requests: list[SendRequest]) -> Iterator[tuple[int, list[SendRequest]]]:
    for start in range(0, len(requests), _CHUNK):
        yield start, requests[start : start + _CHUNK]


def send_file(settings: Settings, path: Path, *, as_json: bool) -> int:
    requests = load_requests(path)
    settings = running_redis(settings)
    console = Console(stderr=True)
    results, batch_id = asyncio.run(_send_all(settings, requests, console))
    refused = [(n, r) for n, r in enumerate(results, 1) if not r.ok]
    summary = {
        "batch_id": batch_id,
        "requested": len(results),
        "accepted": sum(1 for r in results if r.ok and not r.duplicate),
        "duplicates": sum(1 for r in results if r.duplicate),
        "refused": [{"line": n, "error": str(r.error)} for n, r in refused],
    }
    if as_json:
        print(json.dumps(summary))
    else:
        print(f"batch {batch_id}: {summary['accepted']:,} queued, "
              f"{summary['duplicates']:,} duplicates, {len(refused):,} refused")  # fmt: skip
        for n, result in refused[:_SHOWN_ERRORS]:
            print(f"  line {n}: {result.error}")
        print(f"follow it: relayq batch show {batch_id} --follow")
    return 1 if refused else 0


async def _send_all(
    settings: Settings, requests: list[SendRequest], console: Console
) -> tuple[list[SendResult], str]:
    results: list[SendResult] = []
    batch_id: str | None = None
    async with Producer(settings) as producer:
        with _bar(console) as bar:
            task = bar.add_task("sending", total=len(requests))
            for _start, chunk in _chunks(requests):
                sent = await producer.send_many(chunk, batch_id=batch_id)
                batch_id = sent.batch_id
                results.extend(sent)
                bar.advance(task, len(chunk))
    return results, batch_id or "-"


def follow_batch(settings: Settings, batch_id: str, *, follow: bool, as_json: bool) -> int:
    check_batch_id(batch_id)
    settings = running_redis(settings)
    return asyncio.run(_follow(settings, batch_id, follow=follow, as_json=as_json))


async def _follow(settings: Settings, batch_id: str, *, follow: bool, as_json: bool) -> int:
    keys = Keys.from_settings(settings)
    client = create_client(settings)
    try:
        with redis_errors(redis_address(client)):
            progress = await _read(client, keys, batch_id, settings)
            if follow and not progress.done:
                progress = await _watch(client, keys, settings, progress, as_json)
    finally:
        await client.aclose()
    _print(progress, as_json)
    return 0


async def _read(client: Any, keys: Keys, batch_id: str, settings: Settings) -> BatchProgress:
    progress = await read_batch(client, keys, batch_id, global_rate=settings.global_rate)
    if progress is None:
        raise CommandError(
            f"no batch {batch_id} in namespace {keys.namespace!r} (unknown, or older than a week)"
        )
    return progress


async def _watch(
    client: Any, keys: Keys, settings: Settings, progress: BatchProgress, as_json: bool
) -> BatchProgress:
    """Re-read every second until done, with a bar (on a terminal) or a JSON line per read;
    the estimate uses the rate between reads."""
    console = Console(stderr=True)
    with _bar(console) as bar:
        task = bar.add_task(f"batch {progress.batch_id}", total=progress.total)
        while not progress.done:
            bar.update(task, completed=progress.delivered + progress.failed)
            if as_json:
                print(msgspec.json.encode(progress).decode(), flush=True)
            before, started = progress.delivered + progress.failed, time.monotonic()
            await asyncio.sleep(_FOLLOW_EVERY)
            progress = await _read(client, keys, progress.batch_id, settings)
            rate = (progress.delivered + progress.failed - before) / (time.monotonic() - started)
            progress = estimate(progress, rate or None, settings.global_rate)
        bar.update(task, completed=progress.total)
    return progress


def _when(ms: int | None) -> str:
    if ms is None:
        return "unknown (nothing finished yet, no rate limit)"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _print(progress: BatchProgress, as_json: bool) -> None:
    if as_json:
        print(msgspec.json.encode(progress).decode())
        return
    print(
        f"batch {progress.batch_id}: {progress.total:,} queued, {progress.delivered:,} "
        f"delivered, {progress.failed:,} failed, {progress.pending:,} pending"
    )
    if progress.refused or progress.duplicates:
        print(f"  not queued: {progress.refused:,} refused, {progress.duplicates:,} duplicates")
    if progress.tenants:
        print(f"  tenants: {', '.join(progress.tenants)}")
    if progress.done:
        print("  finished")
        return
    rate = f" at {progress.rate_per_second:,.1f}/s" if progress.rate_per_second else ""
    print(f"  estimated finish: {_when(progress.estimated_finish_ms)}{rate}")
