"""Blocking clean-up from async code: it runs to its end even when the caller is cancelled."""

from __future__ import annotations

import asyncio
import threading

import pytest

from patchbay.core.threads import finish_in_thread


async def test_cleanup_finishes_although_the_caller_is_cancelled() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def cleanup() -> str:
        started.set()
        release.wait(10)
        finished.set()
        return "closed"

    task = asyncio.create_task(finish_in_thread(cleanup))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()  # a second cancellation changes nothing either
    assert not task.done()  # still waiting for the thread
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()


async def test_cleanup_returns_its_result() -> None:
    assert await finish_in_thread(lambda: 42) == 42
