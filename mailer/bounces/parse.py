"""Read one arrived message and say what it reports, per recipient; never raises.

Understood, in this order: RFC 5965 ARF complaints, challenge-response requests and
auto-replies (RFC 3834 `Auto-Submitted`, `X-Autoreply`, Dutch and English vacation subjects and
words; even when shaped as a DSN), RFC 3464 and RFC 6533 delivery status notifications (every
per-recipient block, whatever part type the sender gave them), mail to the unsubscribe address,
the many non-standard formats of real MTAs through flufl.bounce, and text-only notices. Every
failure gets a reason (see mailer.bounces.reasons). Whatever is left is `unknown`, kept for
review. The message is read up to MAX_BYTES; anything beyond is cut off (and flagged), never
parsed or stored.
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

from mailer.bounces import reasons
from mailer.bounces.classify import smtp_code_from_text, status_from_text
from mailer.kernel.tokens import MAILTO_TOKEN, VERP_TOKEN
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
_VERP_SHAPE = re.compile(rf"^[a-z0-9._-]+\+{VERP_TOKEN}$")
_VACATION_SUBJECT = re.compile(
    r"^\s*(auto(matic|matisch)?[ -]?(reply|response|antwoord|respons)|out of (the )?office|"
    r"afwezig|vacation|vakantie|away from|niet aanwezig|abwesen|autoreply|absence|"
    r"automatische? (reply|antwoord|antwort)|auto:|i am away|i'm away|ik ben (afwezig|er niet)|"
    r"r[ée]ponse automatique|respuesta autom[aá]tica|risposta automatica|"
    r"resposta autom[aá]tica|autosvar|automatisk svar|fuera de la oficina|absent du bureau|"
    r"ooo\b|on leave|on holiday|holiday|urlaub|congé)",
    re.IGNORECASE,
)
# The same words anywhere in the subject ("Re: Nieuwsbrief (Out of Office)"): for mail that is
# not shaped as a DSN only, since a DSN's subject may quote our newsletter's.
_VACATION_ANYWHERE = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]response|"
    r"automatisch antwoord|afwezig|abwesenheit|r[ée]ponse automatique|respuesta autom[aá]tica|"
    r"risposta automatica|vacation reply|away from (the )?office",
    re.IGNORECASE,
)
_DAEMON = re.compile(
    r"^(mailer-daemon|postmaster|mail-daemon|mdaemon|microsoftexchange[0-9a-f]*|"
    r"mail\.delivery\.system|maildelivery|mail-delivery|bounce[sd]?|nobody|root)@",
    re.IGNORECASE)

log = logging.getLogger(__name__)
# flufl.bounce logs a traceback when one of its detectors chokes on odd input; we catch that
# failure ourselves (see _flufl_findings), so its log must not reach a terminal by default.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())


@dataclass
class Finding:
    """What the message says about one recipient."""

    kind: str  # see mailer.bounces.models.KINDS
    recipient: str = ""
    alternates: tuple[str, ...] = ()  # other addresses the report names for that recipient
    action: str = ""
    status: str = ""
    diagnostic: str = ""
    reason: str = ""  # see mailer.bounces.reasons.REASONS


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
    # Our signed List-Unsubscribe mailto local parts, addressed or in the returned original.
    unsubscribe_candidates: list[str] = field(default_factory=list)
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


_FIELD_ADDRESS = re.compile(r"""<?['"]?([^\s<>'"(),;]+@[^\s<>'"(),;]+?)['"]?>?\.?(?:\s|$)""")


def _char(code: str) -> str:
    number = int(code, 16)
    return chr(number) if 0 < number < 0x110000 else ""


def _field_address(value: str) -> str:
    """`rfc822; anna@example.nl` -> `anna@example.nl`."""
    value = " ".join(clean_text(value, 400).split())
    if ";" in value:
        value = value.split(";", 1)[1]
    # RFC 6533 utf-8-addr-xtext: \x{EB} for a character outside ASCII.
    value = re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: _char(m.group(1)), value).strip()
    # "anna@example.nl (Anna)", "<anna@example.nl>", "'anna@example.nl'": the addr-spec only.
    found = _FIELD_ADDRESS.search(value)
    return found.group(1) if found else value.strip("<>").strip()


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


def _is_status_part(part: email.message.Message) -> bool:
    """RFC 3464's message/delivery-status, RFC 6533's message/global-delivery-status, and the
    types some MTAs use instead (text/delivery-status, message/x-delivery-status, ...)."""
    ctype = part.get_content_type()
    return ctype.endswith("delivery-status") and part.get_content_maintype() in ("message", "text")


