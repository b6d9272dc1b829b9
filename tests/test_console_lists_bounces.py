"""Lists and bounces in the console, through the use cases the CLI uses: the CLI's one-line
errors beside their field, roles, the audit rows (console and CLI), growth in one grouped
query, and bounce text from strangers shown as text only."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from bounces_support import ANNA, dsn, sent_delivery
from console_support import console_client, csrf_token, make_account, sign_in
from sqlalchemy import event, select

from mailer.app import App
from mailer.audit import Actor
from mailer.audit.models import AuditEntry
from mailer.bounces import service as bounce_service
from mailer.bounces.models import Bounce
from mailer.campaigns.models import DomainPause
from mailer.database.connect import session_scope
from mailer.errors import PermissionDenied
from mailer.usecases import bounces, lists
from subscribers import service as subscribers
from subscribers.models import Subscription

BIG = "grootmail.nl"
HOSTILE = ("550 5.1.1 <a href=\"https://evil.example/login\">verify your account</a> "
           "<script>alert(1)</script> \u202eusu unknown")


def _audit(app: App, prefix: str) -> list[AuditEntry]:
    with session_scope(app.sessions) as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action.like(
            f"{prefix}%")).order_by(AuditEntry.id)))
        session.expunge_all()
        return rows


def _post(client, page: str, action: str, **data: object):
    return client.post(action, data={"csrf": csrf_token(client.get(page).text), **data})


def test_lists_create_edit_with_the_clis_errors_beside_the_field(app: App):
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ad, vw = console_client(app), console_client(app)
    sign_in(ad, admin)
    sign_in(vw, viewer)

    bad = _post(ad, "/lists", "/lists", slug="Met Spaties", title="X")
    assert bad.status_code == 400
    assert re.search(r'<p class="error" role="alert" id="slug-error">invalid list slug',
                     bad.text)
    assert 'aria-describedby="slug-hint slug-error" aria-invalid="true"' in bad.text
    assert 'value="X"' in bad.text  # what was typed stays
    empty = _post(ad, "/lists", "/lists", slug="leeg", title="  ")
    assert empty.status_code == 400 and 'id="title-error">a list needs a title' in empty.text

    made = _post(ad, "/lists", "/lists", slug="regio-noord",
                 title="Regio \x1b[31mNoord\x07", description="Nieuws\x7f uit\nhet noorden",
                 opt_in="double", public="yes")
    assert made.status_code == 303 and made.headers["location"] == "/lists/regio-noord?done=created"
    again = _post(ad, "/lists", "/lists", slug="regio-noord", title="Nog eens")
    assert again.status_code == 400 and "exists already" in again.text

    with session_scope(app.sessions) as session:
        info = lists.get_list(session, Actor(name="os:tests"), "regio-noord")
    assert (info["title"], info["description"], info["opt_in"], info["public"]) == (
        "Regio [31mNoord", "Nieuws uit\nhet noorden", "double", True)

    page = ad.get("/lists/regio-noord?done=created").text
    assert "De lijst is aangemaakt." in page and 'id="list-edit"' in page
    saved = _post(ad, "/lists/regio-noord", "/lists/regio-noord", title="Regio Noord",
                  description="", opt_in="single")
    assert saved.status_code == 303
    blank = _post(ad, "/lists/regio-noord", "/lists/regio-noord", title="", opt_in="single")
    assert blank.status_code == 400 and 'id="title-error">a list needs a title' in blank.text
    assert ad.get("/lists/onbekend").status_code == 404

    # A viewer reads, without the forms, and is refused the changes.
    listing = vw.get("/lists")
    assert listing.status_code == 200 and "Regio Noord" in listing.text
    assert 'id="list-new"' not in listing.text
    assert 'id="list-edit"' not in vw.get("/lists/regio-noord").text
    token = csrf_token(listing.text)
    assert vw.post("/lists", data={"csrf": token, "slug": "x", "title": "X"}).status_code == 403
    assert vw.post("/lists/regio-noord", data={"csrf": token, "title": "X"}).status_code == 403

    rows = _audit(app, "list.")
    assert [(r.actor, r.action, r.object_id) for r in rows] == [
        (admin.email, "list.create", "regio-noord"), (admin.email, "list.edit", "regio-noord")]
    assert rows[0].origin.startswith("console ")
    assert rows[1].before == {"title": "Regio [31mNoord", "description": "Nieuws uit\nhet noorden",
                              "opt_in": "double", "public": True}
    assert rows[1].after == {"title": "Regio Noord", "description": "", "opt_in": "single",
                             "public": False}


def test_the_cli_goes_through_the_same_use_cases_and_is_audited(app: App, run_cli):
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT \x1bNieuwsbrief")
    run_cli("lists", "edit", "nieuwsbrief", "--public")
    shown = json.loads(run_cli("lists", "show", "nieuwsbrief", "--json").output)
    assert shown["title"] == "GT Nieuwsbrief" and shown["public"] is True
    rows = _audit(app, "list.")
    assert [(r.action, r.origin) for r in rows] == [("list.create", "cli"), ("list.edit", "cli")]
    assert all(r.actor.startswith("os:") for r in rows)
    assert rows[1].after == {"public": True}


def test_growth_per_month_in_one_query_for_all_lists(app: App):
    now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
    with session_scope(app.sessions) as session:
        for n in range(5):
            subscribers.create_list(session, f"lijst-{n}", f"Lijst {n}")
        for i in range(4):
            subscribers.add_subscriber(session, subscribers.SubscriberData(email=f"p{i}@x.nl"),
                                       lists=["lijst-0"])
        subs = {s.subscriber.email: s for s in session.scalars(select(Subscription))}
        # Two joined in October, one of whom left in November; two joined this month.
        for email in ("p0@x.nl", "p1@x.nl"):
            subs[email].created_at = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
        subs["p1@x.nl"].status = "unsubscribed"
        subs["p1@x.nl"].unsubscribed_at = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
        for email in ("p2@x.nl", "p3@x.nl"):
            subs[email].created_at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        subs["p3@x.nl"].status = "pending"  # not joined until confirmed
        session.flush()
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        with session_scope(app.sessions) as session:
            rows = lists.overview(session, Actor(name="os:tests"), growth=True, now=now)
    finally:
        event.remove(app.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
               ) == 2  # the counts, and the growth of every list
    first = rows[0]
    assert first["slug"] == "lijst-0" and (first["joined"], first["left"]) == (3, 1)
    months = {(y, m): (j, left) for y, m, j, left in first["months"]}
    assert len(first["months"]) == 12 and first["months"][-1][:2] == (2026, 12)
    assert first["months"][0][:2] == (2026, 1)
    assert months[(2026, 10)] == (2, 0) and months[(2026, 11)] == (0, 1)
    assert months[(2026, 12)] == (1, 0)
    assert all((r["joined"], r["left"]) == (0, 0) for r in rows[1:])


def _bounce_world(app: App) -> int:
    """Three hard bounces at BIG (send time), one held report with hostile text, one pause."""
    with session_scope(app.sessions) as session:
        for i in range(3):
            delivery = sent_delivery(session, f"lid{i}@{BIG}")
            bounce_service.record_send_failures(session, [(delivery.id, 550,
                                                           "5.1.1 user unknown")])
        sent_delivery(session, ANNA)
        raw = dsn("bounces@bounces.gt.example.nl", ANNA, "5.1.1", HOSTILE)
        raw = raw.replace(b"Your message could", b"\x1b[2J\x1b]0;pwned\x07Your message could")
        (held,) = bounce_service.ingest(session, raw, source="file", settings=app.settings,
                                        signer=app.signer).bounces
        assert held.held
        # What the parser keeps is control-free already; rows from older versions may not be.
        held.diagnostic = HOSTILE + " \x1b[31m"
        session.add(DomainPause(domain=BIG, reason="blocked",
                                detail=f"25 of 27 recipients at {BIG} refused (blocked)"))
        return held.id


def test_bounce_pages_for_a_viewer_and_an_admin(app: App):
    held_id = _bounce_world(app)
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ad, vw = console_client(app), console_client(app)
    sign_in(ad, admin)
    sign_in(vw, viewer)

    records = vw.get("/bounces?kind=hard&reason=user-unknown")
    assert records.status_code == 200 and f"lid0@{BIG}" in records.text
    assert "subscriber is now bounced" in records.text
    assert "het adres bestaat niet" in records.text  # the taxonomy explained
    figures = vw.get("/bounces/figures").text
    assert "user-unknown" in figures and BIG in figures and 'role="img"' in figures

    # The review queue: the stranger's text as text, its hidden characters written out.
    review = vw.get("/bounces/review").text
    assert "&lt;script&gt;" in review and "<script>alert" not in review
    assert 'href="https://evil.example' not in review and "\u202e" not in review
    assert "\\u202e" in review and "\\x1b[31m" in review and "\x1b" not in review
    assert f"/bounces/{held_id}/apply" not in review  # a viewer cannot apply
    detail = vw.get(f"/bounces/{held_id}").text
    assert "\x1b" not in detail and "\\x1b[2J" in detail and "\\x07" in detail
    assert vw.get("/bounces/999999").status_code == 404
    token = csrf_token(review)
    assert vw.post(f"/bounces/{held_id}/apply", data={"csrf": token}).status_code == 403
    assert vw.get("/bounces/reactivate").status_code == 403
    assert vw.post("/bounces/pauses/resume",
                   data={"csrf": token, "domain": BIG}).status_code == 403
    pauses = vw.get("/bounces/pauses").text
    assert BIG in pauses and "/bounces/pauses/resume" not in pauses

    # The admin applies the held report and resumes the domain.
    applied = _post(ad, "/bounces/review", f"/bounces/{held_id}/apply")
    assert applied.status_code == 200, re.findall(r"role=\"alert\">([^<]*)", applied.text)
    assert f"Melding #{held_id} is toegepast." in applied.text
    twice = _post(ad, "/bounces/review", f"/bounces/{held_id}/apply")
    assert twice.status_code == 400 and "is not held for review" in twice.text
    with session_scope(app.sessions) as session:
        assert subscribers.get_subscriber(session, ANNA).status == "bounced"
        assert session.get(Bounce, held_id).outcome.startswith(f"applied by {admin.email}")
    resumed = _post(ad, "/bounces/pauses", "/bounces/pauses/resume", domain=BIG.upper())
    assert resumed.status_code == 200 and f"Bezorging naar {BIG} is hervat." in resumed.text
    not_paused = _post(ad, "/bounces/pauses", "/bounces/pauses/resume", domain=BIG)
    assert not_paused.status_code == 400 and "is not paused" in not_paused.text

    rows = _audit(app, "bounce.") + _audit(app, "domain.")
    assert [(r.actor, r.action, r.object_type, r.object_id) for r in rows] == [
        (admin.email, "bounce.apply", "bounce", str(held_id)),
        (admin.email, "domain.resume", "domain", BIG)]
    with session_scope(app.sessions) as session:
        anna = subscribers.get_subscriber(session, ANNA)
        assert rows[0].after is not None and rows[0].after["subscriber"] == anna.id
    assert ANNA not in json.dumps([r.before for r in rows] + [r.after for r in rows])


def test_reactivate_counts_first_then_acts_after_confirmation(app: App):
    _bounce_world(app)
    with session_scope(app.sessions) as session:
        other = sent_delivery(session, "piet@gemeente-b.nl")
        bounce_service.record_send_failures(session, [(other.id, 550, "5.1.1 user unknown")])
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    ad = console_client(app)
    sign_in(ad, admin)

    nothing = _post(ad, "/bounces/reactivate", "/bounces/reactivate", step="count")
    assert nothing.status_code == 400 and "give at least one of" in nothing.text
    bad_date = _post(ad, "/bounces/reactivate", "/bounces/reactivate", step="count",
                     since="1 december")
    assert bad_date.status_code == 400 and "JJJJ-MM-DD" in bad_date.text
    counted = _post(ad, "/bounces/reactivate", "/bounces/reactivate", step="count",
                    reason="user-unknown", domain=BIG, since="2000-01-01")
    assert counted.status_code == 200
    assert "3 abonnee(s) zouden weer actief worden" in counted.text
    assert f"lid2@{BIG}" in counted.text and "piet@" not in counted.text
    assert 'name="expected" value="3"' in counted.text
    assert _audit(app, "subscribers.reactivate") == []  # counting changes nothing
    with session_scope(app.sessions) as session:
        assert subscribers.get_subscriber(session, f"lid0@{BIG}").status == "bounced"

    form = {"reason": "user-unknown", "domain": BIG, "since": "2000-01-01", "step": "confirm"}
    stale = _post(ad, "/bounces/reactivate", "/bounces/reactivate", expected="2",
                  note="storing", **form)
    assert stale.status_code == 409 and "Het aantal is veranderd" in stale.text
    no_note = _post(ad, "/bounces/reactivate", "/bounces/reactivate", expected="3", **form)
    assert no_note.status_code == 400 and "--note" in no_note.text
    done = _post(ad, "/bounces/reactivate", "/bounces/reactivate", expected="3",
                 note="storing bij grootmail", **form)
    assert done.status_code == 200 and "3 abonnee(s) zijn weer actief." in done.text
    with session_scope(app.sessions) as session:
        assert subscribers.get_subscriber(session, f"lid2@{BIG}").status == "active"
        assert subscribers.get_subscriber(session, "piet@gemeente-b.nl").status == "bounced"

    one = _post(ad, "/bounces/reactivate", "/bounces/reactivate/one",
                email="piet@gemeente-b.nl", why="mailbox hersteld")
    assert one.status_code == 200 and "1 abonnee(s) zijn weer actief." in one.text
    again = _post(ad, "/bounces/reactivate", "/bounces/reactivate/one",
                  email="piet@gemeente-b.nl", why="nog eens")
    assert again.status_code == 400 and "nothing to reactivate" in again.text
    unknown = _post(ad, "/bounces/reactivate", "/bounces/reactivate/one",
                    email="niemand@x.nl", why="x")
    assert unknown.status_code == 400 and "no subscriber" in unknown.text
    nul = _post(ad, "/bounces/reactivate", "/bounces/reactivate/one", email="p\x00@x.nl",
                why="\x00")
    assert nul.status_code == 400  # a NUL never reaches the database
    nul_domain = _post(ad, "/bounces/reactivate", "/bounces/reactivate", step="count",
                       domain="grootmail\x00.nl")
    assert nul_domain.status_code == 400  # the console refuses a NUL in any form field

    rows = _audit(app, "subscriber")
    assert [(r.actor, r.action) for r in rows] == [
        (admin.email, "subscribers.reactivate"), (admin.email, "subscriber.reactivate")]
    assert rows[0].after == {"reasons": ["user-unknown"], "since": "2000-01-01T00:00:00+00:00",
                             "domain": BIG, "note": "storing bij grootmail", "reactivated": 3}
    assert rows[1].before == {"status": "bounced"}
    assert "piet@" not in json.dumps([r.after for r in rows])


def test_the_cli_bounce_commands_are_audited_as_the_os_user(app: App, run_cli):
    held_id = _bounce_world(app)
    run_cli("bounces", "apply", str(held_id), "--by", "jan")
    run_cli("bounces", "resume-domain", BIG)
    run_cli("subscribers", "reactivate", "--reason", "user-unknown", "--domain", BIG,
            "--note", "storing")
    run_cli("subscribers", "reactivate", ANNA, "--reason", "nieuwe mailbox")
    run_cli("bounces", "purge")
    actions = [(r.action, r.origin, r.actor.startswith("os:"))
               for r in _audit(app, "") if not r.action.startswith("user.")]
    assert actions == [("bounce.apply", "cli", True), ("domain.resume", "cli", True),
                       ("subscribers.reactivate", "cli", True),
                       ("subscriber.reactivate", "cli", True), ("bounces.purge", "cli", True)]


def test_bounce_use_cases_check_the_role(app: App):
    held_id = _bounce_world(app)
    viewer = Actor(name="lezer@gt.example.nl", user_id=1, role="viewer", origin="tests")
    with session_scope(app.sessions) as session:
        assert bounces.held(session, viewer)[0]["id"] == held_id
        with pytest.raises(PermissionDenied):
            bounces.apply(session, app.settings, viewer, held_id)
        with pytest.raises(PermissionDenied):
            bounces.reactivate_matching(session, viewer, domain=BIG, dry_run=True)
        with pytest.raises(PermissionDenied):
            lists.create_list(session, viewer, "x", "X")


def test_every_bounce_reason_is_explained_in_both_languages():
    from mailer.bounces.reasons import REASONS
    from mailer.console.texts import TEXTS

    for lang in ("nl", "en"):
        assert [r for r in REASONS if not TEXTS[lang].get(f"reason.{r}")] == [], lang
