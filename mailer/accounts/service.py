"""Staff accounts: set-up links, argon2id passwords, TOTP, lock-out and server-side sessions.

Functions take a database session and the caller owns the transaction. Secrets that travel
(set-up link tokens, session cookies) are random and stored only as SHA-256 hashes, so a copy
of the database opens no account.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from mailer.accounts import queries
from mailer.accounts.models import ROLES, ConsoleSession, ConsoleUser, OidcFlow
from mailer.errors import AccountError
from subscribers.controls import strip_controls
from subscribers.models import utcnow

__all__ = [
    "SignInFailed", "Policy", "hash_password", "add_user", "reset_user", "set_status",
    "complete_setup", "user_for_setup", "authenticate", "verify_totp", "start_session",
    "load_session", "end_session", "end_all_sessions", "new_totp_secret", "totp_uri",
    "MIN_PASSWORD", "OIDC_FLOW_MAX_AGE", "start_oidc_flow", "take_oidc_flow", "add_oidc_user",
    "highest_role", "end_session_hash", "session_id",
]

MIN_PASSWORD = 12
MAX_PASSWORD = 256
# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()
# Verified against when the address is unknown, so the answer takes as long as for a real one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
# How long a person may take at the identity provider between leaving and coming back.
OIDC_FLOW_MAX_AGE = dt.timedelta(minutes=10)
# Write last_seen_at at most this often: a page with many requests makes one write.
_TOUCH_EVERY = dt.timedelta(seconds=60)


class SignInFailed(AccountError):
    """Wrong address, password or code, a locked or disabled account: one answer for all."""


@dataclass(frozen=True)
class Policy:
    """The console settings that accounts need (kept apart from Settings: domain code)."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    absolute: dt.timedelta = dt.timedelta(hours=12)
    setup_link: dt.timedelta = dt.timedelta(hours=72)
    lockout_after: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must be at least {MIN_PASSWORD} characters long")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must be at most {MAX_PASSWORD} characters long")
    return _hasher.hash(password)


def _clean_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise AccountError(f"{email!r}: not an e-mail address ({exc})") from None


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


def _new_setup_token(user: ConsoleUser, policy: Policy, now: dt.datetime) -> str:
    token = secrets.token_urlsafe(32)
    user.setup_token_hash = _sha256(token)
    user.setup_expires_at = now + policy.setup_link
    return token


def add_user(session: Session, email: str, role: str, *, name: str = "",
             policy: Policy = Policy(), now: dt.datetime | None = None
             ) -> tuple[ConsoleUser, str]:
    """A new account without a password, and the token of its one-time set-up link."""
    now = now or utcnow()
    address = _clean_email(email)
    _check_role(role)
    if queries.user_by_email(session, address) is not None:
        raise AccountError(f"{address}: there is already an account for this address")
    # A name staff type is shown in the console, the audit trail and `users list`.
    user = ConsoleUser(email=address, name=strip_controls(name).strip(), role=role,
                       status="active",
                       password_hash="", totp_secret="", totp_last_step=0, failed_signins=0,
                       oidc_subject="", setup_token_hash="", created_at=now)
    token = _new_setup_token(user, policy, now)
    session.add(user)
    session.flush()
    return user, token


def get_user(session: Session, email: str) -> ConsoleUser:
    user = queries.user_by_email(session, email)
    if user is None:
        raise AccountError(f"no account for {email!r}")
    return user


def reset_user(session: Session, user: ConsoleUser, *, policy: Policy = Policy(),
               now: dt.datetime | None = None) -> str:
    """Forget password, second factor and linked OpenID Connect identity, end every session;
    a new set-up link's token. (The next sign-in with the provider links again by verified
    address: how an admin mends a link to the wrong identity.)"""
    now = now or utcnow()
    user.password_hash = ""
    user.oidc_subject = ""
    user.totp_secret = ""
    user.totp_last_step = 0
    user.failed_signins = 0
    user.locked_until = None
    queries.delete_sessions(session, user.id)
    return _new_setup_token(user, policy, now)


def set_status(session: Session, user: ConsoleUser, status: str) -> None:
    """Disable (ending every session) or re-enable an account."""
    if status not in ("active", "disabled"):
        raise AccountError(f"unknown account status {status!r}")
    user.status = status
    if status == "disabled":
        queries.delete_sessions(session, user.id)


def set_role(user: ConsoleUser, role: str) -> None:
    user.role = _check_role(role)


