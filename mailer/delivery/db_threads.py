"""Database work for an event loop, on a few long-lived daemon threads.

The loop never blocks on the database (a stalled server would freeze sending and signal
handling). The threads are reused for the whole run (a fresh thread per call would each grow
its own malloc arena), and they are daemon threads: a call stuck in a dead database cannot keep
the process from exiting once shutdown has given up on it (concurrent.futures' pool threads
are joined at exit, however long that takes).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DbThreads"]

_Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any], asyncio.AbstractEventLoop]


class DbThreads:
    def __init__(self, count: int = 2, name: str = "delivery-db") -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{n}", daemon=True)
                         for n in range(count)]
        for thread in self._threads:
            thread.start()

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._calls.put((func, args, future, loop))
        return await future

    def run_detached(self, func: Callable[..., Any], *args: Any) -> None:
        """Run `func` on a thread without waiting for it (best-effort clean-up at exit)."""
        threading.Thread(target=_quietly, args=(func, *args), daemon=True).start()

    def close(self) -> None:
        """Let the threads end once their current call returns (never waits for them)."""
        for _ in self._threads:
            self._calls.put(None)

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            func, args, future, loop = call
            try:
                result = func(*args)
            except BaseException as exc:  # handed to the awaiting task, which decides
                _settle(loop, future, None, exc)
            else:
                _settle(loop, future, result, None)


def _quietly(func: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(Exception):
        func(*args)


def _settle(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], result: Any,
            exc: BaseException | None) -> None:
    def settle() -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)

    # A closed loop (RuntimeError): nobody waits for this any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)
