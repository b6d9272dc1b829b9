"""Bounces you can trust, replayed against the running bounce receiver on both backends:
forged reports act on no one, message-level refusals never bounce an address, and the brake
pauses a receiving domain on mass failure until an admin resumes it (no message lost)."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiosmtplib
from bounces_support import ANNA, dsn, sample, sent_delivery, verp_for
from sqlalchemy import select

from mailer.bounces import service
from mailer.bounces.models import Bounce
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.models import Campaign, Delivery, DomainPause
from mailer.database.connect import session_scope
from mailer.intake.receiver import serve
from subscribers import service as subscribers
from subscribers.models import utcnow

BIG = "grootmail.nl"
SPAMHAUS = ("554 5.7.1 Service unavailable; Client host [203.0.113.5] blocked using "
            "zen.spamhaus.org; https://www.spamhaus.org/query/ip/203.0.113.5")


def deliver(app, messages: list[tuple[str, list[str], bytes]]) -> None:
    """Send each (envelope sender, recipients, message) to a running bounce receiver."""
    async def scenario() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(app, stop, host="127.0.0.1", port=0, protocol="smtp",
                                         ready=ready.set_result))
        try:
            port = await asyncio.wait_for(ready, 10)
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
                for sender, rcpts, raw in messages:
                    await smtp.sendmail(sender, rcpts, raw)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())


def status_of(app, email: str) -> str:
    with session_scope(app.sessions) as session:
        return subscribers.get_subscriber(session, email).status


def records(app) -> list[Bounce]:
    with session_scope(app.sessions) as session:
        rows = list(session.scalars(select(Bounce).order_by(Bounce.id)))
        session.expunge_all()
        return rows


def test_a_report_without_our_token_acts_on_no_one(app, run_cli):
    with session_scope(app.sessions) as session:
        sent_delivery(session)
    # A forged DSN and a forged ARF complaint naming Anna, sent straight to the bounce domain.
    forged_dsn = dsn("bounces@bounces.gt.example.nl", ANNA, "5.1.1",
                     "550 5.1.1 user unknown")
    forged_arf = sample("handmade_arf_complaint.eml", "bounces@bounces.gt.example.nl")
    deliver(app, [("", ["bounces@bounces.gt.example.nl"], forged_dsn),
                  ("", ["bounces@bounces.gt.example.nl"], forged_arf)])
    assert status_of(app, ANNA) == "active"
    with session_scope(app.sessions) as session:
        assert not subscribers.is_suppressed(session, ANNA)
    held = records(app)
    assert [(b.kind, b.held) for b in held] == [("hard", True), ("complaint", True)]
    listed = run_cli("bounces", "review").output
    assert ANNA in listed and "kept for review" in listed
    run_cli("bounces", "apply", str(held[0].id), "--by", "jan")
    assert status_of(app, ANNA) == "bounced"


def test_a_valid_token_acts_only_on_the_delivery_it_names(app):
    with session_scope(app.sessions) as session:
        anna = sent_delivery(session)
        piet = sent_delivery(session, "piet@gemeente-b.nl")
        kees = sent_delivery(session, "kees@gemeente-b.nl")
        verp = verp_for(app.signer, anna)
    # Anna's real token, in a report that also lists Piet and Kees: only Anna's block acts.
    raw = dsn(verp, ANNA, "5.1.1", "550 5.1.1 user unknown")
    block = raw.split(b"Final-Recipient", 1)[1].split(b"\r\n\r\n", 1)[0]
    others = b"".join(b"\r\n\r\nFinal-Recipient" + block.replace(ANNA.encode(), who.encode())
                      for who in (piet.email, kees.email))
    raw = raw.replace(b"Final-Recipient" + block, b"Final-Recipient" + block + others)
    deliver(app, [("", [verp], raw)])
    assert status_of(app, ANNA) == "bounced"
    assert status_of(app, piet.email) == "active" and status_of(app, kees.email) == "active"
    first, second, third = records(app)
    assert first.delivery_id == anna.id
    assert second.delivery_id is None and "no action" in second.outcome
    assert third.subscriber_id is None and "no action" in third.outcome


def test_unsubscribe_mail_acts_only_through_the_signed_mailto(app):
    with session_scope(app.sessions) as session:
        anna = sent_delivery(session)
        piet = sent_delivery(session, "piet@gemeente-b.nl")
        token = app.signer.mailto_token(anna.subscriber_id)
    plain = sample("handmade_unsubscribe_mail.eml")
    signed = plain.replace(b"afmelden@", f"afmelden+{token}@".encode()).replace(
        ANNA.encode(), piet.email.encode()).replace(b"unsub-1", b"unsub-2")
    deliver(app, [(ANNA, ["afmelden@bounces.gt.example.nl"], plain),
                  (piet.email, [f"afmelden+{token}@bounces.gt.example.nl"], signed)])
    # The plain address with Anna's From: held. The signed one sent "from" Piet: Anna only.
    assert status_of(app, ANNA) == "unsubscribed"
    assert status_of(app, piet.email) == "active"
    first, second = records(app)
    assert first.held and (second.matched_by, second.subscriber_id) == (
        "token", anna.subscriber_id)


def _mass_campaign(app, count: int) -> tuple[int, list[str]]:
    """A running campaign: `count` sent deliveries at BIG, plus queued ones at BIG and
    elsewhere; the VERP addresses of the sent ones."""
    with session_scope(app.sessions) as session:
        campaign = Campaign(subject="GT Nieuwsbrief december", status="running")
        session.add(campaign)
        session.flush()
        verps = [verp_for(app.signer, sent_delivery(session, f"lid{i}@{BIG}", campaign=campaign))
                 for i in range(count)]
        for email in (f"wacht1@{BIG}", f"wacht2@{BIG}", "elders@gemeente-a.nl"):
            sub = sent_delivery(session, email, campaign=campaign)
            sub.status, sub.sent_at = "queued", None
        session.flush()
        return campaign.id, verps


def _claim(app) -> list[str]:
    now = utcnow()
    with session_scope(app.sessions) as session:
        ids = campaign_queries.claim_batch(session, "test", 100, now,
                                           now - dt.timedelta(minutes=10))
        return sorted(session.get(Delivery, i).email for i in ids)  # type: ignore[union-attr]


def test_the_brake_pauses_a_domain_on_mass_blocklisting_and_waits_for_an_admin(app, run_cli):
    campaign_id, verps = _mass_campaign(app, 25)
    # The relay's IP is blocklisted: every recipient at BIG is refused for it.
    deliver(app, [("", [verp], dsn(verp, f"lid{i}@{BIG}", "5.7.1", SPAMHAUS))
                  for i, verp in enumerate(verps)])
    found = records(app)
    assert {(b.kind, b.reason) for b in found} == {("refused", "blocked")}
    assert all(status_of(app, f"lid{i}@{BIG}") == "active" for i in range(25))
    with session_scope(app.sessions) as session:
        (pause,) = session.scalars(select(DomainPause)).all()
        assert (pause.domain, pause.reason, pause.resumed_at) == (BIG, "blocked", None)
    status = run_cli("campaigns", "status", str(campaign_id)).output
    assert f"delivery to {BIG} paused (blocked): 2 message(s) wait" in status
    # Mail to the paused domain waits; mail elsewhere goes on.
    assert _claim(app) == ["elders@gemeente-a.nl"]
    assert BIG in run_cli("bounces", "pauses").output
    by_reason = run_cli("bounces", "stats", "--by", "reason").output
    assert "blocked" in by_reason and "25 refused" in by_reason
    by_domain = run_cli("bounces", "stats", "--by", "domain", "--json").output
    assert f'"domain": "{BIG}"' in by_domain and '"refused": 25' in by_domain
    listed = run_cli("bounces", "ls", "--reason", "blocked").output
    assert "refused" in listed and "blocked" in listed
    run_cli("bounces", "resume-domain", BIG)
    assert _claim(app) == [f"wacht1@{BIG}", f"wacht2@{BIG}"]
    again = run_cli("bounces", "resume-domain", BIG, ok=False)
    assert again.exit_code == 1 and "not paused" in again.output


def test_forged_refusals_cannot_pull_the_brake(app):
    _campaign_id, _verps = _mass_campaign(app, 25)
    deliver(app, [("", ["bounces@bounces.gt.example.nl"],
                   dsn("bounces@bounces.gt.example.nl", f"lid{i}@{BIG}", "5.7.1", SPAMHAUS))
                  for i in range(25)])
    with session_scope(app.sessions) as session:
        assert session.scalars(select(DomainPause)).all() == []
    assert f"wacht1@{BIG}" in _claim(app)


def test_a_few_refusals_do_not_pause(app):
    _campaign_id, verps = _mass_campaign(app, 25)
    deliver(app, [("", [verp], dsn(verp, f"lid{i}@{BIG}", "5.7.1", SPAMHAUS))
                  for i, verp in enumerate(verps[:5])])
    with session_scope(app.sessions) as session:
        assert session.scalars(select(DomainPause)).all() == []


def test_send_time_refusals_follow_the_same_rules(app):
    with session_scope(app.sessions) as session:
        blocked = sent_delivery(session, "een@gemeente-b.nl")
        unknown = sent_delivery(session, "twee@gemeente-b.nl")
        big = sent_delivery(session, "drie@gemeente-b.nl")
        made = service.record_send_failures(session, [
            (blocked.id, 554, SPAMHAUS),
            (unknown.id, 550, "5.1.1 <twee@gemeente-b.nl>: Recipient address rejected: "
                              "User unknown in local recipient table"),
            (big.id, 552, "5.3.4 Message size exceeds fixed limit"),
        ])
        assert [(b.kind, b.reason) for b in made] == [
            ("refused", "blocked"), ("hard", "user-unknown"), ("refused", "too-large")]
    assert status_of(app, "een@gemeente-b.nl") == "active"
    assert status_of(app, "twee@gemeente-b.nl") == "bounced"
    assert status_of(app, "drie@gemeente-b.nl") == "active"


def test_reactivate_by_filter_undoes_a_mass_event(app, run_cli):
    with session_scope(app.sessions) as session:
        for i in range(3):
            delivery = sent_delivery(session, f"lid{i}@{BIG}")
            service.record_send_failures(session, [(delivery.id, 550, "5.1.1 user unknown")])
        other = sent_delivery(session, "piet@gemeente-b.nl")
        service.record_send_failures(session, [(other.id, 550, "5.1.1 user unknown")])
    dry = run_cli("subscribers", "reactivate", "--reason", "user-unknown", "--domain", BIG,
                  "--dry-run").output
    assert "Would reactivate 3 subscriber(s)." in dry
    assert status_of(app, f"lid0@{BIG}") == "bounced"
    bad = run_cli("subscribers", "reactivate", "--domain", BIG, ok=False)
    assert bad.exit_code == 1 and "--note" in bad.output
    done = run_cli("subscribers", "reactivate", "--reason", "user-unknown", "--domain", BIG,
                   "--since", "2000-01-01", "--note", "storing bij grootmail").output
    assert "Reactivated 3 subscriber(s)." in done
    assert status_of(app, f"lid2@{BIG}") == "active"
    assert status_of(app, "piet@gemeente-b.nl") == "bounced"
    unknown = run_cli("subscribers", "reactivate", "--reason", "nonsense", ok=False)
    assert unknown.exit_code == 1 and "unknown reason" in unknown.output
