"""Finding 6: after `subscribers erase` the person is nowhere — not in delivery error texts,
raw replies or unmatched reports, logs, SQLite's WAL or free pages.

One person goes through every feature against the running parts: imported (CLI) with a phone
number, sent a newsletter (CLI, through the relay), bounced (a DSN into the bounce receiver on
a loopback port), replied to with name and phone in the signature, complained (ARF), answered
an RSVP and signed up again on the web (real HTTP). Mail that mentions them only inside a
base64 or quoted-printable part arrives too: an unmatched report, a colleague's reply, a
calendar reply (all through the receiver) and a file ingested with the CLI. `subscribers show`
lists the raw messages that mention them; then they are erased, and their address, name and
phone number are looked for in the database files (WAL included) or, on PostgreSQL, in every
text column of every table, in every kept raw message decoded part by part, and in the log
output: none found.
"""

from __future__ import annotations

import base64
import email
import json
import logging
from email import policy
from pathlib import Path

from bounces_support import sample
from delivery_support import content_file
from live_support import Receiver, live, live_factory  # noqa: F401  (fixtures)
from sqlalchemy import LargeBinary, String, Text, inspect, text
from sqlalchemy.engine import make_url
from web_support import link_in

from mailer.database.connect import session_scope
from mailer.events import service as events
from mailer.events.dates import parse_local
from mailer.kernel.links import Links
from subscribers import service

ADDRESS = "anna.devries@gemeente-a.nl"  # as in the sample bounce and complaint
NAME = "Annabel Wisse-Vrieling"
PHONE = "06-98765432"
NEEDLES = (ADDRESS, NAME, PHONE)


def _found_in_files(db_url: str) -> dict[str, list[str]]:
    path = Path(make_url(db_url).database or "")
    files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    blob = b"".join(p.read_bytes() for p in files)
    lowered = blob.lower()
    return {needle: [p.name for p in files] for needle in NEEDLES
            if needle.lower().encode() in lowered
            or needle.lower().encode("utf-16-le") in lowered}


def _found_in_postgres(engine) -> list[tuple[str, str, str]]:
    found = []
    with engine.connect() as conn:
        inspector = inspect(conn)
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                kind = column["type"]
                if not isinstance(kind, String | Text | LargeBinary) and "JSON" not in str(kind):
                    continue
                as_text = (f'convert_from("{column["name"]}", \'UTF8\')'
                           if isinstance(kind, LargeBinary) else f'"{column["name"]}"::text')
                for needle in NEEDLES:
                    hits = conn.execute(text(
                        f'SELECT count(*) FROM "{table}" WHERE {as_text} ILIKE :n'),
                        {"n": f"%{needle}%"}).scalar()
                    if hits:
                        found.append((table, column["name"], needle))
    return found


def _b64(text: str) -> str:
    return base64.encodebytes(text.encode("utf-8")).decode("ascii")


# Each mentions the person only inside an encoded part: a byte search of the raw mail misses it.
ENCODED_REPORT = (
    "From: postmaster@relay.example\nTo: x@bounces.gt.example.nl\nSubject: Delivery report\n"
    "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n\n"
    + _b64(f"Could not deliver to {ADDRESS}; call {PHONE.replace('-', ' ')}.\n"))
ENCODED_REPLY = (  # a quoted-printable soft line break splits the name in the raw text
    "From: Piet Bakker <piet@gemeente-c.nl>\nTo: info@bounces.gt.example.nl\n"
    "Subject: Re: Nieuws\nMIME-Version: 1.0\n"
    "Content-Type: multipart/alternative; boundary=\"b\"\n\n--b\n"
    "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
    f"<p>Ik stuur dit door aan {NAME[:9]}=\n{NAME[9:]}, tel. {PHONE[:4]}=\n{PHONE[4:]}</p>\n"
    "--b--\n")
