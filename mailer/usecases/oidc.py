"""Sign-in with OpenID Connect as a use case: whom a verified ID token is, and with which role.

The console's adapter (mailer.console.oidc) talks to the identity provider and checks the ID
token (signature, issuer, audience, expiry, nonce) with Authlib; what it hands over is an
`Identity`. The rules are here: the role comes from the configured group or app-role claim
(highest wins, none: refused), an identity is one account (`oidc_subject`), an existing account
with the same verified address is linked once, a new one is made only when allowed, a disabled
account stays out, the role follows the claims at every sign-in, and every outcome is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mailer import audit
from mailer.accounts import queries
from mailer.accounts import service as accounts
from mailer.accounts.models import ConsoleUser
from mailer.audit import Actor
from mailer.errors import AccountError
from mailer.settings import OidcSettings, Settings
from subscribers.models import utcnow

__all__ = ["Identity", "OidcRefused", "identity", "role_for", "sign_in", "refused", "REASONS"]

#: Why a sign-in with the provider was refused; each has its text on the console's page.
REASONS = ("state", "provider", "token", "norole", "overage", "noemail", "noaccount",
           "linked", "disabled", "totp", "rate")


class OidcRefused(accounts.SignInFailed):
    """The provider vouched for someone who may not sign in (or the answer did not hold)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(f"sign-in with the identity provider refused: {reason}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Identity:
    """What a verified ID token says about a person."""

    issuer: str
    subject: str
    email: str = ""
    email_verified: bool = False
    name: str = ""
    # The values of the configured groups claim (group object ids or app role names).
    values: tuple[str, ...] = ()
    # Entra ID leaves the groups out for someone in too many (a "groups overage").
    overage: bool = False
    # How the provider authenticated the person (amr, acr), recorded in the audit row.
    amr: tuple[str, ...] = ()
    acr: str = ""

    @property
    def key(self) -> str:
        """The account's `oidc_subject`: a `sub` is unique only within its issuer."""
        return f"{self.issuer}|{self.subject}"


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def identity(claims: Mapping[str, Any], oidc: OidcSettings) -> Identity:
    """The Identity of verified ID token claims, with the settings' view of the address."""
    email = str(claims.get("email") or "").strip()[:320]
    domain = email.rsplit("@", 1)[-1].lower() if "@" in email else ""
    # email_verified (OpenID Connect), xms_edov (Entra ID's optional "domain owner verified"),
    # or a domain the operator says their tenant has verified.
    verified = bool(email) and (
        claims.get("email_verified") is True or claims.get("xms_edov") in (True, "1", "true")
        or domain in {d.lower().lstrip("@") for d in oidc.verified_email_domains})
    names = claims.get("_claim_names")
    overage = isinstance(names, Mapping) and oidc.groups_claim in names
    return Identity(
        issuer=str(claims["iss"]), subject=str(claims["sub"]), email=email,
        email_verified=verified, name=str(claims.get("name") or "")[:200],
        values=_strings(claims.get(oidc.groups_claim)), overage=overage,
        amr=_strings(claims.get("amr")), acr=str(claims.get("acr") or "")[:100])


def role_for(who: Identity, oidc: OidcSettings) -> str | None:
    """The highest role any of the person's claim values maps to; None: no mapped value."""
    return accounts.highest_role({oidc.roles[v] for v in who.values if v in oidc.roles})


def refused(session: Session, reason: str, *, origin: str, who: Identity | None = None,
            detail: str = "") -> None:
    """The audit row of a refused sign-in (the caller commits it and shows the reason)."""
    name = (who.email or who.key) if who is not None else "-"
    user = None
    if who is not None:
        user = queries.user_by_oidc_subject(session, who.key) or (
            queries.user_by_email(session, who.email) if who.email else None)
    after: dict[str, Any] = {"method": "oidc", "reason": reason}
    if detail:  # partly the provider's (or a stranger's) text: printable, short
        after["detail"] = "".join(ch for ch in detail if ch.isprintable())[:300]
    audit.record(session, Actor(name=name[:320], origin=origin), "signin.failed",
                 ("user", user.id) if user is not None else None, None, after)


def _account(session: Session, who: Identity, role: str, oidc: OidcSettings, origin: str,
             now: dt.datetime) -> ConsoleUser:
    """The account of this identity: found by subject, linked by verified address, or made."""
    user = queries.user_by_oidc_subject(session, who.key)
    if user is not None:
        return user
    if not (who.email and who.email_verified):
        # Without a verified address we cannot tell whose account it would be.
        raise OidcRefused("noemail")
    user = queries.user_by_email(session, who.email)
    if user is not None:
        if user.oidc_subject:
            # The address now belongs to another identity than the one linked: never re-link
            # silently (a re-used address or a second tenant).
            raise OidcRefused("linked")
        if user.status != "active":
            raise OidcRefused("disabled")
        user.oidc_subject = who.key
        audit.record(session, _actor(user, origin), "user.link", ("user", user.id),
                     {"oidc_subject": ""}, {"oidc_subject": who.key})
        return user
    if not oidc.create_accounts:
        raise OidcRefused("noaccount")
    try:
        user = accounts.add_oidc_user(session, who.email, role, who.key, name=who.name, now=now)
    except AccountError as exc:
        raise OidcRefused("noemail", str(exc)) from None
    audit.record(session, _actor(user, origin), "user.add", ("user", user.id), None,
                 {"email": user.email, "name": user.name, "role": user.role,
                  "status": user.status, "via": "oidc", "oidc_subject": who.key})
    return user


def sign_in(session: Session, settings: Settings, who: Identity, *, origin: str, client: str,
            user_agent: str, replaces: tuple[str, ...] = ()) -> tuple[ConsoleUser, str, str]:
    """Sign in the person of a verified ID token: (user, new session token, stage).

    `replaces` are the session ids (SHA-256 of the cookies) the browser had; they end, as at
    every sign-in. Stage "totp" when admins must also give our code. OidcRefused, audited
    (the caller commits), when the person may not sign in.
    """
    oidc = settings.console.oidc
    now = utcnow()
    try:
        role = role_for(who, oidc)
        if role is None:
            raise OidcRefused("overage" if who.overage else "norole")
        user = _account(session, who, role, oidc, origin, now)
        if user.status != "active":
            raise OidcRefused("disabled")
        stage = "full"
        if role == "admin" and oidc.require_totp_for_admins:
            if not user.totp_secret:
                raise OidcRefused("totp")
            stage = "totp"
    except OidcRefused as exc:
        refused(session, exc.reason, origin=origin, who=who, detail=exc.detail)
        raise
    if user.role != role:
        # The provider's groups are the source of truth for the role, at every sign-in.
        before = {"role": user.role}
        user.role = role
        audit.record(session, _actor(user, origin), "user.role", ("user", user.id), before,
                     {"role": role, "via": "oidc"})
    if stage == "full":
        accounts.signed_in(user, now)
        details: dict[str, Any] = {"method": "oidc"}
        if who.amr:
            details["amr"] = list(who.amr)
        if who.acr:
            details["acr"] = who.acr
        audit.record(session, _actor(user, origin), "signin", ("user", user.id), None, details)
    for old in replaces:
        accounts.end_session_hash(session, old)
    token = accounts.start_session(session, user, stage=stage, client=client,
                                   user_agent=user_agent, now=now, method="oidc")
    return user, token, stage


def _actor(user: ConsoleUser, origin: str) -> Actor:
    return Actor(name=user.email, user_id=user.id, role=user.role, origin=origin)
