"""`mailer db`: create, upgrade and inspect the database schema."""

from __future__ import annotations

import click

from mailer.cli.context import CliContext, pass_cli
from mailer.database.connect import schema_status, upgrade_schema

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
    app = ctx.app(check_schema=False)
    before, head = schema_status(app.engine)
    upgrade_schema(app.engine)
    if before == head:
        click.echo(f"Database schema is up to date ({head}).")
    else:
        click.echo(f"Database schema upgraded from {before or 'empty'} to {head}.")


@group.command("status")
@pass_cli
def status(ctx: CliContext) -> None:
    """Show the schema revision of the database and the one this version needs.

    \b
    Example:
      mailer db status
    """
    app = ctx.app(check_schema=False)
    current, head = schema_status(app.engine)
    click.echo(f"database: {current or 'empty'}\nthis version: {head}")
    if current != head:
        raise click.exceptions.Exit(1)
