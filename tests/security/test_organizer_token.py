"""A calendar invitation's ORGANIZER names no row ids (finding 5), and stays the same for every
mail about one meeting to one person, or Outlook and Gmail take an update as another
organiser's.

Replayed against the running parts: meetings planned, invited, moved and cancelled with the
CLI, delivered by `mailer run --once` through the relay; Accept from a calendar sent to the
ORGANIZER through the bounce receiver on a loopback port. A new meeting's invitation, the
confirmation its Accept brings, the update and the cancellation carry one sealed ORGANIZER
in which neither the person's nor the meeting's row id can be read; a meeting from before the
upgrade (migration 0014 marks every existing one `legacy`) keeps its base36 ORGANIZER across
an update, and a REPLY to either shape is recorded; a token changed by one letter acts on no
one and waits in `events replies --review`.
"""

from __future__ import annotations

from email.message import EmailMessage

from ical_support import client_reply
from icalendar import Calendar
from live_support import Receiver, live, live_factory  # noqa: F401  (fixtures)
from sqlalchemy import text

from mailer.database.connect import session_scope
from mailer.events import service as events
from mailer.kernel.tokens import _base36
from subscribers import service

ANNA = "anna@assen.nl"


def _calendar(mail: EmailMessage) -> tuple[str, int, str]:
    """(METHOD, SEQUENCE, ORGANIZER address) of the mail's inline calendar."""
    part = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    cal = Calendar.from_ical(data.decode("utf-8"))
    (vevent,) = cal.walk("VEVENT")
    organizer = str(vevent["ORGANIZER"]).removeprefix("mailto:")
    return str(cal["METHOD"]), int(str(vevent.get("SEQUENCE", 0))), organizer


def _meeting_mail(live, uid: str) -> list[tuple[str, int, str]]:
    found = []
    for mail in live.all_mail():
        if mail["To"].addresses[0].addr_spec != ANNA:
            continue
        part = next((p for p in mail.walk() if p.get_content_type() == "text/calendar"), None)
        data = part.get_payload(decode=True) if part is not None else b""
        if uid.encode() in data.replace(b"\r\n ", b""):  # unfolded
            found.append(_calendar(mail))
    return found


def _create(run_cli, title: str) -> tuple[int, str]:
    event_id = int(run_cli("events", "create", "--title", title, "--region", "Noord",
                           "--starts", "2099-04-14 13:30", "--ends", "2099-04-14 16:00",
                           "--venue", "Provinciehuis").stdout.strip())
    return event_id, _uid(run_cli, event_id)


def _uid(run_cli, event_id: int) -> str:
    import json

    return str(json.loads(run_cli("events", "show", str(event_id), "--json").output)["uid"])


def _row_ids(app, event_id: int) -> tuple[int, str]:
    with session_scope(app.sessions) as session:
        subscriber_id = service.get_subscriber(session, ANNA).id
        fmt = session.execute(text("SELECT organizer_format FROM events WHERE id = :e"),
                              {"e": event_id}).scalar_one()
    return subscriber_id, fmt


def _replies(app) -> list[tuple[str, int | None, str]]:
    with session_scope(app.sessions) as session:
        return [tuple(r) for r in session.execute(text(
            "SELECT outcome, event_id, reason FROM calendar_replies ORDER BY id"))]


def _answer(app, event_id: int, subscriber_id: int) -> str | None:
    with session_scope(app.sessions) as session:
        row = events.current_answer(session, event_id, subscriber_id)
        return None if row is None else row.answer


def _altered(address: str) -> str:
    local, domain = address.split("@")
    last = local[-1]
    return local[:-1] + ("a" if last != "a" else "b") + "@" + domain


