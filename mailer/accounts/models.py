"""Tables of the staff accounts: users and their server-side sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from subscribers.models import Base, utcnow

__all__ = ["ConsoleUser", "ConsoleSession", "OidcFlow", "ROLES"]

#: Roles, from least to most allowed; what each may do is in mailer.accounts.roles.
ROLES = ("viewer", "editor", "approver", "admin")


class ConsoleUser(Base):
    """A member of staff who can sign in to the console."""

    __tablename__ = "console_users"
    # One account per OpenID Connect identity; most accounts have none ("").
    __table_args__ = (
        Index("uq_console_users_oidc_subject", "oidc_subject", unique=True,
              sqlite_where=text("oidc_subject <> ''"),
              postgresql_where=text("oidc_subject <> ''")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    # "active" or "disabled"; a disabled account cannot sign in and has no sessions.
    status: Mapped[str] = mapped_column(String(16), default="active")
    # argon2id hash; empty until the set-up link was used.
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    # Base32 TOTP secret; empty when no second factor is set up.
    totp_secret: Mapped[str] = mapped_column(String(64), default="")
    # The last TOTP time step accepted, so one code cannot be used twice.
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)
    # SHA-256 of the one-time set-up link's token, and when it stops working.
    setup_token_hash: Mapped[str] = mapped_column(String(64), default="", index=True)
    setup_expires_at: Mapped[dt.datetime | None]
    failed_signins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    # OIDC subject ("issuer|sub") for accounts that sign in with OpenID Connect.
    oidc_subject: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_signin_at: Mapped[dt.datetime | None]


class ConsoleSession(Base):
    """One signed-in browser. The cookie holds a random token; we store only its SHA-256."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("console_users.id", ondelete="CASCADE"), index=True
    )
    # "totp" (or "oidctotp" after the identity provider) while the second factor is still
    # owed, then "full": accounts.service.session_stage reads it.
    stage: Mapped[str] = mapped_column(String(8), default="full")
    # Random value the session's forms carry (CSRF synchroniser token).
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    client: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class OidcFlow(Base):
    """An OpenID Connect sign-in on its way through the identity provider, used once.

    The browser that started it holds a random binding token (a cookie); we store the SHA-256
    of it and of the `state`, so neither a copy of the database nor a callback URL alone
    finishes someone's sign-in.
    """

    __tablename__ = "console_oidc_flows"

    # SHA-256 of the `state` sent to the provider.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 of the binding cookie of the browser that started the flow.
    binding: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    # PKCE: the verifier whose S256 challenge went to the provider.
    code_verifier: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the session cookie the browser had when it started (ended at sign-in:
    # rotation; the callback itself comes without the strict session cookie).
    replaces: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
