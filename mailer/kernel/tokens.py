"""Signed, purpose-bound tokens for links in mail and for VERP envelope senders.

Links never carry row ids in the clear: a token names its purpose (an unsubscribe token cannot
be replayed as an RSVP token) and is signed with MAILER_SECRET_KEY. VERP tokens are short,
lower-case and safe in an address's local part, because bounces come back through MTAs that
may change the case of a local part.

The VERP and List-Unsubscribe mailto tokens name a delivery or a subscriber by a sealed value:
the row id encrypted (AES-256, one block, a key of its own per purpose) together with eight
zero bytes that must come back on decryption. A public id cannot stand there: it is
case-sensitive, and the local part of an address is not. The sealed value shows nothing of the
row id (nor how many rows there are), cannot be forged without the key (a guess passes 1 in
2**64), and, as row ids are never reused (AUTOINCREMENT on SQLite), never names someone else.
Tokens of the earlier shape `<base36 row id>-<mac>`, in mail already sent, are still accepted
during a transition (see README, "Upgrading"); nothing new is made in that shape.

A calendar invitation's ORGANIZER (`rsvp+<token>@...`) names a person and a meeting: both ids
sealed together in one block (40 bits for the subscriber, 32 for the event, 56 zero bits
checked). Calendars match an update to the meeting they hold by UID *and* ORGANIZER, so a
meeting whose invitations went out with the earlier `<base36 s>-<base36 e>-<mac>` keeps that
shape for good (events.organizer_format); both shapes are accepted on the way in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import threading
from typing import Any, Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from mailer.errors import TokenError
from mailer.kernel.keys import MIN_SECRET_LENGTH, derive

__all__ = [
    "Signer",
    "UNSUBSCRIBE",
    "PREFERENCES",
    "VIEW",
    "RSVP",
    "CONFIRM",
    "DATA_EXPORT",
    "is_public_id",
    "VERP_TOKEN",
    "MAILTO_TOKEN",
]

# Purposes. Each is its own salt: a token made for one never verifies for another.
UNSUBSCRIBE: Final = "unsubscribe"
PREFERENCES: Final = "preferences"
VIEW: Final = "view"
RSVP: Final = "rsvp"
CONFIRM: Final = "confirm"
DATA_EXPORT: Final = "data-export"

# A subscriber's public id (subscribers.models.new_public_id): what links name a person by.
_PUBLIC_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")


def is_public_id(value: object) -> bool:
    """Whether `value` has the shape of a public id (URL-safe, so safe inside JSON too)."""
    return isinstance(value, str) and _PUBLIC_ID_RE.fullmatch(value) is not None


# What follows `bounces+` / `afmelden+`: a sealed id (26 base32 letters), or the transitional
# `<base36 id>-<mac>`. The bounce parser finds candidates by these shapes.
_SEALED = r"[a-z2-7]{26}"
_LEGACY_ID = r"[0-9a-z]{1,13}-[a-z2-7]{16}"
VERP_TOKEN: Final = rf"(?:{_SEALED}|{_LEGACY_ID})"
MAILTO_TOKEN: Final = VERP_TOKEN
_EITHER = rf"(?:(?P<sealed>{_SEALED})|(?P<id>[0-9a-z]{{1,13}})-(?P<mac>[a-z2-7]{{16}}))"
_VERP_RE = re.compile(rf"^(?P<prefix>[a-z0-9._-]+)\+{_EITHER}$")
_MAILTO_RE = re.compile(rf"^{_EITHER}$")
_ZEROS = bytes(8)
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_REPLY_RE = re.compile(
    rf"^(?P<prefix>[a-z0-9._-]+)\+(?:(?P<sealed>{_SEALED})|"
    r"(?P<s>[0-9a-z]{1,13})-(?P<e>[0-9a-z]{1,13})-(?P<mac>[a-z2-7]{16}))$"
)
# A sealed reply token: subscriber id in 5 bytes, event id in 4, then 7 zero bytes. A trillion
# subscribers and four billion meetings: ids never get there, and past it seal_pair refuses
# rather than wrap onto someone else.
_PAIR_LIMITS = (2**40, 2**32)


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError("negative id")
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
        if not number:
            return "".join(reversed(digits))


class _Sealer:
    """Seals row ids with one key: 26 lower-case base32 letters per id.

    One AES block per id, so ECB is simply the block cipher itself (a keyed permutation): the
    same id always gives the same value, which a mailto token must (one per person), and the
    eight zero bytes beside the id are what `unseal` checks instead of a MAC. The cipher
    contexts are made once and reused (ECB keeps no state between blocks; making one costs
    more than the encryption), behind a lock, as delivery threads share the signer.
    """

    def __init__(self, key: bytes) -> None:
        cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._encryptor = cipher.encryptor()
        self._decryptor = cipher.decryptor()
        self._lock = threading.Lock()

    def seal(self, number: int) -> str:
        if not 0 <= number < 2**63:
            raise ValueError("id out of range")
        return self._seal_block(number.to_bytes(8, "big") + _ZEROS)

    def unseal(self, value: str) -> int | None:
        """The id `seal` put in `value`, or None if `value` was not made with this key."""
        plain = self._unseal_block(value, 8)
        if plain is None:
            return None
        number = int.from_bytes(plain, "big")
        return number if number < 2**63 else None  # else never sealed (a lucky forgery)

    def seal_pair(self, first: int, second: int) -> str:
        """Two ids in one block (a person and a meeting): 5 + 4 bytes, 7 zero bytes."""
        if not (0 <= first < _PAIR_LIMITS[0] and 0 <= second < _PAIR_LIMITS[1]):
            raise ValueError("id out of range")
        return self._seal_block(first.to_bytes(5, "big") + second.to_bytes(4, "big")
                                + bytes(7))

    def unseal_pair(self, value: str) -> tuple[int, int] | None:
        plain = self._unseal_block(value, 9)
        if plain is None:
            return None
        return int.from_bytes(plain[:5], "big"), int.from_bytes(plain[5:], "big")

    def _seal_block(self, plain: bytes) -> str:
        with self._lock:
            block = self._encryptor.update(plain)
        return base64.b32encode(block).decode().rstrip("=").lower()

    def _unseal_block(self, value: str, used: int) -> bytes | None:
        """The first `used` bytes of the block in `value` if the rest decrypts to zeros."""
        try:
            block = base64.b32decode(value.upper() + "======")
        except ValueError:
            return None
        if len(block) != 16:
            return None
        with self._lock:
            plain = self._decryptor.update(block)
        if not hmac.compare_digest(plain[used:], bytes(16 - used)):
            return None
        # Base32's last letter carries two spare bits: accept only the one spelling we make.
        return plain[:used] if self._seal_block(plain) == value else None


class Signer:
    """Makes and checks every token GT Mailer puts in a link or an envelope sender.

    Links are signed with the derived "links" key and VERP addresses with the "verp" key
    (kernel.keys). Tokens and VERP addresses made before keys were derived (signed with the
    secret key itself) are still accepted, so links in mail already sent keep working; nothing
    new is signed that way.
    """

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < MIN_SECRET_LENGTH:
            raise TokenError(
                f"the secret key is too short (at least {MIN_SECRET_LENGTH} characters)"
            )
        self._links_key = derive(secret_key, "links")
        self._verp_keys = (derive(secret_key, "verp"), secret_key.encode())
        self._reply_keys = (derive(secret_key, "calendar-replies"), secret_key.encode())
        self._mailto_keys = (derive(secret_key, "unsubscribe-mailto"), secret_key.encode())
        self._verp_seal = _Sealer(derive(secret_key, "verp-sealed-ids"))
        self._mailto_seal = _Sealer(derive(secret_key, "mailto-sealed-ids"))
        self._message_seal = _Sealer(derive(secret_key, "message-ids"))
        self._reply_seal = _Sealer(derive(secret_key, "calendar-reply-sealed-ids"))
        self._legacy = secret_key.encode()
        self._serializers: dict[str, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        if purpose not in self._serializers:
            # itsdangerous signs with the last key and accepts any of them.
            self._serializers[purpose] = URLSafeTimedSerializer(
                [self._legacy, self._links_key], salt=f"gt-mailer/{purpose}"
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

    def _verp_mac(self, delivery_id: int, key: bytes | None = None) -> str:
        key = self._verp_keys[0] if key is None else key
        digest = hmac.new(key, f"verp:{delivery_id}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode().lower()

    def verp_address(self, delivery_id: int, domain: str, prefix: str = "bounces") -> str:
        """The envelope sender for one delivery: bounces+<sealed delivery id>@domain."""
        return f"{prefix}+{self._verp_seal.seal(delivery_id)}@{domain}"

    def parse_verp(self, address: str) -> int:
        """The delivery id a VERP address names; TokenError if it is not one of ours."""
        local = address.strip().strip("<>").rsplit("@", 1)[0].lower()
        match = _VERP_RE.match(local)
        if match is None:
            raise TokenError(f"not a VERP address: {address[:100]!r}")
        if match["sealed"]:
            found = self._verp_seal.unseal(match["sealed"])
            if found is None:
                raise TokenError(f"VERP signature does not match: {address[:100]!r}")
            return found
        delivery_id = int(match["id"], 36)  # the transitional shape, in mail already sent
        if not any(hmac.compare_digest(match["mac"], self._verp_mac(delivery_id, key))
                   for key in self._verp_keys):
            raise TokenError(f"VERP signature does not match: {address[:100]!r}")
        return delivery_id

    def message_token(self, delivery_id: int) -> str:
        """What a delivery's Message-ID carries: its id sealed with a key of its own (so a
        Message-ID is never a VERP token), the same on every resend of that delivery."""
        return self._message_seal.seal(delivery_id)

    # -- List-Unsubscribe mailto -------------------------------------------------------------

    def _mailto_mac(self, subscriber_id: int, key: bytes | None = None) -> str:
        key = self._mailto_keys[0] if key is None else key
        digest = hmac.new(key, f"unsubscribe-mailto:{subscriber_id}".encode(),
                          hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode().lower()

    def mailto_token(self, subscriber_id: int) -> str:
        """The sealed subscriber id that follows `afmelden+` in a person's List-Unsubscribe
        mailto, so mail to it names exactly that person (its From is never trusted). Its own
        key: a VERP token never unsubscribes anyone, nor this one bounce anyone."""
        return self._mailto_seal.seal(subscriber_id)

    def parse_mailto_token(self, token: str) -> int:
        """The subscriber id a mailto token names; TokenError if it is not one of ours."""
        match = _MAILTO_RE.match(token.strip().lower())
        if match is None:
            raise TokenError(f"not an unsubscribe token: {token[:100]!r}")
        if match["sealed"]:
            found = self._mailto_seal.unseal(match["sealed"])
            if found is None:
                raise TokenError(f"unsubscribe token signature does not match: {token[:100]!r}")
            return found
        subscriber_id = int(match["id"], 36)  # the transitional shape, in mail already sent
        if not any(hmac.compare_digest(match["mac"], self._mailto_mac(subscriber_id, key))
                   for key in self._mailto_keys):
            raise TokenError(f"unsubscribe token signature does not match: {token[:100]!r}")
        return subscriber_id

    # -- calendar replies ---------------------------------------------------------------------

    def _reply_mac(self, subscriber_id: int, event_id: int, key: bytes | None = None) -> str:
        message = f"itip-reply:{subscriber_id}:{event_id}".encode()
        key = self._reply_keys[0] if key is None else key
        digest = hmac.new(key, message, hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode().lower()

    def reply_address(
        self, subscriber_id: int, event_id: int, domain: str, prefix: str = "rsvp", *,
        sealed: bool = True,
    ) -> str:
        """The ORGANIZER address of one person's invitation: rsvp+<sealed ids>@domain.

        The same for every mail about that meeting to that person (calendars match updates
        by UID and ORGANIZER), lower case like a VERP address. `sealed=False` makes the
        earlier rsvp+<base36 s>-<base36 e>-<mac> shape, for meetings whose invitations went
        out in it (events.organizer_format): their ORGANIZER must not change.
        """
        if sealed:
            return f"{prefix}+{self._reply_seal.seal_pair(subscriber_id, event_id)}@{domain}"
        return (f"{prefix}+{_base36(subscriber_id)}-{_base36(event_id)}-"
                f"{self._reply_mac(subscriber_id, event_id)}@{domain}")

    def parse_reply_address(self, address: str, prefix: str | None = None) -> tuple[int, int]:
        """(subscriber id, event id) a reply address names, in either shape; TokenError if it
        is not ours ("signature" in the message: it has our shape and was altered or forged).

        With `prefix`, a sealed-shaped local part under another prefix (a VERP or mailto
        token has the same 26 letters) that does not unseal is "not a reply address", not a
        forgery.
        """
        local = address.strip().strip("<>").removeprefix("mailto:").removeprefix("MAILTO:")
        local = local.rsplit("@", 1)[0].lower()
        match = _REPLY_RE.match(local)
        if match is None:
            raise TokenError(f"not a reply address: {address[:100]!r}")
        if match["sealed"]:
            found = self._reply_seal.unseal_pair(match["sealed"])
            if found is not None:
                return found
            if prefix is not None and match["prefix"] != prefix.lower():
                raise TokenError(f"not a reply address: {address[:100]!r}")
            raise TokenError(f"reply address signature does not match: {address[:100]!r}")
        subscriber_id, event_id = int(match["s"], 36), int(match["e"], 36)
        if not any(hmac.compare_digest(match["mac"], self._reply_mac(subscriber_id, event_id, key))
                   for key in self._reply_keys):
            raise TokenError(f"reply address signature does not match: {address[:100]!r}")
        return subscriber_id, event_id