def _part_text(part: email.message.Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # parsed as message/*: put the blocks back together
        return "\n\n".join(p.as_bytes().decode("utf-8", "replace") for p in payload
                             if isinstance(p, email.message.Message))
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return payload if isinstance(payload, str) else ""


def _blocks(part: email.message.Message) -> list[email.message.Message]:
    """The field blocks of a delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if part.get_content_type() in ("message/delivery-status", "message/feedback-report") and \
            isinstance(payload, list):
        return [p for p in payload if isinstance(p, email.message.Message)]
    text = _part_text(part)
    return [email.message_from_string(block.strip() + "\n")
            for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if block.strip()]


def _original(msg: email.message.Message) -> email.message.Message | None:
    """The returned original message (message/rfc822, text/rfc822-headers, message/global)."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global", "message/global-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(
                payload[0], email.message.Message
            ):
                return payload[0]
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return email.message_from_bytes(data)
        if ctype == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                return email.message_from_bytes(data)
    return None


def _original_headers(msg: email.message.Message) -> email.message.Message | None:
    return _original(msg)


def _human_text(msg: email.message.Message, limit: int = 20_000) -> str:
    """The notice's own words: text parts outside the returned original, which (being our
    newsletter) may say anything."""
    chunks: list[str] = []

    def visit(part: email.message.Message) -> None:
        ctype = part.get_content_type()
        if part.get_content_maintype() == "message" or _is_status_part(part) or \
                ctype == "text/rfc822-headers":
            return
        if part.is_multipart():
            for sub in part.get_payload() or []:
                if isinstance(sub, email.message.Message):
                    visit(sub)
            return
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                text = data[:limit].decode(part.get_content_charset() or "utf-8", "replace") \
                    if _known_charset(part.get_content_charset()) else \
                    data[:limit].decode("utf-8", "replace")
                if ctype == "text/html":
                    text = re.sub(r"<[^>]{0,2000}>", " ", text)
                chunks.append(text)

    visit(msg)
    text = "\n".join(chunks)[:limit]
    cut = _COPY_MARKER.search(text)  # an original quoted inline, not the notice's own words
    return text[:cut.start()] if cut and cut.start() > 0 else text


def _known_charset(name: str | None) -> bool:
    if not name:
        return False
    try:
        "".encode(name)
    except LookupError:
        return False
    return True


def _near(text: str, address: str, lines: int = 4) -> str:
    """The lines of `text` from the one naming `address`, where notices explain its failure."""
    if not address:
        return ""
    found = text.lower().split("\n")
    for index, line in enumerate(found):
        if address.lower() in line:
            return "\n".join(text.split("\n")[index:index + lines])
    return ""


def _single_address(values: Iterable[str]) -> str:
    found = list(dict.fromkeys(a.lower() for a in _addresses(values)))
    return found[0] if len(found) == 1 else ""


def _failure(action: str, status: str, diagnostic: str, context: str = "",
             rest: str = "") -> tuple[str, str]:
    """(kind, reason) for one per-recipient failure: its diagnostic, the words next to it, the
    rest of the notice, in that order of weight."""
    reason = reasons.reason_for(status, smtp_code_from_text(diagnostic or context), diagnostic,
                                action, context=context, rest=rest)
    if action == "delayed" and reason in (reasons.EXPIRED,):
        reason = reasons.SYSTEM
    return reasons.kind_for_reason(reason, action, status), reason


def _dsn_findings(msg: email.message.Message, human: str,
                  original: email.message.Message | None) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[tuple[str, str, str, str]] = set()
    to_original = _single_address(original.get_all("To") or []) if original is not None else ""
    for part in msg.walk():
        if not _is_status_part(part):
            continue
        for block in _blocks(part)[1:]:  # the first block is about the message, not a recipient
            final = _field_address(block.get("Final-Recipient", ""))
            original_rcpt = _field_address(block.get("Original-Recipient", ""))
            if not (final or original_rcpt):
                continue
            action = clean_text(block.get("Action", ""), 32).lower()
            status = status_from_text(clean_text(block.get("Status", ""), 100))
            diagnostic = _diagnostic(block.get("Diagnostic-Code", ""))
            recipient = original_rcpt if "@" in original_rcpt else final
            if "@" not in recipient:
                # Only a display name (Exchange does this): the returned message's To says who.
                recipient = to_original
            alternates = tuple(a for a in (final, original_rcpt)
                               if "@" in a and a.lower() != recipient.lower())
            key = (recipient.lower(), action, status, diagnostic)
            if key in seen:
                continue  # identical per-recipient blocks (some MTAs repeat them): one record
            seen.add(key)
            kind, reason = _failure(action, status, diagnostic, _near(human, recipient),
                                    human[:4000] if not findings else "")
            findings.append(Finding(
                kind=kind, recipient=recipient, alternates=alternates, action=action,
                status=status, diagnostic=diagnostic, reason=reason,
            ))
    # A human text that names one reason for a multi-block report is not known to apply to each.
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
    findings = [Finding(kind="complaint", recipient=r, diagnostic=diagnostic,
                        reason=reasons.COMPLAINT)
                for r in dict.fromkeys(recipients)]
    return findings or [Finding(kind="complaint", diagnostic=diagnostic,
                                reason=reasons.COMPLAINT)], candidates


