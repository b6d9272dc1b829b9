"""How the CLI shows results: rich tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["console", "print_table", "print_json", "to_jsonable", "echo_ok", "visible"]

console = Console(highlight=False, soft_wrap=True)

# Controls (C0, DEL, C1) and the bidirectional overrides that can hide or reorder text.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(value: Any, *, multiline: bool = False) -> str:
    """`value` as text a terminal shows as it is: ESC, BEL, NUL and the like as `\\x1b` escapes.

    What came from outside lost its controls on input already; this is for what remains (data
    stored by an older version, raw bounce messages). With `multiline`, tab and LF stay.
    """
    pattern = _HIDDEN if multiline else _HIDDEN_IN_LINE
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n")
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    # json escapes C0 controls itself; C1 controls (CSI is U+009B) and overrides it does not.
    text = json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)
    click.echo(_HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        # Text objects, not strings: rich would read "[bold]" in a name as markup.
        table.add_row(*(Text(visible(to_jsonable(v))) for v in row))
    # On a terminal the table fits the window; into a pipe or file it keeps its natural width,
    # so addresses are never cut short for grep or a script.
    width = None if sys.stdout.isatty() else 1000
    Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width).print(table)


def echo_ok(message: str) -> None:
    click.echo(message)
