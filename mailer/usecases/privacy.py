"""The AVG/GDPR rights across every table GT Mailer keeps: access and erasure of one person.

`person_record` gathers everything held on a person (the answer to an access request);
`erase_person` removes it. Each part of the mailer that stores an address or a name outside the
subscribers package clears its own rows here (deliveries now; bounces and RSVPs add theirs), then
the subscribers package deletes the person and keeps only the suppression hash. All of it happens
in the caller's transaction, so an erasure is complete or not done at all. Each part's SQL stays
in its own queries module; this module only decides what is cleared, and in which order.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mailer.bounces import service as bounces
from mailer.campaigns import queries as campaigns
from mailer.database.connect import checkpoint
from mailer.delivery import queries as outbox
from mailer.events import service as events
from mailer.kernel.mentions import Needles
from mailer.settings import Settings
from mailer.usecases.subjects import shown_subjects
from subscribers import queries as subscriber_queries
from subscribers import service
from subscribers.models import Subscriber

__all__ = ["person_record", "mail_mentioning", "erase_person", "after_erasure", "needles_of"]

_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{8,40}$")


def needles_of(session: Session, subscriber: Subscriber) -> Needles:
    """What identifies the person in mail we keep: the address, the name (and a name typed in
    a sign-up request), and every attribute value shaped like a phone number (whatever the
    column was called in the import)."""
    names = [subscriber.name] + [r.name for r in
                                 subscriber_queries.signup_requests_of(session, subscriber.id)]
    phones = [str(v) for v in (subscriber.attributes or {}).values()
              if isinstance(v, str | int) and _PHONE_LIKE.match(str(v))]
    return Needles.of(subscriber.email_key, names, phones)


def person_record(
    session: Session, email: str, settings: Settings | None = None, *, mentions: bool = True
) -> dict[str, Any]:
    """Everything GT Mailer holds on the person with this address, as plain values.

    `mentions=False` leaves out the received mail that mentions the person (every kept raw
    message MIME-decoded and searched: about 0.5 ms each, seconds for a few thousand), for a
    page that loads that part after itself (`mail_mentioning`). SubscriberNotFoundError if
    there is no such subscriber.
    """
    record = service.subscriber_record(session, email)
    subscriber = service.get_subscriber(session, email)
    rows = campaigns.deliveries_of_subscriber(session, subscriber.id)
    # Subjects as the person received them (meeting mail's is a per-person template).
    shown = shown_subjects(session, settings, {d.campaign_id for d, _s in rows}) \
        if settings is not None else {}
    record["deliveries"] = [
        {
            "campaign_id": delivery.campaign_id,
            "subject": shown.get(delivery.campaign_id, subject),
            "email": delivery.email,
            "status": delivery.status,
            "sent_at": delivery.sent_at,
            "last_error": delivery.last_error,
        }
        for delivery, subject in rows
    ]
    # Other parts add what they hold on the person (bounces, RSVPs) to `record` here.
    record["bounce_score"] = bounces.bounce_score(session, subscriber.id)
    record["bounces"] = [
        {key: bounce[key] for key in ("received_at", "source", "kind", "status", "diagnostic",
                                       "campaign_id", "outcome")}
        for bounce in bounces.bounce_history(session, subscriber.id)
    ]
    record["meeting_answers"] = events.person_answers(session, subscriber.id)
    if mentions:
        record.update(_mentioning(session, subscriber))
    record["signup_requests"] = service.signup_requests(session, subscriber.id)
    return record


def mail_mentioning(session: Session, email: str) -> dict[str, Any]:
    """The part of `person_record` that searches every kept raw message: received mail that
    mentions the person. SubscriberNotFoundError if there is no such subscriber."""
    return _mentioning(session, service.get_subscriber(session, email))


def _mentioning(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    # Received mail that mentions the person (replies, unmatched reports; address, name or
    # phone, in any MIME part): erasure removes it, with the same needles.
    needles = needles_of(session, subscriber)
    return {"messages_mentioning": bounces.messages_mentioning(session, subscriber.email,
                                                               needles),
            "calendar_replies_mentioning": events.replies_mentioning(session, needles)}


def erase_person(session: Session, email: str, actor: str = "") -> str:
    """Erase everything held on the person with this address; returns the suppression hash.

    SubscriberNotFoundError if there is no such subscriber (nothing is changed then).
    """
    subscriber = service.get_subscriber(session, email)
    needles = needles_of(session, subscriber)
    campaigns.forget_recipient(session, subscriber.id, subscriber.email_key)
    # Other parts clear their rows for `subscriber.id` / the address here, before the delete;
    # kept raw mail that mentions the person anywhere (decoded MIME parts too) goes whole.
    bounces.forget_subscriber(session, subscriber.id, subscriber.email, needles)
    # Meetings: answers and owed mail go; a seat the person held goes to the waiting list.
    events.forget_subscriber(session, subscriber.id, email_key=subscriber.email_key,
                             needles=needles)
    # One-off mail still owed to them (a data copy holds their data), and its record.
    outbox.delete_person_outbox(session, subscriber.id)
    return service.erase(session, subscriber.email, actor=actor)


def after_erasure(engine: Engine) -> None:
    """Once the erasure is committed: on SQLite, fold the write-ahead log into the database
    and empty it, so the erased rows' old page images do not linger in the -wal file (deleted
    content in the database itself is zeroed by PRAGMA secure_delete, set on every connection).
    PostgreSQL's rows are gone once no transaction can see them; autovacuum reclaims them."""
    checkpoint(engine)
