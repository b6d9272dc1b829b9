"""`mailer users`: staff accounts of the console (add, ls, disable, enable, reset)."""

from __future__ import annotations

from typing import Any

import click

from mailer.accounts.models import ROLES
from mailer.audit import cli_actor
from mailer.cli.context import CliContext, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.database.connect import session_scope
from mailer.usecases import users

__all__ = ["commands"]


@click.group("users")
def group() -> None:
    """Staff accounts of the console; changes are recorded in the audit trail as the OS user.

    \b
    Example:
      mailer users add redactie@gt.example.nl --role editor
      mailer users ls
    """


@group.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the person may do.")
@click.option("--name", default="", help="The person's name, shown in the console.")
@pass_cli
def add(ctx: CliContext, email: str, role: str, name: str) -> None:
    """Add an account and print its one-time set-up link (give it to the person).

    The link works once, for console.setup_link_hours; there the person chooses a password and
    sets up a second factor (required for admins).

    \b
    Example:
      mailer users add beheer@gt.example.nl --role admin --name "Bea Beheer"
    """
    app = ctx.app()
    actor = cli_actor()
    with session_scope(app.sessions) as session:
        user, link = users.add_user(session, app.settings, actor, email, role, name=name)
        click.echo(link)
    click.echo(f"Added {user.email} as {role} (acting as {actor.name}). The link above works "
               f"once, for {app.settings.console.setup_link_hours} hours.", err=True)


@group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, as_json: bool) -> None:
    """List the accounts, with how each signs in: "oidc" (linked to the identity provider),
    "password", or both.

    The table never shows the provider's subject; --json gives it as stored (issuer|sub, as
    the user.link audit row has it), to tell whether an account is linked to the wrong
    identity or under an old issuer (`users reset` unlinks it).

    \b
    Example:
      mailer users ls --json
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        rows: list[dict[str, Any]] = [
            {"email": u.email, "name": u.name, "role": u.role, "status": u.status,
             "second_factor": bool(u.totp_secret), "set_up": bool(u.password_hash),
             "signin_methods": list(users.signin_methods(u)), "oidc_subject": u.oidc_subject,
             "last_signin_at": u.last_signin_at}
            for u in users.list_users(session, cli_actor())
        ]
    if as_json:
        print_json(rows)
        return
    print_table(("email", "name", "role", "status", "set up", "sign-in", "2FA", "last sign-in"), (
        (r["email"], r["name"], r["role"], r["status"], "yes" if r["set_up"] else "no",
         "+".join(r["signin_methods"]) or "-", "yes" if r["second_factor"] else "no",
         r["last_signin_at"].strftime("%Y-%m-%d %H:%M") if r["last_signin_at"] else "")
        for r in rows))


@group.command("disable")
@click.argument("email")
@pass_cli
def disable(ctx: CliContext, email: str) -> None:
    """Disable an account: it cannot sign in, and its sessions end now.

    \b
    Example:
      mailer users disable oud-lid@gt.example.nl
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        user = users.disable_user(session, cli_actor(), email)
    click.echo(f"Disabled {user.email}; its sessions have ended.")


@group.command("enable")
@click.argument("email")
@pass_cli
def enable(ctx: CliContext, email: str) -> None:
    """Enable a disabled account again.

    \b
    Example:
      mailer users enable redactie@gt.example.nl
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        user = users.enable_user(session, cli_actor(), email)
    click.echo(f"Enabled {user.email}.")


@group.command("reset")
@click.argument("email")
@pass_cli
def reset(ctx: CliContext, email: str) -> None:
    """Forget an account's password, second factor and OpenID Connect link, end its sessions,
    print a new link.

    \b
    Example:
      mailer users reset redactie@gt.example.nl
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        link = users.reset_user(session, app.settings, cli_actor(), email)
        click.echo(link)
    click.echo(f"Reset {email}: its sessions have ended; the link above works once.", err=True)


commands: list[click.Command] = [group]
