"""Import subscribers from a CSV file as people really make them, all or nothing.

Reading copes with what Excel writes in the Netherlands and elsewhere: `;`, `,` or tab
(detected from the header line, or named by Excel's `sep=;` line), UTF-8 with or without BOM,
UTF-16 with BOM, or Windows-1252; quoted fields, CRLF, blank lines and stray spaces; Dutch and
English headers. Applying works a batch of rows at a time: one look-up per batch for
suppressions, existing people and their subscriptions, then bulk inserts and updates, so
100,000 rows cost a few hundred statements and memory stays flat. The caller's transaction
holds the whole file: an error half-way leaves the database as it was.

Merging rules (so that re-running an import changes nothing):
- a filled cell overwrites the stored value, an empty cell keeps it;
- the first row of an address in the file wins; later rows of the same address (any case) only
  fill fields the first left empty, and are counted as duplicates;
- addresses on the suppression list (blocked, complained, erased) are rejected, never re-added;
- people who are not `active` (unsubscribed, bounced, ...) are not put on lists again.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from subscribers import queries
from subscribers.controls import strip_controls
from subscribers.csvcells import restore
from subscribers.errors import ImportFileError, SubscriberError
from subscribers.models import new_public_id, utcnow
from subscribers.service import SubscriberData, clean_data, email_hash, email_key, get_lists

__all__ = [
    "HEADER_ALIASES",
    "Reject",
    "ImportResult",
    "CsvLayout",
    "detect_layout",
    "preview_rows",
    "import_file",
]

#: Header spellings per field, after `_header_key` (lower case, no spaces, dashes, dots or _).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailadres", "emailaddress", "emailadress", "mail", "mailadres"),
    "name": ("naam", "name", "volledigenaam", "fullname"),
    "first_name": ("voornaam", "firstname", "givenname", "roepnaam"),
    "infix": ("tussenvoegsel", "tussenvoegsels", "infix"),
    "last_name": ("achternaam", "lastname", "surname", "familienaam"),
    "organisation": (
        "gemeente", "organisatie", "organisation", "organization", "municipality", "company",
    ),
    "region": ("regio", "region"),
    "job_title": ("functie", "jobtitle", "functietitel", "function", "role", "rol"),
    "language": ("taal", "language", "lang", "voorkeurstaal"),
    # Written by `subscribers export` but not taken by an import, so an export re-imports.
    "ignored": ("status", "lists", "lijsten", "createdat", "updatedat"),
}
_FIELD_BY_HEADER = {alias: name for name, aliases in HEADER_ALIASES.items() for alias in aliases}
_PROFILE_FIELDS = ("name", "organisation", "job_title", "region", "language")
_LANGUAGE_WORDS = {
    "nl": "nl", "nld": "nl", "nl-nl": "nl", "nederlands": "nl", "dutch": "nl",
    "en": "en", "eng": "en", "en-gb": "en", "en-us": "en", "engels": "en", "english": "en",
}
_DELIMITERS = (";", ",", "\t")


@dataclass(frozen=True)
class Reject:
    """A row that was not imported: where it is, what it said and why."""

    line: int
    email: str
    reason: str
    fields: tuple[str, ...] = ()
    # The file's header line (the same tuple for every reject), to write the rejects file.
    header: tuple[str, ...] = ()


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    duplicates: int = 0
    dry_run: bool = False
    encoding: str = ""
    delimiter: str = ""
    # The first rejects, for the summary; all of them go to the `on_reject` callback.
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.unchanged + self.rejected + self.duplicates


@dataclass(frozen=True)
class CsvLayout:
    """How a file is written and what its columns mean."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    header_line: int
    # Column index of each known field; attribute columns by their header as written.
    fields: dict[str, int]
    attributes: dict[str, int]


@dataclass
class _Row:
    line: int
    key: str
    values: dict[str, str]  # profile fields as given (cleaned); "" where the cell was empty
    attributes: dict[str, str]


def _header_key(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch not in " -_.\u00a0")


