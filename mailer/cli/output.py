"""How the CLI shows results: rich tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

__all__ = ["console", "print_table", "print_json", "to_jsonable", "echo_ok"]

console = Console(highlight=False, soft_wrap=True)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2))


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(to_jsonable(v)) for v in row))
    # On a terminal the table fits the window; into a pipe or file it keeps its natural width,
    # so addresses are never cut short for grep or a script.
    width = None if sys.stdout.isatty() else 1000
    Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width).print(table)


def echo_ok(message: str) -> None:
    click.echo(message)
