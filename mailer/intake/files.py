"""Intake adapter for stored mail: one message file, a Maildir, a folder of .eml files, an mbox
file, or standard input (an MTA's pipe). Each message is ingested in its own transaction, so a
bad one never costs the others; nothing is moved or deleted (a second run is a no-op).
"""

from __future__ import annotations

import logging
import mailbox
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mailer.bounces.parse import MAX_BYTES
from mailer.bounces.service import ingest
from mailer.database.connect import session_scope
from mailer.errors import BounceError
from mailer.intake.calendar import KINDS, take_calendar_reply

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["IntakeSummary", "read_capped", "iter_messages", "ingest_path", "ingest_bytes"]

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024


@dataclass
class IntakeSummary:
    messages: int = 0
    duplicates: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, kinds: list[str], duplicate: bool) -> None:
        self.messages += 1
        self.duplicates += duplicate
        for kind in kinds:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def line(self) -> str:
        found = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items())) or "no records"
        dup = f" ({self.duplicates} seen before)" if self.duplicates else ""
        return f"Ingested {self.messages} message(s){dup}: {found}."


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def read_capped(stream: _Readable, limit: int = MAX_BYTES) -> tuple[bytes, int]:
    """(at most `limit` + 1 bytes, full size). Reads to the end, so a pipe writer never sees a
    broken pipe, but keeps only what will be stored."""
    kept = bytearray()
    size = 0
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if len(kept) <= limit:
            kept += chunk[: limit + 1 - len(kept)]
    return bytes(kept), size


def _strip_from_line(raw: bytes) -> bytes:
    # An MTA pipe with the From_ line (Postfix `F` flag) or a single-message mbox file.
    if raw.startswith(b"From "):
        return raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw


def iter_messages(path: str) -> Iterator[tuple[str, bytes, int]]:
    """(label, raw bytes up to the cap, full size) for every message at `path` ('-': stdin)."""
    if path == "-":
        raw, size = read_capped(sys.stdin.buffer)
        yield "stdin", _strip_from_line(raw), size
        return
    target = Path(path)
    if not target.exists():
        raise BounceError(f"{path}: no such file or folder")
    if target.is_dir():
        if all((target / sub).is_dir() for sub in ("cur", "new", "tmp")):
            box = mailbox.Maildir(target, factory=None, create=False)
            for key in sorted(box.keys()):
                with box.get_file(key) as handle:
                    raw, size = read_capped(handle)
                yield f"{path}:{key}", raw, size
            return
        files = sorted(p for p in target.iterdir() if p.is_file() and not p.name.startswith("."))
        for file in files:
            with file.open("rb") as handle:
                raw, size = read_capped(handle)
            yield str(file), _strip_from_line(raw), size
        return
    with target.open("rb") as handle:
        head = handle.read(5)
    if head == b"From ":
        box_file = mailbox.mbox(target, factory=None, create=False)
        try:
            for index, key in enumerate(box_file.keys()):
                with box_file.get_file(key) as handle:
                    raw, size = read_capped(handle)
                yield f"{path}#{index + 1}", raw, size
        finally:
            box_file.close()
        return
    with target.open("rb") as handle:
        raw, size = read_capped(handle)
    yield path, raw, size


def ingest_bytes(
    app: App, raw: bytes, *, source: str, envelope_from: str = "",
    envelope_to: tuple[str, ...] | list[str] = (), size: int | None = None,
) -> tuple[list[str], bool]:
    """Ingest one message in its own transaction: (kinds recorded, was a duplicate)."""
    # An answer from a calendar (iTIP REPLY) is not a bounce: mailer.intake.calendar takes it.
    reply = take_calendar_reply(app, raw, source=source, envelope_to=envelope_to)
    if reply is not None:
        return [KINDS[reply.outcome]], reply.outcome == "duplicate"
    with session_scope(app.sessions) as session:
        result = ingest(session, raw, source=source, settings=app.settings, signer=app.signer,
                        envelope_from=envelope_from, envelope_to=tuple(envelope_to), size=size)
        return result.kinds, result.duplicate


def ingest_path(
    app: App, path: str, *, envelope_from: str = "", envelope_to: tuple[str, ...] = (),
) -> IntakeSummary:
    """Ingest every message at `path`. The envelope applies to standard input only."""
    summary = IntakeSummary()
    for label, raw, size in iter_messages(path):
        log.debug("ingesting %s (%d bytes)", label, size)
        stdin = path == "-"
        kinds, duplicate = ingest_bytes(
            app, raw, source="file", size=size,
            envelope_from=envelope_from if stdin else "",
            envelope_to=envelope_to if stdin else (),
        )
        summary.add(kinds, duplicate)
    return summary
