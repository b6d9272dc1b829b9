"""Export subscribers as CSV, JSON or JSON Lines, streamed a page at a time.

Each page of subscribers costs two queries (the people, then their list slugs), whatever its
size, and nothing but the page is held in memory. The CSV has one column per attribute key, so
an export can be edited in a spreadsheet and imported again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

from sqlalchemy.orm import Session

from subscribers import queries
from subscribers.csvcells import SafeWriter, neutralise
from subscribers.queries import SubscriberFilter

__all__ = ["EXPORT_FIELDS", "FORMATS", "export_records", "write_export", "write_xlsx"]

#: Columns of every export, in order; CSV adds one column per attribute key after these.
EXPORT_FIELDS = (
    "email",
    "name",
    "organisation",
    "job_title",
    "region",
    "language",
    "status",
    "lists",
    "created_at",
    "updated_at",
)
FORMATS = ("csv", "json", "jsonl")


def export_records(
    session: Session, flt: SubscriberFilter, *, page_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """One plain dict per matching subscriber, in id order (times as ISO 8601 text)."""
    after = 0
    while True:
        page = queries.subscriber_page(session, flt, after_id=after, size=page_size)
        if not page:
            return
        slugs = queries.list_slugs_by_subscriber(session, [s.id for s in page])
        for sub in page:
            yield {
                "email": sub.email,
                "name": sub.name,
                "organisation": sub.organisation,
                "job_title": sub.job_title,
                "region": sub.region,
                "language": sub.language,
                "status": sub.status,
                "lists": slugs[sub.id],
                "attributes": dict(sub.attributes or {}),
                "created_at": sub.created_at.isoformat(),
                "updated_at": sub.updated_at.isoformat(),
            }
        after = page[-1].id
        # The page's objects are not needed again; dropping them keeps memory flat.
        for sub in page:
            session.expunge(sub)


def _attribute_keys(session: Session, flt: SubscriberFilter) -> list[str]:
    keys: dict[str, None] = {}
    for attributes in queries.attribute_maps(session, flt):
        keys.update(dict.fromkeys(attributes))
    return [k for k in keys if k not in EXPORT_FIELDS]


def _table_rows(session: Session, flt: SubscriberFilter) -> Iterator[list[Any]]:
    """The header, then one row per person: the columns of the CSV export."""
    attribute_keys = _attribute_keys(session, flt)
    yield [*EXPORT_FIELDS, *attribute_keys]
    for record in export_records(session, flt):
        attributes = record["attributes"]
        yield [
            *(" ".join(record[f]) if f == "lists" else record[f] for f in EXPORT_FIELDS),
            *(_cell(attributes.get(k)) for k in attribute_keys),
        ]


def write_export(
    session: Session,
    flt: SubscriberFilter,
    out: TextIO,
    *,
    fmt: str = "csv",
    delimiter: str = ",",
) -> int:
    """Write every matching subscriber to `out` in `fmt`; returns how many were written."""
    count = 0
    if fmt == "csv":
        writer = SafeWriter(out, delimiter=delimiter, lineterminator="\r\n")
        rows = _table_rows(session, flt)
        writer.writerow(next(rows))
        for row in rows:
            writer.writerow(row)
            count += 1
    elif fmt == "json":
        out.write("[")
        for record in export_records(session, flt):
            out.write(",\n  " if count else "\n  ")
            out.write(json.dumps(record, ensure_ascii=False))
            count += 1
        out.write("\n]\n" if count else "]\n")
    elif fmt == "jsonl":
        for record in export_records(session, flt):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return count


def write_xlsx(session: Session, flt: SubscriberFilter, out: BinaryIO) -> int:
    """The CSV export's columns as an Excel workbook (one sheet, streamed by openpyxl's
    write-only mode); how many people were written.

    Every cell is a text cell, so nothing in it is ever evaluated, and formula-like text gets
    the same leading quote as in the CSV (it stays harmless when copied out or saved as CSV).
    Control characters, which the file format cannot hold, are left out.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    book = Workbook(write_only=True)
    sheet = book.create_sheet("subscribers")

    def cell(value: Any) -> WriteOnlyCell:
        text = ILLEGAL_CHARACTERS_RE.sub("", str(neutralise("" if value is None else value)))
        written = WriteOnlyCell(sheet, value=text)
        written.data_type = "s"  # text, whatever it looks like: never a formula
        return written

    count = -1
    for row in _table_rows(session, flt):
        sheet.append([cell(v) for v in row])
        count += 1
    book.save(out)
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
