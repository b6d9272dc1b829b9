"""`mailer audit ls`: read the audit trail (who changed what, when, from where)."""

from __future__ import annotations

import json

import click

from mailer.audit import cli_actor
from mailer.cli.context import CliContext, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.database.connect import session_scope
from mailer.usecases import audit

__all__ = ["commands"]


@click.group("audit")
def group() -> None:
    """The audit trail: every change by the console, the CLI and the service.

    \b
    Example:
      mailer audit ls --object campaign:4
    """


@group.command("ls")
@click.option("--actor", default=None, help="Only changes by this actor (e-mail or os:NAME).")
@click.option("--action", default=None, help="Only actions starting with this (campaign.).")
@click.option("--object", "obj", default=None, help="Only this object, as TYPE or TYPE:ID.")
@click.option("--limit", type=click.IntRange(1, 100000), default=50, show_default=True,
              help="At most this many rows, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with before/after).")
@pass_cli
def ls(ctx: CliContext, actor: str | None, action: str | None, obj: str | None, limit: int,
       as_json: bool) -> None:
    """List audit rows, newest first.

    \b
    Example:
      mailer audit ls --action user. --limit 20
      mailer audit ls --object campaign:4 --json
    """
    object_type, _, object_id = (obj or "").partition(":")
    app = ctx.app()
    with session_scope(app.sessions) as session:
        rows = [audit.as_dict(e) for e in audit.entries(
            session, cli_actor(), who=actor, action=action, object_type=object_type or None,
            object_id=object_id or None, limit=limit)]
    if as_json:
        print_json(rows)
        return
    tz = app.settings.tz
    import datetime as dt

    def local(text: object) -> str:
        return dt.datetime.fromisoformat(str(text)).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")

    def change(row: dict[str, object]) -> str:
        after = row["after"]
        return json.dumps(after, ensure_ascii=False)[:60] if after else ""

    print_table(("id", "when", "actor", "action", "object", "origin", "after"), (
        (r["id"], local(r["at"]), r["actor"], r["action"],
         f"{r['object_type']}:{r['object_id']}" if r["object_type"] else "", r["origin"],
         change(r))
        for r in rows))


commands: list[click.Command] = [group]
