"""Does a raw message we keep mention a person? Used by erasure and access requests.

A person's address, name or phone number can sit anywhere in mail that reaches us: in a header
(perhaps RFC 2047-encoded), in a plain body, or inside a base64 or quoted-printable part (a
reply's HTML part, a forwarded message, a bounce's returned original). A byte search of the
raw text misses the encoded ones, so each message is searched twice: first the raw bytes (fast,
and enough for most), then, if the message has encoded content, every encoded header and every part
decoded with the email package, attached messages included.

What counts as a mention is deliberately loose (case and runs of white space do not matter; a
phone number matches with or without spaces, dots or dashes between its digits): erasure
removes the whole raw message on a mention, and a false match costs only a kept copy of junk.
"""

from __future__ import annotations

import email
import email.message
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header

__all__ = ["Needles", "mentions"]

# Signs that a message holds text a byte search cannot see.
_ENCODED = re.compile(rb"content-transfer-encoding:\s*(base64|quoted-printable)|=\?[^?]+\?[bq]\?",
                      re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_PHONE_SEPARATORS = r"[\s().\-/]*"


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).casefold()


@dataclass(frozen=True)
class Needles:
    """What identifies one person in text: address, name, phone numbers (may be empty)."""

    texts: tuple[str, ...]
    phones: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, address: str, names: Iterable[str] = (), phones: Iterable[str] = ()
           ) -> Needles:
        texts = [_fold(address.strip())] if address.strip() else []
        # A name of one short word ("Jan") would match half the mail we keep: only names of
        # two words or more, or long ones, count.
        texts += [_fold(n.strip()) for n in names
                  if len(n.strip()) >= 6 and (" " in n.strip() or len(n.strip()) >= 10)]
        patterns = []
        for phone in phones:
            digits = re.sub(r"\D", "", phone)
            if len(digits) >= 8:  # shorter is not a phone number worth matching on
                patterns.append(re.compile(
                    r"(?<!\d)" + _PHONE_SEPARATORS.join(digits) + r"(?!\d)"))
        return cls(tuple(dict.fromkeys(t for t in texts if t)), tuple(patterns))

    def __bool__(self) -> bool:
        return bool(self.texts or self.phones)

    def found_in(self, text: str) -> bool:
        folded = _fold(text)
        return any(t in folded for t in self.texts) or any(p.search(text) for p in self.phones)

    def found_in_raw(self, raw: bytes) -> bool:
        return self.found_in(raw.decode("utf-8", "replace"))


def _header_text(value: str) -> str:
    """An RFC 2047 header value decoded (the raw search saw it encoded)."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # a malformed encoded word: its raw form was searched
        return ""


def _decoded(raw: bytes) -> Iterator[str]:
    """Every encoded header value and every non-multipart part's content, decoded.

    Parsed with the compat32 policy: transfer encodings and charsets are decoded by the same
    `get_payload(decode=True)` as under policy.default, but without its header objects, which
    made the search ten times slower (an erasure reads every kept message). Headers are read
    raw, and only those with an RFC 2047 encoded word are decoded: plain ones were searched in
    the raw text already."""
    message = email.message_from_bytes(raw, policy=policy.compat32)
    for part in message.walk():
        for _name, value in part.raw_items():
            if "=?" in value:
                yield _header_text(value)
        if part.is_multipart():
            continue
        try:
            payload = part.get_payload(decode=True)
        except Exception:  # a part too garbled to decode: its raw form was searched
            continue
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            yield payload.decode(charset, "replace")
        except LookupError:  # an unknown charset name
            yield payload.decode("utf-8", "replace")


def mentions(raw: bytes | None, needles: Needles, extra: Sequence[str] = ()) -> bool:
    """Whether `raw` (or one of the `extra` stored texts beside it) mentions the person."""
    if not needles:
        return False
    if any(needles.found_in(text) for text in extra if text):
        return True
    if not raw:
        return False
    if needles.found_in_raw(raw):
        return True
    if not _ENCODED.search(raw):
        return False
    try:
        return any(needles.found_in(text) for text in _decoded(raw))
    except Exception:  # mail garbled beyond the parser: the raw search above is what we have
        return False
