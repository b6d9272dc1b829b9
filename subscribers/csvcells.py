"""Spreadsheet-safe CSV cells: the one place every CSV we write and read goes through.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (`=HYPERLINK("https://evil.example", "Klik")` typed into the
sign-up form would come out live in an export). Writers prefix such a cell with a single quote,
which spreadsheets show as text and do not evaluate (OWASP's advice for CSV injection); the
importer takes that quote off again, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["FORMULA_STARTS", "neutralise", "restore", "SafeWriter", "SafeDictWriter"]

#: What makes a spreadsheet treat a cell as a formula (or lets one hide behind a control).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(text: str) -> bool:
    # Quotes already in front count too, so a value that itself starts with `'=` survives the
    # round trip (it is written as `''=` and read back as `'=`).
    return text.lstrip("'").startswith(FORMULA_STARTS)


def neutralise(value: Any) -> Any:
    """The cell as written: text starting like a formula gets a leading single quote."""
    if isinstance(value, str) and _formula_like(value):
        return "'" + value
    return value


def restore(cell: str) -> str:
    """The cell as read: the quote `neutralise` added is taken off, nothing else."""
    if cell.startswith("'") and _formula_like(cell[1:]):
        return cell[1:]
    return cell


class SafeWriter:
    """csv.writer whose every cell goes through `neutralise`."""

    def __init__(self, out: TextIO, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter:
    """csv.DictWriter whose every value goes through `neutralise` (the header too)."""

    def __init__(self, out: TextIO, fieldnames: Sequence[str], **options: Any) -> None:
        self.fieldnames = list(fieldnames)
        self._writer = SafeWriter(out, **options)

    def writeheader(self) -> None:
        self._writer.writerow(self.fieldnames)

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow([row.get(name, "") for name in self.fieldnames])

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)
