"""The console's dashboard (30-day figures, alerts, progress), calendar, live status and
paged campaign list, on both databases, with the number of queries a page makes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.script import ScriptDirectory
from console_support import console_client, make_account, sign_in
from dashboard_support import DAY, NOW, bounce, campaign, send
from delivery_support import make_audience
from sqlalchemy import event, select, text, update

from mailer.app import App
from mailer.bounces.models import Bounce
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.models import Campaign, DomainPause
from mailer.database.connect import _alembic_config, make_engine, session_scope, upgrade_schema
from mailer.events.models import Event
from subscribers import service as subscribers
from subscribers.models import Subscriber


def _figure(page: str, key: str) -> int:
    found = re.search(rf'id="figure-{key}">(\d+)<', page)
    assert found, key
    return int(found.group(1))


@contextmanager
def counted(app: App) -> Iterator[list[str]]:
    """The SQL statements run while inside (the page's own and its session check)."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", record)


def test_the_dashboard_counts_the_last_30_days_only(app: App):
    people = make_audience(app.sessions, 12)
    # A campaign that started and finished inside the period: its kept figures count whole.
    recent = campaign(app, "Recent", started=NOW - 3 * DAY)
    sent = send(app, recent, 12, NOW - 3 * DAY)
    with session_scope(app.sessions) as session:
        assert campaign_queries.finish_done_campaigns(session, NOW - 2 * DAY) == [recent]
        kept = session.get(Campaign, recent)
        assert kept is not None and kept.final_counts is not None
        assert kept.final_counts["counts"] == {"sent": 12}
    # One that went out 40 days ago: not counted.
    old = campaign(app, "Old", started=NOW - 40 * DAY)
    send(app, old, 12, NOW - 40 * DAY)
    with session_scope(app.sessions) as session:
        campaign_queries.finish_done_campaigns(session, NOW - 39 * DAY)
    # One still sending that started before the period: only what went out since counts.
    slow = campaign(app, "Slow", started=NOW - 35 * DAY)
    send(app, slow, 5, NOW - 33 * DAY)
    send(app, slow, 4, NOW - DAY)
    # Bounces and complaints of the period (a held report does not count), one too old.
    bounce(app, sent[0], "hard", NOW - DAY, "b1")
    bounce(app, sent[1], "hard", NOW - DAY, "b2")
    bounce(app, sent[2], "soft", NOW - DAY, "b3")
    bounce(app, sent[3], "complaint", NOW - DAY, "b4")
    bounce(app, sent[4], "hard", NOW - 31 * DAY, "b5")
    with session_scope(app.sessions) as session:
        session.add(Bounce(received_at=NOW, source="smtp", kind="hard", recipient="x@y.nl",
                           held=True, dedupe_key="b6"))
        # Unsubscribes: two people now (one leaves two lists: one person), one 45 days ago.
        subscribers.create_list(session, "regio", "Regio")
        subscribers.subscribe(session, people[0], ["regio"], source="cli")
        subscribers.unsubscribe(session, people[0], "regio", source="web")
        subscribers.unsubscribe(session, people[0], "nieuwsbrief", source="web")
        subscribers.unsubscribe(session, people[1], source="mailto")
        person = subscribers.get_subscriber(session, people[2])
        subscribers.record_consent(session, person, "unsubscribe-all", "web",
                                   at=NOW - 45 * DAY)
        # Sign-ups through the web: three people now, one 31 days ago; an import is no sign-up.
        for email in people[3:6]:
            subscribers.record_consent(session, subscribers.get_subscriber(session, email),
                                       "subscribe", "web", at=NOW - 2 * DAY)
        subscribers.record_consent(session, subscribers.get_subscriber(session, people[6]),
                                   "subscribe", "web", at=NOW - 31 * DAY)
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    with counted(app) as statements:
        page = client.get("/").text
    assert _figure(page, "sent") == 12 + 4
    assert _figure(page, "bounced") == 3
    assert _figure(page, "complaints") == 1
    assert _figure(page, "unsubscribes") == 2
    assert _figure(page, "signups") == 3
    # A fixed number of grouped queries, whatever the number of campaigns or people.
    assert len(statements) <= 16, statements
    assert "Slow" in page  # running, with its progress
    assert re.search(r'<progress max="12" value="9"', page)
    # Recent's hard-bounce rate (3 of 12, the old report included: it is the campaign's) is
    # above the 2 % limit: an alert.
    alerts = page[page.index('id="alerts"'):page.index('id="h-running"')]
    assert "hard-bounces 25,0% (grens 2,0%)" in alerts, alerts


def test_the_dashboard_shows_alerts_and_what_is_next(app: App):
    make_audience(app.sessions, 3)
    later = campaign(app, "Later", status="scheduled", scheduled_at=NOW + 3 * DAY)
    campaign(app, "Sooner", status="scheduled", scheduled_at=NOW + DAY)
    campaign(app, "Held", started=NOW - DAY, status="paused",
              pause_reason="paused by anna@gt.example.nl")
    campaign(app, "Outage", started=NOW - DAY, status="paused",
              pause_reason="relay unreachable", outage_since=NOW - dt.timedelta(minutes=5),
              resume_at=NOW + dt.timedelta(minutes=5))
    campaign(app, "Forgotten", status="missed", scheduled_at=NOW - 2 * DAY)
    with session_scope(app.sessions) as session:
        session.add(DomainPause(domain="gemeente1.example.nl", reason="blocked", detail="",
                                paused_at=NOW))
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    page = client.get("/").text
    alerts = page[page.index('id="alerts"'):page.index('id="h-running"')]
    assert "gepauzeerd: paused by anna@gt.example.nl" in alerts
    assert "de mailserver is onbereikbaar sinds" in alerts
    assert "gemist: gepland voor" in alerts
    assert "verzending naar gemeente1.example.nl is gepauzeerd (blocked)" in alerts
    upcoming = page[page.index('id="h-next"'):]
    assert upcoming.index("Sooner") < upcoming.index("Later")
    assert f'href="/campaigns/{later}"' in upcoming
    # In the settings' time zone, not UTC.
    local = (NOW + DAY).astimezone(app.settings.tz).strftime("%Y-%m-%d %H:%M")
    assert local in upcoming


def test_the_calendar_shows_a_month_of_sends_and_meetings(app: App):
    tz = app.settings.tz
    # 2027-03-28 is the day the clocks go forward: 09:00 local is 07:00 UTC.
    at = dt.datetime(2027, 3, 28, 9, 0, tzinfo=tz)
    campaign(app, "Lentenieuws", status="scheduled", scheduled_at=at.astimezone(dt.UTC))
    campaign(app, "April", status="scheduled",
              scheduled_at=dt.datetime(2027, 4, 1, 0, 30, tzinfo=tz).astimezone(dt.UTC))
    campaign(app, "Concept", status="draft", scheduled_at=at.astimezone(dt.UTC))
    with session_scope(app.sessions) as session:
        session.add(Event(uid="e1@gt", title="Regiodag Noord", region="Noord",
                          starts_at=dt.datetime(2027, 3, 10, 13, 0, tzinfo=tz),
                          ends_at=dt.datetime(2027, 3, 10, 16, 0, tzinfo=tz)))
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    page = client.get("/calendar?month=2027-03").text
    assert "maart 2027" in page
    assert "Lentenieuws" in page and "09:00" in page
    assert "Regiodag Noord" in page and "13:00" in page
    assert "April" not in page  # 1 April 00:30 local is still 31 March in UTC
    assert "Concept" not in page  # drafts are not on the calendar
    assert 'href="/calendar?month=2027-02"' in page and 'href="/calendar?month=2027-04"' in page
    assert "April" in client.get("/calendar?month=2027-04").text
    # A month that makes no sense is this month, not an error.
    assert client.get("/calendar?month=2027-13").status_code == 200
    client.cookies.set("gt_console_lang", "en")
    assert "March 2027" in client.get("/calendar?month=2027-03").text


def test_the_live_status_shows_progress_bounces_unsubscribes_and_charts(app: App):
    people = make_audience(app.sessions, 10)
    campaign_id = campaign(app, "Nu", started=NOW - dt.timedelta(minutes=30))
    sent = send(app, campaign_id, 4, NOW - dt.timedelta(minutes=20))
    send(app, campaign_id, 2, NOW - dt.timedelta(minutes=2))
    send(app, campaign_id, 1, NOW - dt.timedelta(minutes=2), status="deferred")
    send(app, campaign_id, 1, NOW - dt.timedelta(minutes=2), status="failed")
    send(app, campaign_id, 1, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))  # the rate
    bounce(app, sent[0], "hard", NOW - dt.timedelta(minutes=10), "s1")
    with session_scope(app.sessions) as session:
        subscribers.unsubscribe(session, people[1], source="web",
                                detail=subscribers.campaign_detail(campaign_id))
        subscribers.unsubscribe(session, people[2], source="web")  # not through this mail
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
            status="paused", pause_reason="paused by anna@gt.example.nl"))
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    fragment = client.get(f"/campaigns/{campaign_id}/status").text
    assert fragment.startswith('<div id="live-status"')
    assert 'hx-get="/campaigns/' in fragment  # paused: still refreshed
    assert 'id="pause-reason">paused by anna@gt.example.nl<' in fragment

    def count(key: str) -> int:
        found = re.search(rf'id="count-{key}">(\d+)<', fragment)
        assert found, key
        return int(found.group(1))

    assert (count("recipients"), count("sent"), count("bounced"), count("deferred"),
            count("failed"), count("queued"), count("unsubscribed")) == (10, 6, 1, 1, 1, 1, 1)
    assert 'id="rate">0.02 / s<' in fragment  # one in the last minute, from the chart's pass
    assert "hard-bounce rate" in fragment  # 1 of 7 is above the 2 % limit
    # Charts: inline SVG with a text alternative, no style attributes (CSP style-src 'self').
    assert fragment.count("<svg") == 2 and "style=" not in fragment
    assert "Verstuurd per minuut" in fragment and "<details" in fragment
    assert re.search(r"<td>[\d-]+ [\d:]+</td><td>4</td>", fragment)
    page = client.get(f"/campaigns/{campaign_id}").text
    assert 'id="live-status"' in page


