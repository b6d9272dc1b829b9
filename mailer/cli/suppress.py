"""`mailer suppress`: the addresses that must never be mailed, whoever's list they are on."""

from __future__ import annotations

import click

from mailer.cli.context import CliContext, current_actor, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.usecases import suppression as usecases

__all__ = ["group"]

REASONS = ("manual", "blocked", "complained", "bounced", "erased")


@click.group("suppress")
def group() -> None:
    """Keep addresses from ever being mailed (the suppression list).

    Suppression wins over every list: a suppressed address is left out of each mailing and an
    import does not add it again.

    \b
    Example:
      mailer suppress add info@voorbeeld.nl --note "shared mailbox, asked not to be mailed"
      mailer suppress ls
    """


@group.command("add")
@click.argument("emails", nargs=-1, required=True)
@click.option("--reason", type=click.Choice(REASONS[:-1]), default="manual", show_default=True,
              help="Why the address is suppressed.")
@click.option("--note", default="", help="A note for admins.")
@pass_cli
def add(ctx: CliContext, emails: tuple[str, ...], reason: str, note: str) -> None:
    """Suppress one or more addresses (subscribers or not).

    \b
    Example:
      mailer suppress add info@voorbeeld.nl secretariaat@voorbeeld.nl --note "on request"
    """
    added = usecases.suppress(ctx.app(), emails, reason, note=note, actor=current_actor())
    for email in emails:
        state = "suppressed" if email in added else "was already suppressed"
        click.echo(f"{email.strip()}: {state}.")


@group.command("ls")
@click.option("--reason", "reasons", multiple=True, type=click.Choice(REASONS),
              help="Only this reason. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, reasons: tuple[str, ...], as_json: bool) -> None:
    """List suppressed addresses. Erased people show only as a hash.

    \b
    Example:
      mailer suppress ls --reason complained --json
    """
    rows = usecases.suppression_list(ctx.app(), reasons)
    if as_json:
        print_json(
            [
                {"email": row.email, "hash": row.email_hash, "reason": row.reason,
                 "note": row.note, "created_at": row.created_at}
                for row in rows
            ]
        )
        return
    print_table(
        ("address", "reason", "note", "since"),
        ((row.email or f"(erased) {row.email_hash[:12]}…", row.reason, row.note,
          row.created_at.strftime("%Y-%m-%d %H:%M")) for row in rows),
    )


@group.command("rm")
@click.argument("email")
@pass_cli
def rm(ctx: CliContext, email: str) -> None:
    """Take an address off the suppression list (mail may reach it again).

    A blocked subscriber stays blocked until `mailer subscribers edit EMAIL --status active`.

    \b
    Example:
      mailer suppress rm info@voorbeeld.nl
    """
    usecases.unsuppress(ctx.app(), email, actor=current_actor())
    click.echo(f"{email.strip()} is no longer suppressed.")
