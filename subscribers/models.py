"""Tables for people, lists, subscriptions, consent history and the suppression list.

`Base` is the declarative base of every GT Mailer table (the mailer package's tables build on it
too), with a naming convention so constraint names, and so Alembic migrations, are stable.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "UTCDateTime",
    "utcnow",
    "Subscriber",
    "MailingList",
    "Subscription",
    "ConsentEvent",
    "Suppression",
    "SignupRequest",
    "new_public_id",
    "SUBSCRIBER_STATUSES",
    "SUBSCRIPTION_STATUSES",
    "LANGUAGES",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SUBSCRIBER_STATUSES = ("active", "unsubscribed", "bounced", "complained", "blocked")
SUBSCRIPTION_STATUSES = ("active", "pending", "unsubscribed")
LANGUAGES = ("nl", "en")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_public_id() -> str:
    """The random id links name a person by: 16 bytes, URL-safe, unrelated to the row id."""
    return secrets.token_urlsafe(16)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones: values are stored naive in UTC and come back tagged UTC, so code
    never compares a naive time with an aware one.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC time")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Subscriber(Base):
    """A person who may receive mail. `email_key` (lower-cased) makes addresses unique."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What links and tokens name the person by: random, never reused (erased people's ids are
    # gone with them and a new one is drawn for everyone), so an old link reaches no one else.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    job_title: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    language: Mapped[str] = mapped_column(String(8), default="nl")
    status: Mapped[str] = mapped_column(String(16), default="active")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # How consent was first given: when, by which channel ("import", "cli", "web") and by whom
    # (the admin's login name, the import file, or the client address of the web form).
    consent_at: Mapped[dt.datetime | None]
    consent_source: Mapped[str] = mapped_column(String(32), default="")
    consent_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_subscribers_status_region", "status", "region"),
        # The audience filter compares lower(region): this gives PostgreSQL its statistics.
        Index("ix_subscribers_status_lower_region", "status", text("lower(region)")),
        Index("ix_subscribers_organisation", "organisation"),
        {"sqlite_autoincrement": True},
    )


class MailingList(Base):
    """A topic people subscribe to, e.g. `nieuwsbrief` or `regio-noord`."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opt_in: Mapped[str] = mapped_column(String(8), default="single")
    # Shown on the sign-up form and the preferences page; staff-only lists are not.
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = ({"sqlite_autoincrement": True},)  # list ids appear in confirmation links


class Subscription(Base):
    """One person on one list, with its own status: leaving one list leaves the others."""

    __tablename__ = "subscriptions"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    unsubscribed_at: Mapped[dt.datetime | None]

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship()


class ConsentEvent(Base):
    """The history of what a person agreed to or withdrew, for the AVG access request.

    Removed with the person on erasure; only the suppression hash survives.
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(320), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    # The sign-ups and unsubscribes of a period (the console's 30-day figures).
    __table_args__ = (Index("ix_consent_events_action_at", "action", "at"),)


class Suppression(Base):
    """An address that must never be mailed.

    `email_hash` is what matching uses; `email` and `email_key` are kept for admins to read and
    for audience queries to join on, except for erased people, of whom only the hash remains.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SignupRequest(Base):
    """What a web sign-up for an address we already hold asked to change, until confirmed.

    A stranger may post the form with anyone's address, so nothing of it touches the person's
    data until the link in the confirmation mail (to that address) is followed; then it is
    applied and this row goes. Unconfirmed requests are removed with the unconfirmed sign-ups.
    """

    __tablename__ = "signup_requests"
    __table_args__ = ({"sqlite_autoincrement": True},)  # request ids appear in confirmation links

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