def test_a_finished_campaign_is_read_from_its_kept_counts(app: App):
    make_audience(app.sessions, 6)
    campaign_id = campaign(app, "Klaar", started=NOW - DAY)
    sent = send(app, campaign_id, 6, NOW - DAY)
    with session_scope(app.sessions) as session:
        campaign_queries.finish_done_campaigns(session, NOW - DAY)
    bounce(app, sent[0], "hard", NOW, "k1")  # sent -> bounced after it finished
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    with counted(app) as statements:
        fragment = client.get(f"/campaigns/{campaign_id}/status").text
    assert re.search(r'id="count-sent">5<', fragment)
    assert re.search(r'id="count-bounced">1<', fragment)
    # Its deliveries are read only for the bounced ones (an index range) and what is still
    # open for a paused domain; never all of them, for counts or for the chart.
    assert "<svg" in fragment and re.search(r"<td>[\d-]+ [\d:]+</td><td>6</td>", fragment)
    everything = [s for s in statements if "FROM deliveries" in s
                  and "deliveries.status IN" not in s]
    assert everything == [], everything


def test_the_campaign_list_is_paged_with_a_fixed_number_of_queries(app: App):
    make_audience(app.sessions, 2)
    for n in range(55):
        campaign(app, f"Nummer {n}", started=NOW - DAY if n < 3 else None)
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    with counted(app) as statements:
        first = client.get("/campaigns").text
    assert "Nummer 54" in first and "Nummer 4<" not in first
    assert "Pagina 1 van 2 (55 in totaal)" in first and 'href="/campaigns?page=2"' in first
    assert len(statements) <= 10, statements
    second = client.get("/campaigns?page=2").text
    assert "Nummer 4<" in second and "Nummer 0<" in second and "Nummer 54" not in second
    assert "2 / 2" not in second and "0 / 2" in second
    assert client.get("/campaigns?page=99").status_code == 200
    assert client.get("/campaigns?page=x").status_code == 200