_CHALLENGE_HEADERS = ("X-Boxbe-Challenge", "X-ChoiceMail-Registration-Request",
                      "X-Spam-Arrest-Challenge", "X-Challenge", "X-Mailblocks",
                      "X-Sender-Verification")


def _is_challenge(msg: email.message.Message, subject: str, human: str) -> bool:
    if any(msg.get(h) for h in _CHALLENGE_HEADERS) or any(
            k.lower().startswith("x-boxbe") for k in msg):
        return True
    return reasons.is_challenge_text(subject) or reasons.is_challenge_text(human[:4000])


def _is_autoreply(msg: email.message.Message, from_address: str, subject: str,
                  human: str = "", dsn: bool = False) -> bool:
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Vacation", "X-Autoresponse")):
        return True
    if _header(msg, "Precedence").lower() == "auto_reply":
        return True
    if _VACATION_SUBJECT.match(subject):
        return True
    if _DAEMON.match(from_address) or not from_address or dsn:
        return False  # bounces come from the mail system, replies from people
    if _FAILURE_SUBJECT.search(subject):
        return False  # a text-only failure notice (they carry Auto-Submitted too)
    if _VACATION_ANYWHERE.search(subject) or _header(msg, "X-Auto-Response-Suppress"):
        return True
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    return reasons.is_autoreply_text(human[:2000])


_FAILURE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status|failure|has failed|notification|problem)|"
    r"returned mail|mail delivery|failure notice|non[- ]?delivery|not delivered|"
    r"could not be delivered|delivery failed|niet bezorgd|onbestelbaar|kan niet worden bezorgd|"
    r"bezorging mislukt|onbezorgbaar|rejected|bounce|warning: could not|returned|"
    r"nondeliverable|non-deliverable|delivery (report|error|notice|notification)|"
    r"mail (system )?error|error sending|permanent (delivery )?(failure|error)|"
    r"could not deliver|unable to deliver|failed delivery|postmaster notif|delayed mail|"
    r"unzustellbar|nicht zugestellt|non remis|no entregado|non recapitato|"
    r"配信|エラー|不能|退信|未送达|失败|投递",
    re.IGNORECASE,
)
# A notice that only warns: the sender is still trying.
_WARNING = re.compile(
    r"warning message only|do not need to resend|not need to re-?send|will (continue to )?(be )?"
    r"retr(y|ied)|still (being )?retr|delivery attempts will continue|has been delayed|"
    r"delayed mail|has not yet been delivered|no action is required|will keep trying|"
    r"nog niet (kunnen worden )?bezorgd|wordt opnieuw geprobeerd",
    re.IGNORECASE,
)


def _text_of(msg: email.message.Message, limit: int = 200_000) -> str:
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                chunks.append(data[:limit].decode("utf-8", "replace"))
    return "\n".join(chunks)


def _flufl_findings(msg: email.message.Message, human: str) -> list[Finding]:
    try:
        temporary, permanent = all_failures(msg)
    except Exception as exc:  # a detector choking on odd input must not stop the intake
        log.info("flufl.bounce failed on a message: %s", exc)
        return []
    text = human or _text_of(msg)
    findings = []
    for action, found in (("failed", permanent), ("delayed", temporary - permanent)):
        for item in sorted(found):
            address = clean_text(item.decode("utf-8", "replace") if isinstance(item, bytes)
                                 else item, 320).strip("<>")
            if "@" not in address:
                continue
            context = _near(text, address, 6)
            status = status_from_text(context) or status_from_text(text)
            line = next((ln.strip() for ln in context.splitlines()
                         if len(ln.strip()) > len(address) + 3), "")
            kind, reason = _failure(action, status, line, context, text[:4000])
            findings.append(Finding(kind=kind, recipient=address, action=action, status=status,
                                    diagnostic=clean_text(line or context, 1000), reason=reason))
    return findings


