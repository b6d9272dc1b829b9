"""The sign-up form's bot defence beside the hidden trap field: an ALTCHA proof of work.

The form carries a challenge made here (the `altcha` package, protocol v1: find the number n
for which SHA-256(salt + n) is the given hash; the challenge is HMAC-signed and expires). The
browser solves it with our own small script (static/pow.js, `script-src 'self'`, no third
party, no cookies) and posts the solution in the `altcha` field. A post without a valid,
unexpired, not-yet-used solution is refused before anything is stored or mailed. One solution
costs a browser about a second and a bot per post; each is accepted once (the rate-limit table
records used challenges for the hour they are valid).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass

import altcha

from mailer.kernel.keys import derive

__all__ = ["ProofOfWork", "PowError", "FIELD"]

FIELD = "altcha"
VALID = dt.timedelta(minutes=30)


class PowError(Exception):
    """The proof of work is missing, wrong or expired (HTTP 400, the form is shown again)."""


@dataclass(frozen=True)
class ProofOfWork:
    secret: str
    max_number: int  # difficulty: the browser tries max_number / 2 hashes on average; 0 = off

    @property
    def _key(self) -> str:
        return derive(self.secret, "proof-of-work").hex()

    @property
    def enabled(self) -> bool:
        return self.max_number > 0

    def challenge(self, now: dt.datetime | None = None) -> str:
        """A fresh challenge, as the JSON the form's data-challenge attribute carries."""
        now = now or dt.datetime.now(dt.UTC)
        made = altcha.create_challenge_v1(altcha.ChallengeOptionsV1(
            hmac_key=self._key, max_number=self.max_number, expires=now + VALID))
        return json.dumps({"algorithm": made.algorithm, "challenge": made.challenge,
                           "salt": made.salt, "signature": made.signature,
                           "maxnumber": made.max_number}, separators=(",", ":"))

    def verify(self, payload: str) -> str:
        """The challenge a valid solution answers (the key that makes it single-use)."""
        if not payload or len(payload) > 2000:
            raise PowError("no proof of work")
        try:
            ok, _why = altcha.verify_solution_v1(payload, self._key, check_expires=True)
            decoded = json.loads(base64.b64decode(payload, validate=True))
        except (ValueError, TypeError, KeyError):
            raise PowError("malformed proof of work") from None
        if not ok or not isinstance(decoded, dict):
            raise PowError("proof of work does not verify")
        return str(decoded.get("challenge", ""))