def test_erased_people_leave_the_figures(app: App):
    people = make_audience(app.sessions, 2)
    with session_scope(app.sessions) as session:
        for email in people:
            subscribers.record_consent(session, subscribers.get_subscriber(session, email),
                                       "subscribe", "web", at=NOW - DAY)
        assert subscribers.consent_figures(session, NOW - 30 * DAY)["signups"] == 2
        subscribers.erase(session, people[0])
        assert session.scalar(select(Subscriber.id).where(Subscriber.email == people[0])) is None
        assert subscribers.consent_figures(session, NOW - 30 * DAY)["signups"] == 1


def test_the_migration_keeps_the_counts_of_campaigns_finished_before_it(db_url: str):
    """Finished campaigns from before 0016 get their kept counts from it (running ones not)."""
    engine = make_engine(db_url)
    try:
        config = _alembic_config(engine)
        revision = ScriptDirectory.from_config(config).get_revision("0016")
        assert revision is not None
        command.downgrade(config, str(revision.down_revision))  # wherever the lead chains it
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with engine.begin() as conn:
            for cid, status in ((1, "finished"), (2, "running")):
                conn.execute(text(
                    "INSERT INTO campaigns (id, kind, subject, preheader, template, content, "
                    "content_format, meta, audience, status, pause_reason, relay_outages, "
                    "created_at, updated_at) VALUES (:id, 'newsletter', 's', '', 'newsletter', "
                    "'', 'markdown', '{}', '{}', :status, '', 0, :now, :now)"),
                    {"id": cid, "status": status, "now": now})
            for n, (cid, status) in enumerate([(1, "sent")] * 3 + [(1, "bounced"), (2, "sent")]):
                conn.execute(text(
                    "INSERT INTO deliveries (campaign_id, email, status, attempts, claimed_by, "
                    "last_error, message_id) VALUES (:c, :e, :s, 1, '', '', '')"),
                    {"c": cid, "e": f"p{n}@x.nl", "s": status})
        upgrade_schema(engine)
        with engine.connect() as conn:
            kept = dict(conn.execute(text("SELECT id, final_counts FROM campaigns")).all())
        found = {k: json.loads(v) if isinstance(v, str) else v for k, v in kept.items()}
        assert found == {1: {"counts": {"sent": 3, "bounced": 1}}, 2: None}
    finally:
        engine.dispose()
