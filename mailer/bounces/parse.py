"""Read one arrived message and say what it reports, per recipient; never raises.

Understood, in this order: RFC 5965 ARF complaints, RFC 3464 delivery status notifications
(every per-recipient block), auto-replies (RFC 3834 `Auto-Submitted`, `X-Autoreply`, vacation
subjects), the many non-standard formats of real MTAs through flufl.bounce, and mail to the
unsubscribe address. Whatever is left is `unknown`, kept for review. The message is read up to
MAX_BYTES; anything beyond is cut off (and flagged), never parsed or stored.
"""

from __future__ import annotations

import email
import email.message
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.utils import getaddresses, parseaddr
from typing import Any

from flufl.bounce import all_failures

from mailer.bounces.classify import classify, status_from_text
from subscribers.controls import strip_controls

__all__ = ["MAX_BYTES", "Finding", "Report", "parse_message", "fingerprint", "clean_text"]

#: The most of one message that is read, parsed and stored.
MAX_BYTES = 10 * 1024 * 1024
# flufl.bounce's heuristic detectors scan whole bodies with many patterns (seconds for 10 MB);
# a non-standard bounce says what failed near the top, so they see only this much.
_HEURISTIC_BYTES = 256 * 1024

# Headers each hop adds; left out of the fingerprint so the same bounce arriving by two paths
# (a pipe and the mailbox, say) is recognised as one.
_TRACE = {
    b"return-path", b"received", b"delivered-to", b"x-original-to", b"envelope-to",
    b"x-envelope-to", b"x-envelope-from", b"x-delivered-to", b"x-rcpt-to", b"x-mailfrom",
    b"x-peer", b"status", b"x-status", b"x-keywords", b"x-uid", b"content-length", b"lines",
    b"authentication-results", b"received-spf", b"x-received", b"x-original-authentication-results",
}
# Header families that receiving systems add (Exchange Online, spam and virus filters, ARC).
_TRACE_PREFIXES = (b"x-ms-", b"x-microsoft-", b"x-forefront-", b"x-spam", b"x-virus", b"arc-")
# Where a bounce keeps the address it was sent to, i.e. our VERP envelope sender.
_TARGET_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")
_VERP_SHAPE = re.compile(r"^[a-z0-9._-]+\+[0-9a-z]{1,13}-[a-z2-7]{16}$")
_VACATION_SUBJECT = re.compile(
    r"^\s*(auto(matic|matisch)?[ -]?(reply|response|antwoord|respons)|out of (the )?office|"
    r"afwezig|vacation|vakantie|away from|niet aanwezig|abwesen|autoreply)",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mdaemon)@", re.IGNORECASE)

log = logging.getLogger(__name__)
# flufl.bounce logs a traceback when one of its detectors chokes on odd input; we catch that
# failure ourselves (see _flufl_findings), so its log must not reach a terminal by default.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())


@dataclass
class Finding:
    """What the message says about one recipient."""

    kind: str  # hard, soft, complaint, unknown, delayed, autoreply, unsubscribe
    recipient: str = ""
    alternates: tuple[str, ...] = ()  # other addresses the report names for that recipient
    action: str = ""
    status: str = ""
    diagnostic: str = ""


@dataclass
class Report:
    """A parsed message: what it is, who it is about, and where a VERP token may be."""

    raw: bytes
    size: int
    truncated: bool
    fingerprint: str
    from_address: str = ""
    from_header: str = ""
    subject: str = ""
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    token_candidates: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problem: str = ""  # why parsing gave up, if it did


def clean_text(value: Any, limit: int = 2000) -> str:
    """Text safe for any database column and any terminal: no NULs or other controls (tab and
    line breaks stay), no lone surrogates, bounded length."""
    text = str(value or "")
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return strip_controls(text, multiline=True)[:limit].strip()


def fingerprint(raw: bytes) -> str:
    """A hash of the message without its trace headers (see _TRACE)."""
    data = raw.replace(b"\r\n", b"\n")
    head, sep, body = data.partition(b"\n\n")
    kept: list[bytes] = []
    keep = True
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        if line.startswith(b"From ") and not kept:
            keep = False  # an mbox From_ line
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep = name not in _TRACE and not name.startswith(_TRACE_PREFIXES)
        if keep:
            kept.append(line)
    digest = hashlib.sha256(b"\n".join(kept) + sep + body)
    return digest.hexdigest()


