"""Staff accounts as use cases: add, reset, disable, set up, sign in and out; all audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from mailer import audit
from mailer.accounts import queries
from mailer.accounts import service as accounts
from mailer.accounts.models import ConsoleUser
from mailer.accounts.roles import allowed
from mailer.audit import Actor
from mailer.errors import PermissionDenied
from mailer.settings import Settings
from subscribers.controls import strip_controls
from subscribers.models import utcnow

__all__ = [
    "policy", "require", "signin_methods", "add_user", "reset_user", "disable_user",
    "enable_user", "list_users",
    "complete_setup", "sign_in", "second_factor", "sign_out", "sign_out_everywhere",
    "setup_link",
]


def policy(settings: Settings) -> accounts.Policy:
    c = settings.console
    return accounts.Policy(
        idle=dt.timedelta(minutes=c.idle_minutes),
        absolute=dt.timedelta(hours=c.session_hours),
        setup_link=dt.timedelta(hours=c.setup_link_hours),
        lockout_after=c.lockout_after,
        lockout=dt.timedelta(minutes=c.lockout_minutes),
    )


def require(actor: Actor, permission: str) -> None:
    """PermissionDenied unless the actor may do this. The OS user at the CLI has no role and
    may do everything the machine lets it (it can read the database anyway)."""
    if actor.user_id is None and not actor.role:
        return
    if not allowed(actor.role, permission):
        raise PermissionDenied(f"{actor.name} ({actor.role}) may not do this ({permission})")


def setup_link(settings: Settings, token: str) -> str:
    return f"{settings.console.base_url.rstrip('/')}/setup/{token}"


def signin_methods(user: ConsoleUser) -> tuple[str, ...]:
    """How the account can sign in: "oidc" when linked to the identity provider (an
    `oidc_subject`), "password" when it has one (an address-linked account has both, until
    the password sign-in is turned off). Neither: its set-up link is still out."""
    return tuple(m for m, has in (("oidc", user.oidc_subject), ("password", user.password_hash))
                 if has)


def _view(user: ConsoleUser) -> dict[str, object]:
    return {"email": user.email, "name": user.name, "role": user.role, "status": user.status,
            "totp": bool(user.totp_secret)}


def add_user(session: Session, settings: Settings, actor: Actor, email: str, role: str, *,
             name: str = "") -> tuple[ConsoleUser, str]:
    """A new account and its one-time set-up link."""
    require(actor, "users.manage")
    user, token = accounts.add_user(session, email, role, name=name, policy=policy(settings))
    audit.record(session, actor, "user.add", ("user", user.id), None, _view(user))
    return user, setup_link(settings, token)


def reset_user(session: Session, settings: Settings, actor: Actor, email: str) -> str:
    """Forget the password and second factor, end the sessions; a new set-up link."""
    require(actor, "users.manage")
    user = accounts.get_user(session, email)
    before = _view(user)
    token = accounts.reset_user(session, user, policy=policy(settings))
    audit.record(session, actor, "user.reset", ("user", user.id), before, _view(user))
    return setup_link(settings, token)


def _set_status(session: Session, actor: Actor, email: str, status: str) -> ConsoleUser:
    require(actor, "users.manage")
    user = accounts.get_user(session, email)
    before = _view(user)
    accounts.set_status(session, user, status)
    action = "user.disable" if status == "disabled" else "user.enable"
    audit.record(session, actor, action, ("user", user.id), before, _view(user))
    return user


def disable_user(session: Session, actor: Actor, email: str) -> ConsoleUser:
    return _set_status(session, actor, email, "disabled")


def enable_user(session: Session, actor: Actor, email: str) -> ConsoleUser:
    return _set_status(session, actor, email, "active")


def list_users(session: Session, actor: Actor) -> Sequence[ConsoleUser]:
    require(actor, "users.manage")
    return queries.users(session)


def complete_setup(session: Session, token: str, password: str, *, totp_secret: str,
                   totp_code: str, origin: str) -> ConsoleUser:
    """The person sets their own password (and TOTP) through their link."""
    user = accounts.complete_setup(session, token, password, totp_secret=totp_secret,
                                   totp_code=totp_code)
    me = Actor(name=user.email, user_id=user.id, role=user.role, origin=origin)
    audit.record(session, me, "user.setup", ("user", user.id), None, _view(user))
    return user


def sign_in(session: Session, settings: Settings, email: str, password: str, *, origin: str,
            client: str, user_agent: str, replaces: str | None) -> tuple[ConsoleUser, str, str]:
    """Check address and password: (user, new session token, stage). The stage is "totp" when
    a second factor is still owed. Failures are recorded (the caller commits them)."""
    now = utcnow()
    try:
        user = accounts.authenticate(session, email, password, policy=policy(settings), now=now)
    except accounts.SignInFailed:
        # Typed by whoever is at the sign-in page: no controls into the trail (or a NUL into
        # PostgreSQL, which cannot store one).
        typed = strip_controls(email).strip()[:320]
        audit.record(session, Actor(name=typed or "-", origin=origin),
                     "signin.failed", None)
        raise
    stage = "totp" if user.totp_secret else "full"
    if stage == "full":
        accounts.signed_in(user, now)
        audit.record(session, _actor(user, origin), "signin", ("user", user.id))
    token = accounts.start_session(session, user, stage=stage, client=client,
                                   user_agent=user_agent, replaces=replaces, now=now)
    return user, token, stage


def second_factor(session: Session, settings: Settings, user: ConsoleUser, code: str, *,
                  origin: str, client: str, user_agent: str, replaces: str,
                  method: str = "password") -> str:
    """Check the TOTP code of a half-signed-in session; a new, full session's token.

    `method` is how the first step was taken (the half session remembers it): "oidc" is
    written in the audit row as the provider's one-step sign-in writes it."""
    now = utcnow()
    try:
        accounts.verify_totp(session, user, code, policy=policy(settings), now=now)
    except accounts.SignInFailed:
        audit.record(session, _actor(user, origin), "signin.failed", ("user", user.id),
                     None, {"step": "totp"})
        raise
    accounts.signed_in(user, now)
    details: dict[str, object] = {"totp": True}
    if method != "password":
        details = {"method": method, "totp": True}
    audit.record(session, _actor(user, origin), "signin", ("user", user.id), None, details)
    return accounts.start_session(session, user, stage="full", client=client,
                                  user_agent=user_agent, replaces=replaces, now=now)


def _actor(user: ConsoleUser, origin: str) -> Actor:
    return Actor(name=user.email, user_id=user.id, role=user.role, origin=origin)


def sign_out(session: Session, actor: Actor, token: str) -> None:
    accounts.end_session(session, token)
    audit.record(session, actor, "signout", ("user", actor.user_id or ""))


def sign_out_everywhere(session: Session, actor: Actor, user_id: int) -> int:
    """End every session of the account (the actor's own, or any for an admin)."""
    if actor.user_id != user_id:
        require(actor, "users.manage")
    ended = accounts.end_all_sessions(session, user_id)
    audit.record(session, actor, "signout.everywhere", ("user", user_id), None,
                 {"sessions_ended": ended})
    return ended
