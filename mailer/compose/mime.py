"""The MIME skeleton of a message, built once per campaign, and the per-recipient assembly.

A message is: personal header lines + the campaign's fixed header block + the two bodies, each
encoded quoted-printable (binascii's C encoder), between fixed boundaries. A meeting's mail is
built as the big calendar senders build theirs (iMIP, RFC 6047), the form Outlook shows
Accept / Decline for: multipart/mixed[ multipart/alternative[ text/plain, text/html,
text/calendar; method=... ], the same calendar as an application/ics attachment ]; the
calendar is personal (its ATTENDEE line), so it is base64-encoded per recipient, once for both.
Attachments (the same for every recipient) are base64-encoded once. The boundaries contain "=_",
which can never occur in quoted-printable or base64 output, so no body can collide with them.

Everything here is bytes with CRLF line ends: what goes over SMTP and into the DKIM hash.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from urllib.parse import quote

from mailer.compose.headers import clean
from mailer.compose.model import Attachment
from mailer.compose.splice import Segments

__all__ = ["Skeleton", "EncodedPart", "encode_qp", "crlf", "CalendarBody"]


def crlf(text: str) -> str:
    """Text with every line ending as CRLF."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n", "\r\n")


def encode_qp(text: str) -> bytes:
    """UTF-8 quoted-printable with CRLF line ends and soft breaks under 77 characters."""
    data = crlf(text).encode("utf-8")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    # A leading CRLF-terminated line makes b2a_qp use CRLF for its soft breaks too.
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


def _qp_line(line: str) -> bytes:
    return binascii.b2a_qp(line.encode("utf-8") + b"\r\n", quotetabs=False, istext=True)


class EncodedPart:
    """A body part's quoted-printable bytes, encoded once except the lines with personal values.

    Quoted-printable is line-local: each line's encoding (soft breaks at 76 columns, encoded
    trailing spaces) depends on that line alone. Personal values never hold a line break, so
    the lines without one are encoded once per campaign, and per recipient only the few lines
    that carry a value are joined and encoded. `encode(values)` equals
    `encode_qp(segments.join(values))`; the tests check it.
    """

    def __init__(self, segments: Segments) -> None:
        # Lines as lists of text pieces and (value index, escape) slots.
        lines: list[list[str | tuple[int, object]]] = [[]]
        for number, segment in enumerate(segments.segments):
            pieces = crlf(segment).split("\r\n")
            lines[-1].append(pieces[0])
            lines.extend([piece] for piece in pieces[1:])
            if number < len(segments.slots):
                lines[-1].append(segments.slots[number])
        if lines[-1] == [""] and len(lines) > 1:
            lines.pop()  # the text ended with a line break
        chunks: list[bytes | tuple[tuple[str | tuple[int, object], ...], ...]] = []
        static: list[bytes] = []
        for line in lines:
            if all(isinstance(piece, str) for piece in line):
                static.append(_qp_line("".join(line)))  # type: ignore[arg-type]
                continue
            if static:
                chunks.append(b"".join(static))
                static = []
            chunks.append((tuple(line),))
        if static:
            chunks.append(b"".join(static))
        self._chunks = chunks

    def encode(self, values: list[str]) -> bytes:
        out: list[bytes] = []
        for chunk in self._chunks:
            if isinstance(chunk, bytes):
                out.append(chunk)
                continue
            text = []
            for piece in chunk[0]:
                if isinstance(piece, str):
                    text.append(piece)
                else:
                    index, escape = piece
                    text.append(escape(values[index]))  # type: ignore[operator]
            out.append(_qp_line("".join(text)))
        return b"".join(out)


def _disposition(filename: str, default: str = "bijlage") -> tuple[str, str]:
    """(name parameter for Content-Type, Content-Disposition value) for an attachment."""
    name = clean(filename).replace('"', "'").replace("\\", "").strip() or default
    if name.isascii():
        return f'; name="{name}"', f'attachment; filename="{name}"'
    # RFC 2231 for a name with accents
    return "", f"attachment; filename*=utf-8''{quote(name, safe='')}"


class CalendarBody:
    """One recipient's calendar: its text, base64-encoded, and the attachment's file name."""

    __slots__ = ("encoded", "filename")

    def __init__(self, text: str, filename: str) -> None:
        self.encoded = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
        self.filename = filename