ENCODED_CALENDAR_REPLY = (  # an answer for a meeting we do not know: kept for review
    "From: Piet Bakker <piet@gemeente-c.nl>\nTo: rsvp@bounces.gt.example.nl\n"
    "Subject: Accepted: GT Connect\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"c\"\n\n--c\n"
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
    + _b64(f"Ik kom namens {NAME} ({ADDRESS}).\n") +
    "--c\nContent-Type: text/calendar; method=REPLY; charset=utf-8\n\n"
    "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Test//EN\nMETHOD:REPLY\nBEGIN:VEVENT\n"
    "UID:unknown-meeting@elsewhere.example\nDTSTAMP:20261201T120000Z\n"
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:piet@gemeente-c.nl\nEND:VEVENT\nEND:VCALENDAR\n"
    "--c--\n")
ENCODED_FILE = (
    "From: MAILER-DAEMON@mx.gemeente-a.nl\nTo: bounces@bounces.gt.example.nl\n"
    "Subject: =?utf-8?b?" + base64.b64encode(f"Niet bezorgd: {ADDRESS}".encode()).decode()
    + "?=\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n\n" + _b64(f"Onbekend: {NAME}\n"))


def _found_decoded(engine) -> list[tuple[str, str]]:
    """Needles in the kept raw messages, each decoded part by part (headers too)."""
    found = []
    with engine.connect() as conn:
        for table in ("bounce_messages", "calendar_replies"):
            for (raw,) in conn.execute(text(f"SELECT raw FROM {table} WHERE raw IS NOT NULL")):
                message = email.message_from_bytes(bytes(raw), policy=policy.default)
                texts = []
                for part in message.walk():
                    texts += [str(v) for v in part.values()]
                    payload = None if part.is_multipart() else part.get_payload(decode=True)
                    if isinstance(payload, bytes):
                        texts.append(payload.decode("utf-8", "replace"))
                decoded = " ".join(" ".join(texts).split()).lower()
                found += [(table, n) for n in NEEDLES
                          if n.lower() in decoded or n.replace("-", " ").lower() in decoded]
    return found


