"""Time the staff console's pages with 100,000 subscribers and 200 campaigns on PostgreSQL.

Run by hand (not part of the test suite):

    .venv/bin/python bench/console.py [--subscribers 100000] [--campaigns 200] [--sent 10]
        [--requests 40] [--postgres URL]

It fills a fresh schema (subscribers and subscriptions with one INSERT ... SELECT each; `--sent`
finished campaigns with a delivery per subscriber and bounces, one campaign half-way through
its 100,000, the rest drafts and scheduled ones; consent history and audit rows), signs an
admin in, and requests each page in-process through the ASGI app (no network, so the figures
are the console's own work: routing, session check, queries, templates). It prints p50 and
p95 per page and the SQL statements each page ran; the goal is p95 under 200 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
import uuid
import warnings

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from mailer.accounts import service as accounts
from mailer.app import build_app
from mailer.audit import Actor
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.models import Campaign
from mailer.database.connect import make_engine, session_scope, upgrade_schema
from mailer.settings import load_settings
from mailer.usecases import users

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from mailer.console.app import create_console_app

REGIONS = ("Noord", "Oost", "Zuid", "West", "Midden")


def fill(url: str, subscribers: int, campaigns: int, sent: int) -> None:
    now = dt.datetime.now(dt.UTC)
    engine = make_engine(url)
    upgrade_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO lists (slug, title, description, opt_in, created_at) "
                          "VALUES ('nieuwsbrief', 'GT Nieuwsbrief', '', 'single', :now)"),
                     {"now": now})
        conn.execute(text(
            "INSERT INTO subscribers (public_id, email, email_key, name, organisation, "
            "job_title, region, language, status, attributes, consent_source, consent_by, "
            "created_at, updated_at) "
            "SELECT substr(md5('bench' || n), 1, 22), "
            "'p' || n || '@gemeente' || (n % 300) || '.example.nl', "
            "'p' || n || '@gemeente' || (n % 300) || '.example.nl', 'Persoon ' || n, "
            "'Gemeente ' || (n % 300), 'Adviseur', "
            "(ARRAY['Noord','Oost','Zuid','West','Midden'])[1 + n % 5], "
            "CASE WHEN n % 10 = 0 THEN 'en' ELSE 'nl' END, 'active', '{}', 'import', 'bench', "
            ":now, :now FROM generate_series(1, :n) AS n"), {"now": now, "n": subscribers})
        conn.execute(text(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
            "SELECT s.id, l.id, 'active', :now, :now FROM subscribers s, lists l"),
            {"now": now})
    sessions = build_app(load_settings(environ={"MAILER_DATABASE_URL": url,
                                                "MAILER_SECRET_KEY": "b" * 32})).sessions
    with session_scope(sessions) as session:
        for i in range(campaigns):
            status = "running" if i < sent else ("scheduled" if i % 3 == 0 else "draft")
            c = Campaign(subject=f"Nieuwsbrief {i}", audience={"lists": ["nieuwsbrief"]},
                         status=status, pause_reason="", created_by="redactie@gt.example.nl",
                         edited_by="redactie@gt.example.nl",
                         scheduled_at=now + dt.timedelta(days=i % 60, hours=i % 24)
                         if status == "scheduled" else None)
            session.add(c)
            session.flush()
            if status == "running":
                campaign_queries.snapshot_audience(session, c.id, c.audience)
                c.started_at = now - dt.timedelta(days=1, minutes=i)
    with engine.begin() as conn:
        # Sent over the campaign's first hour (a chart with bars), a few bounced.
        conn.execute(text("UPDATE deliveries SET status = 'sent', "
                          "sent_at = :now - interval '1 day' + (id % 3600) * interval '1 second'"),
                     {"now": now})
        conn.execute(text(
            "INSERT INTO bounces (received_at, source, kind, reason, action, status, diagnostic, "
            "recipient, delivery_id, campaign_id, matched_by, outcome, held, dedupe_key) "
            "SELECT :now - (d.id % 86400) * interval '1 second', 'smtp', "
            "CASE WHEN d.id % 3 = 0 THEN 'soft' ELSE 'hard' END, 'user-unknown', 'failed', "
            "'5.1.1', '', d.email, d.id, d.campaign_id, 'verp', '', false, 'bench-' || d.id "
            "FROM deliveries d WHERE d.id % 200 = 0"), {"now": now})
        conn.execute(text("UPDATE deliveries SET status = 'bounced' WHERE id % 200 = 0"))
        # The consent history a real installation has: created and subscribed per person, and
        # some web sign-ups and unsubscribes in the last month.
        conn.execute(text(
            "INSERT INTO consent_events (subscriber_id, list_id, action, source, actor, detail, "
            "at) "
            "SELECT s.id, NULL, 'created', 'import', 'bench', '', :now - interval '90 days' "
            "FROM subscribers s UNION ALL "
            "SELECT s.id, 1, 'subscribe', CASE WHEN s.id % 50 = 0 THEN 'web' ELSE 'import' END, "
            "'bench', '', :now - (s.id % 120) * interval '1 day' FROM subscribers s UNION ALL "
            "SELECT s.id, 1, 'unsubscribe', 'web', 'bench', 'campaign 1', "
            "       :now - (s.id % 40) * interval '1 day' FROM subscribers s WHERE s.id % 97 = 0"),
            {"now": now})
        # They finish as the engine finishes them (which keeps their counts and chart).
        campaign_queries.finish_done_campaigns(Session(bind=conn), now)
    # And one sending now, half-way: 50,000 sent in the last 25 minutes, 50,000 queued.
    with session_scope(sessions) as session:
        c = Campaign(subject="Nieuwsbrief nu", audience={"lists": ["nieuwsbrief"]},
                     status="running", pause_reason="", created_by="redactie@gt.example.nl",
                     edited_by="redactie@gt.example.nl",
                     started_at=now - dt.timedelta(minutes=25))
        session.add(c)
        session.flush()
        campaign_queries.snapshot_audience(session, c.id, c.audience)
        running = c.id
    with engine.begin() as conn:
        conn.execute(text(
            "UPDATE deliveries SET status = 'sent', attempts = 1, "
            "sent_at = :now - (id % 1500) * interval '1 second' "
            "WHERE campaign_id = :c AND subscriber_id % 2 = 0"), {"now": now, "c": running})
    # As autovacuum would have by then: statistics, and the visibility map index-only scans use.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--sent", type=int, default=10)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--postgres", default=os.environ.get(
        "MAILER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    schema = f"bench_console_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.postgres)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(args.postgres).update_query_dict(
        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        started = time.perf_counter()
        fill(url, args.subscribers, args.campaigns, args.sent)
        print(f"filled in {time.perf_counter() - started:.0f} s: {args.subscribers} subscribers, "
              f"{args.campaigns} campaigns ({args.sent} sent to everyone)")
        app = build_app(load_settings(environ={"MAILER_DATABASE_URL": url,
                                               "MAILER_SECRET_KEY": "b" * 32}))
        with session_scope(app.sessions) as session:
            user, _ = users.add_user(session, app.settings, Actor(name="os:bench"),
                                     "beheer@gt.example.nl", "admin")
            token = accounts.start_session(session, user)
            first_sent = session.scalar(text("SELECT min(id) FROM campaigns"))
            someone = session.scalar(text("SELECT public_id FROM subscribers WHERE id = 4242"))
            running = session.scalar(text(
                "SELECT max(id) FROM campaigns WHERE status = 'running'"))
            scheduled = session.scalar(text(
                "SELECT min(id) FROM campaigns WHERE status = 'scheduled'"))
        client = TestClient(create_console_app(app), base_url="http://127.0.0.1:8026")
        client.cookies.set("gt_console", token)
        page = client.get("/account").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        month = (dt.datetime.now(dt.UTC) + dt.timedelta(days=20)).strftime("%Y-%m")
        pages = {
            "dashboard /": ("GET", "/", None),
            "calendar (this month + 20 days)": ("GET", f"/calendar?month={month}", None),
            "campaign list (page 1 of 4)": ("GET", "/campaigns", None),
            "campaign list (page 4)": ("GET", "/campaigns?page=4", None),
            "campaign (sent, 100k deliveries)": ("GET", f"/campaigns/{first_sent}", None),
            "live status fragment (sent)": ("GET", f"/campaigns/{first_sent}/status", None),
            "live status fragment (running, 100k)": (
                "GET", f"/campaigns/{running}/status", None),
            "campaign (scheduled: audience count)": ("GET", f"/campaigns/{scheduled}", None),
            "edit a draft": ("GET", f"/campaigns/{scheduled + 1}/edit", None),
            "audience count (Noord+Oost)": ("POST", "/campaigns/count", {
                "csrf": csrf, "lists": "nieuwsbrief", "regions": ["Noord", "Oost"]}),
            "new newsletter form": ("GET", "/campaigns/new", None),
            "audit trail (20k rows)": ("GET", "/audit", None),
            "users": ("GET", "/users", None),
            # Search as you type (issue 15): a LIMIT 50 page by primary key, a count capped
            # at 1,000; "no match" has to read every row.
            "subscribers page": ("GET", "/subscribers", None),
            "search 'persoon 4242'": ("GET", "/subscribers/rows?q=persoon+4242", None),
            "search 'gemeente 12' (many hits)": ("GET", "/subscribers/rows?q=gemeente+12", None),
            "search, no match (every row)": ("GET", "/subscribers/rows?q=zzzz", None),
            "search + region + list + language": (
                "GET", "/subscribers/rows?q=persoon+42&region=Noord&list=nieuwsbrief"
                "&language=nl", None),
            "subscriber profile": ("GET", f"/subscribers/{someone}", None),
            "my account": ("GET", "/account", None),
        }
        statements = [0]
        event.listen(app.engine, "before_cursor_execute",
                     lambda *_a, **_k: statements.__setitem__(0, statements[0] + 1))
        print(f"{'page':40} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
        for name, (method, path, data) in pages.items():
            times = []
            for _ in range(args.requests):
                statements[0] = 0
                t0 = time.perf_counter()
                response = client.request(method, path, data=data)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code in (200, 303), (path, response.status_code)
            times.sort()
            p95 = times[max(0, int(len(times) * 0.95) - 1)]
            print(f"{name:40} {statistics.median(times):8.1f} {p95:8.1f} {statements[0]:8d}")
        app.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
