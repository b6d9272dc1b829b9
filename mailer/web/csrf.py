"""Cross-site request forgery protection for the subscriber pages' forms: signed double submit.

No page needs a login, so there is no session to bind a token to. Instead a random value goes
into a cookie (HttpOnly, SameSite=Strict) and every form carries HMAC(secret, cookie value, form
path). Another site can neither read the cookie nor compute the HMAC, so it cannot make a browser
submit one of our forms. Requests the browser itself marks as cross-site (Sec-Fetch-Site) or
whose Origin is not ours are refused as well. The RFC 8058 one-click endpoint is the exception by
design: mail providers post to it without cookies or tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from mailer.kernel.keys import derive

__all__ = ["Csrf", "CsrfError", "COOKIE", "FIELD"]

COOKIE = "gt_csrf"
FIELD = "csrf"
_VALUE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class CsrfError(Exception):
    """A form post without a valid token, or from another site."""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Csrf:
    def __init__(self, secret: str, base_url: str) -> None:
        self._key = derive(secret, "csrf")
        self._origin = _origin(base_url)
        self._secure = base_url.startswith("https://")

    def cookie_value(self, request: Request) -> tuple[str, bool]:
        """(the browser's cookie value, or a new one; whether it is new and must be set)."""
        value = request.cookies.get(COOKIE, "")
        if _VALUE_RE.match(value):
            return value, False
        return secrets.token_urlsafe(32), True

    def token(self, cookie_value: str, path: str) -> str:
        mac = hmac.new(self._key, f"{cookie_value}\n{path}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE, value, httponly=True, samesite="strict", secure=self._secure, path="/"
        )

    def check(self, request: Request, submitted: object) -> None:
        """CsrfError unless the post comes from one of our own pages in this browser."""
        if request.headers.get("sec-fetch-site", "") == "cross-site":
            raise CsrfError("cross-site form post")
        origin = request.headers.get("origin")
        if origin and origin != "null":
            own = f"{request.url.scheme}://{request.url.netloc}".lower()
            if origin.lower() not in (self._origin, own):
                raise CsrfError("form posted from another origin")
        cookie = request.cookies.get(COOKIE, "")
        if not _VALUE_RE.match(cookie) or not isinstance(submitted, str):
            raise CsrfError("missing form token")
        expected = self.token(cookie, request.url.path)
        if not hmac.compare_digest(expected, submitted):
            raise CsrfError("form token does not match")