def test_a_new_meeting_has_one_sealed_organizer_and_an_old_one_keeps_its_own(
    live_factory, run_cli
) -> None:
    live = live_factory()
    app = live.app
    run_cli("subscribers", "add", ANNA, "--name", "Anna de Vries", "--region", "Noord")
    # Rows before Anna's and the meeting's, so their ids are not all 1.
    for n in range(7):
        run_cli("subscribers", "add", f"lid{n}@emmen.nl", "--region", "Oost")
    for n in range(3):
        run_cli("events", "create", "--title", f"Eerder {n}", "--region", "Oost",
                "--starts", "2099-03-01 10:00", "--ends", "2099-03-01 11:00")

    # A meeting from before the upgrade: migration 0014 gave it the old shape.
    old_id, old_uid = _create(run_cli, "Oud overleg")
    with session_scope(app.sessions) as session:
        session.execute(text("UPDATE events SET organizer_format = 'legacy' WHERE id = :e"),
                        {"e": old_id})
    new_id, new_uid = _create(run_cli, "GT Connect regio Noord")
    subscriber_id, new_format = _row_ids(app, new_id)
    assert new_format == "sealed" and _row_ids(app, old_id)[1] == "legacy"

    run_cli("events", "invite", str(new_id))
    run_cli("events", "invite", str(old_id))
    run_cli("run", "--once")
    ((method, _seq, organizer),) = _meeting_mail(live, new_uid)
    ((_m, _s, old_organizer),) = _meeting_mail(live, old_uid)
    assert method == "REQUEST"

    # The sealed ORGANIZER: 26 letters, no part of it a base36 (or decimal) row id.
    prefix, token = organizer.split("@")[0].split("+")
    assert prefix == app.settings.events.reply_prefix
    assert len(token) == 26 and "-" not in token and token.islower()
    assert int(token, 36) not in (subscriber_id, new_id)
    for row_id in (subscriber_id, new_id):
        assert _base36(row_id) not in token.split("-") and not token.startswith(
            (_base36(row_id) + "-", str(row_id) + "-"))
    assert app.signer.parse_reply_address(organizer) == (subscriber_id, new_id)
    # Opaque: the same person's token for the next meeting shares nothing readable with it.
    neighbour = events.reply_address(app.settings, app.signer, subscriber_id, new_id + 1)
    assert neighbour.split("+")[1][:4] != token[:4]
    # The old meeting's ORGANIZER is the earlier shape, ids in base36 (why it is replaced).
    assert old_organizer.split("@")[0] == (
        f"rsvp+{_base36(subscriber_id)}-{_base36(old_id)}-"
        f"{app.signer._reply_mac(subscriber_id, old_id)}")

    receiver = Receiver(app)
    try:
        # Accept in the calendar, to each shape: recorded, as the RSVP page would.
        receiver.send(ANNA, organizer, client_reply(
            "outlook", organizer=organizer, attendee=ANNA, name="Anna de Vries", uid=new_uid))
        receiver.send(ANNA, old_organizer, client_reply(
            "gmail", organizer=old_organizer, attendee=ANNA, name="Anna de Vries",
            uid=old_uid, partstat="TENTATIVE"))
        assert _answer(app, new_id, subscriber_id) == "yes"
        assert _answer(app, old_id, subscriber_id) == "maybe"
        assert [r[:2] for r in _replies(app)] == [("recorded", new_id), ("recorded", old_id)]

        # One letter changed: acts on no one (not Anna, not anyone), kept for review.
        forged = _altered(organizer)
        receiver.send(ANNA, forged, client_reply(
            "thunderbird", organizer=forged, attendee=ANNA, name="Anna de Vries",
            uid=new_uid, partstat="DECLINED"))
        assert _answer(app, new_id, subscriber_id) == "yes"
        assert _replies(app)[-1] == (
            "review", None, "the reply address's token is not valid (or two disagree)")
        with session_scope(app.sessions) as session:
            assert session.execute(text(
                "SELECT count(*) FROM rsvp_changes WHERE source = 'calendar'")).scalar_one() == 2
            assert session.execute(text("SELECT count(*) FROM bounces")).scalar_one() == 0
    finally:
        receiver.close()
    review = run_cli("events", "replies", "--review").output
    assert "token is not valid" in review and "recorded" not in review

    # Moved, then cancelled: every mail about the meeting to Anna has the one ORGANIZER.
    run_cli("events", "edit", str(new_id), "--starts", "2099-04-14 14:00",
            "--ends", "2099-04-14 16:30")
    run_cli("events", "edit", str(old_id), "--starts", "2099-04-14 14:00",
            "--ends", "2099-04-14 16:30")
    run_cli("run", "--once")
    run_cli("events", "cancel", str(new_id), "--yes")
    run_cli("run", "--once")
    sent = _meeting_mail(live, new_uid)
    assert sorted((m, s) for m, s, _o in sent) == [
        ("CANCEL", 2), ("REQUEST", 0), ("REQUEST", 0), ("REQUEST", 1)]  # + the confirmation
    assert {o for _m, _s, o in sent} == {organizer}
    old_sent = _meeting_mail(live, old_uid)
    assert sorted(s for _m, s, _o in old_sent) == [0, 1]
    assert {o for _m, _s, o in old_sent} == {old_organizer}


