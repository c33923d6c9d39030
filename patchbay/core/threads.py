"""Bridging blocking iterators (DB-API cursors, file readers) into async code.

A producer thread runs the blocking iterator and hands items to the event loop through a small
bounded queue, so memory stays bounded and the loop never blocks. Closing the async iterator early
(a ``limit`` reached) stops the producer and closes the blocking iterator in its own thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

__all__ = ["iterate_in_thread"]

T = TypeVar("T")
_DONE = object()


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
        await asyncio.to_thread(thread.join)


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
