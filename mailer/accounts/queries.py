"""The staff accounts' SQL: users by address or set-up token, sessions by token hash."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailer.accounts.models import ConsoleSession, ConsoleUser, OidcFlow

__all__ = [
    "user_by_email", "user_by_id", "user_by_setup_hash", "user_by_oidc_subject", "users",
    "session_by_id", "delete_sessions", "delete_session", "prune_sessions", "count_users",
    "flow_by_id", "delete_flow", "prune_flows",
]


def user_by_email(session: Session, email: str) -> ConsoleUser | None:
    return session.scalar(
        select(ConsoleUser).where(func.lower(ConsoleUser.email) == email.strip().lower())
    )


def user_by_id(session: Session, user_id: int) -> ConsoleUser | None:
    return session.get(ConsoleUser, user_id)


def user_by_setup_hash(session: Session, token_hash: str) -> ConsoleUser | None:
    if not token_hash:
        return None
    return session.scalar(select(ConsoleUser).where(ConsoleUser.setup_token_hash == token_hash))


def user_by_oidc_subject(session: Session, subject: str) -> ConsoleUser | None:
    return session.scalar(select(ConsoleUser).where(ConsoleUser.oidc_subject == subject))


def users(session: Session) -> Sequence[ConsoleUser]:
    return session.scalars(select(ConsoleUser).order_by(ConsoleUser.email)).all()


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ConsoleUser)) or 0


def session_by_id(session: Session, session_id: str) -> ConsoleSession | None:
    return session.get(ConsoleSession, session_id)


def delete_session(session: Session, session_id: str) -> None:
    session.execute(delete(ConsoleSession).where(ConsoleSession.id == session_id))


def delete_sessions(session: Session, user_id: int) -> int:
    result = session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_sessions(session: Session, *, idle_before: dt.datetime,
                   created_before: dt.datetime) -> None:
    """Forget sessions past their idle or absolute timeout."""
    session.execute(delete(ConsoleSession).where(
        (ConsoleSession.last_seen_at < idle_before) | (ConsoleSession.created_at < created_before)
    ))


def flow_by_id(session: Session, flow_id: str) -> OidcFlow | None:
    return session.get(OidcFlow, flow_id)


def delete_flow(session: Session, flow_id: str) -> None:
    session.execute(delete(OidcFlow).where(OidcFlow.id == flow_id))


def prune_flows(session: Session, *, created_before: dt.datetime) -> None:
    """Forget sign-ins that never came back from the identity provider."""
    session.execute(delete(OidcFlow).where(OidcFlow.created_at < created_before))
