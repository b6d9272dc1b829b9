"""Finding 5: a link outlives its owner and reaches no one else.

On SQLite a deleted row's id used to be handed out again, so an erased person's old links
controlled the next subscriber. Replayed over real HTTP: erase a person with the CLI, add a new
one, and every old link (unsubscribe, preferences, view online, RSVP, confirm) acts on no one.
Tokens carry a random public id, never a row id.
"""

from __future__ import annotations

from live_support import live, live_factory  # noqa: F401  (fixtures)
from sqlalchemy import text
from web_support import setup_people, subscription_states

from mailer.database.connect import session_scope
from mailer.events import service as events
from mailer.events.dates import parse_local
from mailer.kernel import tokens
from mailer.kernel.links import Links
from subscribers import service

JOHN = "john@example.org"


def test_old_links_of_an_erased_person_act_on_no_one(live, run_cli):
    people = setup_people(live.app)
    zone = live.app.settings.timezone
    with session_scope(live.app.sessions) as session:
        john = service.get_subscriber(session, JOHN)
        john_id, john_public = john.id, john.public_id
        event = events.create_event(session, live.app.settings, events.EventFields(
            title="GT Connect", region="Noord", starts_at=parse_local("2099-04-14 13:30", zone),
            ends_at=parse_local("2099-04-14 16:00", zone), venue="Zaal", address="Straat 1",
        ))
        event_id = event.id
        list_id = service.get_list(session, "regio-noord").id
    links = Links(live.base, live.app.signer)
    old = {
        "unsubscribe": links.unsubscribe(john_public, people["campaign"]),
        "preferences": links.preferences(john_public),
        "view": links.view(john_public, people["campaign"]),
        "rsvp": links.rsvp(john_public, event_id, "yes"),
        "confirm": links.confirm(john_public, [list_id]),
    }
    token = old["preferences"].rsplit("/", 1)[1]
    payload = live.app.signer.unsign(tokens.PREFERENCES, token)
    assert payload == {"s": john_public} and john_public != str(john_id) and len(john_public) >= 22

    run_cli("subscribers", "erase", JOHN, "--yes")
    with session_scope(live.app.sessions) as session:
        newcomer = service.add_subscriber(
            session, service.SubscriberData(email="newcomer@example.org", name="New Comer"),
            lists=["nieuwsbrief"])
        newcomer_id = newcomer.id
        assert newcomer.public_id != john_public
    if live.app.engine.dialect.name == "sqlite":  # AUTOINCREMENT: the erased id stays unused
        assert newcomer_id > john_id

    for name, url in old.items():
        path = live.path(url)
        assert live.http.get(path).status_code == 400, name
        # One-click answers alike for everyone (it reveals nothing); what counts is below.
        assert live.http.post(path, data={"List-Unsubscribe": "One-Click"}).status_code in (
            200, 400, 403, 405), name
    assert subscription_states(live.app, "newcomer@example.org") == (
        "active", {"nieuwsbrief": "active"})
    with live.app.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rsvps")).scalar() == 0


def test_a_token_naming_a_row_id_is_refused(live):
    people = setup_people(live.app)
    with session_scope(live.app.sessions) as session:
        anna_id = service.get_subscriber(session, "anna@gemeente.example.nl").id
    for payload in ({"s": anna_id}, {"s": str(anna_id)}, {"s": people["anna"] + '"'}):
        forged = live.app.signer.sign(tokens.PREFERENCES, payload)  # even signed with our key
        assert live.http.get(f"/p/{forged}").status_code == 400
    assert live.http.get(live.path(Links(live.base, live.app.signer).preferences(
        people["anna"]))).status_code == 200


def test_the_sqlite_upgrade_rebuilds_with_autoincrement_and_loses_nothing(tmp_path):
    from mailer.database.connect import make_engine, upgrade_schema

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade_schema(engine, "0004")
    stamp = "'2026-01-01 00:00:00'"
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO subscribers (email, email_key, name, organisation, job_title, region, "
            "language, status, attributes, consent_source, consent_by, created_at, updated_at) "
            f"VALUES ('a@b.nl', 'a@b.nl', 'A', '', '', '', 'nl', 'active', '{{}}', '', '', "
            f"{stamp}, {stamp})"))
        conn.execute(text("INSERT INTO lists (slug, title, description, opt_in, created_at) "
                          f"VALUES ('n', 'N', '', 'single', {stamp})"))
        conn.execute(text("INSERT INTO subscriptions (subscriber_id, list_id, status, "
                          f"created_at, updated_at) VALUES (1, 1, 'active', {stamp}, {stamp})"))
        conn.execute(text("INSERT INTO consent_events (subscriber_id, action, source, actor, "
                          f"detail, at) VALUES (1, 'created', 'cli', '', '', {stamp})"))
    upgrade_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM subscriptions")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM consent_events")).scalar() == 1
        public_id = conn.execute(text("SELECT public_id FROM subscribers")).scalar()
        assert tokens.is_public_id(public_id)
        assert conn.execute(text("SELECT public FROM lists")).scalar() == 0
        for table in ("subscribers", "lists", "campaigns", "deliveries", "events"):
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"),
                               {"t": table}).scalar()
            assert "AUTOINCREMENT" in sql, table
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall() == []
    engine.dispose()
