"""What can be done to subscribers, lists and the suppression list: the package's public API.

Functions take an open Session (the caller owns the transaction) and plain values, and raise
SubscriberError subclasses with a message fit for a person. The mailer package reaches
subscriber data only through these functions and `subscribers.queries.audience_select`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from subscribers import queries
from subscribers.controls import strip_controls
from subscribers.errors import (
    DuplicateError,
    InvalidEmailError,
    InvalidValueError,
    ListNotFoundError,
    SubscriberNotFoundError,
    SuppressedError,
)
from subscribers.models import (
    LANGUAGES,
    SUBSCRIBER_STATUSES,
    ConsentEvent,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)

__all__ = [
    "SubscriberData",
    "normalize_email",
    "email_key",
    "email_hash",
    "validate_language",
    "create_list",
    "edit_list",
    "signup_requests",
    "get_list",
    "get_lists",
    "get_subscriber",
    "add_subscriber",
    "edit_subscriber",
    "subscribe",
    "unsubscribe",
    "set_status",
    "set_statuses",
    "block",
    "erase",
    "suppress",
    "unsuppress",
    "is_suppressed",
    "subscriber_record",
    "record_consent",
    "consent_figures",
    "unsubscribed_from_campaign",
    "campaign_detail",
]

_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_MAX_FIELD = 200


@dataclass
class SubscriberData:
    """The fields of a person as given by an admin, an import row or a web form."""

    email: str
    name: str = ""
    organisation: str = ""
    job_title: str = ""
    region: str = ""
    language: str = "nl"
    attributes: dict[str, Any] = field(default_factory=dict)


def normalize_email(raw: str) -> str:
    """The address as given (trimmed), if it is a valid address; InvalidEmailError if not.

    Syntax only: no DNS look-up, so imports do not wait on the network.
    """
    candidate = (raw or "").strip()
    if not candidate:
        raise InvalidEmailError("e-mail address is empty")
    try:
        info = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(f"invalid e-mail address {candidate!r}: {exc}") from None
    return str(info.normalized)


def email_key(email: str) -> str:
    """The case-insensitive identity of an address."""
    return email.strip().lower()


def email_hash(email: str) -> str:
    """The one-way hash the suppression list matches on (kept after erasure)."""
    return hashlib.sha256(b"gt-mailer-suppression:" + email_key(email).encode()).hexdigest()


def validate_language(value: str) -> str:
    language = (value or "nl").strip().lower()
    if language not in LANGUAGES:
        raise InvalidValueError(f"unknown language {value!r}; use one of {', '.join(LANGUAGES)}")
    return language


def _clean(value: str | None, what: str) -> str:
    # Whitespace (line breaks too: none can reach a header via a name) becomes one space;
    # other controls go (subscribers.controls).
    text = strip_controls(" ".join((value or "").split()))
    if len(text) > _MAX_FIELD:
        raise InvalidValueError(f"{what} is longer than {_MAX_FIELD} characters")
    return text


def _canonical_region(value: str, regions: Sequence[str] | None) -> str:
    region = _clean(value, "region")
    if not region or regions is None:
        return region
    for known in regions:
        if known.casefold() == region.casefold():
            return known
    raise InvalidValueError(f"unknown region {value!r}; use one of {', '.join(regions)}")


def clean_data(data: SubscriberData, regions: Sequence[str] | None) -> SubscriberData:
    """Validated, normalised copy of `data`; raises InvalidEmailError / InvalidValueError."""
    return SubscriberData(
        email=normalize_email(data.email),
        name=_clean(data.name, "name"),
        organisation=_clean(data.organisation, "organisation"),
        job_title=_clean(data.job_title, "job title"),
        region=_canonical_region(data.region, regions),
        language=validate_language(data.language),
        attributes={
            # Attribute values may be several lines long (notes): their line breaks stay.
            strip_controls(str(key)): strip_controls(value, multiline=True)
            if isinstance(value, str) else value
            for key, value in data.attributes.items()
        },
    )


# -- lists -------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Staff-typed text for a one-line field: no control characters (they would reach the
    terminal of whoever runs `lists show`, and the sign-up form), trimmed."""
    return strip_controls(text).strip()