def _header(msg: email.message.Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return clean_text(make_header(decode_header(str(value))), 998)
    except Exception:
        return clean_text(value, 998)


def _addresses(values: Iterable[str]) -> list[str]:
    found = []
    for _name, addr in getaddresses([v for v in values if v]):
        addr = addr.strip().strip("<>").strip()
        if "@" in addr:
            found.append(addr)
    return found


def _field_address(value: str) -> str:
    """`rfc822; anna@example.nl` -> `anna@example.nl`."""
    value = clean_text(value, 400)
    if ";" in value:
        value = value.split(";", 1)[1]
    return value.strip().strip("<>").strip()


def _diagnostic(value: str) -> str:
    value = " ".join(clean_text(value, 2000).split())
    if ";" in value and value.split(";", 1)[0].strip().lower() in ("smtp", "x-postfix", "x-unix"):
        value = value.split(";", 1)[1].strip()
    return value


def _is_report(msg: email.message.Message, report_type: str) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "", header="content-type")).lower() == report_type
    )


def _parts(msg: email.message.Message, content_type: str) -> list[email.message.Message]:
    return [p for p in msg.walk() if p.get_content_type() == content_type]


def _blocks(part: email.message.Message) -> list[email.message.Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, email.message.Message)]
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(block.strip() + "\n")
            for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if block.strip()]


