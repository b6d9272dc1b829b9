"""`mailer campaigns`: create, preview, test, schedule, send, pause, resume, cancel, inspect."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from mailer.app import App
from mailer.campaigns import service as campaigns
from mailer.campaigns.models import CAMPAIGN_STATUSES
from mailer.cli.context import CliContext, current_actor, pass_cli
from mailer.cli.output import print_json, print_table
from mailer.errors import CampaignError
from mailer.usecases import campaigns as usecases
from mailer.usecases import preflight, segments

__all__ = ["group", "commands"]


@click.group("campaigns")
def group() -> None:
    """Write, schedule and send newsletters, and follow their delivery.

    \b
    Example:
      mailer campaigns create --content april.md --list nieuwsbrief
      mailer campaigns schedule 1 --at "2027-04-10 09:00"
      mailer campaigns status 1
    """


def _local(value: dt.datetime | None, app: App) -> str:
    if value is None:
        return ""
    return value.astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M")


@group.command("create")
@click.option("--content", "content_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Markdown or HTML file with front matter (subject, preheader, ...).")
@click.option("--subject", default=None, help="Subject; overrides the front matter's subject.")
@click.option("--template", default="newsletter", show_default=True, help="Mail template name.")
@click.option("--segment", default=None, metavar="NAME",
              help="The audience saved under this name (console or `segments ls`), instead "
                   "of --list and the filters.")
@click.option("--list", "lists", multiple=True, help="List slug (repeatable).")
@click.option("--region", "regions", multiple=True, help="Only this region (repeatable).")
@click.option("--organisation", "organisations", multiple=True,
              help="Only this organisation (repeatable).")
@click.option("--language", "languages", multiple=True, help="Only nl or en (repeatable).")
@click.option("--job-title", "job_titles", multiple=True,
              help="Only this job title (functie; repeatable).")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE",
              help="Only people with this attribute value (repeatable; the same key twice: "
                   "either value).")
@pass_cli
def create(ctx: CliContext, content_file: Path, subject: str | None, template: str,
           segment: str | None, lists: tuple[str, ...], regions: tuple[str, ...],
           organisations: tuple[str, ...], languages: tuple[str, ...],
           job_titles: tuple[str, ...], attrs: tuple[str, ...]) -> None:
    """Create a draft campaign and print its id.

    The audience is the active subscribers of the lists, narrowed by the filters, minus
    suppressed and bounced addresses: several values of one filter are alternatives (Noord or
    Oost), different filters all apply. Or a saved segment (--segment). The template is
    rendered once now, so a mistake in it is reported here and not halfway through a send.

    \b
    Example:
      mailer campaigns create --content templates/content/voorbeeld-nieuwsbrief.md \\
          --list nieuwsbrief --region Noord --region Oost
      mailer campaigns create --content april.md --segment "Noord en Oost"
      mailer campaigns create --content april.md --list nieuwsbrief --attr sector=ICT
    """
    actor = usecases.as_actor(current_actor())
    app = ctx.app()
    if segment is not None:
        if lists or regions or organisations or languages or job_titles or attrs:
            raise CampaignError("--segment is the whole audience; leave out --list and the "
                                "filters (or save a new segment)")
        audience = segments.segment_audience(app, segment)
    elif not lists:
        raise CampaignError("a campaign needs an audience: --list SLUG (repeatable) or "
                            "--segment NAME")
    else:
        audience = campaigns.AudienceSpec(
            lists, regions, organisations, languages, job_titles,
            campaigns.parse_attributes(attrs))
    created = usecases.create_campaign(
        app, content_file=content_file, subject=subject, template=template,
        audience=audience, actor=actor,
    )
    click.echo(created.campaign_id)
    click.echo(f"Created campaign {created.campaign_id} ({created.recipients} recipients now) "
               f"as {actor.name}.", err=True)


@group.group("segments")
def segments_group() -> None:
    """Saved audiences (segments), made in the console's audience builder.

    \b
    Example:
      mailer campaigns segments ls
    """


@segments_group.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def segments_ls(ctx: CliContext, as_json: bool) -> None:
    """List the saved segments: name, filters and how many people each has now.

    \b
    Example:
      mailer campaigns segments ls
      mailer campaigns create --content april.md --segment "Noord en Oost"
    """
    rows = segments.list_segments(ctx.app())
    if as_json:
        print_json(rows)
        return
    print_table(("name", "people", "audience", "saved by"),
                ((r["name"], r["count"], _describe(r["audience"]), r["updated_by"])
                 for r in rows))


@segments_group.command("rm")
@click.argument("name")
@pass_cli
def segments_rm(ctx: CliContext, name: str) -> None:
    """Delete a saved segment (campaigns made from it keep their audience).

    \b
    Example:
      mailer campaigns segments rm "Noord en Oost"
    """
    actor = usecases.as_actor(current_actor())
    segments.remove_segment(ctx.app(), name, actor=actor)
    click.echo(f"Deleted segment {name!r} as {actor.name}.")


def _describe(audience: dict[str, Any]) -> str:
    parts = [f"--list {' '.join(audience.get('lists') or [])}"]
    for key, flag in (("regions", "region"), ("organisations", "organisation"),
                      ("languages", "language"), ("job_titles", "job-title")):
        parts += [f"--{flag} {value}" for value in audience.get(key) or []]
    for key, values in (audience.get("attributes") or {}).items():
        parts += [f"--attr {key}={value}" for value in values]
    return " ".join(parts)


@group.command("check")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_cli
def check(ctx: CliContext, campaign_id: int, as_json: bool) -> None:
    """The pre-flight checklist: renders, size, unsubscribe headers, DKIM, audience, links,
    relay, DNS. Exit code 1 when a check fails; "could not check" (offline) does not fail.

    \b
    Example:
      mailer campaigns check 1
    """
    checks = preflight.run_checks(ctx.app(), campaign_id,
                                  actor=usecases.as_actor(current_actor()))
    if as_json:
        print_json([{"check": c.key, "status": c.status, "detail": c.detail} for c in checks])
    else:
        marks = {"ok": "ok  ", "fail": "FAIL", "unknown": "?   "}
        for c in checks:
            click.echo(f"{marks[c.status]} {c.key:<12} {c.detail}")
    if preflight.failed(checks):
        raise SystemExit(1)


@group.command("preview")
@click.argument("campaign_id", type=int)
@click.option("--subscriber", "email", default=None,
              help="Render for this subscriber (default: a made-up sample recipient).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write FILE.html (the HTML part) or FILE.eml (the whole message).")
@pass_cli
def preview(ctx: CliContext, campaign_id: int, email: str | None, output: Path | None) -> None:
    """Render a campaign for one recipient: the text part on screen, or a file.

    \b
    Example:
      mailer campaigns preview 1 --subscriber anna@gemeente.nl -o preview.html
      mailer campaigns preview 1 -o preview.eml
    """
    suffix = output.suffix.lower() if output is not None else ""
    if output is not None and suffix not in (".eml", ".html", ".htm"):
        raise CampaignError(f"{output}: use a .html or .eml file name")
    shown = usecases.preview_campaign(ctx.app(), campaign_id, email=email,
                                      whole_message=suffix == ".eml")
    if output is None:
        click.echo(f"Subject: {shown.rendered.subject}\n")
        click.echo(shown.rendered.text)
        return
    if shown.message is not None:
        output.write_bytes(shown.message)
    else:
        output.write_text(shown.rendered.html, encoding="utf-8")
    click.echo(f"Wrote {output}")


@group.command("test")
@click.argument("campaign_id", type=int)
@click.option("--to", "to", required=True, multiple=True,
              help="Address a test message goes to. Repeatable.")
@click.option("--subscriber", "email", default=None,
              help="Personalise as this subscriber (default: each --to address's own record).")
@pass_cli
def test(ctx: CliContext, campaign_id: int, to: tuple[str, ...], email: str | None) -> None:
    """Send real messages of a campaign to test addresses, through the relay.

    Each message is personalised as a real subscriber (the --to address's own record, or
    --subscriber), so its links are signed and open that person's pages: unsubscribe,
    preferences, view online, RSVP. Every address is checked before anything is sent.

    \b
    Example:
      mailer campaigns test 1 --to redactie@gt.example.nl --to anna@assen.nl
      mailer campaigns test 1 --to redactie@gt.example.nl --subscriber anna@assen.nl
    """
    sent = usecases.send_test(ctx.app(), campaign_id, to=to, email=email, actor=current_actor())
    for address, who, deferred in sent:
        as_whom = "" if who == address else f" (personalised as {who})"
        if deferred:
            click.echo(f"The relay deferred the test of campaign {campaign_id} to {address}"
                       f"{as_whom} ({deferred}); `mailer run` tries again until the delivery "
                       "deadline.")
        else:
            click.echo(f"Sent a test of campaign {campaign_id} to {address}{as_whom}.")


@group.command("approve")
@click.argument("campaign_id", type=int)
@click.option("--version", "version", type=int, default=None,
              help="Approve only if the campaign is still at this version.")
@pass_cli
def approve(ctx: CliContext, campaign_id: int, version: int | None) -> None:
    """Approve a campaign's current version, as the OS user (four-eyes).

    With console.require_approval (the default) a campaign is scheduled or sent only after
    someone other than its last editor approved it; an edit withdraws the approval.

    \b
    Example:
      mailer campaigns approve 1
    """
    actor = usecases.as_actor(current_actor())
    approved = usecases.approve_campaign(ctx.app(), campaign_id, version=version, actor=actor)
    click.echo(f"Campaign {campaign_id} version {approved} approved by {actor.name}.")


@group.command("schedule")
@click.argument("campaign_id", type=int)
@click.option("--at", "at", required=True,
              help='"YYYY-MM-DD HH:MM" in the configured time zone, or with an offset (+02:00).')
@pass_cli
def schedule(ctx: CliContext, campaign_id: int, at: str) -> None:
    """Schedule a campaign; `mailer run` (the service) sends it at that time.

    \b
    Example:
      mailer campaigns schedule 1 --at "2027-04-10 09:00"
      mailer campaigns schedule 1 --at "2027-04-10 07:00+00:00"
    """
    app = ctx.app()
    actor = usecases.as_actor(current_actor())
    when = usecases.schedule_campaign(app, campaign_id, at, actor=actor)
    click.echo(f"Campaign {campaign_id} scheduled for {_local(when, app)} "
               f"({app.settings.timezone}) by {actor.name}.")


@group.command("send")
@click.argument("campaign_id", type=int)
@click.option("--wait", is_flag=True,
              help="Deliver from this command and wait until done (else `mailer run` does).")
@pass_cli
def send(ctx: CliContext, campaign_id: int, wait: bool) -> None:
    """Start sending a campaign now.

    Without --wait the running service (`mailer run` or `mailer worker`) delivers it. With
    --wait the exit code is that of `mailer run --once`: 0 finished, 3 paused, 4 not finished.

    \b
    Example:
      mailer campaigns send 1 --wait
    """
    app = ctx.app()
    actor = usecases.as_actor(current_actor())
    count = usecases.start_campaign(app, campaign_id, actor=actor)
    click.echo(f"Campaign {campaign_id} started by {actor.name}: {count} recipients.")
    if not wait:
        click.echo("The service (`mailer run` or `mailer worker`) delivers it; follow it with "
                   f"`mailer campaigns status {campaign_id}`.")
    if wait:
        from mailer.cli.run import deliver_with_progress, exit_after

        stats = deliver_with_progress(app, campaign_ids=[campaign_id], start=False)
        _print_status(app, campaign_id, as_json=False)
        exit_after(app, stats, [campaign_id])


@group.command("pause")
@click.argument("campaign_id", type=int)
@pass_cli
def pause(ctx: CliContext, campaign_id: int) -> None:
    """Pause a running or scheduled campaign: no worker claims more of it, and messages
    queued inside a running worker are handed back. Waits (up to smtp.timeout_seconds + 5 s)
    for the messages already on the wire and says how many there were.

    \b
    Example:
      mailer campaigns pause 1
    """
    report = usecases.pause_campaign(ctx.app(), campaign_id, actor=current_actor())
    click.echo(f"Campaign {campaign_id} paused; {report.on_wire} message(s) were already on the "
               "wire and went out." + (
                   f" {report.still_held} still in a worker's hands (it is not answering; they "
                   "are handed back when it is seen dead)." if report.still_held else ""))


@group.command("resume")
@click.argument("campaign_id", type=int)
@pass_cli
def resume(ctx: CliContext, campaign_id: int) -> None:
    """Resume a paused campaign.

    \b
    Example:
      mailer campaigns resume 1
    """
    status = usecases.resume_campaign(ctx.app(), campaign_id, actor=current_actor())
    click.echo(f"Campaign {campaign_id} is {status} again.")


@group.command("cancel")
@click.argument("campaign_id", type=int)
@pass_cli
def cancel(ctx: CliContext, campaign_id: int) -> None:
    """Cancel a campaign: nothing more of it is sent.

    \b
    Example:
      mailer campaigns cancel 1
    """
    dropped = usecases.cancel_campaign(ctx.app(), campaign_id, actor=current_actor())
    click.echo(f"Campaign {campaign_id} cancelled ({dropped} unsent messages dropped).")


@group.command("ls")
@click.option("--status", "statuses", multiple=True, type=click.Choice(CAMPAIGN_STATUSES),
              help="Only campaigns in this status (may be repeated).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(ctx: CliContext, statuses: tuple[str, ...], as_json: bool) -> None:
    """List campaigns, newest first.

    \b
    Example:
      mailer campaigns ls --status scheduled
    """
    app = ctx.app()
    rows = usecases.list_campaigns(app, statuses)
    if as_json:
        print_json([
            {"id": c.id, "kind": c.kind, "subject": subject, "subject_template": c.subject,
             "status": c.status,
             "scheduled_at": c.scheduled_at, "started_at": c.started_at,
             "finished_at": c.finished_at, "sent": counts.get("sent", 0),
             "recipients": sum(counts.values())}
            for c, counts, subject in rows
        ])
        return
    print_table(
        ("id", "kind", "status", "subject", "scheduled", "sent", "recipients"),
        ((c.id, c.kind, c.status, _cut(subject, 60), _local(c.scheduled_at, app),
          counts.get("sent", 0), sum(counts.values()))
         for c, counts, subject in rows),
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@group.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_cli
def status(ctx: CliContext, campaign_id: int, as_json: bool) -> None:
    """Show a campaign's delivery: recipients, queued, sent, deferred, failed, bounced, rate, ETA.

    \b
    Example:
      mailer campaigns status 1 --json
    """
    _print_status(ctx.app(), campaign_id, as_json=as_json)


def _outage(info: dict[str, Any], app: App) -> str:
    if not info.get("outage_since"):
        return ""
    text = f"relay unreachable since {_local(info['outage_since'], app)}"
    if info["status"] == "paused" and info.get("resume_at"):
        text += f"; tries again by itself at {_local(info['resume_at'], app)}"
    return text


def _print_status(app: App, campaign_id: int, *, as_json: bool) -> None:
    info = usecases.campaign_status(app, campaign_id)
    if as_json:
        print_json(info)
        return
    lines = [
        ("campaign", f"{info['id']}: {info['subject']}"),
        ("status", info["status"] + (f" — {info['pause_reason']}" if info["pause_reason"] else "")),
        ("outage", _outage(info, app)),
        ("scheduled", _local(info["scheduled_at"], app)),
        ("started", _local(info["started_at"], app)),
        ("finished", _local(info["finished_at"], app)),
        ("recipients", info["recipients"]),
    ]
    lines += [(key, info[key]) for key in
              ("queued", "sending", "sent", "deferred", "failed", "bounced", "skipped")]
    lines.append(("rate", f"{info['rate_per_second']} messages/s"))
    if info["eta"]:
        lines.append(("eta", _local(info["eta"], app)))
    b = info["bounces"]
    lines.append(("bounces", f"{b['hard']} hard, {b['soft']} soft, {b['complaints']} complaints"
                  f" (bounce rate {b['bounce_rate']:.1%}, "
                  f"complaint rate {b['complaint_rate']:.2%})"))
    lines += [("flagged", flag) for flag in b["flags"]]
    for key, value in lines:
        if value != "" or key in ("status",):
            click.echo(f"{key + ':':<12}{value}")
    if sys.stdout.isatty() and info["status"] == "paused" and info["pause_reason"]:
        click.echo(f"Resume with: mailer campaigns resume {info['id']}")


commands: list[click.Command] = [group]

