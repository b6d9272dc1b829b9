"""`mailer lists`: create and inspect lists (topics) people subscribe to, through
mailer.usecases.lists (the console's list pages call the same; changes are audited as
`os:$LOGNAME`)."""

from __future__ import annotations

import click

from mailer.audit import cli_actor
from mailer.cli.context import CliContext, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.database.connect import session_scope
from mailer.usecases import lists

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
@click.option("--public", is_flag=True,
              help="Offer the list on the sign-up form and the preferences page (default: not).")
@pass_cli
def create(ctx: CliContext, slug: str, title: str, description: str, double_opt_in: bool,
           public: bool) -> None:
    """Create a list. Lists are not public unless --public: anyone may sign up to a public list.

    \b
    Example:
      mailer lists create regio-noord --title "Regio Noord" --double-opt-in --public
    """
    with session_scope(ctx.app().sessions) as session:
        created = lists.create_list(
            session, cli_actor(), slug, title, description, double_opt_in=double_opt_in,
            public=public,
        )
        shown = "public" if created.public else "not public"
        click.echo(f"Created list {created.slug} ({created.opt_in} opt-in, {shown}).")


@group.command("edit")
@click.argument("slug")
@click.option("--title", default=None, help="Title shown to subscribers.")
@click.option("--description", default=None, help="One or two sentences about the list.")
@click.option("--double-opt-in/--single-opt-in", "double_opt_in", default=None,
              help="Whether new web sign-ups must confirm by e-mail.")
@click.option("--public/--no-public", "public", default=None,
              help="Offer the list on the sign-up form and the preferences page, or not.")
@pass_cli
def edit(ctx: CliContext, slug: str, title: str | None, description: str | None,
         double_opt_in: bool | None, public: bool | None) -> None:
    """Change a list; options not given stay as they are.

    \b
    Example:
      mailer lists edit nieuwsbrief --public
    """
    if title is None and description is None and double_opt_in is None and public is None:
        raise click.UsageError("nothing to change: give --title, --description, "
                               "--double-opt-in/--single-opt-in or --public/--no-public")
    with session_scope(ctx.app().sessions) as session:
        changed = lists.edit_list(session, cli_actor(), slug, title=title,
                                  description=description, double_opt_in=double_opt_in,
                                  public=public)
        shown = "public" if changed.public else "not public"
        click.echo(f"Changed list {changed.slug} ({changed.opt_in} opt-in, {shown}).")


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
        rows = lists.overview(session, cli_actor())
    if as_json:
        print_json(rows)
        return
    print_table(
        ("slug", "title", "opt-in", "public", "active", "pending"),
        ((r["slug"], r["title"], r["opt_in"], "yes" if r["public"] else "no", r["active"],
          r["pending"]) for r in rows),
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
        record = lists.get_list(session, cli_actor(), slug)
    if as_json:
        print_json(record)
    else:
        for key, value in record.items():
            click.echo(f"{key + ':':<13}{value}")
