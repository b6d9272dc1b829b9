"""Parsing and classification without a database: status codes, report formats, robustness."""

from __future__ import annotations

import datetime as dt

import pytest
from bounces_support import sample

from mailer.bounces.classify import classify, kind_for_smtp_code
from mailer.bounces.parse import MAX_BYTES, fingerprint, parse_message
from mailer.bounces.policy import Policy, next_soft_score

VERP = "bounces+1-h774mtpvuuk2tadu@bounces.gt.example.nl"


@pytest.mark.parametrize(("action", "status", "diagnostic", "kind"), [
    ("failed", "5.1.1", "", "hard"),
    ("failed", "5.1.2", "", "hard"),  # unknown domain
    ("failed", "5.7.1", "rejected by policy", "hard"),
    ("failed", "5.2.2", "mailbox full", "soft"),  # persistent-transient per RFC 3463
    ("failed", "4.2.2", "", "soft"),
    ("failed", "4.7.1", "greylisted", "soft"),
    ("delayed", "4.4.1", "", "delayed"),
    ("delayed", "5.0.0", "", "delayed"),
    ("delivered", "2.0.0", "", "unknown"),
    ("failed", "", "550 5.1.1 user unknown", "hard"),
    ("failed", "", "552 message exceeds quota", "soft"),
    ("failed", "", "no code at all", "unknown"),
])
def test_classify(action, status, diagnostic, kind):
    assert classify(action, status, diagnostic) == kind


def test_send_time_codes():
    assert [kind_for_smtp_code(c) for c in (550, 552, 554, 421, 452, 250)] == [
        "hard", "soft", "hard", "soft", "soft", "unknown"]


def test_soft_score_rules():
    policy = Policy(soft_threshold=3, stale_days=7)
    day = dt.date(2026, 11, 1)
    first = next_soft_score(policy, 0, None, day)
    assert (first.score, first.counted) == (1, True)
    again = next_soft_score(policy, 1, day, day)
    assert (again.score, again.counted) == (1, False)
    assert next_soft_score(policy, 2, day, day + dt.timedelta(days=1)).reached
    assert next_soft_score(policy, 2, day, day + dt.timedelta(days=8)).score == 1


def test_multi_recipient_dsn_reports_every_block():
    raw = sample("handmade_hard_511.eml", VERP).replace(
        b"Action: failed\nStatus: 5.1.1",
        b"Action: failed\nStatus: 5.1.1\n\nFinal-Recipient: rfc822; bert@gemeente-b.nl\n"
        b"Action: failed\nStatus: 4.2.2\nDiagnostic-Code: smtp; 452 4.2.2 over quota",
    )
    report = parse_message(raw)
    assert [(f.recipient, f.kind, f.status) for f in report.findings] == [
        ("anna.devries@gemeente-a.nl", "hard", "5.1.1"), ("bert@gemeente-b.nl", "soft", "4.2.2")]
    assert report.token_candidates == [VERP]


def test_exchange_style_auto_reply_and_a_person_are_told_apart():
    ooo = (b"From: Bert <bert@gemeente-b.nl>\r\nTo: " + VERP.encode() + b"\r\n"
           b"Subject: Automatic reply: GT Nieuwsbrief\r\nAuto-Submitted: auto-generated\r\n\r\n"
           b"I am away.\r\n")
    assert [f.kind for f in parse_message(ooo).findings] == ["autoreply"]
    person = (b"From: Bert <bert@gemeente-b.nl>\r\nTo: " + VERP.encode() + b"\r\n"
              b"Subject: Re: GT Nieuwsbrief\r\n\r\nDank je wel!\r\n")
    assert [f.kind for f in parse_message(person).findings] == ["unknown"]


def test_fingerprint_ignores_trace_headers_only():
    raw = sample("handmade_delayed.eml", VERP)
    traced = (b"Return-Path: <>\nReceived: from a\n\tby b\nX-MS-Exchange-Organization-SCL: 1\n"
              b"Authentication-Results: spf=none\nARC-Seal: i=1; a=rsa-sha256\n" + raw)
    assert fingerprint(raw) == fingerprint(traced)
    assert fingerprint(raw) != fingerprint(raw + b"x")


@pytest.mark.parametrize("raw", [
    b"", b"\x00" * 1000, b"Subject: x", bytes(range(256)) * 10,
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
    b"Content-Type: message/delivery-status\n\n\x00\xff\n--b--",
    b"Content-Type: multipart/mixed; boundary=\"" + b"x" * 5000 + b"\"\n\n" + b"--x" * 10000,
])
def test_garbage_never_raises(raw):
    report = parse_message(raw)
    assert report.findings and all(f.kind in ("unknown", "autoreply") for f in report.findings)


def test_huge_message_is_cut_at_the_cap():
    raw = b"Subject: big\n\n" + b"A" * (MAX_BYTES + 10)
    report = parse_message(raw)
    assert report.truncated and len(report.raw) == MAX_BYTES and report.size == len(raw)
    report = parse_message(b"Subject: big\n\nAAA", size=MAX_BYTES * 3)
    assert report.truncated and report.size == MAX_BYTES * 3
