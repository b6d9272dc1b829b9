"""Header values made safe and encoded: no CR/LF ever reaches a header, non-ASCII is RFC 2047.

These run per recipient (the To header, a personalised subject), so they are small string
functions rather than the stdlib's header objects, which cost ~50 µs a call. The tests parse the
results back with the stdlib parser (policy=default) to check them.
"""

from __future__ import annotations

import base64
import re

from mailer.errors import TemplateError

__all__ = [
    "clean",
    "encode_unstructured",
    "header_line",
    "check_address",
    "display_name",
    "format_address",
    "unsubscribe_mailto",
]

# C0 controls (CR and LF among them), DEL and C1 controls: none may reach a header or a body
# value, so a name like "x\r\nBcc: y" stays one line of text.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]+")
_TAB = re.compile(r"\t")
# Characters that force a display name into a quoted-string (RFC 5322 "specials").
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# Bytes of UTF-8 per encoded word: 42 bytes → 56 base64 chars + 12 overhead = 68 (limit 75),
# so "Subject: " and one word fit the 78-character line.
_WORD_BYTES = 42
_FOLD_AT = 76


def clean(value: object) -> str:
    """The value as one line of text: control characters (CR, LF, NUL, ...) become spaces."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text
    return _TAB.sub(" ", _CONTROL.sub(" ", text))


def _encoded_words(text: str) -> list[str]:
    """RFC 2047 B-encoded words of at most 75 characters, never splitting a character.

    Words break after a space where one is near, so parsers that (against RFC 2047) keep the
    whitespace between encoded words still show whole words.
    """
    words: list[str] = []
    chunk = ""
    size = 0
    for char in text:
        n = len(char.encode())
        if size + n > _WORD_BYTES:
            cut = chunk.rfind(" ") + 1
            if cut <= len(chunk) // 2:  # no space in the second half: cut here
                cut = len(chunk)
            words.append(chunk[:cut])
            chunk = chunk[cut:]
            size = len(chunk.encode())
        chunk += char
        size += n
    if chunk:
        words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w.encode()).decode('ascii')}?=" for w in words]


def _fold_ascii(name: str, value: str) -> str:
    """Fold a long ASCII value at spaces so lines stay under 78 characters where possible."""
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > _FOLD_AT and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return "\r\n".join(lines)


def encode_unstructured(name: str, value: str) -> str:
    """`Name: value` for an unstructured header (Subject), folded and encoded, no line break."""
    value = clean(value).strip()
    if value.isascii() and "=?" not in value:
        if len(name) + 2 + len(value) <= _FOLD_AT:
            return f"{name}: {value}"
        if "  " not in value:  # folding at single spaces is lossless
            return _fold_ascii(name, value)
    return f"{name}: " + "\r\n ".join(_encoded_words(value))


def header_line(name: str, value: str) -> bytes:
    """One complete header line with its CRLF, as bytes."""
    return (encode_unstructured(name, value) + "\r\n").encode("ascii")


_ADDRESS = re.compile(r"^[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+$")


def check_address(address: str) -> str:
    """The address if it is a plain addr-spec; TemplateError if it could break a header."""
    if not _ADDRESS.match(address):
        raise TemplateError(f"not a usable e-mail address: {address[:100]!r}")
    local, _, domain = address.rpartition("@")
    # An address with accents before the @ stays UTF-8 (RFC 6532); it is deliverable through a
    # relay that offers SMTPUTF8. The domain becomes its ASCII (IDNA) form, which always works.
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise TemplateError(f"not a usable e-mail domain: {address[:100]!r}") from None
    return f"{local}@{domain}"


def display_name(name: str) -> str:
    """A display name (or List-Id phrase) as an atom run, a quoted-string or encoded words."""
    name = clean(name).strip()
    if name.isascii() and "=?" not in name:
        if not _SPECIALS.search(name):
            return name
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}"'
    # Folded between encoded words, so a long name never makes an over-long line.
    return "\r\n ".join(_encoded_words(name))


def format_address(name: str, address: str) -> str:
    """`Name <address>` for From/To/Reply-To, the name quoted or encoded as needed."""
    address = check_address(address)
    phrase = display_name(name)
    if not phrase:
        return address
    # Fold before the address when the line would pass 78 characters (with the header name).
    last = phrase.rpartition("\n")[2]
    fold = "\r\n" if len(last) + len(address) > 62 else ""
    return f"{phrase}{fold} <{address}>"


def unsubscribe_mailto(address: str, token: str = "") -> str:
    """The `mailto:` of List-Unsubscribe: the unsubscribe address with the person's signed
    token after a `+` (afmelden+<token>@domain), so the mail that arrives names its sender."""
    address = check_address(address)
    if token:
        local, _, domain = address.rpartition("@")
        address = f"{local}+{token}@{domain}"
    return f"mailto:{address}?subject=afmelden"
