"""Reasons, formats and non-bounces, on the labelled corpus in tests/data/bounces (pure parsing,
no database); the same corpus bench/bounce_corpus.py measures."""

from __future__ import annotations

import csv

import pytest
from bounces_support import DATA, dsn

from mailer.bounces import reasons
from mailer.bounces.brake import BrakeRule, decide, domain_of
from mailer.bounces.parse import parse_message

LABELS = list(csv.DictReader((DATA / "labels.csv").open(newline="", encoding="utf-8")))
UNSUBSCRIBE = "afmelden@bounces.gt.example.nl"
VERP = "bounces+1x-aaaaaaaaaaaaaaaa@bounces.gt.example.nl"


def parse(raw: bytes):
    return parse_message(raw, unsubscribe_address=UNSUBSCRIBE)


@pytest.mark.parametrize("row", [r for r in LABELS if r["reason"]], ids=lambda r: r["file"])
def test_labelled_reason_and_severity(row):
    report = parse((DATA / row["file"]).read_bytes())
    first = report.findings[0]
    assert first.reason == row["reason"]
    severity = first.kind if first.kind in ("hard", "soft") else "none"
    assert severity == row["severity"]
    found = {f.recipient.lower() for f in report.findings}
    assert {r.lower() for r in row["recipients"].split()} <= found


def test_every_labelled_recipient_of_the_flufl_messages_is_found():
    rows = [r for r in LABELS if r["file"].startswith("flufl/")]
    missing = []
    for row in rows:
        found = {f.recipient.lower() for f in parse((DATA / row["file"]).read_bytes()).findings}
        missing += [r for r in row["recipients"].lower().split() if r not in found]
    assert missing == []


@pytest.mark.parametrize(("text", "status", "reason"), [
    ("550 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     "5.7.1", "blocked"),
    ("550 5.7.1 Recipient address rejected: user unknown", "5.7.1", "user-unknown"),
    ("554 5.0.0 message size exceeds fixed limit", "5.0.0", "too-large"),
    ("550 5.0.0 Message rejected as spam by Content Filtering", "5.0.0", "content-rejected"),
    ("550 5.7.26 Unauthenticated email from gt.example.nl is not accepted due to domain's DMARC "
     "policy", "5.7.26", "policy"),
    ("450 4.7.0 Too many connections, slow down", "4.7.0", "rate-limited"),
    ("550 5.0.0 <x@y.nl>: het e-mailadres bestaat niet", "5.0.0", "user-unknown"),
    ("552 5.2.2 postvak is vol", "5.2.2", "mailbox-full"),
    ("550 5.0.0 bericht geweigerd: IP-adres staat op een zwarte lijst", "5.0.0", "blocked"),
    ("550 5.0.0", "5.0.0", "unknown"),
    ("", "5.1.2", "host-unknown"),
])
def test_phrases_override_generic_codes(text, status, reason):
    assert reasons.reason_for(status, None, text, "failed") == reason


def test_only_address_level_reasons_are_hard():
    assert {r for r in reasons.REASONS if reasons.severity(r, "5.0.0") == "hard"} == {
        "user-unknown", "host-unknown", "mailbox-disabled"}
    for reason in reasons.MESSAGE_LEVEL:
        assert reasons.kind_for_reason(reason, "failed", "5.7.1") == "refused"


def test_a_temporary_failure_given_up_on_is_expired():
    assert reasons.reason_for("4.4.1", None, "connect to mx: Connection timed out",
                              "failed") == "expired"
    assert reasons.reason_for("4.4.1", None, "connect to mx: Connection timed out",
                              "delayed") == "system"


def test_global_dsn_and_non_standard_part_types():
    raw = dsn(VERP, "zoë@voorbeeld.nl", "5.1.1", "550 5.1.1 user unknown")
    for part_type in (b"message/global-delivery-status", b"text/delivery-status",
                      b"message/x-delivery-status"):
        (finding,) = parse(raw.replace(b"message/delivery-status", part_type)).findings
        assert (finding.recipient, finding.kind) == ("zoë@voorbeeld.nl", "hard")


def test_recipient_fields_in_their_odd_shapes():
    from mailer.bounces.parse import _field_address

    assert _field_address("RFC822; <anna@example.nl> (Anna)") == "anna@example.nl"
    assert _field_address("utf-8; zo\\x{EB}@voorbeeld.nl") == "zoë@voorbeeld.nl"
    assert _field_address("rfc822; Anna Jansen") == "Anna Jansen"


def test_identical_blocks_fold_and_domainless_recipients_recover_or_drop():
    raw = dsn(VERP, "anna@voorbeeld.nl", "5.1.1", "550 5.1.1 user unknown")
    block = raw.split(b"Final-Recipient", 1)[1].split(b"\r\n\r\n", 1)[0]
    tripled = raw.replace(b"Final-Recipient" + block,
                          b"\r\n\r\n".join([b"Final-Recipient" + block] * 3))
    assert len(parse(tripled).findings) == 1
    # Only a display name: the returned message's To says who it was.
    named = raw.replace(b"Final-Recipient: rfc822; anna@voorbeeld.nl",
                        b"Final-Recipient: rfc822; Anna de Vries")
    (finding,) = parse(named).findings
    assert finding.recipient == "anna@voorbeeld.nl"
    # Neither an address nor a returned To nor a token: no record about "Anna de Vries".
    lost = named.replace(b"To: anna@voorbeeld.nl", b"To: undisclosed-recipients:;").replace(
        VERP.encode(), b"bounces@bounces.gt.example.nl")
    assert all("@" in f.recipient or f.kind == "unknown" for f in parse(lost).findings)


def test_auto_replies_and_challenges_never_count_even_shaped_as_a_dsn():
    raw = dsn(VERP, "lisa@example.org", "5.1.1", "550 5.1.1 user unknown")
    ooo = raw.replace(b"Subject: Undelivered Mail Returned to Sender",
                      b"Subject: Afwezig: GT Nieuwsbrief")
    assert [f.kind for f in parse(ooo).findings] == ["autoreply"]
    challenge = raw.replace(b"Your message could not be delivered",
                            b"Please confirm that you are a person: click the link below to "
                            b"verify you are human. Your message could not be delivered")
    assert [f.kind for f in parse(challenge).findings] == ["challenge"]
    for name in ("handmade_out_of_office.eml", "vendor/ooo_dutch.eml",
                 "vendor/challenge_boxbe.eml"):
        assert parse((DATA / name).read_bytes()).findings[0].kind in ("autoreply", "challenge")


def test_the_brake_decides_on_message_level_reasons_at_one_domain():
    rule = BrakeRule(recipients=20, share=0.05)
    assert decide(rule, {("gmail.com", "blocked"): 20}, {"gmail.com": 400})[0].domain == "gmail.com"
    assert decide(rule, {("gmail.com", "blocked"): 19}, {"gmail.com": 19}) == []
    assert decide(rule, {("gmail.com", "blocked"): 20}, {"gmail.com": 1000}) == []  # 2 %
    assert decide(rule, {("gmail.com", "user-unknown"): 500}, {"gmail.com": 500}) == []
    assert decide(rule, {("gmail.com", "blocked"): 30}, {}, {"gmail.com"}) == []
    assert domain_of("Anna@Voorbeeld.NL.") == "voorbeeld.nl" and domain_of("anna") == ""
