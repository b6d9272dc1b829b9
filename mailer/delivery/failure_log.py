"""One log line per kind of failure, and a count when it repeats, instead of one per event.

A database outage of a minute used to write hundreds of tracebacks, and every refused address
its own warning. Here the first occurrence of a kind is logged with its message (one line, no
traceback for the failures we expect: a database or relay that is away); repeats within
`every` seconds are counted and summarised in one line; when the kind clears (`ok(kind)`), a
line says it is over and how many there were. A surprise (a bug) still gets its traceback once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FailureLog", "one_line"]


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (drivers add hints and SQL on later lines)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@dataclass
class _Kind:
    first_at: float
    last_logged: float
    count: int = 1
    unlogged: int = 0


class FailureLog:
    def __init__(self, logger: logging.Logger, *, every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self._kinds: dict[str, _Kind] = {}

    def failed(self, kind: str, message: str, *, level: int = logging.WARNING,
               exc: BaseException | None = None) -> None:
        """Note one failure of `kind`; logs it if it is the first, or a summary is due."""
        now = self.clock()
        seen = self._kinds.get(kind)
        if seen is None:
            self._kinds[kind] = _Kind(first_at=now, last_logged=now)
            self.logger.log(level, "%s", message, exc_info=exc)
            return
        seen.count += 1
        seen.unlogged += 1
        if now - seen.last_logged >= self.every:
            self.logger.log(level, "%s (%d more times in the last %.0f s)", message,
                            seen.unlogged, now - seen.last_logged)
            seen.last_logged = now
            seen.unlogged = 0

    def ok(self, kind: str, message: str | None = "") -> None:
        """`kind` is over: one line saying so, if it had been logged (none if message is
        None: a state that is normal, like a full rate window)."""
        seen = self._kinds.pop(kind, None)
        if seen is not None and message is not None:
            took = self.clock() - seen.first_at
            self.logger.warning("%s (after %d failures in %.0f s)",
                                message or f"{kind}: working again", seen.count, took)

    def active(self, kind: str) -> bool:
        return kind in self._kinds