def _detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes as such, else Windows-1252."""
    with path.open("rb") as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            count += 1
    return count


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    try:
        return path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read: {exc.strerror}") from None


def detect_layout(path: Path) -> CsvLayout:
    """Encoding, delimiter and column meanings of a file; ImportFileError if it has no e-mail."""
    if not path.is_file():
        raise ImportFileError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        encoding = _detect_encoding(path)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot be read: {exc.strerror}") from None
    with _open_text(path, encoding) as fh:
        try:
            first_line = next((line for line in fh if line.strip(" \t\r\n;,")), "")
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path}: cannot be read as text ({exc.reason})") from None
    if not first_line:
        raise ImportFileError(f"{path}: the file is empty")
    # Excel's own hint line, "sep=;", names the delimiter; otherwise the header line shows it.
    hint = first_line.strip()
    has_hint = hint.lower().startswith("sep=") and len(hint) <= 5
    if has_hint:
        delimiter = hint[4:5] or ","
    else:
        counts = {d: _count_outside_quotes(first_line, d) for d in _DELIMITERS}
        delimiter = max(_DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","

    with _open_text(path, encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=True)
        header: list[str] = []
        for row in reader:
            if has_hint and len(row) <= 2 and row[0].strip().lower().startswith("sep="):
                has_hint = False  # the hint line itself, not the header
                continue
            if any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
                break
        header_line = reader.line_num

    fields: dict[str, int] = {}
    attributes: dict[str, int] = {}
    for index, title in enumerate(header):
        if not title:
            continue
        name = _FIELD_BY_HEADER.get(_header_key(title))
        if name == "ignored":
            continue
        if name is None:
            attributes.setdefault(title, index)
        elif name in fields:
            raise ImportFileError(
                f"{path}: columns {header[fields[name]]!r} and {title!r} both mean "
                f"{name.replace('_', ' ')}; keep one"
            )
        else:
            fields[name] = index
    if "email" not in fields:
        raise ImportFileError(
            f"{path}: no e-mail column (looked for e-mail, e-mailadres, email); "
            f"the header line has: {', '.join(h for h in header if h) or 'nothing'}"
        )
    return CsvLayout(encoding, delimiter, tuple(header), header_line, fields, attributes)


def preview_rows(path: Path, layout: CsvLayout, count: int = 5) -> list[list[str]]:
    """The first `count` data rows as the import will read them (same reader, cells stripped,
    the export's formula quote taken off), for showing a file before it is imported."""
    rows: list[list[str]] = []
    with _open_text(path, layout.encoding) as fh:
        reader = csv.reader(fh, delimiter=layout.delimiter, skipinitialspace=True)
        try:
            for raw in reader:
                if reader.line_num <= layout.header_line:
                    continue
                cells = [restore(cell.strip()) for cell in raw]
                if any(cells):
                    rows.append(cells)
                if len(rows) >= count:
                    break
        except (csv.Error, UnicodeDecodeError):
            pass  # the import itself names the line; a preview shows what it could read
    return rows


class _Importer:
    def __init__(
        self,
        session: Session,
        path: Path,
        layout: CsvLayout,
        *,
        lists: Sequence[str],
        regions: Sequence[str] | None,
        actor: str,
        on_reject: Callable[[Reject], None] | None,
        keep_rejects: int,
    ) -> None:
        self.session = session
        self.path = path
        self.layout = layout
        self.lists = get_lists(session, lists)
        self.regions = regions
        self.actor = actor
        self.on_reject = on_reject
        self.keep_rejects = keep_rejects
        self.result = ImportResult(encoding=layout.encoding, delimiter=layout.delimiter)
        # Addresses already applied from earlier batches: later rows of them are duplicates.
        self.seen: set[str] = set()
        self.now = utcnow()

    # -- reading -------------------------------------------------------------------------------

    def reject(self, line: int, email: str, reason: str, cells: Sequence[str] = ()) -> None:
        rejected = Reject(line, email, reason, tuple(cells), self.layout.header)
        self.result.rejected += 1
        if len(self.result.rejects) < self.keep_rejects:
            self.result.rejects.append(rejected)
        if self.on_reject is not None:
            self.on_reject(rejected)

    def rows(self) -> Iterator[_Row]:
        """Every data row, validated; invalid rows are rejected here and not yielded."""
        layout = self.layout
        width = len(layout.header)
        with _open_text(self.path, layout.encoding) as fh:
            reader = csv.reader(fh, delimiter=layout.delimiter, skipinitialspace=True)
            previous_end = 0
            try:
                for raw in reader:
                    line, previous_end = previous_end + 1, reader.line_num
                    if line <= layout.header_line:
                        continue
                    if reader.line_num > line:
                        self.check_multiline(line, raw)
                    cells = [restore(cell.strip()) for cell in raw]
                    if not any(cells):
                        continue  # blank line, or a line of only delimiters
                    if len(cells) > width and any(cells[width:]):
                        self.reject(line, self._cell(cells, "email"),
                                    f"{len(cells)} fields, the header has {width}", cells)
                        continue
                    row = self.parse(line, cells)
                    if row is not None:
                        yield row
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{self.path}: line {reader.line_num + 1}: cannot be read as "
                    f"{layout.encoding} ({exc.reason})"
                ) from None
            except csv.Error as exc:
                raise ImportFileError(f"{self.path}: line {reader.line_num}: {exc}") from None

    def check_multiline(self, line: int, raw: Sequence[str]) -> None:
        """Refuse a record whose quoted cell swallowed following rows.

        A quote that is opened and never closed makes the csv module read on to the next quote
        (or the end of the file) as one cell, and the rows in between vanish. A real multi-line
        cell (Excel's Alt+Enter) holds text; one whose later lines hold the delimiter or an
        address is rows read as a cell, so the whole file is refused rather than guessed at.
        """
        delimiter = self.layout.delimiter
        for cell in raw:
            later = cell.splitlines()[1:]
            if any(delimiter in part or "@" in part for part in later):
                raise ImportFileError(
                    f"{self.path}: line {line}: a quote (\") is opened and not closed on that "
                    "line, so the rows after it would be read as one cell; close the quote "
                    "and import again (nothing was imported)"
                )

    def _cell(self, cells: Sequence[str], name: str) -> str:
        index = self.layout.fields.get(name)
        return cells[index] if index is not None and index < len(cells) else ""

    def parse(self, line: int, cells: list[str]) -> _Row | None:
        raw_email = self._cell(cells, "email")
        if not raw_email:
            self.reject(line, "", "no e-mail address", cells)
            return None
        name = self._cell(cells, "name") or " ".join(
            part
            for part in (self._cell(cells, p) for p in ("first_name", "infix", "last_name"))
            if part
        )
        language_cell = self._cell(cells, "language")
        language = _LANGUAGE_WORDS.get(language_cell.casefold(), language_cell)
        try:
            clean = clean_data(
                SubscriberData(
                    email=raw_email,
                    name=name,
                    organisation=self._cell(cells, "organisation"),
                    job_title=self._cell(cells, "job_title"),
                    region=self._cell(cells, "region"),
                    language=language or "nl",
                ),
                self.regions,
            )
        except SubscriberError as exc:
            self.reject(line, raw_email, str(exc), cells)
            return None
        values = {
            "name": clean.name,
            "organisation": clean.organisation,
            "job_title": clean.job_title,
            "region": clean.region,
            "language": clean.language if language_cell else "",
        }
        attributes = {
            strip_controls(title): strip_controls(cells[index], multiline=True)
            for title, index in self.layout.attributes.items()
            if index < len(cells) and cells[index]
        }
        return _Row(line, email_key(clean.email), {"email": clean.email, **values}, attributes)

    # -- applying ------------------------------------------------------------------------------

    def apply(self, batch: list[_Row]) -> None:
        """Apply one batch with a fixed number of statements, whatever its size."""
        merged = self.merge(batch)
        existing = queries.import_lookup(self.session, merged.keys())
        inserts, updates, outcome = self.plan(merged, existing)
        new_ids = queries.insert_subscribers(self.session, inserts)
        queries.update_subscribers(self.session, updates)
        events = [self.event(new_ids[key], "created", merged[key][0].line) for key in new_ids]
        if self.lists:
            events += self.subscribe(merged, existing, new_ids, outcome)
        queries.insert_consent_events(self.session, events)
        self.count(outcome.values())
        self.seen.update(merged)

    def merge(self, batch: list[_Row]) -> dict[str, tuple[_Row, bool]]:
        """The batch by address, suppressed rows rejected: the first row of an address wins,
        later ones fill its gaps (duplicates); True where an earlier batch had the address."""
        hashes = {email_hash(row.key): row.key for row in batch}
        suppressed = {hashes[h] for h in queries.suppressed_hashes(self.session, hashes)}
        merged: dict[str, tuple[_Row, bool]] = {}
        for row in batch:
            if row.key in suppressed:
                self.reject(row.line, row.values["email"], "on the suppression list")
            elif row.key in merged:
                self.result.duplicates += 1
                _fill(merged[row.key][0], row)
            else:
                merged[row.key] = (row, row.key in self.seen)
        return merged

    def plan(
        self, merged: dict[str, tuple[_Row, bool]], existing: dict[str, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        """(rows to insert, updates, what becomes of each address) against what is stored."""
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        outcome: dict[str, str] = {}
        for key, (row, duplicate) in merged.items():
            current = existing.get(key)
            if current is None:
                inserts.append(self.new_subscriber(row))
                outcome[key] = "added"
                continue
            changes = _changes(current, row, fill_only=duplicate)
            if changes:
                updates.append({"id": current["id"], **changes, "updated_at": self.now})
            outcome[key] = "duplicate" if duplicate else ("updated" if changes else "unchanged")
        return inserts, updates, outcome

    def subscribe(
        self,
        merged: dict[str, tuple[_Row, bool]],
        existing: dict[str, dict[str, Any]],
        new_ids: dict[str, int],
        outcome: dict[str, str],
    ) -> list[dict[str, Any]]:
        """Put the active people of the batch on the lists; their consent events.

        Someone who only gains a list counts as updated.
        """
        ids = {key: existing[key]["id"] if key in existing else new_ids[key] for key in merged}
        list_ids = [ml.id for ml in self.lists]
        active = [key for key in merged if key in new_ids or existing[key]["status"] == "active"]
        have = queries.existing_subscriptions(
            self.session, [existing[k]["id"] for k in active if k in existing], list_ids
        )
        subscriptions: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for key in active:
            for ml in self.lists:
                if (ids[key], ml.id) in have:
                    continue
                subscriptions.append(
                    {"subscriber_id": ids[key], "list_id": ml.id, "status": "active",
                     "created_at": self.now, "updated_at": self.now,
                     "confirmed_at": self.now, "unsubscribed_at": None}
                )
                events.append(self.event(ids[key], "subscribe", merged[key][0].line,
                                         list_id=ml.id))
                if outcome[key] == "unchanged":
                    outcome[key] = "updated"
        queries.insert_subscriptions(self.session, subscriptions)
        return events

    def count(self, states: Iterable[str]) -> None:
        result = self.result
        for state in states:
            if state == "added":
                result.added += 1
            elif state == "updated":
                result.updated += 1
            elif state == "unchanged":
                result.unchanged += 1
            else:
                result.duplicates += 1

    def new_subscriber(self, row: _Row) -> dict[str, Any]:
        values = row.values
        return {
            "public_id": new_public_id(),  # COPY applies no Python-side defaults
            "email": values["email"],
            "email_key": row.key,
            "name": values["name"],
            "organisation": values["organisation"],
            "job_title": values["job_title"],
            "region": values["region"],
            "language": values["language"] or "nl",
            "status": "active",
            "attributes": dict(row.attributes),
            "consent_at": self.now,
            "consent_source": "import",
            "consent_by": self.path.name,
            "created_at": self.now,
            "updated_at": self.now,
        }

    def event(
        self, subscriber_id: int, action: str, line: int, *, list_id: int | None = None
    ) -> dict[str, Any]:
        return {
            "subscriber_id": subscriber_id,
            "list_id": list_id,
            "action": action,
            "source": "import",
            "actor": self.actor,
            "detail": f"{self.path.name} line {line}",
            "at": self.now,
        }


def _fill(first: _Row, later: _Row) -> None:
    """A later row of the same address fills only what the first left empty."""
    for name, value in later.values.items():
        if value and not first.values.get(name):
            first.values[name] = value
    for title, value in later.attributes.items():
        first.attributes.setdefault(title, value)


def _changes(current: dict[str, Any], row: _Row, *, fill_only: bool) -> dict[str, Any]:
    """The columns to update: filled cells that differ (or, for duplicates, fill gaps)."""
    changes: dict[str, Any] = {}
    for name in _PROFILE_FIELDS:
        value = row.values[name]
        if not value or value == current[name]:
            continue
        # A stored language is never empty, so a duplicate row never changes it.
        if fill_only and (current[name] or name == "language"):
            continue
        changes[name] = value
    stored = dict(current["attributes"] or {})
    merged = dict(stored)
    for title, value in row.attributes.items():
        if fill_only and title in stored:
            continue
        merged[title] = value
    if merged != stored:
        changes["attributes"] = merged
    return changes


def import_file(
    session: Session,
    path: str | Path,
    *,
    lists: Sequence[str] = (),
    regions: Sequence[str] | None = None,
    actor: str = "",
    dry_run: bool = False,
    on_reject: Callable[[Reject], None] | None = None,
    batch_size: int = 2000,
    keep_rejects: int = 100,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import a CSV file in the caller's transaction; see the module docstring for the rules.

    ImportFileError if the file cannot be read (nothing is imported then); rows that cannot be
    imported are rejected one by one. With `dry_run` everything is checked and counted inside a
    savepoint that is rolled back, so the database is not changed. `on_progress` is called
    after each batch with the line of the file reached.
    """
    file = Path(path)
    layout = detect_layout(file)
    savepoint = session.begin_nested() if dry_run else None
    try:
        importer = _Importer(
            session, file, layout, lists=lists, regions=regions, actor=actor,
            on_reject=on_reject, keep_rejects=keep_rejects,
        )
        batch: list[_Row] = []
        last_line = layout.header_line
        for row in importer.rows():
            batch.append(row)
            last_line = row.line
            if len(batch) >= batch_size:
                importer.apply(batch)
                batch = []
                if on_progress is not None:
                    on_progress(last_line)
        if batch:
            importer.apply(batch)
        session.flush()
        if on_progress is not None:
            on_progress(last_line)
    except SQLAlchemyError as exc:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ImportFileError(
            f"{file}: the database refused the rows up to line {last_line}: {reason}; "
            "nothing was imported"
        ) from None
    except BaseException:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    if savepoint is not None:
        savepoint.rollback()
    importer.result.dry_run = dry_run
    return importer.result
