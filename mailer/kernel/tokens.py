"""Signed, purpose-bound tokens for links in mail and for VERP envelope senders.

Links never carry row ids in the clear: a token names its purpose (an unsubscribe token cannot
be replayed as an RSVP token) and is signed with MAILER_SECRET_KEY. VERP tokens are short,
lower-case and safe in an address's local part, because bounces come back through MTAs that
may change the case of a local part.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from typing import Any, Final

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mailer.errors import TokenError

__all__ = [
    "Signer",
    "UNSUBSCRIBE",
    "PREFERENCES",
    "VIEW",
    "RSVP",
    "CONFIRM",
    "DATA_EXPORT",
]

# Purposes. Each is its own salt: a token made for one never verifies for another.
UNSUBSCRIBE: Final = "unsubscribe"
PREFERENCES: Final = "preferences"
VIEW: Final = "view"
RSVP: Final = "rsvp"
CONFIRM: Final = "confirm"
DATA_EXPORT: Final = "data-export"

_VERP_RE = re.compile(r"^(?P<prefix>[a-z0-9._-]+)\+(?P<id>[0-9a-z]{1,13})-(?P<mac>[a-z2-7]{16})$")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_REPLY_RE = re.compile(
    r"^(?P<prefix>[a-z0-9._-]+)\+(?P<s>[0-9a-z]{1,13})-(?P<e>[0-9a-z]{1,13})-(?P<mac>[a-z2-7]{16})$"
)


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("negative id")
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
        if not number:
            return "".join(reversed(digits))


class Signer:
    """Makes and checks every token GT Mailer puts in a link or an envelope sender."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 16:
            raise TokenError("the secret key is too short (at least 16 characters)")
        self._secret = secret_key.encode()
        self._serializers: dict[str, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in self._serializers:
            self._serializers[purpose] = URLSafeTimedSerializer(
                self._secret, salt=f"gt-mailer/{purpose}"
            )
        return self._serializers[purpose]

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        """A URL-safe token carrying `payload` (small JSON values) for one purpose."""
        token = self._serializer(purpose).dumps(payload)
        assert isinstance(token, str)
        return token

    def unsign(
        self, purpose: str, token: str, *, max_age: dt.timedelta | None = None
    ) -> dict[str, Any]:
        """The payload of a valid token; TokenError if forged, expired or for another purpose."""
        if not token or len(token) > 1000:
            raise TokenError("malformed token")
        try:
            payload = self._serializer(purpose).loads(
                token, max_age=None if max_age is None else int(max_age.total_seconds())
            )
        except SignatureExpired:
            raise TokenError("the link has expired") from None
        except BadSignature:
            raise TokenError("the link is not valid") from None
        if not isinstance(payload, dict):
            raise TokenError("the link is not valid")
        return payload

    # -- VERP --------------------------------------------------------------------------------

    def _verp_mac(self, delivery_id: int) -> str:
        digest = hmac.new(self._secret, f"verp:{delivery_id}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode().lower()

    def verp_address(self, delivery_id: int, domain: str, prefix: str = "bounces") -> str:
        """The envelope sender for one delivery: bounces+<id>-<mac>@domain."""
        return f"{prefix}+{_base36(delivery_id)}-{self._verp_mac(delivery_id)}@{domain}"

    def parse_verp(self, address: str) -> int:
        """The delivery id a VERP address names; TokenError if it is not one of ours."""
        local = address.strip().strip("<>").rsplit("@", 1)[0].lower()
        match = _VERP_RE.match(local)
        if match is None:
            raise TokenError(f"not a VERP address: {address[:100]!r}")
        delivery_id = int(match["id"], 36)
        if not hmac.compare_digest(match["mac"], self._verp_mac(delivery_id)):
            raise TokenError(f"VERP signature does not match: {address[:100]!r}")
        return delivery_id

    # -- calendar replies ---------------------------------------------------------------------

    def _reply_mac(self, subscriber_id: int, event_id: int) -> str:
        message = f"itip-reply:{subscriber_id}:{event_id}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode().lower()

    def reply_address(
        self, subscriber_id: int, event_id: int, domain: str, prefix: str = "rsvp"
    ) -> str:
        """The ORGANIZER address of one person's invitation: rsvp+<s>-<e>-<mac>@domain.

        The same for every mail about that meeting to that person (calendars match updates
        by UID and expect the organizer to stay put), lower case like a VERP address.
        """
        return (f"{prefix}+{_base36(subscriber_id)}-{_base36(event_id)}-"
                f"{self._reply_mac(subscriber_id, event_id)}@{domain}")

    def parse_reply_address(self, address: str) -> tuple[int, int]:
        """(subscriber id, event id) a reply address names; TokenError if it is not ours."""
        local = address.strip().strip("<>").removeprefix("mailto:").removeprefix("MAILTO:")
        local = local.rsplit("@", 1)[0].lower()
        match = _REPLY_RE.match(local)
        if match is None:
            raise TokenError(f"not a reply address: {address[:100]!r}")
        subscriber_id, event_id = int(match["s"], 36), int(match["e"], 36)
        if not hmac.compare_digest(match["mac"], self._reply_mac(subscriber_id, event_id)):
            raise TokenError(f"reply address signature does not match: {address[:100]!r}")
        return subscriber_id, event_id