def test_a_person_through_every_feature_then_erased_is_nowhere(
    live_factory, run_cli, db_url, tmp_path, caplog, monkeypatch
):
    caplog.set_level(logging.INFO)
    live = live_factory()
    app = live.app
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief", "--public")
    people = tmp_path / "mensen.csv"
    people.write_text(f"email;naam;regio;telefoon\n{ADDRESS};{NAME};Noord;{PHONE}\n"
                      "jan@gemeente-b.nl;Jan Jansen;Noord;06-11111111\n", encoding="utf-8")
    run_cli("subscribers", "import", str(people), "--list", "nieuwsbrief")
    with session_scope(app.sessions) as session:
        person = service.get_subscriber(session, ADDRESS)
        assert person.attributes.get("telefoon") == PHONE
        public_id = person.public_id

    run_cli("campaigns", "create", "--content", str(content_file(tmp_path)), "--list",
            "nieuwsbrief")
    monkeypatch.setenv("LOGNAME", "eindredacteur")  # four-eyes: someone else approves
    run_cli("campaigns", "approve", "1")
    run_cli("campaigns", "send", "1", "--wait")
    live.mails_to(ADDRESS)
    with app.engine.begin() as conn:
        # As the relay words a refusal for a second attempt: the address inside the text.
        conn.execute(text("UPDATE deliveries SET last_error = :e WHERE email = :a"),
                     {"e": f"550 5.1.1 <{ADDRESS}>: Recipient address rejected", "a": ADDRESS})
    with session_scope(app.sessions) as session:
        delivery_id = session.execute(text("SELECT id FROM deliveries WHERE email = :a"),
                                      {"a": ADDRESS}).scalar_one()
    verp = app.signer.verp_address(delivery_id, app.settings.sender.bounce_domain)

    zone = app.settings.timezone
    with session_scope(app.sessions) as session:
        event_id = events.create_event(session, app.settings, events.EventFields(
            title="GT Connect", region="Noord", starts_at=parse_local("2099-04-14 13:30", zone),
            ends_at=parse_local("2099-04-14 16:00", zone), venue="Zaal", address="Straat 1",
        )).id
    rsvp = live.path(Links(live.base, app.signer).rsvp(public_id, event_id))
    assert live.http.post(rsvp, data={"csrf": live.csrf(rsvp), "answer": "yes"}).status_code \
        in (200, 303)
    run_cli("lists", "create", "regio-noord", "--title", "Regio Noord", "--public")
    live.sign_up("regio-noord", ADDRESS, name=NAME + " (web)", organisation=PHONE)
    confirmations = [m for m in live.mails_to(ADDRESS, 3) if "Aanmelding" in str(m["Subject"])
                     or f"{live.base}/c/" in m.as_string()]
    assert confirmations and link_in(confirmations[0], f"{live.base}/c/")

    receiver = Receiver(app)
    try:
        receiver.send("", verp, sample("handmade_hard_511.eml", verp))
        receiver.send("", verp, sample("handmade_arf_complaint.eml", verp))
        receiver.send(ADDRESS, "info@" + app.settings.sender.bounce_domain,
                      (f"From: {NAME} <{ADDRESS}>\nTo: info@bounces.gt.example.nl\n"
                       f"Subject: Re: Nieuws van GT\n\nDank!\n\n--\n{NAME}\nTel. {PHONE}\n"
                       ).encode())
        receiver.send("postmaster@forwarder.example", "x@" + app.settings.sender.bounce_domain,
                      (f"From: postmaster@forwarder.example\nSubject: Undeliverable\n\n"
                       f"Could not forward to {ADDRESS.upper()} ({NAME}).\n").encode())
        receiver.send("postmaster@relay.example", "x@" + app.settings.sender.bounce_domain,
                      ENCODED_REPORT.encode())
        receiver.send("piet@gemeente-c.nl", "info@" + app.settings.sender.bounce_domain,
                      ENCODED_REPLY.encode())
        receiver.send("piet@gemeente-c.nl", "rsvp@" + app.settings.sender.bounce_domain,
                      ENCODED_CALENDAR_REPLY.encode())
    finally:
        receiver.close()
    intake = tmp_path / "report.eml"
    intake.write_bytes(ENCODED_FILE.encode())
    run_cli("bounces", "ingest", str(intake))
    assert {n for _t, n in _found_decoded(app.engine)} == set(NEEDLES)

    shown = json.loads(run_cli("subscribers", "show", ADDRESS, "--json").output)
    mentioning = shown["messages_mentioning"]
    # The bounce, the complaint, the reply, the forwarder, and the three encoded ones.
    assert len(mentioning) >= 7, mentioning
    assert shown["calendar_replies_mentioning"], shown
    assert "calendar replies mentioning" in run_cli("subscribers", "show", ADDRESS).output
    assert shown["signup_requests"], shown
    assert shown["meeting_answers"], shown
    assert "messages mentioning" in run_cli("subscribers", "show", ADDRESS).output

    sqlite = app.engine.dialect.name == "sqlite"
    if sqlite:  # deleted content is zeroed on every connection, not left in free pages
        with app.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    # The search finds them before the erasure (so its silence afterwards means something).
    assert (set(_found_in_files(db_url)) if sqlite
            else {n for _t, _c, n in _found_in_postgres(app.engine)}) == set(NEEDLES)
    run_cli("subscribers", "erase", ADDRESS, "--yes")
    if sqlite:
        assert _found_in_files(db_url) == {}
    else:
        assert _found_in_postgres(app.engine) == []
    assert _found_decoded(app.engine) == []
    logged = caplog.text.lower()
    assert [n for n in NEEDLES if n.lower() in logged] == []
    # The other person is untouched.
    with session_scope(app.sessions) as session:
        assert service.get_subscriber(session, "jan@gemeente-b.nl").name == "Jan Jansen"
