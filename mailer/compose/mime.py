"""The MIME skeleton of a message, built once per campaign, and the per-recipient assembly.

A message is: personal header lines + the campaign's fixed header block + the two bodies, each
encoded quoted-printable (binascii's C encoder), between fixed boundaries. Attachments (the same
for every recipient) are base64-encoded once. The boundaries contain "=_", which can never occur
in quoted-printable or base64 output, so no body can collide with them.

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

__all__ = ["Skeleton", "encode_qp", "crlf"]


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
        self, fixed_headers: Sequence[str], attachments: Sequence[Attachment] = ()
    ) -> None:
        token = secrets.token_hex(12).encode()
        self.alt_boundary = b"=_alt_" + token
        alt_head = b'multipart/alternative; boundary="' + self.alt_boundary + b'"'
        lines = [h.encode("ascii") + b"\r\n" for h in fixed_headers]
        lines.append(b"MIME-Version: 1.0\r\n")
        self._tail = b""
        if attachments:
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

    def assemble(self, personal: bytes, text: str, html: str) -> bytes:
        return b"".join((
            personal, self.fixed, self._open,
            self._text_head, encode_qp(text),
            self._html_head, encode_qp(html),
            self._alt_close, self._tail,
        ))