def user_for_setup(session: Session, token: str, *, now: dt.datetime | None = None
                   ) -> ConsoleUser:
    """The account a set-up link is for; AccountError if the link is unknown, used or expired."""
    now = now or utcnow()
    user = queries.user_by_setup_hash(session, _sha256(token)) if token else None
    if (user is None or user.status != "active" or user.setup_expires_at is None
            or user.setup_expires_at <= now):
        raise AccountError("this set-up link does not work (used, expired or replaced)")
    return user


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="GT Mailer")


def _totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step `code` is valid for (this one or the one before or after), or None."""
    code = code.strip().replace(" ", "")
    if not (secret and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def complete_setup(session: Session, token: str, password: str, *, totp_secret: str = "",
                   totp_code: str = "", now: dt.datetime | None = None) -> ConsoleUser:
    """Set the password (and second factor) through a set-up link; the link is then used up.

    Admins must set up TOTP; for other roles it is optional (a code given is checked).
    """
    now = now or utcnow()
    user = user_for_setup(session, token, now=now)
    hashed = hash_password(password)
    if user.role == "admin" and not totp_code.strip():
        raise AccountError("administrators need a second factor: enter the code of your app")
    step = 0
    if totp_code.strip():
        found = _totp_step(totp_secret, totp_code, now)
        if found is None:
            raise AccountError("the code does not match: check the key in your app and the clock")
        step = found
    user.password_hash = hashed
    user.totp_secret = totp_secret if totp_code.strip() else ""
    user.totp_last_step = step
    user.setup_token_hash = ""
    user.setup_expires_at = None
    user.failed_signins = 0
    user.locked_until = None
    queries.delete_sessions(session, user.id)
    return user


def _fail(user: ConsoleUser, policy: Policy, now: dt.datetime) -> None:
    user.failed_signins += 1
    if user.failed_signins >= policy.lockout_after:
        user.locked_until = now + policy.lockout
        user.failed_signins = 0


def authenticate(session: Session, email: str, password: str, *, policy: Policy = Policy(),
                 now: dt.datetime | None = None) -> ConsoleUser:
    """The account if address and password are right and it may sign in; else SignInFailed.

    Failures are counted (the caller must commit them even though this raises); after
    `policy.lockout_after` in a row the account is locked for `policy.lockout`.
    """
    now = now or utcnow()
    user = queries.user_by_email(session, email) if email.strip() else None
    if user is None or not user.password_hash:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password or "-")
        raise SignInFailed("wrong address or password")
    if user.locked_until is not None and user.locked_until > now:
        raise SignInFailed("wrong address or password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        _fail(user, policy, now)
        raise SignInFailed("wrong address or password") from None
    if user.status != "active":
        raise SignInFailed("wrong address or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def verify_totp(session: Session, user: ConsoleUser, code: str, *, policy: Policy = Policy(),
                now: dt.datetime | None = None) -> None:
    """Accept a TOTP code once (replays of a used code are refused); counts failures."""
    now = now or utcnow()
    if user.locked_until is not None and user.locked_until > now:
        raise SignInFailed("wrong code")
    step = _totp_step(user.totp_secret, code, now)
    if step is None or step <= user.totp_last_step:
        _fail(user, policy, now)
        raise SignInFailed("wrong code")
    user.totp_last_step = step


def signed_in(user: ConsoleUser, now: dt.datetime) -> None:
    user.failed_signins = 0
    user.locked_until = None
    user.last_signin_at = now


# A half session (stage "totp": the second factor still owed) remembers how its first step was
# taken, so the "signin" audit row written after the code can say so. The stage column (8
# characters) carries it: no column, no migration. Unknown stages are never "full", so they
# stay half sessions.
_HALF_STAGES = {"password": "totp", "oidc": "oidctotp"}
_HALF_METHODS = {stage: method for method, stage in _HALF_STAGES.items()}


def session_stage(cs: ConsoleSession) -> tuple[str, str]:
    """(stage, method): "full" or "totp", and for a half session how its first step was taken
    ("password" or "oidc"; "" for a full one)."""
    if cs.stage in _HALF_METHODS:
        return "totp", _HALF_METHODS[cs.stage]
    return cs.stage, ""


def start_session(session: Session, user: ConsoleUser, *, stage: str = "full", client: str = "",
                  user_agent: str = "", replaces: str | None = None,
                  now: dt.datetime | None = None, method: str = "password") -> str:
    """A new session (and its cookie token); `replaces` (the old cookie) is ended: rotation.
    A half session (stage "totp") remembers `method`, the way its first step was taken."""
    now = now or utcnow()
    if stage == "totp":
        stage = _HALF_STAGES[method]
    if replaces:
        queries.delete_session(session, _sha256(replaces))
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(
        id=_sha256(token), user_id=user.id, stage=stage, csrf=secrets.token_urlsafe(32),
        created_at=now, last_seen_at=now, client=client[:64], user_agent=user_agent[:300],
    ))
    session.flush()
    return token


def load_session(session: Session, token: str, *, policy: Policy = Policy(),
                 now: dt.datetime | None = None
                 ) -> tuple[ConsoleSession, ConsoleUser] | None:
    """The live session of a cookie and its user, or None (unknown, timed out, disabled)."""
    now = now or utcnow()
    if not token or len(token) > 100:
        return None
    found = queries.session_by_id(session, _sha256(token))
    if found is None:
        return None
    if found.last_seen_at + policy.idle <= now or found.created_at + policy.absolute <= now:
        queries.delete_session(session, found.id)
        return None
    user = queries.user_by_id(session, found.user_id)
    if user is None or user.status != "active":
        queries.delete_session(session, found.id)
        return None
    if now - found.last_seen_at >= _TOUCH_EVERY:
        found.last_seen_at = now
    return found, user


def end_session(session: Session, token: str) -> None:
    queries.delete_session(session, _sha256(token))


def end_all_sessions(session: Session, user_id: int) -> int:
    return queries.delete_sessions(session, user_id)


def session_id(token: str) -> str:
    """The stored id of a session cookie's token."""
    return _sha256(token)


