"""`mailer bounces`: ingest bounce mail, review bounces and complaints, and their statistics;
plus `mailer subscribers reactivate`, which undoes what bounces did to a person.

Everything but `ingest` (the intake adapter's) goes through mailer.usecases.bounces, as the
console's bounce pages do; changes are audited as `os:$LOGNAME`."""

from __future__ import annotations

import datetime as dt
import sys

import click

from mailer.audit import cli_actor
from mailer.bounces.models import KINDS
from mailer.bounces.reasons import REASONS
from mailer.cli.context import CliContext, pass_cli
from mailer.cli.output import print_json, print_table, visible
from mailer.cli.subscribers import group as subscribers_group
from mailer.database.connect import session_scope
from mailer.intake import files as intake
from mailer.usecases import bounces as usecases

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
      mailer bounces ingest - --envelope-to bounces+t3xppgj5so27ioyparm665w7ya@bounces.gt.example.nl
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
@click.option("--reason", type=click.Choice(REASONS), default=None, help="Only this reason.")
@click.option("--limit", type=int, default=200, show_default=True, help="Newest N records.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, campaign_id: int | None, kind: str | None, reason: str | None,
       limit: int, as_json: bool) -> None:
    """List bounces, complaints and other reports, newest first.

    \b
    Example:
      mailer bounces ls --campaign 12 --kind hard
      mailer bounces ls --kind unknown --json
    """
    with session_scope(ctx.app().sessions) as session:
        rows = usecases.records(session, cli_actor(), campaign_id=campaign_id, kind=kind,
                                reason=reason, limit=limit)
    _print_bounces(rows, as_json)


