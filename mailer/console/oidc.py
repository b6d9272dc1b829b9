"""Sign-in with OpenID Connect (Microsoft Entra ID): the redirect out, the callback back in.

Authlib does the protocol: discovery (`<issuer>/.well-known/openid-configuration`), the
authorization code flow with PKCE (S256), `state` and `nonce`, the code exchange, and the ID
token's signature (the provider's JWKS) and claims (iss, aud, exp, iat, nonce, at_hash). What the
token says goes to the use case (mailer.usecases.oidc), which decides who may sign in as what.

State, nonce and PKCE verifier stay on the server (`console_oidc_flows`, used once, at most ten
minutes); the browser that started gets a random binding cookie, so a callback URL alone (sent to
someone else, or replayed) finishes nothing. That cookie is SameSite=Lax because the callback is
a cross-site top-level GET from the provider; the session cookie is Strict and would not come
with it, nor with a redirect onward from it. So the callback answers with a small page of our
own that goes on to the console: a navigation from our page, which the Strict cookie joins.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from authlib.oidc.core import CodeIDToken
from joserfc.errors import JoseError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute

from mailer.accounts import service as accounts
from mailer.accounts.roles import PUBLIC
from mailer.console.base import SESSION_COOKIE, Console, ConsoleRoute, Who
from mailer.console.signin import SIGNIN_WINDOW
from mailer.settings import OidcSettings
from mailer.usecases import oidc as use
from mailer.web.ratelimit import Limit, RateLimited, RateLimiter

__all__ = ["routes", "Provider", "ProviderError", "FLOW_COOKIE", "CALLBACK"]

log = logging.getLogger("mailer.console.oidc")

# Authlib's HTTP client is httpx, or its successor httpx2 when installed; ValueError: a body
# that is not JSON.
_HTTP_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, ValueError)
try:
    import httpx2

    _HTTP_ERRORS += (httpx2.HTTPError,)
except ImportError:
    pass

FLOW_COOKIE = "gt_console_oidc"
START = "/signin/oidc"
CALLBACK = "/signin/oidc/callback"
# Clock skew allowed on exp and iat, in seconds.
LEEWAY = 120
# Public-key signatures an ID token may carry.
_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                         "ES384", "ES512", "EdDSA"})


class ProviderError(Exception):
    """The identity provider did not answer, or not as it should (reason: "provider" or
    "token"); the message never holds the client secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Provider:
    """The configured identity provider, through Authlib; discovery is fetched once."""

    def __init__(self, oidc: OidcSettings) -> None:
        self.oidc = oidc
        self.issuer = oidc.issuer.rstrip("/")
        registry = OAuth()
        client = registry.register(
            "console", client_id=oidc.client_id, client_secret=oidc.client_secret or None,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": " ".join(oidc.scopes), "code_challenge_method": "S256",
                "timeout": 15.0,
                # A public client (no secret) proves itself with PKCE alone.
                **({} if oidc.client_secret else {"token_endpoint_auth_method": "none"}),
            })
        assert isinstance(client, StarletteOAuth2App)
        self.client = client

    def _mask(self, text: str) -> str:
        secret = self.oidc.client_secret
        return text.replace(secret, "***") if secret else text

    async def _metadata(self) -> dict[str, Any]:
        try:
            metadata = await self.client.load_server_metadata()
        except _HTTP_ERRORS as exc:
            raise ProviderError("provider", self._mask(
                f"{self.issuer}: discovery failed: {exc}")) from None
        # OpenID Connect Discovery: the document must name the issuer it was fetched from
        # (a provider cannot speak for another: mix-up).
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            self.client.server_metadata.pop("_loaded_at", None)
            raise ProviderError("provider", f"{self.issuer}: discovery names another issuer "
                                f"({metadata.get('issuer')!r})")
        # ID tokens signed with the provider's published keys only: never "none", never an
        # HMAC keyed with the client secret (Authlib takes the list from the metadata).
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in offered if a in _ALGORITHMS]
        if not algorithms:
            self.client.server_metadata.pop("_loaded_at", None)
            raise ProviderError("provider", f"{self.issuer}: no public-key ID token signing "
                                f"algorithm offered ({offered!r})")
        metadata["id_token_signing_alg_values_supported"] = algorithms
        return metadata

    async def authorization(self, redirect_uri: str) -> dict[str, str]:
        """url (to send the browser to), state, nonce and code_verifier of a new sign-in."""
        await self._metadata()
        try:
            found = await self.client.create_authorization_url(redirect_uri)
        except (AuthlibBaseError, RuntimeError) as exc:
            raise ProviderError("provider", self._mask(str(exc))) from None
        return {k: str(found[k]) for k in ("url", "state", "nonce", "code_verifier")}

    async def claims(self, *, code: str, code_verifier: str, nonce: str,
                     redirect_uri: str) -> dict[str, Any]:
        """Exchange the code (with the PKCE verifier) and return the ID token's checked claims."""
        await self._metadata()
        try:
            token = await self.client.fetch_access_token(
                redirect_uri=redirect_uri, code=code, code_verifier=code_verifier)
        except (AuthlibBaseError, *_HTTP_ERRORS) as exc:
            raise ProviderError("token", self._mask(f"code exchange failed: {exc}")) from None
        return await self.verify(token, nonce)

    async def verify(self, token: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The claims of the token response's ID token, checked: signature (JWKS), issuer,
        audience (our client id), expiry, issue time, nonce, and at_hash."""
        if "id_token" not in token:
            raise ProviderError("token", "the token response has no ID token")
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.oidc.client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        }
        try:
            claims = await self.client.parse_id_token(
                token, nonce=nonce, claims_options=options, claims_cls=CodeIDToken,
                leeway=LEEWAY)
        except (JoseError, AuthlibBaseError, *_HTTP_ERRORS) as exc:
            raise ProviderError("token", self._mask(
                f"ID token refused: {type(exc).__name__}: {exc}")) from None
        return dict(claims)


@dataclass(frozen=True)
class _Done:
    token: str = ""
    stage: str = ""
    reason: str = ""


class _Oidc:
    """The two endpoints, sharing the console and the provider."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.oidc = console.settings.console.oidc
        self.provider = Provider(self.oidc) if self.oidc.enabled else None
        # The same bucket as the password form: one budget of sign-in attempts per client.
        self.limiter = RateLimiter(console.settings.secret_key, window=SIGNIN_WINDOW)
        self.redirect_uri = console.settings.console.base_url.rstrip("/") + CALLBACK

    def origin(self, request: Request) -> str:
        return f"console {self.console.client(request)}"

    def hit(self, session: Session, request: Request) -> None:
        """One sign-in attempt of this client (RateLimited beyond the limit)."""
        self.limiter.hit(session, [Limit("console-signin", self.console.client(request),
                                         self.console.settings.console.signin_rate_per_client)])

    def refuse(self, request: Request, reason: str, status: int) -> Response:
        response = self.console.render(request, "oidc_refused.html", {"reason": reason},
                                       status=status)
        response.delete_cookie(FLOW_COOKIE, path=START, httponly=True, samesite="lax",
                               secure=self.console.secure)
        return response

    async def start(self, request: Request) -> Response:
        """Send the browser to the provider, remembering state, nonce and PKCE verifier."""
        if self.provider is None:
            return self.console.error(request, "notfound", 404)
        who: Who = request.state.who
        if who.signed_in:
            return self.console.redirect("/")
        try:
            found = await self.provider.authorization(self.redirect_uri)
        except ProviderError as exc:
            log.warning("sign-in with the identity provider: %s", exc)
            return self.refuse(request, "provider", 502)
        binding = secrets.token_urlsafe(32)
        old = request.cookies.get(SESSION_COOKIE, "")

        def work(session: Session) -> bool:
            try:
                self.hit(session, request)
            except RateLimited:
                return False
            accounts.start_oidc_flow(session, state=found["state"], nonce=found["nonce"],
                                     code_verifier=found["code_verifier"], binding=binding,
                                     replaces=old or None)
            return True

        if not await self.console.db(work):
            return self.refuse(request, "rate", 429)
        response = RedirectResponse(found["url"], 302)
        response.set_cookie(FLOW_COOKIE, binding, max_age=int(accounts.OIDC_FLOW_MAX_AGE
                                                              .total_seconds()),
                            path=START, httponly=True, samesite="lax",
                            secure=self.console.secure)
        return response

    async def callback(self, request: Request) -> Response:
        """The provider sends the browser back: check everything, then sign in."""
        if self.provider is None:
            return self.console.error(request, "notfound", 404)
        params = request.query_params
        state = params.get("state", "")
        binding = request.cookies.get(FLOW_COOKIE, "")
        origin = self.origin(request)

        def take(session: Session) -> tuple[str, str, str] | str:
            flow = accounts.take_oidc_flow(session, state, binding)
            if flow is None:
                # Unknown, used, late, or started by another browser. Such callbacks count
                # against the sign-in limit, so they cannot fill the audit trail.
                try:
                    self.hit(session, request)
                except RateLimited:
                    return "rate"
                use.refused(session, "state", origin=origin)
                return "state"
            if params.get("error"):  # e.g. access_denied: the person said no, or may not
                use.refused(session, "provider", origin=origin,
                            detail=f"{params.get('error')}: "
                                   f"{params.get('error_description', '')}")
                return "provider"
            return flow.nonce, flow.code_verifier, flow.replaces

        taken = await self.console.db(take)
        if isinstance(taken, str):
            return self.refuse(request, taken, 429 if taken == "rate" else 400)
        nonce, verifier, replaces = taken
        try:
            claims = await self.provider.claims(code=params.get("code", "")[:2000],
                                                code_verifier=verifier, nonce=nonce,
                                                redirect_uri=self.redirect_uri)
        except ProviderError as exc:
            log.warning("sign-in with the identity provider refused: %s", exc)
            reason, detail = exc.reason, str(exc)

            def failed(session: Session) -> None:
                use.refused(session, reason, origin=origin, detail=detail)

            await self.console.db(failed)
            return self.refuse(request, reason, 502 if reason == "provider" else 400)
        return await self._sign_in(request, claims, replaces)

    async def _sign_in(self, request: Request, claims: dict[str, Any], replaces: str
                       ) -> Response:
        who = use.identity(claims, self.oidc)
        old = request.cookies.get(SESSION_COOKIE, "")
        ended = tuple(h for h in (replaces, accounts.session_id(old) if old else "") if h)

        def work(session: Session) -> _Done:
            try:
                _user, token, stage = use.sign_in(
                    session, self.console.settings, who, origin=self.origin(request),
                    client=self.console.client(request),
                    user_agent=request.headers.get("user-agent", ""), replaces=ended)
            except use.OidcRefused as exc:
                return _Done(reason=exc.reason)
            return _Done(token=token, stage=stage)

        done = await self.console.db(work)
        if done.reason:
            return self.refuse(request, done.reason, 403)
        onward = "/signin/code" if done.stage == "totp" else "/"
        response = self.console.render(request, "oidc_continue.html", {"onward": onward})
        self.console.set_session(response, done.token)
        response.delete_cookie(FLOW_COOKIE, path=START, httponly=True, samesite="lax",
                               secure=self.console.secure)
        return response

    def routes(self) -> list[BaseRoute]:
        return [
            ConsoleRoute(START, self.start, permission=PUBLIC, console=self.console,
                         methods=["GET"]),
            ConsoleRoute(CALLBACK, self.callback, permission=PUBLIC, console=self.console,
                         methods=["GET"]),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _Oidc(console).routes()
