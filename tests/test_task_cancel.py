"""Shutdown's cancel_and_wait ends tasks that swallow a cancel (CPython 3.11's wait_for,
under redis-py, can), instead of waiting for them forever."""

from __future__ import annotations

import asyncio
import time

from relayq.consumers.task_cancel import cancel_and_wait


async def _loop_that_swallows(cancels: int, seen: list[int]) -> None:
    """A loop task (like the ownership loop) whose first ``cancels`` cancels are lost. It
    gives up by itself after 3 s, so a regression fails the test instead of hanging it."""
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            seen.append(1)
            if len(seen) > cancels:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]


def test_a_task_that_swallows_cancels_still_ends() -> None:
    async def main() -> list[int]:
        seen: list[int] = []
        task = asyncio.create_task(_loop_that_swallows(2, seen))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await cancel_and_wait(task)
        assert task.cancelled(), "the task ended by itself: the swallowed cancel was not repeated"
        assert time.monotonic() - started < 1.0
        return seen

    assert len(asyncio.run(main())) == 3  # two swallowed, the third ended it


def test_tasks_that_end_or_fail_are_waited_for_and_their_errors_dropped() -> None:
    async def fails() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            raise RuntimeError("cleanup failed")

    async def main() -> None:
        ends, fail = asyncio.create_task(asyncio.sleep(10)), asyncio.create_task(fails())
        done = asyncio.create_task(asyncio.sleep(0))
        await asyncio.sleep(0.01)
        await asyncio.wait_for(cancel_and_wait(ends, fail, done), timeout=5)
        assert ends.cancelled() and fail.done() and done.done()
        assert isinstance(fail.exception(), RuntimeError)

    asyncio.run(main())