def _print_bounces(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        print_json(rows)
        return
    print_table(
        ("id", "received", "source", "kind", "reason", "status", "recipient", "campaign",
         "matched", "outcome"),
        ((r["id"], r["received_at"].strftime("%Y-%m-%d %H:%M")  # type: ignore[attr-defined]
          if r["received_at"] else "", r["source"], r["kind"], r["reason"], r["status"],
          r["recipient"], r["campaign_id"], r["matched_by"], r["outcome"])
         for r in rows),
    )


@group.command("review")
@click.option("--limit", type=int, default=200, show_default=True, help="Newest N records.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def review(ctx: CliContext, limit: int, as_json: bool) -> None:
    """List reports held for review: bounces, complaints and unsubscribe mail that carried no
    valid token of ours, so they acted on no one (anyone can send such a report).

    \b
    Example:
      mailer bounces review
      mailer bounces apply 42        # act on one, as if it had carried our token
    """
    with session_scope(ctx.app().sessions) as session:
        rows = usecases.held(session, cli_actor(), limit)
    _print_bounces(rows, as_json)


@group.command("apply")
@click.argument("bounce_id", type=int)
@click.option("--by", "actor", default="", help="Who decided (kept with the record).")
@pass_cli
def apply(ctx: CliContext, bounce_id: int, actor: str) -> None:
    """Act on a held report (see `bounces review`) on the subscriber its recipient names.

    \b
    Example:
      mailer bounces apply 42 --by "Jan (checked with the provider)"
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        bounce = usecases.apply(session, app.settings, cli_actor(), bounce_id, by=actor)
        click.echo(f"Bounce {bounce.id}: {bounce.outcome}")


@group.command("pauses")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def pauses(ctx: CliContext, as_json: bool) -> None:
    """Receiving domains whose delivery the brake on mass failure paused, and what waits.

    \b
    Example:
      mailer bounces pauses
    """
    with session_scope(ctx.app().sessions) as session:
        rows = usecases.pauses(session, cli_actor())
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("No receiving domain is paused.")
        return
    print_table(("domain", "reason", "paused", "waiting", "detail"),
                ((r["domain"], r["reason"], r["paused_at"].strftime("%Y-%m-%d %H:%M"),
                  r["waiting"], r["detail"]) for r in rows))


@group.command("resume-domain")
@click.argument("domain")
@click.option("--by", "actor", default="", help="Who resumes (kept with the pause).")
@pass_cli
def resume_domain(ctx: CliContext, domain: str, actor: str) -> None:
    """Let delivery to a paused receiving domain go on; the messages that waited go first.

    Resume once the cause is fixed (the relay's IP delisted, the message made smaller, DMARC
    repaired): otherwise the brake pauses it again after the next wave of refusals.

    \b
    Example:
      mailer bounces resume-domain gmail.com
    """
    with session_scope(ctx.app().sessions) as session:
        usecases.resume_domain(session, cli_actor(), domain, by=actor)
    click.echo(f"Delivery to {domain.strip().lower()} resumed.")


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
        record = usecases.record(session, cli_actor(), bounce_id)
    if as_json:
        print_json(record)
        return
    message = record.pop("message")
    for key, value in record.items():
        click.echo(f"{key + ':':<14}{visible(value)}")
    if message is None:
        click.echo("message:      (recorded at send time; no message)")
        return
    click.echo(f"{'message:':<14}#{message['id']} via {message['source']}, "
               f"{message['size']} bytes{' (truncated)' if message['truncated'] else ''}")
    click.echo(f"{'subject:':<14}{visible(message['subject'])}")
    click.echo(f"{'from:':<14}{visible(message['from'])}")
    if message["raw"] is None:
        click.echo(f"raw message purged at {message['purged_at']} (retention period)")
    else:
        click.echo("-" * 72)
        click.echo(visible(message["raw"], multiline=True))


@group.command("stats")
@click.option("--campaign", "campaign_id", type=int, default=None, help="Only this campaign.")
@click.option("--by", "by", type=click.Choice(("campaign", "reason", "domain")),
              default="campaign", show_default=True, help="Count per campaign, reason or domain.")
@click.option("--since", type=click.DateTime(), default=None,
              help="With --by reason/domain: only records received since (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def stats(ctx: CliContext, campaign_id: int | None, by: str, since: dt.datetime | None,
          as_json: bool) -> None:
    """Sent, hard and soft bounces, complaints and their rates, per campaign; or the records
    counted by reason or by receiving domain.

    \b
    Example:
      mailer bounces stats
      mailer bounces stats --campaign 12 --json
      mailer bounces stats --by reason --since 2026-12-01
      mailer bounces stats --by domain --campaign 12
    """
    app = ctx.app()
    if by != "campaign":
        with session_scope(app.sessions) as session:
            grouped = usecases.stats_by(session, cli_actor(), by, campaign_id=campaign_id,
                                        since=since.replace(tzinfo=dt.UTC) if since else None)
        if as_json:
            print_json(grouped)
        elif by == "reason":
            print_table(("reason", "severity", "records", "kinds"),
                        ((r["reason"], r["severity"], r["records"],
                          ", ".join(f"{n} {k}" for k, n in sorted(r["kinds"].items())))
                         for r in grouped))
        else:
            print_table(("domain", "records", "hard", "soft", "refused", "reasons"),
                        ((r["domain"], r["records"], r["hard"], r["soft"], r["refused"],
                          ", ".join(f"{n} {k}" for k, n in sorted(r["reasons"].items())))
                         for r in grouped))
        return
    with session_scope(app.sessions) as session:
        rows = usecases.campaign_stats(session, app.settings, cli_actor(), campaign_id)
    if as_json:
        print_json(rows)
        return
    print_table(
        ("campaign", "subject", "sent", "hard", "soft", "refused", "complaints", "bounce rate",
         "complaint rate"),
        ((r["campaign_id"], r["subject"][:40], r["sent"], r["hard"], r["soft"], r["refused"],
          r["complaints"], f"{r['bounce_rate']:.2%}", f"{r['complaint_rate']:.2%}")
         for r in rows),
    )
    for row in rows:
        for flag in row.get("flags", []):
            click.echo(f"Campaign {row['campaign_id']}: {flag}")


@group.command("purge")
@pass_cli
def purge(ctx: CliContext) -> None:
    """Forget raw bounce messages past their retention (the records stay).

    Matched mail goes after bounces.retention_days, mail that matched none of our deliveries
    after bounces.junk_retention_days, and the oldest (unmatched first) beyond
    bounces.raw_total_mib.

    `mailer run` does this once a day by itself.

    \b
    Example:
      mailer bounces purge
    """
    app = ctx.app()
    with session_scope(app.sessions) as session:
        count = usecases.purge(session, app.settings, cli_actor())
    b = app.settings.bounces
    click.echo(f"Purged the raw text of {count} message(s) (older than {b.retention_days} days, "
               f"unmatched older than {b.junk_retention_days}, or beyond {b.raw_total_mib} MiB).")


@click.command("reactivate")
@click.argument("email", required=False)
@click.option("--reason", "reasons_", multiple=True,
              help="With EMAIL: why (kept in the consent history). Without: only people "
                   "bounced for this bounce reason (repeatable), e.g. user-unknown.")
@click.option("--since", type=click.DateTime(), default=None,
              help="Without EMAIL: only bounces received since (UTC), e.g. 2026-12-01T09:00:00.")
@click.option("--domain", default=None, help="Without EMAIL: only addresses at this domain.")
@click.option("--note", default="", help="Why (kept in each person's consent history).")
@click.option("--dry-run", is_flag=True, help="Without EMAIL: count and list, change nothing.")
@click.option("--by", "actor", default="", help="Who reactivates (kept with the reason).")
@pass_cli
def reactivate(ctx: CliContext, email: str | None, reasons_: tuple[str, ...],
               since: dt.datetime | None, domain: str | None, note: str, dry_run: bool,
               actor: str) -> None:
    """Mail a bounced (or complained) subscriber again: clears the status and bounce score.
    Without EMAIL, undo a mass event in one command: everyone now bounced by a bounce that
    matches --reason, --since and --domain.

    \b
    Example:
      mailer subscribers reactivate anna@gemeente-a.nl --reason "mailbox fixed, per phone call"
      mailer subscribers reactivate --domain gmail.com --since 2026-12-01 --dry-run
      mailer subscribers reactivate --reason unknown --domain gmail.com \\
          --since 2026-12-01 --note "Gmail outage of 1 December"
    """
    app = ctx.app()
    if email:
        why = note or "; ".join(reasons_)
        with session_scope(app.sessions) as session:
            sub = usecases.reactivate(session, cli_actor(), email, why, by=actor)
            click.echo(f"Reactivated {sub.email}: status {sub.status}, bounce score cleared.")
        return
    with session_scope(app.sessions) as session:
        chosen = usecases.reactivate_matching(
            session, cli_actor(), reasons_=reasons_,
            since=since.replace(tzinfo=dt.UTC) if since else None, domain=domain, note=note,
            by=actor, dry_run=dry_run)
    for address in chosen:
        click.echo(address)
    verb = "Would reactivate" if dry_run else "Reactivated"
    click.echo(f"{verb} {len(chosen)} subscriber(s).")


# `mailer subscribers reactivate` (the name people look for) and `mailer bounces reactivate`.
subscribers_group.add_command(reactivate)
group.add_command(reactivate)

commands: list[click.Command] = [group]