_TEXT_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+'=-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})>?")


# Where a text-only notice starts quoting the returned message (whose addresses are not failures).
_COPY_MARKER = re.compile(
    r"^\W*(this is a copy of the message|the header of the original message|original message "
    r"(follows|headers)|below this line is a copy|-+ ?original message ?-+|returned message|"
    r"undelivered message (headers|follows)|the original message (follows|is attached|headers)|"
    r"headers of the original)|^return-path:|^received:",
    re.IGNORECASE | re.MULTILINE,
)
_FAILED_WORDS = re.compile(
    r"could not be delivered|couldn'?t be delivered|not delivered|undeliverable|permanent error|"
    r"failed|failure|wasn'?t able to deliver|unable to deliver|aborted|niet (worden )?bezorgd|"
    r"onbestelbaar|mislukt", re.IGNORECASE)


def _text_findings(msg: email.message.Message, human: str, from_address: str,
                   subject: str, skip: Iterable[str]) -> list[Finding]:
    # Exim (and others) name the failed addresses in a header: those, and only those.
    named = _addresses(msg.get_all("X-Failed-Recipients") or [])
    """A notice with no DSN part that flufl.bounce did not read: the addresses its own words
    name (before it quotes the returned message) in a failure notice. A failure subject or a
    mail-system sender is needed, so a person's letter never counts."""
    if not (_FAILURE_SUBJECT.search(subject) or _DAEMON.match(from_address) or named):
        return []
    cut = _COPY_MARKER.search(human)
    notice = human[:cut.start()] if cut else human
    if not named and not any(p.search(t) for p in (_FAILED_WORDS, _WARNING)
                             for t in (notice, subject)):
        return []
    ignore = {a.lower() for a in skip} | {from_address.lower()}
    action = "delayed" if _WARNING.search(notice) or _WARNING.search(subject) else "failed"
    findings: list[Finding] = []
    candidates = named or [m.group(1) for m in _TEXT_ADDRESS.finditer(notice)]
    for address in dict.fromkeys(candidates):
        if address.lower() in ignore or _DAEMON.match(address) or \
                _VERP_SHAPE.match(address.rsplit("@", 1)[0].lower()):
            continue
        context = _near(notice, address, 4)
        status = status_from_text(context)
        kind, reason = _failure(action, status, "", context, notice[:4000])
        findings.append(Finding(kind=kind, recipient=address, action=action, status=status,
                                diagnostic=clean_text(context, 1000), reason=reason))
    return findings[:20]


def _verp_like(addresses: Iterable[str]) -> list[str]:
    """Addresses shaped like our VERP senders (their signature is checked by the service)."""
    return [a for a in dict.fromkeys(addresses) if _VERP_SHAPE.match(a.rsplit("@", 1)[0].lower())]


def _target_addresses(msg: email.message.Message, envelope_to: Sequence[str]) -> list[str]:
    if envelope_to:
        return list(envelope_to)
    return _addresses(v for h in _TARGET_HEADERS for v in (msg.get_all(h) or []))


def _mailto_tokens(values: Iterable[str], unsubscribe_address: str) -> list[str]:
    """Local parts `afmelden+<token>` of our unsubscribe address among `values`."""
    local, _, domain = unsubscribe_address.strip().lower().rpartition("@")
    if not local:
        return []
    pattern = re.compile(rf"(?<![\w.+-]){re.escape(local)}\+({MAILTO_TOKEN})@"
                         rf"{re.escape(domain)}", re.IGNORECASE)
    return list(dict.fromkeys(m.group(1).lower() for v in values for m in pattern.finditer(v)))


def parse_message(
    raw: bytes,
    *,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    unsubscribe_address: str = "",
    reply_prefix: str = "",
    size: int | None = None,
) -> Report:
    """What the message reports. `raw` beyond MAX_BYTES is cut off; `size` is the full size if
    the caller read only part of it. `reply_prefix` (events.reply_prefix): the ORGANIZER
    addresses of invitations, whose sealed tokens look like VERP tokens but are not."""
    full_size = max(size or 0, len(raw))
    truncated = full_size > MAX_BYTES or full_size > len(raw)
    raw = raw[:MAX_BYTES]
    report = Report(raw=raw, size=full_size, truncated=truncated,
                    fingerprint=fingerprint(raw), envelope_from=clean_text(envelope_from, 998),
                    envelope_to=tuple(clean_text(a, 320) for a in envelope_to))
    try:
        _fill(report, unsubscribe_address, reply_prefix)
    except Exception as exc:  # garbled beyond what the parser copes with: keep it for review
        log.info("unparseable message kept for review: %s", exc)
        report.problem = clean_text(f"unparseable: {type(exc).__name__}: {exc}", 500)
        report.findings = [Finding(kind="unknown", diagnostic=report.problem,
                                   reason=reasons.UNKNOWN)]
    return report


