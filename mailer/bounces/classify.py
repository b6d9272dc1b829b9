"""Turn what a report says about one recipient (action, RFC 3463 status, SMTP reply) into a kind.

Pure functions, no I/O. The rule of thumb (as GNU Mailman's): class 5 is permanent except a full
mailbox (X.2.2) or a full mail system (X.3.1), which RFC 3463 calls persistent-transient; class 4
is temporary; `Action: delayed` is a warning and not a bounce at all.
"""

from __future__ import annotations

import re

__all__ = ["classify", "status_from_text", "smtp_code_from_text", "kind_for_smtp_code"]

_STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_RE = re.compile(r"(?<!\d)([245]\d\d)(?:[ -]|$)")
# Subject.detail pairs that are full mailboxes, whatever the class says.
_FULL = {("2", "2"), ("3", "1")}


def status_from_text(text: str) -> str:
    """The first RFC 3463 enhanced status code (e.g. "5.1.1") in free text, or ""."""
    match = _STATUS_RE.search(text or "")
    return ".".join(match.groups()) if match else ""


def smtp_code_from_text(text: str) -> int | None:
    """The first SMTP reply code (e.g. 550) in free text, or None."""
    match = _SMTP_RE.search(text or "")
    return int(match.group(1)) if match else None


def kind_for_smtp_code(code: int) -> str:
    """hard for 5xx except 552 (exceeded storage: a full mailbox), soft for 4xx, else unknown."""
    if 500 <= code < 600:
        return "soft" if code == 552 else "hard"
    if 400 <= code < 500:
        return "soft"
    return "unknown"


def classify(action: str, status: str, diagnostic: str = "") -> str:
    """The kind (hard, soft, delayed, unknown) of one per-recipient report."""
    action = (action or "").strip().lower()
    if action == "delayed":
        return "delayed"
    if action in ("delivered", "relayed", "expanded"):
        return "unknown"  # a success notice: nothing failed, kept for review
    code = status.strip() or status_from_text(diagnostic)
    parts = code.split(".")
    if len(parts) == 3 and parts[0] in ("4", "5"):
        if parts[0] == "4" or (parts[1], parts[2]) in _FULL:
            return "soft"
        return "hard"
    smtp = smtp_code_from_text(diagnostic)
    if smtp is not None:
        return kind_for_smtp_code(smtp)
    return "unknown"
