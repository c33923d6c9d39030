"""Bridging blocking iterators (DB-API cursors, file readers) into async code.

A producer thread runs the blocking iterator and hands items to the event loop through a small
bounded queue, so memory stays bounded and the loop never blocks. Closing the async iterator early
(a ``limit`` reached) stops the producer and closes the blocking iterator in its own thread.

Cleanup that runs in a thread (closing a cursor, waiting for the producer) is never cut short by a
cancellation: a cancelled ``asyncio.to_thread`` whose work has not started yet drops that work
altogether, which left connections open and checked out when a caller cancelled a read that was
already closing (``finish_in_thread``). The cancellation is re-raised once the cleanup is done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

__all__ = ["finish_in_thread", "iterate_in_thread"]

T = TypeVar("T")
_DONE = object()


async def finish_in_thread(cleanup: Callable[[], T]) -> T:
    """Run ``cleanup`` in a worker thread and wait for it to finish, even when the caller is
    cancelled meanwhile; that cancellation is re-raised afterwards.

    For the ``finally`` of async code that holds blocking resources (connections, cursors, a
    producer thread): a thread cannot be interrupted, and releasing the resource later, from a
    thread nobody waits for, races with whoever closes the pool under it.
    """
    work = asyncio.get_running_loop().run_in_executor(None, cleanup)  # submitted now
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if work.cancelled():  # the executor itself was shut down: nothing left to wait for
            raise
        while not work.done():  # further cancellations change nothing: the work must end
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([work])
        raise


async def iterate_in_thread(
    make: Callable[[], Iterator[T]], buffer: int = 2
) -> AsyncGenerator[T, None]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=buffer)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand ``item`` to the loop; False when the consumer is gone (stop, loop closed)."""
        try:
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        except RuntimeError:  # the loop is closed
            return False
        while True:
            try:
                future.result(timeout=0.2)
                return True
            except TimeoutError:
                if stop.is_set():
                    future.cancel()
                    return False
            except concurrent.futures.CancelledError:  # the loop shut down under us
                return False

    def produce() -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = make()
            for item in iterator:
                if stop.is_set() or not put(item):
                    break
        except BaseException as exc:  # handed to the consumer, re-raised there
            if not stop.is_set():
                put(_Failure(exc))
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if not stop.is_set():
            put(_DONE)

    thread = threading.Thread(target=produce, name="patchbay-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while not queue.empty():  # unblock a producer waiting for room
            queue.get_nowait()
        # The producer may be using the blocking iterator's resources right now: whoever
        # releases them next (a connector closing its connection) must find it finished.
        await finish_in_thread(thread.join)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