def _attachment_part(boundary: bytes, att: Attachment) -> bytes:
    content_type = clean(att.content_type).strip()
    if "/" not in content_type:
        raise ValueError(f"attachment {att.filename!r}: not a content type: {content_type!r}")
    if content_type.startswith("text/") and "charset" not in content_type:
        content_type += '; charset="utf-8"'
    name = clean(att.filename).replace('"', "'").replace("\\", "").strip() or "bijlage"
    if name.isascii():
        head = f'Content-Type: {content_type}; name="{name}"\r\n'
        disposition = f'attachment; filename="{name}"'
    else:  # RFC 2231 for a name with accents
        head = f"Content-Type: {content_type}\r\n"
        disposition = f"attachment; filename*=utf-8''{quote(name, safe='')}"
    return (
        b"--" + boundary + b"\r\n"
        + head.encode("ascii")
        + b"Content-Transfer-Encoding: base64\r\n"
        + f"Content-Disposition: {disposition}\r\n\r\n".encode("ascii")
        + base64.encodebytes(att.data).replace(b"\n", b"\r\n")
    )


class Skeleton:
    """The fixed parts of every message of one campaign (or one transactional mail).

    `assemble(personal, text, html)` puts the per-recipient header lines, then the fixed
    header lines, then the encoded bodies between the fixed boundaries.
    """

    def __init__(
        self, fixed_headers: Sequence[str], attachments: Sequence[Attachment] = (),
        calendar_method: str | None = None,
    ) -> None:
        token = secrets.token_hex(12).encode()
        self.alt_boundary = b"=_alt_" + token
        alt_head = b'multipart/alternative; boundary="' + self.alt_boundary + b'"'
        lines = [h.encode("ascii") + b"\r\n" for h in fixed_headers]
        lines.append(b"MIME-Version: 1.0\r\n")
        self._tail = b""
        self.calendar_method = calendar_method
        self._mixed = b"=_mix_" + token
        if calendar_method is not None and not calendar_method.isalpha():
            raise ValueError(f"not an iTIP method: {calendar_method!r}")
        if attachments or calendar_method:
            mixed = b"=_mix_" + token
            lines.append(b'Content-Type: multipart/mixed; boundary="' + mixed + b'"\r\n\r\n')
            self._open = (
                b"--" + mixed + b"\r\nContent-Type: " + alt_head + b"\r\n\r\n"
            )
            self._tail = (
                b"".join(_attachment_part(mixed, a) for a in attachments)
                + b"--" + mixed + b"--\r\n"
            )
        else:
            lines.append(b"Content-Type: " + alt_head + b"\r\n\r\n")
            self._open = b""
        self.fixed = b"".join(lines)
        b = self.alt_boundary
        self._text_head = (
            b"--" + b + b"\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._html_head = (
            b"--" + b + b"\r\nContent-Type: text/html; charset=\"utf-8\"\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._alt_close = b"--" + b + b"--\r\n"
        method = (calendar_method or "").encode("ascii")
        self._calendar_head = (
            b"--" + b + b"\r\nContent-Type: text/calendar; charset=\"utf-8\"; method=" + method
            + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )

    def assemble(self, personal: bytes, text: str, html: str,
                 calendar: CalendarBody | None = None) -> bytes:
        return self.assemble_encoded(personal, encode_qp(text), encode_qp(html), calendar)

    def assemble_encoded(self, personal: bytes, text: bytes, html: bytes,
                         calendar: CalendarBody | None = None) -> bytes:
        """As assemble, with both bodies already quoted-printable."""
        if self.calendar_method is None:
            return b"".join((
                personal, self.fixed, self._open,
                self._text_head, text,
                self._html_head, html,
                self._alt_close, self._tail,
            ))
        if calendar is None:
            raise ValueError("this message carries a calendar; none given")
        name, disposition = _disposition(calendar.filename, "invite.ics")
        # application/ics, not a second text/calendar: clients then see one invitation.
        attachment = (
            b"--" + self._mixed + b"\r\n"
            + f"Content-Type: application/ics{name}\r\n".encode("ascii")
            + b"Content-Transfer-Encoding: base64\r\n"
            + f"Content-Disposition: {disposition}\r\n\r\n".encode("ascii")
            + calendar.encoded
        )
        return b"".join((
            personal, self.fixed, self._open,
            self._text_head, text,
            self._html_head, html,
            self._calendar_head, calendar.encoded,
            self._alt_close, attachment, self._tail,
        ))
