"""Meetings in the console, through the use cases the CLI uses: plan with the daylight-saving
checks, edit, invite (preview, count, test copy), cancel with its mail, answers by phone with
capacity and waiting list, the attendee list as CSV and .xlsx with formulas neutralised, and the
audit trail of each change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import io
from zoneinfo import ZoneInfo

import pytest
from conftest import Cli
from console_support import console_client, csrf_token, make_account, sign_in
from sqlalchemy import select

from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.delivery.engine import DeliveryEngine
from mailer.events.models import Event
from subscribers import service as subscribers
from subscribers.service import SubscriberData

AMS = ZoneInfo("Europe/Amsterdam")


def _last_sunday(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


SPRING = _last_sunday(2099, 3)  # 02:00-03:00 does not exist
AUTUMN = _last_sunday(2099, 10)  # 02:00-03:00 happens twice


def _people(app: App, *specs: tuple[str, str, str]) -> None:
    with session_scope(app.sessions) as session:
        for address, name, organisation in specs:
            subscribers.add_subscriber(session, SubscriberData(
                email=address, name=name, organisation=organisation, region="Noord"))


def _form(page: str, **fields: str) -> dict[str, str]:
    return {"csrf": csrf_token(page), "title": "GT Connect regio Noord", "region": "Noord",
            "starts": "2099-04-14T13:30", "ends": "2099-04-14T16:00",
            "venue": "Provinciehuis", "address": "Martinikerkhof 12\r\nGroningen",
            "online_url": "", "capacity": "", "deadline": "", "description": "13.30 Inloop",
            **fields}


def _deliver(app: App) -> None:
    asyncio.run(DeliveryEngine(app).run(asyncio.Event(), until_idle=True, idle_seconds=0.05))


def _mails(capture: CaptureServer) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(capture.folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        found.append(msg)
    return found


def _trail(app: App, event_id: int) -> list[tuple[str, str]]:
    with session_scope(app.sessions) as session:
        return [(e.actor, e.action) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "event",
                                     AuditEntry.object_id == str(event_id))
            .order_by(AuditEntry.id))]


def test_plan_with_the_clock_changes_edit_invite_and_cancel(capture: CaptureServer, app: App):
    _people(app, ("anna@assen.nl", "Anna de Vries", "Gemeente Assen"),
            ("bram@emmen.nl", "Bram Bakker", "Gemeente Emmen"))
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ed, ap, vi = console_client(app), console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(ap, approver)
    sign_in(vi, viewer)
    assert vi.get("/events/new").status_code == 403

    page = ed.get("/events/new").text
    # The spring-forward gap does not exist: refused beside the field.
    gap = ed.post("/events/new", data=_form(page, starts=f"{SPRING}T02:30",
                                            ends=f"{SPRING}T04:00"))
    assert gap.status_code == 400 and "does not exist" in gap.text
    assert 'id="starts-error"' in gap.text
    # The autumn hour that happens twice is not guessed: the two instants are offered.
    twice = ed.post("/events/new", data=_form(page, starts=f"{AUTUMN}T02:30",
                                              ends=f"{AUTUMN}T04:00"))
    assert twice.status_code == 400 and "happens twice" in twice.text
    assert 'name="starts_offset" value="+02:00"' in twice.text
    assert 'name="starts_offset" value="+01:00"' in twice.text
    second = ed.post("/events/new", data=_form(page, starts=f"{AUTUMN}T02:30",
                                               ends=f"{AUTUMN}T04:00", starts_offset="+01:00"))
    assert second.status_code == 303
    autumn_id = int(second.headers["location"].split("/")[2].split("?")[0])
    with session_scope(app.sessions) as session:
        autumn = session.get(Event, autumn_id)
        assert autumn is not None
        assert autumn.starts_at.astimezone(dt.UTC).replace(tzinfo=None) == dt.datetime(
            AUTUMN.year, AUTUMN.month, AUTUMN.day, 1, 30)  # 02:30 winter time is 01:30 UTC
    # Editing something else does not ask again, and keeps the instant chosen.
    form = ed.get(f"/events/{autumn_id}/edit").text
    assert f'value="{AUTUMN}T02:30"' in form
    venue = ed.post(f"/events/{autumn_id}/edit", data=_form(
        form, starts=f"{AUTUMN}T02:30", ends=f"{AUTUMN}T04:00", venue="Stadhuis"))
    assert "notice=changed" in venue.headers["location"]
    with session_scope(app.sessions) as session:
        autumn = session.get(Event, autumn_id)
        assert autumn is not None and autumn.venue == "Stadhuis"
        assert autumn.starts_at.astimezone(dt.UTC).hour == 1

    created = ed.post("/events/new", data=_form(page, capacity="40"))
    assert created.status_code == 303
    url = created.headers["location"].split("?")[0]
    event_id = int(url.rsplit("/", 1)[1])
    shown = ed.get(url).text
    assert "dinsdag 14 april, 13.30–16.00 uur" in shown and 'id="seats-left">40<' in shown

    # The invitation: count, preview through the real renderer, a test copy; the editor
    # may prepare it, only an approver sends it.
    page = ed.get(f"{url}/invite").text
    assert 'id="send-invitations"' not in page
    count = ed.post(f"{url}/invite/count", data={"csrf": csrf_token(page), "regions": "Noord"})
    assert count.text.strip() == "2"
    preview = ed.get(f"{url}/invite/preview?lang=nl")
    assert "GT Connect regio Noord" in preview.text and "Voorbeeld Ontvanger" in preview.text
    assert "script-src" not in preview.headers["content-security-policy"]
    english = ed.post(f"{url}/invite/preview", data={"csrf": csrf_token(page), "lang": "en"})
    assert "Sample Recipient" in english.text
    stranger = ed.post(f"{url}/invite/test", data={"csrf": csrf_token(page),
                                                   "to": "nobody@example.org"})
    assert stranger.status_code == 400 and "not a subscriber" in stranger.text
    tested = ed.post(f"{url}/invite/test", data={"csrf": csrf_token(page),
                                                 "to": "anna@assen.nl"})
    assert tested.status_code == 200 and "Het testbericht is verstuurd." in tested.text
    assert capture.count == 1
    assert ed.post(f"{url}/invite", data={"csrf": csrf_token(page), "regions": "Noord"}
                   ).status_code == 403
    page = ap.get(f"{url}/invite").text
    assert 'id="send-invitations"' in page
    # Refusals are shown beside their field; the autumn hour is asked about here too.
    nolist = ap.post(f"{url}/invite", data={"csrf": csrf_token(page), "lists": "nope"})
    assert nolist.status_code == 400 and 'id="lists-error"' in nolist.text
    twice = ap.post(f"{url}/invite", data={"csrf": csrf_token(page), "at": f"{AUTUMN}T02:30"})
    assert twice.status_code == 400 and 'name="at_offset" value="+01:00"' in twice.text
    invited = ap.post(f"{url}/invite", data={"csrf": csrf_token(page), "regions": "Noord"})
    assert invited.status_code == 303 and "notice=invited" in invited.headers["location"]
    _deliver(app)
    assert capture.count == 3

    # A new time sends an update; the form reads back unchanged times as they were.
    page = ed.get(f"{url}/edit").text
    assert 'value="2099-04-14T13:30"' in page
    unchanged = ed.post(f"{url}/edit", data=_form(page, capacity="40"))
    assert "notice=unchanged" in unchanged.headers["location"]
    moved = ed.post(f"{url}/edit", data=_form(page, capacity="40", starts="2099-04-14T14:00",
                                              ends="2099-04-14T16:30"))
    assert "notice=changed" in moved.headers["location"]
    _deliver(app)
    assert capture.count == 5

    # Cancelling asks for the tick first, then mails METHOD:CANCEL to the invitees.
    page = ed.get(url).text
    assert ed.post(f"{url}/cancel", data={"csrf": csrf_token(page)}).status_code == 400
    assert vi.post(f"{url}/cancel", data={"csrf": csrf_token(vi.get(url).text),
                                          "confirm": "yes"}).status_code == 403
    done = ed.post(f"{url}/cancel", data={"csrf": csrf_token(page), "confirm": "yes"})
    assert done.status_code == 303
    _deliver(app)
    cancellations = [m for m in _mails(capture) if str(m["Subject"]).startswith("Afgelast")]
    assert sorted(str(m["To"]) for m in cancellations) == ["Anna de Vries <anna@assen.nl>",
                                                           "Bram Bakker <bram@emmen.nl>"]
    for msg in cancellations:
        calendar = msg.get_body(preferencelist=("calendar",))
        assert calendar is not None and "METHOD:CANCEL" in calendar.get_content()
    assert "afgelast" in ed.get(url).text
    with session_scope(app.sessions) as session:
        kinds = [c.kind for c in session.scalars(
            select(Campaign).where(Campaign.event_id == event_id).order_by(Campaign.id))]
    assert kinds == ["invitation", "update", "cancellation"]
    assert _trail(app, event_id) == [
        ("redactie@gt.example.nl", "event.create"),
        ("redactie@gt.example.nl", "event.invite.test"),
        ("eindredactie@gt.example.nl", "event.invite"),
        ("redactie@gt.example.nl", "event.edit"),
        ("redactie@gt.example.nl", "event.cancel"),
    ]


def test_answers_by_phone_respect_capacity(capture: CaptureServer, app: App):
    _people(app, ("anna@assen.nl", "Anna de Vries", "Gemeente Assen"),
            ("bram@emmen.nl", "Bram Bakker", "Gemeente Emmen"))
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ed, vi = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(vi, viewer)
    page = ed.get("/events/new").text
    url = ed.post("/events/new", data=_form(page, capacity="1")).headers["location"]
    url = url.split("?")[0]

    page = ed.get(url).text
    first = ed.post(f"{url}/rsvp", data={"csrf": csrf_token(page), "email": "anna@assen.nl",
                                         "answer": "yes"})
    assert first.status_code == 200 and "anna@assen.nl: Ja." in first.text
    second = ed.post(f"{url}/rsvp", data={"csrf": csrf_token(page), "email": "bram@emmen.nl",
                                          "answer": "yes"})
    assert "op de wachtlijst (nummer 1)" in second.text
    unknown = ed.post(f"{url}/rsvp", data={"csrf": csrf_token(page),
                                           "email": "cor@example.org", "answer": "yes"})
    assert unknown.status_code == 400 and "no subscriber" in unknown.text
    assert vi.post(f"{url}/rsvp", data={"csrf": csrf_token(vi.get(url).text),
                                        "email": "bram@emmen.nl", "answer": "no"}
                   ).status_code == 403
    counts = vi.get(f"{url}/counts").text
    assert 'id="count-yes">1<' in counts and 'id="count-waiting">1<' in counts
    assert 'id="seats-left">0<' in counts and 'hx-trigger="every 5s"' in counts
    # Anna gives up her seat: Bram gets it.
    freed = ed.post(f"{url}/rsvp", data={"csrf": csrf_token(page), "email": "anna@assen.nl",
                                         "answer": "no"})
    assert "1 van de wachtlijst kreeg een plaats." in freed.text
    counts = vi.get(f"{url}/counts").text
    assert 'id="count-yes">1<' in counts and 'id="count-waiting">0<' in counts
    event_id = int(url.rsplit("/", 1)[1])
    assert _trail(app, event_id)[1:] == [("redactie@gt.example.nl", "event.rsvp")] * 3
    # After the deadline the phone is refused as the page is, beside the form.
    page = ed.get("/events/new").text
    closed = ed.post("/events/new", data=_form(page, deadline="2020-01-06T17:00"))
    closed_url = closed.headers["location"].split("?")[0]
    late = ed.post(f"{closed_url}/rsvp", data={"csrf": csrf_token(page),
                                               "email": "anna@assen.nl", "answer": "yes"})
    assert late.status_code == 400 and 'id="rsvp-error"' in late.text
    assert "answers closed at 2020-01-06 17:00" in late.text
    with session_scope(app.sessions) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "event.rsvp"))
        assert all("@" not in str(row.after) for row in rows)  # ids, not addresses


def test_the_meeting_list_refreshes_its_counts_while_answers_come_in(app: App):
    _people(app, ("anna@assen.nl", "Anna de Vries", "Gemeente Assen"))
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ed, vi = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(vi, viewer)
    assert 'hx-get="/events/table' not in vi.get("/events").text  # nothing to follow
    page = ed.get("/events/new").text
    url = ed.post("/events/new", data=_form(page, capacity="10")).headers["location"]
    url = url.split("?")[0]
    listing = vi.get("/events").text
    assert 'hx-get="/events/table" hx-trigger="every 10s" hx-swap="outerHTML"' in listing
    assert 'hx-get="/events/table?all=1"' in vi.get("/events", params={"all": "1"}).text
    page = ed.get(url).text
    ed.post(f"{url}/rsvp", data={"csrf": csrf_token(page), "email": "anna@assen.nl",
                                 "answer": "yes"})
    # The fragment is the table alone (no page around it), with the new figures.
    table = vi.get("/events/table")
    assert table.status_code == 200 and "<html" not in table.text
    assert table.text.lstrip().startswith('<div id="event-table"')
    assert "<td>1</td><td>0</td><td>0</td><td>0</td><td>9</td>" in table.text
    # A cancelled meeting takes no answers: the list stops asking.
    ed.post(f"{url}/cancel", data={"csrf": csrf_token(page), "confirm": "yes"})
    assert "hx-trigger" not in vi.get("/events/table", params={"all": "1"}).text
    assert console_client(app).get("/events/table").status_code == 303  # signed out


def test_attendee_list_as_csv_and_xlsx_with_formulas_neutralised(app: App):
    from openpyxl import load_workbook

    _people(app, ("anna@assen.nl", '=HYPERLINK("https://evil.example","Klik")', "Gemeente Assen"),
            ("bram@emmen.nl", "Bram Bakker", "+31 Gemeente"))
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ed, vi = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(vi, viewer)
    page = ed.get("/events/new").text
    url = ed.post("/events/new", data=_form(page)).headers["location"].split("?")[0]
    page = ed.get(url).text
    for address in ("anna@assen.nl", "bram@emmen.nl"):
        ed.post(f"{url}/rsvp", data={"csrf": csrf_token(page), "email": address,
                                     "answer": "yes"})

    listing = vi.get(f"{url}/attendees")
    assert listing.status_code == 200 and "Bram Bakker" in listing.text
    assert "attendees.csv" not in listing.text  # a viewer may read, not export
    assert vi.get(f"{url}/attendees.csv").status_code == 403
    assert vi.get(f"{url}/attendees.xlsx").status_code == 403

    csv_file = ed.get(f"{url}/attendees.csv")
    assert csv_file.status_code == 200
    assert 'filename="aanmeldingen-' in csv_file.headers["content-disposition"]
    body = csv_file.content.decode("utf-8")
    assert body.startswith("\ufeffname;organisation;region;answer;when;email\r\n")
    assert "'=HYPERLINK" in body and ";'+31 Gemeente;" in body

    xlsx = ed.get(f"{url}/attendees.xlsx")
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == ["name", "organisation", "region", "answer", "when", "email"]
    cells = {c for row in rows[1:] for c in row}
    assert '\'=HYPERLINK("https://evil.example","Klik")' in cells and "'+31 Gemeente" in cells
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    event_id = int(url.rsplit("/", 1)[1])
    assert _trail(app, event_id)[-2:] == [("redactie@gt.example.nl", "event.attendees.export")
                                          ] * 2


def test_the_cli_goes_through_the_same_use_cases_and_trail(run_cli: Cli, app: App,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOGNAME", "anna")
    run_cli("subscribers", "add", "p0@gemeente.nl", "--name", "Piet", "--region", "Noord")
    eid = run_cli("events", "create", "--title", "GT Connect", "--region", "Noord",
                  "--starts", "2099-04-14 13:30", "--ends", "2099-04-14 16:00").stdout.strip()
    run_cli("events", "rsvp", eid, "p0@gemeente.nl", "yes")
    run_cli("events", "edit", eid, "--venue", "Stadhuis")
    run_cli("events", "cancel", eid, "--yes")
    assert _trail(app, int(eid)) == [("os:anna", "event.create"), ("os:anna", "event.rsvp"),
                                     ("os:anna", "event.edit"), ("os:anna", "event.cancel")]