def test_the_migration_marks_existing_meetings_legacy(db_url: str) -> None:
    """Meetings that exist when 0014 runs keep the old ORGANIZER; new ones are sealed."""
    import datetime as dt

    from alembic import command
    from alembic.script import ScriptDirectory

    from mailer.database.connect import _alembic_config, make_engine, upgrade_schema

    engine = make_engine(db_url)
    try:
        config = _alembic_config(engine)
        revision = ScriptDirectory.from_config(config).get_revision("0014_organizer_token")
        assert revision is not None
        command.downgrade(config, str(revision.down_revision))  # wherever the lead chains it
        now = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO events (uid, title, region, starts_at, ends_at, timezone, venue, "
                "address, online_url, description, status, sequence, created_at, updated_at) "
                "VALUES ('old@gt', 'Oud', 'Noord', :t, :t, 'Europe/Amsterdam', '', '', '', '', "
                "'active', 0, :t, :t)"), {"t": now})
        upgrade_schema(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT organizer_format FROM events")).scalars().all() \
                == ["legacy"]
    finally:
        engine.dispose()


def test_a_sealed_organizer_is_not_taken_for_a_verp_token(live, run_cli) -> None:
    """Both are 26 letters after a `+`: a person's letter to the ORGANIZER is not a forged
    bounce, and a VERP or mailto token beside a REPLY's ORGANIZER is not a forged reply."""
    app = live.app
    run_cli("subscribers", "add", ANNA, "--name", "Anna de Vries", "--region", "Noord")
    event_id, uid = _create(run_cli, "GT Connect regio Noord")
    subscriber_id, _fmt = _row_ids(app, event_id)
    organizer = events.reply_address(app.settings, app.signer, subscriber_id, event_id)
    domain = app.settings.sender.bounce_domain
    verp = app.signer.verp_address(12345, domain)
    reply = client_reply("apple", organizer=organizer, attendee=ANNA, name="Anna de Vries",
                         uid=uid)
    reply = reply.replace(b"\r\nSubject:", f"\r\nCc: {verp}\r\nSubject:".encode(), 1)
    assert verp.encode() in reply
    letter = (f"From: Anna <{ANNA}>\r\nTo: {organizer}\r\nSubject: Re: Uitnodiging\r\n"
              "Message-ID: <brief-1@assen.nl>\r\n\r\nIk kom een half uur later.\r\n").encode()
    receiver = Receiver(app)
    try:
        receiver.send(ANNA, organizer, reply)
        receiver.send(ANNA, organizer, letter)
    finally:
        receiver.close()
    assert _answer(app, event_id, subscriber_id) == "yes"
    assert [r[:2] for r in _replies(app)] == [("recorded", event_id)]
    with session_scope(app.sessions) as session:
        valid = session.execute(text("SELECT token_valid FROM bounces")).scalars().all()
    assert False not in valid  # the letter is kept, not counted as a forged VERP token
