"""The bounce pipeline on both backends: samples in, bounce records and the policy out."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from bounces_support import ANNA, sample, sent_delivery, verp_for
from sqlalchemy import select

from mailer.bounces import service
from mailer.bounces.models import Bounce, BounceMessage, BounceScore
from mailer.bounces.parse import MAX_BYTES
from mailer.bounces.policy import Policy
from mailer.campaigns.models import Delivery
from mailer.errors import BounceError
from subscribers import service as subscribers
from subscribers.models import Subscriber


def ingest(session, app, raw: bytes, **kw):
    return service.ingest(session, raw, source="file", settings=app.settings, signer=app.signer,
                          **kw)


def status_of(session, email: str = ANNA) -> str:
    return subscribers.get_subscriber(session, email).status


def test_hard_bounce_via_verp_marks_subscriber_and_delivery(session, app):
    delivery = sent_delivery(session)
    result = ingest(session, app, sample("handmade_hard_511.eml", verp_for(app.signer, delivery)))
    (bounce,) = result.bounces
    assert (bounce.kind, bounce.status, bounce.matched_by, bounce.token_valid) == (
        "hard", "5.1.1", "verp", True)
    assert bounce.delivery_id == delivery.id and bounce.campaign_id == delivery.campaign_id
    assert "User unknown" in bounce.diagnostic
    assert status_of(session) == "bounced"
    assert session.get(Delivery, delivery.id).status == "bounced"
    assert "subscriber is now bounced" in bounce.outcome


def test_same_bounce_twice_is_counted_once(session, app):
    delivery = sent_delivery(session)
    raw = sample("handmade_soft_422.eml", verp_for(app.signer, delivery))
    first = ingest(session, app, raw)
    # The same message through another path: extra trace headers in front.
    second = ingest(session, app, b"Received: from elsewhere\r\nDelivered-To: x@y.nl\r\n" + raw)
    assert not first.duplicate and second.duplicate and second.bounces == []
    assert len(session.scalars(select(Bounce)).all()) == 1
    assert session.get(BounceScore, delivery.subscriber_id).score == 1


def test_soft_bounces_score_once_a_day_and_reach_the_threshold(session, app):
    delivery = sent_delivery(session)
    verp = verp_for(app.signer, delivery)
    start = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
    days = [0, 0, 1, 2, 3]  # two on the first day count as one
    for n, day in enumerate(days):
        raw = sample("handmade_soft_422.eml", verp).replace(b"dsn-soft-422", f"s{n}".encode())
        ingest(session, app, raw, now=start + dt.timedelta(days=day, hours=n))
    assert session.get(BounceScore, delivery.subscriber_id).score == 4
    assert status_of(session) == "active"
    raw = sample("handmade_soft_422.eml", verp).replace(b"dsn-soft-422", b"s-last")
    result = ingest(session, app, raw, now=start + dt.timedelta(days=4))
    assert status_of(session) == "bounced"
    assert "5/5" in result.bounces[0].outcome


def test_stale_soft_score_starts_again(session, app):
    delivery = sent_delivery(session)
    verp = verp_for(app.signer, delivery)
    start = dt.datetime(2026, 11, 1, 9, tzinfo=dt.UTC)
    for n, day in enumerate([0, 1, 2, 3, 20]):  # the last one comes after stale_days
        raw = sample("handmade_soft_422.eml", verp).replace(b"dsn-soft-422", f"t{n}".encode())
        ingest(session, app, raw, now=start + dt.timedelta(days=day))
    assert session.get(BounceScore, delivery.subscriber_id).score == 1
    assert status_of(session) == "active"


def test_delayed_warning_and_out_of_office_are_not_bounces(session, app):
    delivery = sent_delivery(session)
    verp = verp_for(app.signer, delivery)
    delayed = ingest(session, app, sample("handmade_delayed.eml", verp))
    ooo = ingest(session, app, sample("handmade_out_of_office.eml", verp))
    assert delayed.kinds == ["delayed"] and ooo.kinds == ["autoreply"]
    assert status_of(session) == "active"
    assert session.get(Delivery, delivery.id).status == "sent"
    assert session.get(BounceScore, delivery.subscriber_id) is None


def test_arf_complaint_unsubscribes_and_suppresses(session, app):
    delivery = sent_delivery(session)
    result = ingest(session, app, sample("handmade_arf_complaint.eml",
                                         verp_for(app.signer, delivery)))
    (bounce,) = result.bounces
    assert (bounce.kind, bounce.matched_by) == ("complaint", "verp")
    assert status_of(session) == "complained"
    assert subscribers.is_suppressed(session, ANNA)
    record = subscribers.subscriber_record(session, ANNA)
    assert record["lists"] == []


def test_forged_token_is_recorded_unmatched_and_does_nothing(session, app):
    delivery = sent_delivery(session)
    good = verp_for(app.signer, delivery)
    forged = good.split("+")[0] + "+" + "a" * 26 + "@" + good.split("@")[1]
    result = ingest(session, app, sample("handmade_hard_511.eml").replace(
        b"VERP_ADDRESS", forged.encode()))
    (bounce,) = result.bounces
    assert bounce.token_valid is False and bounce.matched_by == "none"
    assert bounce.subscriber_id is None and bounce.delivery_id is None
    assert status_of(session) == "active"
    assert session.get(Delivery, delivery.id).status == "sent"


def test_without_token_the_report_is_held_until_an_admin_applies_it(session, app):
    sent_delivery(session)
    raw = sample("handmade_hard_511.eml").replace(b"VERP_ADDRESS", b"bounces@gt.example.nl")
    (bounce,) = ingest(session, app, raw).bounces
    assert (bounce.matched_by, bounce.token_valid, bounce.held) == ("recipient", None, True)
    assert bounce.delivery_id is None and bounce.subscriber_id is not None
    assert status_of(session) == "active"
    assert [b["id"] for b in service.held_for_review(session)] == [bounce.id]
    service.apply_held(session, bounce.id, settings=app.settings.bounces, actor="admin")
    assert status_of(session) == "bounced" and not bounce.held
    assert bounce.outcome.startswith("applied by admin")
    with pytest.raises(BounceError, match="not held"):
        service.apply_held(session, bounce.id, settings=app.settings.bounces)


def test_non_standard_bounce_goes_through_flufl(session, app):
    delivery = sent_delivery(session)
    (bounce,) = ingest(session, app, sample("handmade_exim_plain.eml",
                                            verp_for(app.signer, delivery))).bounces
    assert (bounce.kind, bounce.status, bounce.recipient) == ("hard", "5.1.1", ANNA)


def test_mail_to_the_plain_unsubscribe_address_trusts_no_from_header(session, app):
    sent_delivery(session)
    (bounce,) = ingest(session, app, sample("handmade_unsubscribe_mail.eml")).bounces
    assert (bounce.kind, bounce.matched_by, bounce.held) == ("unsubscribe", "recipient", True)
    assert status_of(session) == "active"
    stranger = sample("handmade_unsubscribe_mail.eml").replace(
        ANNA.encode(), b"nobody@elders.nl").replace(b"unsub-1", b"unsub-2")
    (other,) = ingest(session, app, stranger).bounces
    assert other.kind == "unsubscribe" and other.subscriber_id is None


def test_garbled_and_huge_messages_are_kept_as_unknown(session, app):
    sent_delivery(session)
    garbled = ingest(session, app, sample("handmade_garbled.eml"))
    assert garbled.kinds == ["unknown"]
    huge = b"From: x@y.nl\r\nSubject: big\r\n\r\n" + b"A" * (MAX_BYTES + 5000)
    result = ingest(session, app, huge)
    assert result.kinds == ["unknown"]
    message = session.get(BounceMessage, result.message_id)
    assert message.truncated and len(message.raw) == app.settings.bounces.raw_keep_kib * 1024
    junk = bytes(range(256)) * 50
    assert ingest(session, app, junk).kinds == ["unknown"]
    assert ingest(session, app, b"").kinds == ["unknown"]
    assert status_of(session) == "active"


def test_send_time_failures_enter_the_same_pipeline(session, app):
    hard = sent_delivery(session)
    soft = sent_delivery(session, "bert@gemeente-b.nl")
    failures = [(hard.id, 550, "5.1.1 <anna.devries@gemeente-a.nl>: user unknown"),
                (soft.id, 452, "4.2.2 mailbox full (retry deadline passed)")]
    made = service.record_send_failures(session, failures, policy=Policy())
    assert [(b.kind, b.status, b.source) for b in made] == [
        ("hard", "5.1.1", "send-time"), ("soft", "4.2.2", "send-time")]
    assert service.record_send_failures(session, failures) == []  # not counted twice
    assert status_of(session) == "bounced"
    assert status_of(session, "bert@gemeente-b.nl") == "active"
    summary = service.campaign_bounce_summary(session, hard.campaign_id)
    assert (summary["sent"], summary["hard"]) == (1, 1)
    assert summary["flags"] and "hard-bounce rate" in summary["flags"][0]


def test_reactivate_clears_state_and_score(session, app):
    delivery = sent_delivery(session)
    ingest(session, app, sample("handmade_hard_511.eml", verp_for(app.signer, delivery)))
    session.add(BounceScore(subscriber_id=delivery.subscriber_id, score=3))
    session.flush()
    service.reactivate(session, ANNA, "mailbox restored after phone call", actor="jan")
    assert status_of(session) == "active"
    assert session.get(BounceScore, delivery.subscriber_id) is None
    history = subscribers.subscriber_record(session, ANNA)["consent_history"]
    assert any(h["detail"] == "mailbox restored after phone call" for h in history)
    with pytest.raises(BounceError):
        service.reactivate(session, ANNA, "again")


def test_purge_forgets_old_raw_messages_only(session, app):
    delivery = sent_delivery(session)
    verp = verp_for(app.signer, delivery)
    old = ingest(session, app, sample("handmade_delayed.eml", verp),
                 now=dt.datetime.now(dt.UTC) - dt.timedelta(days=100))
    new = ingest(session, app, sample("handmade_out_of_office.eml", verp))
    assert service.purge(session, 90) == 1
    assert session.get(BounceMessage, old.message_id).raw is None
    assert session.get(BounceMessage, new.message_id).raw is not None
    assert service.get_bounce(session, old.bounces[0].id)["message"]["raw"] is None


def test_history_stats_and_erasure(session, app):
    delivery = sent_delivery(session)
    ingest(session, app, sample("handmade_hard_511.eml", verp_for(app.signer, delivery)))
    history = service.bounce_history(session, delivery.subscriber_id)
    assert [h["kind"] for h in history] == ["hard"]
    (row,) = service.bounce_stats(session)
    assert (row["sent"], row["hard"], row["bounce_rate"]) == (1, 1, 1.0)
    service.forget_subscriber(session, delivery.subscriber_id, ANNA)
    bounce = session.scalars(select(Bounce)).one()
    assert bounce.recipient == "" and bounce.subscriber_id is None
    assert session.get(Subscriber, delivery.subscriber_id) is not None


def test_send_failure_hook_uses_the_configured_threshold(session, app):
    delivery = sent_delivery(session)
    hook = service.send_failure_hook(dataclasses.replace(app.settings.bounces, soft_threshold=1))
    hook(session, [(delivery.id, 452, "4.2.2 over quota, retry deadline passed")])
    assert status_of(session) == "bounced"


def test_mail_to_the_signed_unsubscribe_address_unsubscribes_exactly_that_person(session, app):
    delivery = sent_delivery(session)
    other = sent_delivery(session, "piet@gemeente-b.nl")
    token = app.signer.mailto_token(delivery.subscriber_id)
    # Sent "from" someone else: the From header is never trusted, the token decides.
    raw = sample("handmade_unsubscribe_mail.eml").replace(
        b"afmelden@", f"afmelden+{token}@".encode()).replace(ANNA.encode(), other.email.encode())
    (bounce,) = ingest(session, app, raw).bounces
    assert (bounce.kind, bounce.matched_by, bounce.subscriber_id) == (
        "unsubscribe", "token", delivery.subscriber_id)
    assert status_of(session) == "unsubscribed"
    assert status_of(session, other.email) == "active"
    forged = raw.replace(token.encode(), token[:-4].encode() + b"aaaa")
    forged = forged.replace(b"unsub-1", b"unsub-9")
    (held,) = ingest(session, app, forged).bounces
    assert held.held and status_of(session, other.email) == "active"


def test_a_complaint_acts_through_the_signed_mailto_in_the_returned_original(session, app):
    delivery = sent_delivery(session)
    other = sent_delivery(session, "piet@gemeente-b.nl")
    token = app.signer.mailto_token(delivery.subscriber_id)
    # No VERP address anywhere (a provider that rewrites it), but the original's headers keep
    # our List-Unsubscribe, whose mailto names Anna.
    raw = sample("handmade_arf_complaint.eml").replace(
        b"Return-Path: <VERP_ADDRESS>",
        f"List-Unsubscribe: <https://gt.example.nl/u/x>,\r\n <mailto:afmelden+{token}"
        f"@bounces.gt.example.nl?subject=afmelden>".encode()).replace(
        b"Original-Mail-From: <VERP_ADDRESS>", b"Original-Mail-From: <bounces@gt.example.nl>")
    (bounce,) = ingest(session, app, raw).bounces
    assert (bounce.kind, bounce.matched_by, bounce.held) == ("complaint", "token", False)
    assert status_of(session) == "complained"
    assert status_of(session, other.email) == "active"


def test_our_verp_in_the_returned_original_is_a_token_too(session, app):
    delivery = sent_delivery(session)
    verp = verp_for(app.signer, delivery)
    # Sent to the plain bounce mailbox; only the returned headers carry the VERP address.
    raw = sample("handmade_hard_511.eml").replace(
        b"Delivered-To: VERP_ADDRESS", b"Delivered-To: bounces@bounces.gt.example.nl").replace(
        b"To: VERP_ADDRESS", b"To: bounces@bounces.gt.example.nl").replace(
        b"X-Postfix-Sender: rfc822; VERP_ADDRESS", b"X-Postfix-Sender: rfc822; x@y.nl").replace(
        b"VERP_ADDRESS", verp.encode())
    (bounce,) = ingest(session, app, raw).bounces
    assert (bounce.matched_by, bounce.delivery_id, bounce.held) == ("verp", delivery.id, False)
    assert status_of(session) == "bounced"
