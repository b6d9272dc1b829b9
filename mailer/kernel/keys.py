"""One key per purpose, derived from MAILER_SECRET_KEY with HKDF (RFC 5869, SHA-256).

Link tokens, VERP addresses, form (CSRF) tokens, rate-limit hashes and staff sessions each get
their own key, so a value made for one can never be checked by another, and a key that leaks
from one part (a log, a debugger) gives nothing for the others. The master key itself is used
for nothing but this derivation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mailer.settings import MIN_SECRET_LENGTH

__all__ = ["MIN_SECRET_LENGTH", "PURPOSES", "derive"]


#: Every purpose a key is derived for; a new part adds its own name here.
PURPOSES: Final = frozenset(
    {"links", "verp", "calendar-replies", "unsubscribe-mailto", "csrf", "rate-limit",
     "proof-of-work", "sessions", "verp-sealed-ids", "mailto-sealed-ids",
     "message-ids", "calendar-reply-sealed-ids"}
)

_SALT: Final = b"gt-mailer key derivation v1"


@lru_cache(maxsize=32)
def derive(secret_key: str, purpose: str) -> bytes:
    """The 32-byte key for `purpose` (one of PURPOSES) from the installation's secret key."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT,
                info=f"gt-mailer/{purpose}".encode())
    return hkdf.derive(secret_key.encode())