def _fill(report: Report, unsubscribe_address: str, reply_prefix: str = "") -> None:
    msg = email.message_from_bytes(report.raw)
    report.from_header = _header(msg, "From")
    report.from_address = parseaddr(report.from_header)[1].strip()
    report.subject = _header(msg, "Subject")
    targets = _target_addresses(msg, report.envelope_to)
    original = _original(msg)
    # Our tokens: the VERP address it was sent to, or one in the returned original's headers.
    returned = ([v for h in ("Return-Path", "Sender", "Errors-To")
                 for v in (original.get_all(h) or [])] if original is not None else [])
    report.token_candidates = _verp_like([*targets, *_addresses(returned)])
    unsubscribe_local = unsubscribe_address.strip().lower().rpartition("@")[0]
    # afmelden+<token> (our mailto token) and rsvp+<token> (an invitation's ORGANIZER: a
    # person's mail to it, say) are not VERP addresses.
    others = tuple(f"{local}+" for local in (unsubscribe_local, reply_prefix.strip().lower())
                   if local and local != "bounces")
    report.token_candidates = [a for a in report.token_candidates
                               if not a.lower().startswith(others)]
    report.unsubscribe_candidates = _mailto_tokens(
        [*targets, *(original.get_all("List-Unsubscribe") or [] if original is not None else [])],
        unsubscribe_address)
    human = _human_text(msg)

    if _is_report(msg, "feedback-report") or _parts(msg, "message/feedback-report"):
        findings, candidates = _arf_findings(msg)
        report.findings = findings
        report.token_candidates = [a for a in _verp_like([*targets, *_addresses(returned),
                                                          *candidates])
                                   if not a.lower().startswith(others)]
        return
    dsn_shaped = any(_is_status_part(p) for p in msg.walk())
    if _is_challenge(msg, report.subject, human):
        report.findings = [Finding(kind="challenge", recipient=report.from_address,
                                   diagnostic=clean_text(report.subject, 500),
                                   reason=reasons.CHALLENGE)]
        return
    if _is_autoreply(msg, report.from_address, report.subject, human, dsn=dsn_shaped):
        report.findings = [Finding(kind="autoreply", recipient=report.from_address,
                                   diagnostic=clean_text(report.subject, 500),
                                   reason=reasons.AUTOREPLY)]
        return
    findings = [f for f in _dsn_findings(msg, human, original) if "@" in f.recipient
                or report.token_candidates]
    if findings:
        report.findings = findings
        return
    # Checked before flufl's heuristics: a person's words must not read as a bounce.
    wanted = unsubscribe_address.strip().lower()
    local, _, domain = wanted.rpartition("@")
    if wanted and any(a.lower() == wanted or (a.lower().startswith(local + "+")
                                              and a.lower().endswith("@" + domain))
                      for a in targets):
        report.findings = [Finding(kind="unsubscribe", recipient=report.from_address,
                                   diagnostic=clean_text(report.subject, 500))]
        return
    head = msg if len(report.raw) <= _HEURISTIC_BYTES else email.message_from_bytes(
        report.raw[:_HEURISTIC_BYTES])
    findings = _flufl_findings(head, human)
    if not findings:
        findings = _text_findings(msg, human, report.from_address, report.subject, targets)
    if findings:
        report.findings = _fold(findings)
        return
    why = "not a bounce, complaint or reply that could be understood"
    report.findings = [Finding(kind="unknown", diagnostic=why, reason=reasons.UNKNOWN)]


def _fold(findings: list[Finding]) -> list[Finding]:
    """One finding per recipient (the first; a permanent failure before a warning)."""
    by_recipient: dict[str, Finding] = {}
    for finding in findings:
        key = finding.recipient.lower()
        if key not in by_recipient or (by_recipient[key].action == "delayed"
                                       and finding.action == "failed"):
            by_recipient[key] = finding
    return list(by_recipient.values())