def end_session_hash(session: Session, session_id: str) -> None:
    """End the session stored as `session_id` (the SHA-256 of its cookie), if it still lives."""
    if session_id:
        queries.delete_session(session, session_id)


# -- OpenID Connect -----------------------------------------------------------------------------

def start_oidc_flow(session: Session, *, state: str, nonce: str, code_verifier: str,
                    binding: str, replaces: str | None = None,
                    now: dt.datetime | None = None) -> None:
    """Remember a sign-in sent to the identity provider until its callback takes it.

    `binding` is the random value of the cookie the starting browser got; `replaces` its
    session cookie then, ended when the sign-in succeeds.
    """
    now = now or utcnow()
    queries.prune_flows(session, created_before=now - OIDC_FLOW_MAX_AGE)
    session.add(OidcFlow(id=_sha256(state), binding=_sha256(binding), nonce=nonce,
                         code_verifier=code_verifier,
                         replaces=_sha256(replaces) if replaces else "", created_at=now))
    session.flush()


def take_oidc_flow(session: Session, state: str, binding: str, *,
                   now: dt.datetime | None = None) -> OidcFlow | None:
    """The flow of `state`, used up, if this browser started it in the last minutes; else None.

    A callback from another browser (no or another binding cookie) leaves the flow alone, so a
    stranger with the URL can neither finish nor spoil it; a used or late one is gone.
    """
    now = now or utcnow()
    if not state or not binding or len(state) > 200 or len(binding) > 100:
        return None
    flow = queries.flow_by_id(session, _sha256(state))
    if flow is None or not secrets.compare_digest(flow.binding, _sha256(binding)):
        return None
    session.expunge(flow)
    queries.delete_flow(session, flow.id)
    if flow.created_at + OIDC_FLOW_MAX_AGE <= now:
        return None
    return flow


def highest_role(roles: set[str]) -> str | None:
    """The most allowed of `roles` (unknown names ignored), or None."""
    ranked = [r for r in ROLES if r in roles]
    return ranked[-1] if ranked else None


def add_oidc_user(session: Session, email: str, role: str, subject: str, *, name: str = "",
                  now: dt.datetime | None = None) -> ConsoleUser:
    """An account made at its first sign-in with OpenID Connect: no password, no set-up link."""
    now = now or utcnow()
    address = _clean_email(email)
    _check_role(role)
    if queries.user_by_email(session, address) is not None:
        raise AccountError(f"{address}: there is already an account for this address")
    user = ConsoleUser(email=address, name=name.strip()[:200], role=role, status="active",
                       password_hash="", totp_secret="", totp_last_step=0, failed_signins=0,
                       oidc_subject=subject, setup_token_hash="", created_at=now)
    session.add(user)
    session.flush()
    return user
