"""`mailer events`: plan meetings, invite a region, follow the answers, export the attendee list."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import click

from mailer.cli.context import CliContext, current_actor, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.errors import EventError
from mailer.events import service
from mailer.events.dates import format_local, parse_local
from mailer.events.models import Event
from mailer.usecases import events as usecases
from subscribers.csvcells import SafeDictWriter

__all__ = ["group", "commands"]


@click.group("events")
def group() -> None:
    """Regional meetings: plan, invite, answers (RSVP), reminders, attendee list.

    \b
    Example:
      mailer events create --title "GT Connect regio Noord" --region Noord \\
        --starts "2027-04-13 13:30" --ends "2027-04-13 16:00" \\
        --venue "Provinciehuis" --address "Martinikerkhof 12, Groningen" --capacity 60
      mailer events invite 1
      mailer events rsvps 1 --format csv > aanmeldingen.csv
    """


def _time(ctx: CliContext, value: str | None, what: str) -> Any:
    if value is None:
        return None
    return parse_local(value, ctx.settings.timezone, what=what)


def _description(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventError(f"--description {path}: cannot be read ({exc})") from None


def _summary(event: Event) -> str:
    return usecases.summary(event)


@group.command("create")
@click.option("--title", required=True, help="Name of the meeting.")
@click.option("--region", required=True, help="Region it is for (also the default invitees).")
@click.option("--starts", required=True,
              help='Start, local time: "YYYY-MM-DD HH:MM" (or with an offset, "...+01:00").')
@click.option("--ends", required=True,
              help='End, local time: "YYYY-MM-DD HH:MM" (or with an offset, "...+01:00").')
@click.option("--venue", default="", help="Name of the place.")
@click.option("--address", default="", help="Street and town (shown and put in the calendar).")
@click.option("--online-url", default="", help="Link to join online, if any.")
@click.option("--capacity", type=click.IntRange(min=1), default=None,
              help="Seats; more yes answers go on a waiting list. Default: no limit.")
@click.option("--deadline", default=None,
              help='Answers are taken until this local time. Default: the start.')
@click.option("--description", "description_file", type=click.Path(dir_okay=False),
              default=None, help="Text file with the programme (plain text).")
@pass_cli
def create(
    ctx: CliContext, title: str, region: str, starts: str, ends: str, venue: str, address: str,
    online_url: str, capacity: int | None, deadline: str | None, description_file: str | None,
) -> None:
    """Plan a meeting; prints its id.

    Times are wall-clock times in the configured time zone (Europe/Amsterdam), read as
    `campaigns schedule --at` reads them: a time the clocks skip is refused, and one in the
    autumn hour that happens twice must say which with its offset ("2027-10-31 02:30+01:00").

    \b
    Example:
      mailer events create --title "GT Connect regio Oost" --region Oost \\
        --starts "2027-04-15 13:30" --ends "2027-04-15 16:00" --venue "Stadhuis Zwolle" \\
        --address "Grote Kerkplein 15, Zwolle" --capacity 40 --deadline "2027-04-08 17:00"
    """
    fields = service.EventFields(
        title=title,
        region=region,
        starts_at=_time(ctx, starts, "--starts"),
        ends_at=_time(ctx, ends, "--ends"),
        venue=venue,
        address=address,
        online_url=online_url,
        capacity=capacity,
        rsvp_deadline=_time(ctx, deadline, "--deadline"),
        description=_description(description_file) or "",
    )
    event = usecases.create_event(ctx.app(), fields, actor=current_actor())
    # The id alone on stdout, for scripts (`ev=$(mailer events create ...)`).
    click.echo(event.id)
    click.echo(f"Created event {event.id}: {_summary(event)}.", err=True)


@group.command("ls")
@click.option("--all", "include_past", is_flag=True, help="Include meetings that are over.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, include_past: bool, as_json: bool) -> None:
    """List meetings (coming ones, or --all) with their answers.

    \b
    Example:
      mailer events ls --all
    """
    records = usecases.list_events(ctx.app(), include_past=include_past)
    if as_json:
        print_json(records)
        return
    print_table(
        ("id", "title", "region", "starts", "status", "yes", "waiting", "maybe", "no", "seats"),
        (
            (r["id"], r["title"], r["region"], r["starts"], r["status"], r["yes"], r["waiting"],
             r["maybe"], r["no"], "" if r["capacity"] is None else f"{r['yes']}/{r['capacity']}")
            for r in records
        ),
    )


@group.command("show")
@click.argument("event_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_cli
def show(ctx: CliContext, event_id: int, as_json: bool) -> None:
    """Show one meeting with its counts of yes / no / maybe / waiting.

    \b
    Example:
      mailer events show 1
    """
    record = usecases.show_event(ctx.app(), event_id)
    if as_json:
        print_json({k: v for k, v in record.items() if k not in ("description", "past")})
        return
    for key in ("id", "title", "when", "region", "status", "venue", "address", "online_url",
                "capacity", "seats_left", "deadline", "yes", "no", "maybe", "waiting",
                "sequence", "uid"):
        value = record[key]
        if value in (None, "") and key not in ("yes", "no", "maybe", "waiting"):
            value = "-"
        click.echo(f"{key + ':':<12}{value}")
    for campaign in record["campaigns"]:
        click.echo(f"{'campaign:':<12}{campaign['id']} ({campaign['kind']}, {campaign['status']})")


@group.command("edit")
@click.argument("event_id", type=int)
@click.option("--title", default=None)
@click.option("--region", default=None)
@click.option("--starts", default=None, help='New start, "YYYY-MM-DD HH:MM".')
@click.option("--ends", default=None, help='New end, "YYYY-MM-DD HH:MM".')
@click.option("--venue", default=None)
@click.option("--address", default=None)
@click.option("--online-url", default=None)
@click.option("--capacity", type=click.IntRange(min=1), default=None)
@click.option("--no-capacity", is_flag=True, help="Remove the seat limit.")
@click.option("--deadline", default=None, help='New RSVP deadline, "YYYY-MM-DD HH:MM".')
@click.option("--no-deadline", is_flag=True, help="Take answers until the start.")
@click.option("--description", "description_file", type=click.Path(dir_okay=False),
              default=None)
@click.option("--no-announce", is_flag=True,
              help="Change time or place without mailing the invitees (not recommended).")
@pass_cli
def edit(
    ctx: CliContext, event_id: int, title: str | None, region: str | None, starts: str | None,
    ends: str | None, venue: str | None, address: str | None, online_url: str | None,
    capacity: int | None, no_capacity: bool, deadline: str | None, no_deadline: bool,
    description_file: str | None, no_announce: bool,
) -> None:
    """Change a meeting. A new time or place is mailed (with an updated calendar entry, same
    UID, higher SEQUENCE) to everyone invited who has not declined, and moves the reminders.

    \b
    Example:
      mailer events edit 1 --starts "2027-04-13 14:00" --ends "2027-04-13 16:30"
      mailer events edit 1 --capacity 80
    """
    changes: dict[str, Any] = {}
    for key, value in (("title", title), ("region", region), ("venue", venue),
                       ("address", address), ("online_url", online_url)):
        if value is not None:
            changes[key] = value
    if starts is not None:
        changes["starts_at"] = _time(ctx, starts, "--starts")
    if ends is not None:
        changes["ends_at"] = _time(ctx, ends, "--ends")
    if capacity is not None and no_capacity:
        raise EventError("give --capacity or --no-capacity, not both")
    if capacity is not None or no_capacity:
        changes["capacity"] = capacity
    if deadline is not None and no_deadline:
        raise EventError("give --deadline or --no-deadline, not both")
    if deadline is not None or no_deadline:
        changes["rsvp_deadline"] = _time(ctx, deadline, "--deadline")
    if description_file is not None:
        changes["description"] = _description(description_file)
    if not changes:
        raise EventError("nothing to change: give at least one option (see --help)")
    change = usecases.edit_event(ctx.app(), event_id, changes, announce=not no_announce,
                                 actor=current_actor())
    summary = _summary(change.event)
    if not change.changed:
        click.echo(f"Event {event_id} unchanged.")
        return
    click.echo(f"Changed event {event_id} ({', '.join(change.changed)}): {summary}.")
    if change.campaign_id is not None:
        click.echo(f"Update mailed to the invitees as campaign {change.campaign_id}.")
    if change.promoted:
        click.echo(f"{len(change.promoted)} from the waiting list got a seat.")


@group.command("cancel")
@click.argument("event_id", type=int)
@click.option("--yes", "confirmed", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def cancel(ctx: CliContext, event_id: int, confirmed: bool) -> None:
    """Cancel a meeting: everyone invited who has not declined gets a cancellation that
    removes it from their calendar (METHOD:CANCEL, same UID).

    \b
    Example:
      mailer events cancel 1 --yes
    """
    summary = usecases.event_summary(ctx.app(), event_id)
    if not confirmed:
        click.confirm(f"Cancel {summary} and tell the invitees?", abort=True)
    change = usecases.cancel_event(ctx.app(), event_id, actor=current_actor())
    click.echo(f"Cancelled event {event_id}: {summary}.")
    if change.campaign_id is not None:
        click.echo(f"Cancellation mailed to the invitees as campaign {change.campaign_id}.")


@group.command("invite")
@click.argument("event_id", type=int)
@click.option("--list", "lists", multiple=True, metavar="SLUG",
              help="Only active subscribers of this list (repeatable).")
@click.option("--region", "regions", multiple=True, metavar="R",
              help="Invite this region instead of the event's (repeatable).")
@click.option("--at", "at", default=None, help='Send at this local time, "YYYY-MM-DD HH:MM".')
@click.option("--subject", default=None, help="Subject instead of the standard one.")
@pass_cli
def invite(
    ctx: CliContext, event_id: int, lists: tuple[str, ...], regions: tuple[str, ...],
    at: str | None, subject: str | None,
) -> None:
    """Invite people: an invitation campaign with the calendar file and Yes / No / Maybe
    buttons, sent by `mailer run` like any campaign (rate limits, retries, bounces).

    By default it goes to the active subscribers of the event's region.

    \b
    Example:
      mailer events invite 1
      mailer events invite 1 --list regio-noord --at "2027-03-01 09:00"
    """
    invited = usecases.invite(ctx.app(), event_id, lists=lists, regions=regions, at=at,
                              subject=subject, actor=current_actor())
    if invited.at is not None:
        click.echo(
            f"Invitation campaign {invited.campaign_id} scheduled for "
            f"{format_local(invited.at, ctx.settings.timezone)}."
        )
    else:
        click.echo(f"Invitation campaign {invited.campaign_id} started: "
                   f"{invited.recipients} recipient(s) queued.")


@group.command("rsvps")
@click.argument("event_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--answer", "answers", multiple=True,
              type=click.Choice(["yes", "waiting", "maybe", "no"]),
              help="Only these answers (repeatable).")
@pass_cli
def rsvps(ctx: CliContext, event_id: int, fmt: str, answers: tuple[str, ...]) -> None:
    """The attendee list: name, organisation, region, answer and when, for badges and
    catering. Seated people first, then the waiting list in order, then maybe and no.

    \b
    Example:
      mailer events rsvps 1 --format csv --answer yes > badges.csv
    """
    rows = usecases.attendee_list(ctx.app(), event_id, answers=answers)
    columns = usecases.ATTENDEE_COLUMNS
    if fmt == "json":
        print_json(rows)
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = SafeDictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        print_table(columns, ([r[c] for c in columns] for r in rows))


@group.command("replies")
@click.option("--review", is_flag=True, help="Only those kept for review (changed nothing).")
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def replies_cmd(ctx: CliContext, review: bool, limit: int, as_json: bool) -> None:
    """Answers that came from calendars (Accept / Tentative / Decline), newest first: recorded
    ones, and those kept for review with the reason (no valid token, another attendee, ...).

    \b
    Example:
      mailer events replies --review
    """
    from mailer.usecases.events import calendar_replies

    rows = calendar_replies(ctx.app(), review_only=review, limit=limit)
    if as_json:
        print_json(rows)
        return
    columns = ("id", "received_at", "outcome", "event_id", "attendee", "partstat", "reason")
    print_table(columns, ([r[c] for c in columns] for r in rows))


@group.command("rsvp")
@click.argument("event_id", type=int)
@click.argument("email")
@click.argument("answer", type=click.Choice(["yes", "no", "maybe"]))
@pass_cli
def rsvp_cmd(ctx: CliContext, event_id: int, email: str, answer: str) -> None:
    """Record an answer on someone's behalf (e.g. given by phone); same rules as the page.

    \b
    Example:
      mailer events rsvp 1 anna@gemeente.nl yes
    """
    outcome = usecases.record_rsvp(ctx.app(), event_id, email, answer, actor=current_actor())
    if not outcome.changed:
        click.echo(f"{email} had answered {answer} already.")
    elif outcome.waiting:
        click.echo(f"{email}: yes, on the waiting list (number {outcome.position}).")
    else:
        click.echo(f"{email}: {answer}.")
    if outcome.promoted:
        click.echo(f"{len(outcome.promoted)} from the waiting list got the seat.")


@group.command("send-due")
@pass_cli
def send_due(ctx: CliContext) -> None:
    """Queue the reminders that are due and send all owed meeting mail now.

    `mailer run` does this every minute; this command is for a server without it (cron).

    \b
    Example:
      mailer events send-due
    """
    queued, report = usecases.send_due_mail(ctx.app())
    click.echo(
        f"{queued} reminder(s) queued; {report.sent} sent, {report.failed} failed, "
        f"{report.skipped} skipped, {report.retry} to retry."
    )
    for error in list(dict.fromkeys(report.errors))[:5]:
        click.echo(f"  {error}", err=True)


commands: list[click.Command] = [group]
