"""`mailer db`: create, upgrade and inspect the database schema."""

from __future__ import annotations

import click

from mailer.cli.context import CliContext, pass_cli
from mailer.usecases import database as usecases

__all__ = ["group"]


@click.group("db")
def group() -> None:
    """Create and upgrade the database schema.

    \b
    Example:
      mailer db upgrade
    """


@group.command("upgrade")
@pass_cli
def upgrade(ctx: CliContext) -> None:
    """Create the schema, or bring it up to this version's newest migration.

    Safe to run again: an up-to-date database is left as it is.

    \b
    Example:
      MAILER_DATABASE_URL=postgresql+psycopg://mailer@db/mailer mailer db upgrade
    """
    before = usecases.upgrade(ctx.app(check_schema=False))
    if before.up_to_date:
        click.echo(f"Database schema is up to date ({before.head}).")
    else:
        click.echo(f"Database schema upgraded from {before.current or 'empty'} to {before.head}.")


@group.command("status")
@pass_cli
def status(ctx: CliContext) -> None:
    """Show the schema revision of the database and the one this version needs.

    \b
    Example:
      mailer db status
    """
    state = usecases.status(ctx.app(check_schema=False))
    click.echo(f"database: {state.current or 'empty'}\nthis version: {state.head}")
    if not state.up_to_date:
        raise click.exceptions.Exit(1)
