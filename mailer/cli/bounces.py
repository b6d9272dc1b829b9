"""`mailer bounces`: ingest bounce mail, review bounces and complaints, and their statistics;
plus `mailer subscribers reactivate`, which undoes what bounces did to a person."""

from __future__ import annotations

import sys

import click

from mailer.bounces import service
from mailer.bounces.models import KINDS
from mailer.cli.context import CliContext, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.cli.subscribers import group as subscribers_group
from mailer.database.connect import session_scope
from mailer.intake import files as intake
from mailer.usecases import subscribers as usecases
from mailer.usecases.subjects import shown_subjects

__all__ = ["commands", "group", "reactivate"]

# sysexits.h EX_TEMPFAIL: an MTA piping into `ingest -` keeps the message and tries again later.
EX_TEMPFAIL = 75


@click.group("bounces")
def group() -> None:
    """Bounces and complaints: intake, review and statistics.

    \b
    Example:
      mailer bounces ingest /var/mail/bounces/
      mailer bounces stats --campaign 12
    """


@group.command("ingest")
@click.argument("path")
@click.option("--envelope-to", "envelope_to", multiple=True,
              help="Envelope recipient (stdin only), e.g. Postfix's ${original_recipient}.")
@click.option("--envelope-from", "envelope_from", default="",
              help="Envelope sender (stdin only), e.g. Postfix's ${sender}.")
@pass_cli
def ingest(ctx: CliContext, path: str, envelope_to: tuple[str, ...], envelope_from: str) -> None:
    """Read bounce mail: a message file, a Maildir, a folder of .eml files, an mbox file, or
    `-` for standard input (an MTA's pipe). Messages seen before are not counted again.

    With `-`, any failure exits with 75 (temporary failure) so the MTA keeps the message and
    retries; nothing is lost.

    \b
    Example:
      mailer bounces ingest ~/Maildir/.Bounces
      mailer bounces ingest bounce.eml
      mailer bounces ingest - --envelope-to bounces+1x-abcdefghijklmnop@bounces.gt.example.nl
    """
    try:
        summary = intake.ingest_path(ctx.app(), path, envelope_from=envelope_from,
                                     envelope_to=envelope_to)
    except Exception as exc:
        if path != "-":
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"Error: bounce not stored, try again later: {reason}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(summary.line())


@group.command("ls")
@click.option("--campaign", "campaign_id", type=int, default=None, help="Only this campaign.")
@click.option("--kind", type=click.Choice(KINDS), default=None, help="Only this kind.")
@click.option("--limit", type=int, default=200, show_default=True, help="Newest N records.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, campaign_id: int | None, kind: str | None, limit: int,
       as_json: bool) -> None:
    """List bounces, complaints and other reports, newest first.

    \b
    Example:
      mailer bounces ls --campaign 12 --kind hard
      mailer bounces ls --kind unknown --json
    """
    with session_scope(ctx.app().sessions) as session:
        rows = service.list_bounces(session, campaign_id=campaign_id, kind=kind, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        ("id", "received", "source", "kind", "status", "recipient", "campaign", "matched",
         "outcome"),
        ((r["id"], r["received_at"].strftime("%Y-%m-%d %H:%M"), r["source"], r["kind"],
          r["status"], r["recipient"], r["campaign_id"], r["matched_by"], r["outcome"])
         for r in rows),
    )


@group.command("show")
@click.argument("bounce_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_cli
def show(ctx: CliContext, bounce_id: int, as_json: bool) -> None:
    """Show one bounce with everything parsed from it and the raw message.

    \b
    Example:
      mailer bounces show 42
    """
    with session_scope(ctx.app().sessions) as session:
        record = service.get_bounce(session, bounce_id)
    if as_json:
        print_json(record)
        return
    message = record.pop("message")
    for key, value in record.items():
        click.echo(f"{key + ':':<14}{'' if value is None else value}")
    if message is None:
        click.echo("message:      (recorded at send time; no message)")
        return
    click.echo(f"{'message:':<14}#{message['id']} via {message['source']}, "
               f"{message['size']} bytes{' (truncated)' if message['truncated'] else ''}")
    click.echo(f"{'subject:':<14}{message['subject']}")
    click.echo(f"{'from:':<14}{message['from']}")
    if message["raw"] is None:
        click.echo(f"raw message purged at {message['purged_at']} (retention period)")
    else:
        click.echo("-" * 72)
        click.echo(message["raw"])


@group.command("stats")
@click.option("--campaign", "campaign_id", type=int, default=None, help="Only this campaign.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def stats(ctx: CliContext, campaign_id: int | None, as_json: bool) -> None:
    """Sent, hard and soft bounces, complaints and their rates, per campaign.

    \b
    Example:
      mailer bounces stats
      mailer bounces stats --campaign 12 --json
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        if campaign_id is not None:
            rows = [service.campaign_bounce_summary(session, campaign_id,
                                                    settings=app.settings.bounces)]
        else:
            rows = service.bounce_stats(session)
        # Meeting mail's subject is a per-person template: show it as received.
        shown = shown_subjects(session, app.settings, [r["campaign_id"] for r in rows])
    for row in rows:
        row["subject"] = shown.get(row["campaign_id"], row["subject"])
    if as_json:
        print_json(rows)
        return
    print_table(
        ("campaign", "subject", "sent", "hard", "soft", "complaints", "bounce rate",
         "complaint rate"),
        ((r["campaign_id"], r["subject"][:40], r["sent"], r["hard"], r["soft"],
          r["complaints"], f"{r['bounce_rate']:.2%}", f"{r['complaint_rate']:.2%}")
         for r in rows),
    )
    for row in rows:
        for flag in row.get("flags", []):
            click.echo(f"Campaign {row['campaign_id']}: {flag}")


@group.command("purge")
@pass_cli
def purge(ctx: CliContext) -> None:
    """Forget raw bounce messages older than bounces.retention_days (the records stay).

    `mailer run` does this once a day by itself.

    \b
    Example:
      mailer bounces purge
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        count = service.purge(session, app.settings.bounces.retention_days)
    click.echo(f"Purged the raw text of {count} message(s) older than "
               f"{app.settings.bounces.retention_days} days.")


@click.command("reactivate")
@click.argument("email")
@click.option("--reason", required=True, help="Why; kept in the person's consent history.")
@click.option("--by", "actor", default="", help="Who reactivates (kept with the reason).")
@pass_cli
def reactivate(ctx: CliContext, email: str, reason: str, actor: str) -> None:
    """Mail a bounced (or complained) subscriber again: clears the status and bounce score.

    \b
    Example:
      mailer subscribers reactivate anna@gemeente-a.nl --reason "mailbox fixed, per phone call"
    """
    sub = usecases.reactivate(ctx.app(), email, reason, actor=actor)
    click.echo(f"Reactivated {sub.email}: status {sub.status}, bounce score cleared.")


# `mailer subscribers reactivate` (the name people look for) and `mailer bounces reactivate`.
subscribers_group.add_command(reactivate)
group.add_command(reactivate)

commands: list[click.Command] = [group]
