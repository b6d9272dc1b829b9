"""`mailer lists`: create and inspect lists (topics) people subscribe to."""

from __future__ import annotations

import click

from mailer.cli.context import CliContext, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.database.connect import session_scope
from subscribers import queries, service

__all__ = ["group"]


@click.group("lists")
def group() -> None:
    """Create and inspect lists (topics).

    \b
    Example:
      mailer lists create nieuwsbrief --title "GT Nieuwsbrief"
    """


@group.command("create")
@click.argument("slug")
@click.option("--title", required=True, help="Title shown to subscribers.")
@click.option("--description", default="", help="One or two sentences about the list.")
@click.option("--double-opt-in", is_flag=True, help="Web sign-ups must confirm by e-mail.")
@pass_cli
def create(ctx: CliContext, slug: str, title: str, description: str, double_opt_in: bool) -> None:
    """Create a list.

    \b
    Example:
      mailer lists create regio-noord --title "Regio Noord" --double-opt-in
    """
    with session_scope(ctx.app().sessions) as session:
        created = service.create_list(
            session, slug, title, description, double_opt_in=double_opt_in
        )
        click.echo(f"Created list {created.slug} ({created.opt_in} opt-in).")


@group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, as_json: bool) -> None:
    """List every list with its number of subscribers.

    \b
    Example:
      mailer lists ls --json
    """
    with session_scope(ctx.app().sessions) as session:
        rows = queries.list_summaries(session)
    if as_json:
        print_json(
            [
                {"slug": ml.slug, "title": ml.title, "description": ml.description,
                 "opt_in": ml.opt_in, "active": active, "pending": pending,
                 "created_at": ml.created_at}
                for ml, active, pending in rows
            ]
        )
        return
    print_table(
        ("slug", "title", "opt-in", "active", "pending"),
        ((ml.slug, ml.title, ml.opt_in, active, pending) for ml, active, pending in rows),
    )


@group.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_cli
def show(ctx: CliContext, slug: str, as_json: bool) -> None:
    """Show one list.

    \b
    Example:
      mailer lists show nieuwsbrief
    """
    with session_scope(ctx.app().sessions) as session:
        ml = service.get_list(session, slug)
        counts = {s.slug: (a, p) for s, a, p in queries.list_summaries(session)}
    active, pending = counts.get(slug, (0, 0))
    record = {"slug": ml.slug, "title": ml.title, "description": ml.description,
              "opt_in": ml.opt_in, "active": active, "pending": pending,
              "created_at": ml.created_at}
    if as_json:
        print_json(record)
    else:
        for key, value in record.items():
            click.echo(f"{key + ':':<13}{value}")
