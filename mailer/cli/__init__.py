"""The `mailer` command: global options, error handling, and the command groups.

Each group lives in its own module and calls the domain; this module turns the domain's errors
into one-line messages with exit code 1, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from mailer import __version__
from mailer.cli.context import CliContext
from mailer.errors import MailerError
from subscribers.errors import SubscriberError

__all__ = ["cli", "main"]


class MailerGroup(click.Group):
    """A group that reports GT Mailer's errors as `Error: ...` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (MailerError, SubscriberError) as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"database error: {reason}") from None


@click.group(cls=MailerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Configuration file (default: $MAILER_CONFIG, else config.toml of the install).",
)
@click.option(
    "--database-url",
    default=None,
    help="Database URL; overrides database.url and $MAILER_DATABASE_URL.",
)
@click.version_option(__version__, prog_name="GT Mailer")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, database_url: str | None) -> None:
    """GT Mailer: newsletters and meeting invitations for GT participants.

    \b
    Example:
      mailer db upgrade
      mailer subscribers add anna@gemeente.nl --name "Anna de Vries" --region Noord
    """
    ctx.obj = CliContext(config_path=config_path, database_url=database_url)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from mailer.cli import db, lists, subscribers, suppress

    for module in (db, lists, subscribers, suppress):
        cli.add_command(module.group)
    # Groups added by later parts (campaigns, run, bounces, web, events) register here too.
    from mailer.cli import extra

    for command in extra.commands():
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="mailer")