def _original_headers(msg: email.message.Message) -> email.message.Message | None:
    """The headers of the returned original message (message/rfc822 or text/rfc822-headers)."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(
                payload[0], email.message.Message
            ):
                return payload[0]
        if ctype == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return email.message_from_bytes(data)
    return None


def _dsn_findings(msg: email.message.Message) -> list[Finding]:
    findings = []
    for part in _parts(msg, "message/delivery-status"):
        for block in _blocks(part)[1:]:  # the first block is about the message, not a recipient
            final = _field_address(block.get("Final-Recipient", ""))
            original = _field_address(block.get("Original-Recipient", ""))
            if not (final or original):
                continue
            action = clean_text(block.get("Action", ""), 32).lower()
            status = status_from_text(clean_text(block.get("Status", ""), 100))
            diagnostic = _diagnostic(block.get("Diagnostic-Code", ""))
            recipient = original or final
            alternates = tuple(a for a in (final,) if a and a.lower() != recipient.lower())
            findings.append(Finding(
                kind=classify(action, status, diagnostic), recipient=recipient,
                alternates=alternates, action=action, status=status, diagnostic=diagnostic,
            ))
    return findings


def _arf_findings(msg: email.message.Message) -> tuple[list[Finding], list[str]]:
    """Complaints, and VERP candidates (Original-Mail-From) from an ARF report."""
    candidates: list[str] = []
    recipients: list[str] = []
    feedback_type = ""
    for part in _parts(msg, "message/feedback-report"):
        for block in _blocks(part):
            feedback_type = feedback_type or clean_text(block.get("Feedback-Type", ""), 32)
            recipients += _addresses(block.get_all("Original-Rcpt-To") or [])
            candidates += _addresses(block.get_all("Original-Mail-From") or [])
    original = _original_headers(msg)
    if original is not None:
        candidates += _addresses(original.get_all("Return-Path") or [])
        if not recipients:
            recipients = _addresses(original.get_all("To") or [])
    diagnostic = f"feedback report: {feedback_type or 'abuse'}"
    findings = [Finding(kind="complaint", recipient=r, diagnostic=diagnostic)
                for r in dict.fromkeys(recipients)]
    return findings or [Finding(kind="complaint", diagnostic=diagnostic)], candidates


def _is_autoreply(msg: email.message.Message, from_address: str, subject: str) -> bool:
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Vacation")):
        return True
    if _header(msg, "Precedence").lower() == "auto_reply":
        return True
    if _DAEMON.match(from_address) or not from_address:
        return False  # bounces come from the mail system, replies from people
    auto = _header(msg, "Auto-Submitted").lower()
    return bool((auto and not auto.startswith("no")) or _VACATION_SUBJECT.match(subject))


def _text_of(msg: email.message.Message, limit: int = 200_000) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                chunks.append(data[:limit].decode("utf-8", "replace"))
    return "\n".join(chunks)


def _flufl_findings(msg: email.message.Message) -> list[Finding]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a detector choking on odd input must not stop the intake
        log.info("flufl.bounce failed on a message: %s", exc)
        return []
    text = _text_of(msg)
    findings = []
    for kind, found in (("hard", permanent), ("delayed", temporary - permanent)):
        for item in sorted(found):
            address = clean_text(item.decode("utf-8", "replace") if isinstance(item, bytes)
                                 else item, 320).strip("<>")
            line = next((ln.strip() for ln in text.splitlines() if address.lower() in ln.lower()
                         and len(ln.strip()) > len(address)), "")
            status = status_from_text(line) or status_from_text(text)
            # flufl says "permanent"; a status code naming a full mailbox still makes it soft.
            real = classify("failed", status, line) if status and kind == "hard" else kind
            findings.append(Finding(kind=real if real != "unknown" else kind, recipient=address,
                                    action="failed" if kind == "hard" else "delayed",
                                    status=status, diagnostic=clean_text(line, 1000)))
    return findings


def _verp_like(addresses: Iterable[str]) -> list[str]:
    """Addresses shaped like our VERP senders (their signature is checked by the service)."""
    return [a for a in dict.fromkeys(addresses) if _VERP_SHAPE.match(a.rsplit("@", 1)[0].lower())]


def _target_addresses(msg: email.message.Message, envelope_to: Sequence[str]) -> list[str]:
    if envelope_to:
        return list(envelope_to)
    return _addresses(v for h in _TARGET_HEADERS for v in (msg.get_all(h) or []))


def parse_message(
    raw: bytes,
    *,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    unsubscribe_address: str = "",
    size: int | None = None,
) -> Report:
    """What the message reports. `raw` beyond MAX_BYTES is cut off; `size` is the full size if
    the caller read only part of it."""
    full_size = max(size or 0, len(raw))
    truncated = full_size > MAX_BYTES or full_size > len(raw)
    raw = raw[:MAX_BYTES]
    report = Report(raw=raw, size=full_size, truncated=truncated,
                    fingerprint=fingerprint(raw), envelope_from=clean_text(envelope_from, 998),
                    envelope_to=tuple(clean_text(a, 320) for a in envelope_to))
    try:
        _fill(report, unsubscribe_address)
    except Exception as exc:  # garbled beyond what the parser copes with: keep it for review
        log.info("unparseable message kept for review: %s", exc)
        report.problem = clean_text(f"unparseable: {type(exc).__name__}: {exc}", 500)
        report.findings = [Finding(kind="unknown", diagnostic=report.problem)]
    return report


def _fill(report: Report, unsubscribe_address: str) -> None:
    msg = email.message_from_bytes(report.raw)
    report.from_header = _header(msg, "From")
    report.from_address = parseaddr(report.from_header)[1].strip()
    report.subject = _header(msg, "Subject")
    targets = _target_addresses(msg, report.envelope_to)
    report.token_candidates = _verp_like(targets)

    if _is_report(msg, "feedback-report") or _parts(msg, "message/feedback-report"):
        findings, candidates = _arf_findings(msg)
        report.findings = findings
        report.token_candidates = _verp_like([*targets, *candidates])
        return
    findings = _dsn_findings(msg)
    if findings:
        report.findings = findings
        return
    if _is_autoreply(msg, report.from_address, report.subject):
        report.findings = [Finding(kind="autoreply", recipient=report.from_address,
                                   diagnostic=clean_text(report.subject, 500))]
        return
    # Checked before flufl's heuristics: a person's words must not read as a bounce.
    wanted = unsubscribe_address.strip().lower()
    if wanted and any(a.lower() == wanted for a in targets):
        report.findings = [Finding(kind="unsubscribe", recipient=report.from_address,
                                   diagnostic=clean_text(report.subject, 500))]
        return
    head = msg if len(report.raw) <= _HEURISTIC_BYTES else email.message_from_bytes(
        report.raw[:_HEURISTIC_BYTES])
    findings = _flufl_findings(head)
    if findings:
        report.findings = findings
        return
    why = "not a bounce, complaint or reply that could be understood"
    report.findings = [Finding(kind="unknown", diagnostic=why)]
