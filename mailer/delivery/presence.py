"""Which delivery workers are alive, so a dead one's claimed rows go back at once.

Each worker registers a row in delivery_workers. How another worker tells it is dead:

- PostgreSQL: the worker holds a session advisory lock (class WORKER_LOCK_CLASS, key = its row
  id) on a connection of its own for its whole life; the lock dies with the process or its
  connection, whichever machine it runs on.
- SQLite (one machine): the worker's pid no longer exists.
- Anything that cannot be seen that way (another host without the lock): no heartbeat for
  delivery.lease_seconds.

The rows in flight of a dead worker may already have reached the relay; sending them again is
the "at most what was in flight" a crash may cost.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from mailer.campaigns import queries
from mailer.database.connect import session_scope

__all__ = ["WorkerPresence", "pid_alive"]

log = logging.getLogger("mailer.delivery")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (signal 0 checks, sends none)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class WorkerPresence:
    """This worker's registration and the liveness test it applies to the others."""

    def __init__(self, engine: Engine, sessions: sessionmaker[Session], name: str,
                 lease_seconds: float) -> None:
        self.engine = engine
        self.sessions = sessions
        self.name = name
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id: int | None = None
        self._lock_conn: Any = None

    @property
    def postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def register(self, now: dt.datetime) -> None:
        """Insert our row; on PostgreSQL take our lock in the same transaction, so no other
        worker can see the row without the lock (and think us dead)."""
        if self.postgresql:
            conn = self.engine.connect()
            try:
                with Session(bind=conn) as session:
                    self.id = queries.register_worker(session, self.name, self.host, self.pid,
                                                      now)
                    session.execute(text("SELECT pg_advisory_lock(:cls, :key)"),
                                    {"cls": queries.WORKER_LOCK_CLASS, "key": self.id})
                    session.commit()
            except Exception:
                conn.close()
                raise
            self._lock_conn = conn
            return
        with session_scope(self.sessions) as session:
            self.id = queries.register_worker(session, self.name, self.host, self.pid, now)

    def beat(self, now: dt.datetime) -> bool:
        """Say we are alive. False if we lost our standing (our lock's connection broke, or
        another worker took us for dead): what we hold may be someone else's now."""
        if self.id is None:
            return False
        if self._lock_conn is not None:
            try:
                self._lock_conn.execute(text("SELECT 1"))
                self._lock_conn.commit()
            except Exception:
                self._drop_lock_conn()
                return False
        with session_scope(self.sessions) as session:
            return queries.beat_worker(session, self.id, now)

    def release_dead(self, session: Session, now: dt.datetime) -> list[tuple[str, int, str]]:
        """Hand back the rows of every worker found dead, in the caller's transaction;
        (worker name, rows handed back, why it is taken for dead) for each."""
        held = queries.held_worker_locks(session)
        dead: list[tuple[int, str, str]] = []
        for worker_id, name, host, pid, heartbeat in queries.workers(session):
            if worker_id == self.id:
                continue
            why = self._why_dead(held, worker_id, host, pid, heartbeat, now)
            if why:
                dead.append((worker_id, name, why))
        found = []
        for worker_id, name, why in dead:
            count = queries.release_workers(session, [worker_id], [name])
            found.append((name, count, why))
        return found

    def _why_dead(self, held: set[int] | None, worker_id: int, host: str, pid: int,
                  heartbeat: dt.datetime, now: dt.datetime) -> str:
        if held is not None:
            return "" if worker_id in held else "its database lock is gone"
        if host == self.host:
            return "" if pid_alive(pid) else f"process {pid} is gone"
        if heartbeat.tzinfo is None:
            heartbeat = heartbeat.replace(tzinfo=dt.UTC)
        if now - heartbeat > self.lease:
            return f"no heartbeat since {heartbeat:%H:%M:%S} UTC"
        return ""

    def close(self, *, forget: bool = True) -> None:
        """Unregister: hand back any row still `sending` under our name (a send cut off at
        shutdown) and delete our row, in one transaction. With `forget` False (outcomes left
        unrecorded, a claim interrupted) the row stays, so the others see us dead once this
        process and its lock are gone, and hand back what we left at once."""
        if self.id is not None and forget:
            try:
                with session_scope(self.sessions) as session:
                    queries.release_workers(session, [self.id], [self.name])
            except Exception as exc:
                log.warning("could not unregister worker %s: %s", self.name,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        self._drop_lock_conn()
        self.id = None

    def _drop_lock_conn(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.invalidate()
                self._lock_conn.close()
            except Exception:  # the connection is already broken; nothing to give back
                pass
            self._lock_conn = None