def _lines(text: str) -> str:
    """Staff-typed text of several lines: tab and line breaks stay, other controls go."""
    return strip_controls(text, multiline=True).strip()


def create_list(
    session: Session, slug: str, title: str, description: str = "", *, double_opt_in: bool = False,
    public: bool = False,
) -> MailingList:
    """A new list; `public` lists appear on the sign-up form and the preferences page."""
    if not _SLUG_RE.match(slug):
        raise InvalidValueError(
            f"invalid list slug {slug!r}: use lower-case letters, digits and hyphens"
        )
    title, description = _list_title(title), _lines(description)
    if queries.list_by_slug(session, slug) is not None:
        raise DuplicateError(f"list {slug!r} exists already")
    mailing_list = MailingList(
        slug=slug,
        title=title,
        description=description,
        opt_in="double" if double_opt_in else "single",
        public=public,
    )
    session.add(mailing_list)
    session.flush()
    return mailing_list


def signup_requests(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    """Web sign-up requests for this person that wait for confirmation (access requests)."""
    return [
        {"requested_at": r.created_at, "name": r.name, "organisation": r.organisation,
         "language": r.language}
        for r in queries.signup_requests_of(session, subscriber_id)
    ]


def edit_list(
    session: Session, slug: str, *, title: str | None = None, description: str | None = None,
    double_opt_in: bool | None = None, public: bool | None = None,
) -> MailingList:
    """Change a list; None leaves a field as it is."""
    mailing_list = get_list(session, slug)
    if title is not None:
        mailing_list.title = _list_title(title)
    if description is not None:
        mailing_list.description = _lines(description)
    if double_opt_in is not None:
        mailing_list.opt_in = "double" if double_opt_in else "single"
    if public is not None:
        mailing_list.public = public
    session.flush()
    return mailing_list


def _list_title(text: str) -> str:
    """A list's title: one line, shown on public pages and in terminals."""
    title = _one_line(text)
    if not title:
        raise InvalidValueError("a list needs a title")
    if len(title) > 200:  # the column's width
        raise InvalidValueError("a list title has at most 200 characters")
    return title


def get_list(session: Session, slug: str) -> MailingList:
    found = queries.list_by_slug(session, slug)
    if found is None:
        raise ListNotFoundError(f"no list {slug!r}")
    return found


def get_lists(session: Session, slugs: Iterable[str]) -> list[MailingList]:
    """The lists named, in order; ListNotFoundError naming every unknown slug."""
    wanted = list(dict.fromkeys(slugs))
    found = queries.lists_by_slugs(session, wanted)
    missing = [s for s in wanted if s not in found]
    if missing:
        raise ListNotFoundError(f"no list {', '.join(repr(s) for s in missing)}")
    return [found[s] for s in wanted]


# -- subscribers -------------------------------------------------------------------------------


def get_subscriber(session: Session, email: str) -> Subscriber:
    found = queries.subscriber_by_key(session, email_key(email))
    if found is None:
        raise SubscriberNotFoundError(f"no subscriber {email.strip()!r}")
    return found


def is_suppressed(session: Session, email: str) -> bool:
    return queries.suppression_by_hash(session, email_hash(email)) is not None


def record_consent(
    session: Session,
    subscriber: Subscriber,
    action: str,
    source: str,
    actor: str = "",
    *,
    mailing_list: MailingList | None = None,
    detail: str = "",
    at: dt.datetime | None = None,
) -> None:
    session.add(
        ConsentEvent(
            subscriber_id=subscriber.id,
            list_id=mailing_list.id if mailing_list else None,
            action=action,
            source=source,
            actor=actor,
            detail=detail,
            at=at or utcnow(),
        )
    )


def add_subscriber(
    session: Session,
    data: SubscriberData,
    *,
    lists: Sequence[str] = (),
    regions: Sequence[str] | None = None,
    source: str = "cli",
    actor: str = "",
    pending: bool = False,
) -> Subscriber:
    """Create a subscriber and subscribe them to `lists`.

    DuplicateError if the address exists, SuppressedError if it is on the suppression list.
    `pending=True` makes the subscriptions wait for a double opt-in confirmation.
    """
    clean = clean_data(data, regions)
    if is_suppressed(session, clean.email):
        raise SuppressedError(f"{clean.email} is on the suppression list and is not added")
    if queries.subscriber_by_key(session, email_key(clean.email)) is not None:
        raise DuplicateError(f"subscriber {clean.email} exists already")
    mailing_lists = get_lists(session, lists)
    now = utcnow()
    subscriber = Subscriber(
        email=clean.email,
        email_key=email_key(clean.email),
        name=clean.name,
        organisation=clean.organisation,
        job_title=clean.job_title,
        region=clean.region,
        language=clean.language,
        status="active",
        attributes=clean.attributes,
        consent_at=now,
        consent_source=source,
        consent_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(subscriber)
    session.flush()
    record_consent(session, subscriber, "created", source, actor, at=now)
    for mailing_list in mailing_lists:
        _subscribe(session, subscriber, mailing_list, source, actor, pending=pending, now=now)
    return subscriber


_EDITABLE = ("name", "organisation", "job_title", "region", "language")


def edit_subscriber(
    session: Session,
    email: str,
    *,
    regions: Sequence[str] | None = None,
    new_email: str | None = None,
    attributes: dict[str, Any] | None = None,
    **changes: str | None,
) -> Subscriber:
    """Change fields of a subscriber; None leaves a field as it is. Attributes are merged
    (a value of None removes that attribute)."""
    subscriber = get_subscriber(session, email)
    for key, value in changes.items():
        if key not in _EDITABLE:
            raise InvalidValueError(f"cannot edit {key!r}")
        if value is None:
            continue
        if key == "region":
            value = _canonical_region(value, regions)
        elif key == "language":
            value = validate_language(value)
        else:
            value = _clean(value, key.replace("_", " "))
        setattr(subscriber, key, value)
    if new_email is not None:
        address = normalize_email(new_email)
        other = queries.subscriber_by_key(session, email_key(address))
        if other is not None and other.id != subscriber.id:
            raise DuplicateError(f"subscriber {address} exists already")
        if is_suppressed(session, address):
            raise SuppressedError(f"{address} is on the suppression list")
        subscriber.email = address
        subscriber.email_key = email_key(address)
    if attributes:
        merged = dict(subscriber.attributes or {})
        for key, value in attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        subscriber.attributes = merged
    subscriber.updated_at = utcnow()
    session.flush()
    return subscriber


def _subscribe(
    session: Session,
    subscriber: Subscriber,
    mailing_list: MailingList,
    source: str,
    actor: str,
    *,
    pending: bool,
    now: dt.datetime,
) -> bool:
    """Subscribe to one list; True if anything changed."""
    existing = session.get(Subscription, (subscriber.id, mailing_list.id))
    status = "pending" if pending else "active"
    if existing is not None:
        if existing.status == "active" or existing.status == status:
            return False
        existing.status = status
        existing.updated_at = now
        existing.unsubscribed_at = None
        if not pending:
            existing.confirmed_at = now
    else:
        session.add(
            Subscription(
                subscriber_id=subscriber.id,
                list_id=mailing_list.id,
                status=status,
                created_at=now,
                updated_at=now,
                confirmed_at=None if pending else now,
            )
        )
    record_consent(
        session,
        subscriber,
        "subscribe-pending" if pending else "subscribe",
        source,
        actor,
        mailing_list=mailing_list,
        at=now,
    )
    return True


def subscribe(
    session: Session,
    email: str,
    lists: Sequence[str],
    *,
    source: str = "cli",
    actor: str = "",
    pending: bool = False,
) -> list[str]:
    """Subscribe an existing person to lists; returns the slugs that changed."""
    subscriber = get_subscriber(session, email)
    now = utcnow()
    changed = [
        ml.slug
        for ml in get_lists(session, lists)
        if _subscribe(session, subscriber, ml, source, actor, pending=pending, now=now)
    ]
    session.flush()
    return changed


def unsubscribe(
    session: Session,
    email: str,
    list_slug: str | None = None,
    *,
    source: str = "cli",
    actor: str = "",
    detail: str = "",
) -> Subscriber:
    """Leave one list, or every list (and become `unsubscribed`) when no list is named.
    `detail` goes into the consent history (which campaign's link was followed).

    Idempotent: unsubscribing twice changes nothing the second time.
    """
    subscriber = get_subscriber(session, email)
    now = utcnow()
    if list_slug is not None:
        mailing_list = get_list(session, list_slug)
        changed = queries.set_subscription_status(
            session, [subscriber.id], [mailing_list.id], status="unsubscribed",
            unsubscribed_at=now, updated_at=now,
        ) if _has_live_subscription(session, subscriber.id, mailing_list.id) else 0
        if changed:
            record_consent(session, subscriber, "unsubscribe", source, actor,
                           mailing_list=mailing_list, detail=detail, at=now)
    else:
        live = [s for s, _slug in queries.subscriptions_of(session, subscriber.id)
                if s.status != "unsubscribed"]
        if live:
            queries.set_subscription_status(
                session, [subscriber.id], [s.list_id for s in live], status="unsubscribed",
                unsubscribed_at=now, updated_at=now,
            )
        if subscriber.status == "active" or live:
            if subscriber.status == "active":
                subscriber.status = "unsubscribed"
            subscriber.updated_at = now
            record_consent(session, subscriber, "unsubscribe-all", source, actor,
                           detail=detail, at=now)
    session.flush()
    session.expire(subscriber, ["subscriptions"])
    return subscriber


def _has_live_subscription(session: Session, subscriber_id: int, list_id: int) -> bool:
    existing = session.get(Subscription, (subscriber_id, list_id))
    return existing is not None and existing.status != "unsubscribed"


def set_status(
    session: Session,
    email: str,
    status: str,
    *,
    source: str = "cli",
    actor: str = "",
    detail: str = "",
) -> Subscriber:
    """Set a subscriber's overall status (e.g. `bounced`, or `active` to reactivate)."""
    if status not in SUBSCRIBER_STATUSES:
        raise InvalidValueError(
            f"unknown status {status!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}"
        )
    subscriber = get_subscriber(session, email)
    if set_statuses(session, [subscriber], status, source=source, actor=actor, detail=detail):
        session.flush()
    return subscriber


def set_statuses(
    session: Session,
    subscribers: Iterable[Subscriber],
    status: str,
    *,
    source: str,
    actor: str = "",
    detail: str = "",
    at: dt.datetime | None = None,
) -> int:
    """Set the status of subscribers already loaded (a batch, e.g. by the bounce handler), each
    change in the consent history; those already in `status` are left alone. How many changed."""
    if status not in SUBSCRIBER_STATUSES:
        raise InvalidValueError(
            f"unknown status {status!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}"
        )
    now = at or utcnow()
    changed = 0
    for subscriber in subscribers:
        if subscriber.status == status:
            continue
        subscriber.status = status
        subscriber.updated_at = now
        record_consent(session, subscriber, f"status-{status}", source, actor, detail=detail,
                       at=now)
        changed += 1
    return changed


def block(session: Session, email: str, *, actor: str = "", note: str = "",
          source: str = "cli") -> Subscriber:
    """Stop all mail to a person: status `blocked` and the address on the suppression list."""
    subscriber = set_status(session, email, "blocked", source=source, actor=actor, detail=note)
    suppress(session, subscriber.email, "blocked", note=note)
    return subscriber


def erase(session: Session, email: str, *, actor: str = "") -> str:
    """The right to erasure: delete the person and everything that names them.

    Only a one-way hash stays, on the suppression list, so a later import or form cannot bring
    the person back. Returns that hash.
    """
    subscriber = get_subscriber(session, email)
    digest = email_hash(subscriber.email)
    existing = queries.suppression_by_hash(session, digest)
    if existing is None:
        session.add(Suppression(email_hash=digest, email=None, email_key=None, reason="erased",
                                note="", created_at=utcnow()))
    else:
        existing.email = None
        existing.email_key = None
        existing.reason = "erased"
        existing.note = ""
    # Rows in other tables that carry the address (deliveries, bounces, RSVPs) are cleared by
    # the mailer's erasure hook before this; foreign keys null or cascade the rest.
    queries.delete_subscriber(session, subscriber.id)
    session.expunge(subscriber)
    session.flush()
    return digest


def suppress(session: Session, email: str, reason: str = "manual", *, note: str = "") -> bool:
    """Put an address on the suppression list; False if it was there already."""
    address = normalize_email(email)
    digest = email_hash(address)
    if queries.suppression_by_hash(session, digest) is not None:
        return False
    session.add(
        Suppression(
            email_hash=digest,
            email=address,
            email_key=email_key(address),
            reason=_one_line(reason),
            note=_lines(note),
            created_at=utcnow(),
        )
    )
    session.flush()
    return True


def unsuppress(session: Session, email: str) -> None:
    """Take an address off the suppression list. Erased people (hash only) match too."""
    found = queries.suppression_by_hash(session, email_hash(email))
    if found is None:
        raise SubscriberNotFoundError(f"{email.strip()} is not on the suppression list")
    session.delete(found)
    session.flush()


def subscriber_record(session: Session, email: str) -> dict[str, Any]:
    """Everything held on one person by this package: the answer to an access request."""
    subscriber = get_subscriber(session, email)
    subscriptions = queries.subscriptions_of(session, subscriber.id)
    history = queries.consent_history(session, subscriber.id)
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "organisation": subscriber.organisation,
        "job_title": subscriber.job_title,
        "region": subscriber.region,
        "language": subscriber.language,
        "status": subscriber.status,
        "attributes": dict(subscriber.attributes or {}),
        "created_at": subscriber.created_at,
        "updated_at": subscriber.updated_at,
        "consent": {
            "at": subscriber.consent_at,
            "source": subscriber.consent_source,
            "by": subscriber.consent_by,
        },
        "lists": [slug for sub, slug in subscriptions if sub.status == "active"],
        "subscriptions": [
            {
                "list": slug,
                "status": sub.status,
                "created_at": sub.created_at,
                "confirmed_at": sub.confirmed_at,
                "unsubscribed_at": sub.unsubscribed_at,
            }
            for sub, slug in subscriptions
        ],
        "consent_history": [
            {
                "at": ev.at,
                "action": ev.action,
                "list": slug,
                "source": ev.source,
                "by": ev.actor,
                "detail": ev.detail,
            }
            for ev, slug in history
        ],
        "suppressed": is_suppressed(session, subscriber.email),
    }


def consent_figures(session: Session, since: dt.datetime) -> dict[str, int]:
    """Web sign-ups and unsubscribes since `since` (people, not events)."""
    return queries.consent_figures(session, since)


def unsubscribed_from_campaign(session: Session, campaign_id: int, since: dt.datetime) -> int:
    """People who followed this campaign's unsubscribe link since `since`."""
    return queries.left_with_detail(session, campaign_detail(campaign_id), since)


def campaign_detail(campaign_id: object) -> str:
    """What the consent history says of an unsubscribe through a campaign's link."""
    return f"campaign {campaign_id}"
