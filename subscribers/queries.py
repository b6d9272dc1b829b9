"""Every SQL statement of the subscribers package, as named functions.

The service layer composes these; nothing else in the package builds queries. Statements take
whole sets (ids, keys) so callers never query once per subscriber.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    delete,
    distinct,
    exists,
    extract,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import DatabaseError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from subscribers.models import (
    ConsentEvent,
    MailingList,
    SignupRequest,
    Subscriber,
    Subscription,
    Suppression,
)

__all__ = [
    "SubscriberFilter",
    "list_by_slug",
    "lists_by_slugs",
    "list_summaries",
    "list_growth",
    "subscriber_by_key",
    "subscribers_by_keys",
    "subscriber_by_id",
    "subscriber_by_public_id",
    "add_signup_request",
    "signup_request",
    "delete_signup_request",
    "signup_requests_of",
    "subscribers_by_ids",
    "known_ids_select",
    "contact_rows_by_name",
    "mailable_people_select",
    "all_lists",
    "lists_by_ids",
    "subscription_statuses",
    "delete_unconfirmed_signups",
    "filtered_subscribers",
    "audience_select",
    "mailing_data",
    "subscriptions_of",
    "list_slugs_by_subscriber",
    "suppression_by_hash",
    "suppressed_hashes",
    "suppressed_keys",
    "consent_history",
    "set_subscription_status",
    "delete_subscriber",
    "count_subscribers",
    "like_escape",
    "subscriber_page",
    "attribute_maps",
    "import_lookup",
    "insert_subscribers",
    "update_subscribers",
    "existing_subscriptions",
    "insert_subscriptions",
    "insert_consent_events",
    "suppression_list",
    "consent_figures",
    "left_with_detail",
]


@dataclass(frozen=True)
class SubscriberFilter:
    """Who to select. Empty collections mean "no restriction"; values match case-insensitively."""

    lists: Collection[str] = ()
    statuses: Collection[str] = ()
    regions: Collection[str] = ()
    organisations: Collection[str] = ()
    languages: Collection[str] = ()
    job_titles: Collection[str] = ()
    # Attribute key -> accepted values: every key must match one of its values.
    attributes: Mapping[str, Collection[str]] = field(default_factory=dict)
    search: str = ""
    # Only subscriptions with this status count for `lists` (audience: "active").
    subscription_status: str | None = None
    limit: int | None = None


def list_by_slug(session: Session, slug: str) -> MailingList | None:
    return session.scalar(select(MailingList).where(MailingList.slug == slug))


def lists_by_slugs(session: Session, slugs: Iterable[str]) -> dict[str, MailingList]:
    wanted = set(slugs)
    if not wanted:
        return {}
    rows = session.scalars(select(MailingList).where(MailingList.slug.in_(wanted)))
    return {row.slug: row for row in rows}


def all_lists(session: Session) -> list[MailingList]:
    """Every list, by title (what a preferences page offers)."""
    return list(session.scalars(select(MailingList).order_by(MailingList.title)))


def lists_by_ids(session: Session, ids: Collection[int]) -> list[MailingList]:
    """The lists with these ids, by title."""
    if not ids:
        return []
    stmt = select(MailingList).where(MailingList.id.in_(list(ids))).order_by(MailingList.title)
    return list(session.scalars(stmt))


def list_summaries(session: Session) -> list[tuple[MailingList, int, int]]:
    """Every list with its number of active and pending subscriptions."""
    active = func.count(Subscription.subscriber_id).filter(Subscription.status == "active")
    pending = func.count(Subscription.subscriber_id).filter(Subscription.status == "pending")
    stmt = (
        select(MailingList, active, pending)
        .outerjoin(Subscription, Subscription.list_id == MailingList.id)
        .group_by(MailingList.id)
        .order_by(MailingList.slug)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(stmt)]


def list_growth(session: Session, since: dt.datetime) -> list[tuple[int, int, int, int, int]]:
    """(list id, year, month, joined, left) for every list and calendar month (UTC) since
    `since`, in one grouped statement over all lists: joined counts subscriptions started that
    month that are not still waiting for confirmation, left those unsubscribed that month."""
    def per_month(column: Any, joined: int, *where: ColumnElement[bool]) -> Any:
        return select(
            Subscription.list_id.label("list_id"),
            extract("year", column).label("y"), extract("month", column).label("m"),
            literal(joined).label("joined"), literal(1 - joined).label("left"),
        ).where(column >= since, *where)

    moves = union_all(
        per_month(Subscription.created_at, 1, Subscription.status != "pending"),
        per_month(Subscription.unsubscribed_at, 0, Subscription.unsubscribed_at.is_not(None)),
    ).subquery()
    stmt = (select(moves.c.list_id, moves.c.y, moves.c.m, func.sum(moves.c.joined),
                   func.sum(moves.c.left))
            .group_by(moves.c.list_id, moves.c.y, moves.c.m))
    return [(int(a), int(y), int(m), int(j or 0), int(left or 0))
            for a, y, m, j, left in session.execute(stmt)]


def subscriber_by_key(session: Session, email_key: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email_key == email_key))


def subscribers_by_keys(session: Session, keys: Collection[str]) -> dict[str, Subscriber]:
    """Subscribers for many lower-cased addresses at once (chunked under bind-parameter limits)."""
    found: dict[str, Subscriber] = {}
    ordered = list(keys)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        for sub in session.scalars(select(Subscriber).where(Subscriber.email_key.in_(chunk))):
            found[sub.email_key] = sub
    return found


def subscriber_by_id(session: Session, subscriber_id: int) -> Subscriber | None:
    """The person a signed link names (links carry ids, never addresses)."""
    return session.get(Subscriber, subscriber_id)


def subscriber_by_public_id(session: Session, public_id: str) -> Subscriber | None:
    """The person a signed link names (links carry public ids, never row ids or addresses)."""
    return session.scalars(select(Subscriber).where(Subscriber.public_id == public_id)).first()


def subscribers_by_ids(
    session: Session, ids: Collection[int], *, refresh: bool = False
) -> dict[int, Subscriber]:
    """Subscribers for many ids at once (chunked under bind-parameter limits).

    `refresh` re-reads people this session already holds, for a sender that must see a status
    changed since (someone who left or bounced a moment ago).
    """
    wanted = list(ids)
    found: dict[int, Subscriber] = {}
    for start in range(0, len(wanted), 5000):
        stmt = select(Subscriber).where(Subscriber.id.in_(wanted[start : start + 5000]))
        if refresh:
            stmt = stmt.execution_options(populate_existing=True)
        for sub in session.scalars(stmt):
            found[sub.id] = sub
    return found


def known_ids_select(ids: Collection[int]) -> Select[int]:
    """Those of these ids that belong to a subscriber, labelled `sid`, as one SELECT.

    For another package's INSERT ... SELECT, so ids of people erased meanwhile drop out
    in the same statement.
    """
    return select(Subscriber.id.label("sid")).where(Subscriber.id.in_(list(ids)))


def contact_rows_by_name(session: Session, ids: Select[Any]) -> list[dict[str, Any]]:
    """id, name, email, organisation and region of the people a SELECT of ids names.

    Ordered by lower-cased name, then id, in the database's collation, so an attendee list
    sorts names the same on every page. `ids` is a one-column SELECT, so a list of any size
    is one query.
    """
    stmt = (
        select(
            Subscriber.id,
            Subscriber.name,
            Subscriber.email,
            Subscriber.organisation,
            Subscriber.region,
        )
        .where(Subscriber.id.in_(ids))
        .order_by(func.lower(Subscriber.name), Subscriber.id)
    )
    return [dict(row._mapping) for row in session.execute(stmt)]


def mailable_people_select(ids: Select[Any]) -> Select[int, str]:
    """(id, email) of the active, unsuppressed people among a SELECT of ids, by id.

    Meant for INSERT ... SELECT (meeting mail to everyone invited), like `audience_select`.
    """
    suppressed = exists(select(Suppression.id).where(Suppression.email_key == Subscriber.email_key))
    return (
        select(Subscriber.id, Subscriber.email)
        .where(Subscriber.id.in_(ids), Subscriber.status == "active", ~suppressed)
        .order_by(Subscriber.id)
    )


def _filter_clauses(flt: SubscriberFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if flt.statuses:
        clauses.append(Subscriber.status.in_(list(flt.statuses)))
    if flt.regions:
        clauses.append(func.lower(Subscriber.region).in_([r.lower() for r in flt.regions]))
    if flt.organisations:
        clauses.append(
            func.lower(Subscriber.organisation).in_([o.lower() for o in flt.organisations])
        )
    if flt.languages:
        clauses.append(Subscriber.language.in_([lang.lower() for lang in flt.languages]))
    if flt.job_titles:
        clauses.append(func.lower(Subscriber.job_title).in_([j.lower() for j in flt.job_titles]))
    for key, values in flt.attributes.items():
        # JSON_EXTRACT on SQLite, ->> on PostgreSQL; the key is a bound parameter.
        clauses.append(func.lower(Subscriber.attributes[key].as_string()).in_(
            [str(v).lower() for v in values]))
    if flt.lists:
        sub_clauses = [
            Subscription.subscriber_id == Subscriber.id,
            MailingList.slug.in_(list(flt.lists)),
        ]
        if flt.subscription_status:
            sub_clauses.append(Subscription.status == flt.subscription_status)
        clauses.append(
            exists(
                select(Subscription.subscriber_id)
                .join(MailingList, MailingList.id == Subscription.list_id)
                .where(and_(*sub_clauses))
            )
        )
    if flt.search:
        # The text is matched literally: % and _ typed into a search box are characters, not
        # LIKE wildcards. email_key is the address lower-cased already.
        pattern = "%" + like_escape(flt.search.lower()) + "%"
        clauses.append(
            _contains(Subscriber.email_key, pattern)
            | _contains(Subscriber.name, pattern)
            | _contains(Subscriber.organisation, pattern)
        )
    return clauses


class _LikeAnyCase(ColumnElement[bool]):
    """`column LIKE pattern` in any case, with backslash as the escape character.

    SQLite's LIKE ignores ASCII case already (as its lower() knows only ASCII), so it gets the
    plain LIKE, which skips a lower() per row and cell: a search over 100,000 people reads
    every row when nothing matches, and this makes that 2-3 times faster. PostgreSQL gets
    ILIKE, which knows every alphabet's case.
    """

    inherit_cache = True
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], pattern: str) -> None:
        self.column = column
        self.pattern = literal(pattern)


@compiles(_LikeAnyCase)
def _like_default(element: _LikeAnyCase, compiler: Any, **kw: Any) -> str:
    return (f"(lower({compiler.process(element.column, **kw)}) LIKE "
            f"{compiler.process(element.pattern, **kw)} ESCAPE '\\')")


@compiles(_LikeAnyCase, "sqlite")
def _like_sqlite(element: _LikeAnyCase, compiler: Any, **kw: Any) -> str:
    return (f"({compiler.process(element.column, **kw)} LIKE "
            f"{compiler.process(element.pattern, **kw)} ESCAPE '\\')")


@compiles(_LikeAnyCase, "postgresql")
def _like_postgresql(element: _LikeAnyCase, compiler: Any, **kw: Any) -> str:
    return (f"({compiler.process(element.column, **kw)} ILIKE "
            f"{compiler.process(element.pattern, **kw)} ESCAPE '\\')")


def _contains(column: Any, pattern: str) -> ColumnElement[bool]:
    return _LikeAnyCase(column, pattern)


def filtered_subscribers(session: Session, flt: SubscriberFilter) -> Select[Subscriber]:
    """The subscribers matching a filter, ordered by id (stream with `session.scalars(...)`)."""
    stmt = select(Subscriber).where(*_filter_clauses(flt)).order_by(Subscriber.id)
    if flt.limit:
        stmt = stmt.limit(flt.limit)
    return stmt


def audience_select(flt: SubscriberFilter) -> Select[int, str]:
    """(subscriber id, address) of everyone who may be mailed under a filter.

    Active people with an active subscription to one of the filter's lists, narrowed by region,
    organisation and language, minus suppressed addresses. Meant for INSERT ... SELECT, so an
    audience of any size is snapshotted in one statement.
    """
    base = SubscriberFilter(
        lists=flt.lists,
        statuses=("active",),
        regions=flt.regions,
        organisations=flt.organisations,
        languages=flt.languages,
        job_titles=flt.job_titles,
        attributes=flt.attributes,
        subscription_status="active",
    )
    not_suppressed = ~exists(
        select(Suppression.id).where(Suppression.email_key == Subscriber.email_key)
    )
    clauses = [*_filter_clauses(base), not_suppressed]
    if not flt.lists:
        # "Everyone", but not people whose only subscriptions await a double opt-in
        # confirmation: a web sign-up that nobody confirmed has agreed to nothing yet.
        clauses.append(~_has_subscription("pending") | _has_subscription("active"))
    return select(Subscriber.id, Subscriber.email).where(*clauses).order_by(Subscriber.id)


def mailing_data(
    session: Session, subscriber_ids: Collection[int], lists: Collection[str]
) -> dict[int, dict[str, Any]]:
    """What a message is personalised with, for many subscribers in one query, by id.

    `mailable` says whether the person may still be mailed for a campaign to `lists`, by the
    same rules as `audience_select`: the delivery engine skips those who left, were suppressed
    or bounced after the audience was snapshotted.
    """
    if not subscriber_ids:
        return {}
    subscribed: ColumnElement[bool]
    if lists:
        subscribed = exists(
            select(Subscription.subscriber_id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(
                Subscription.subscriber_id == Subscriber.id,
                Subscription.status == "active",
                MailingList.slug.in_(list(lists)),
            )
        )
    else:  # as audience_select: not someone whose only sign-ups await confirmation
        subscribed = ~_has_subscription("pending") | _has_subscription("active")
    suppressed = exists(select(Suppression.id).where(Suppression.email_key == Subscriber.email_key))
    mailable = and_(Subscriber.status == "active", ~suppressed, subscribed)
    stmt = select(
        Subscriber.id,
        Subscriber.public_id,
        Subscriber.email,
        Subscriber.name,
        Subscriber.organisation,
        Subscriber.job_title,
        Subscriber.region,
        Subscriber.language,
        Subscriber.attributes,
        mailable.label("mailable"),
    ).where(Subscriber.id.in_(list(subscriber_ids)))
    return {row.id: dict(row._mapping) for row in session.execute(stmt)}


def _has_subscription(status: str) -> ColumnElement[bool]:
    return exists(
        select(Subscription.subscriber_id).where(
            Subscription.subscriber_id == Subscriber.id, Subscription.status == status
        )
    )


def subscriptions_of(session: Session, subscriber_id: int) -> list[tuple[Subscription, str]]:
    stmt = (
        select(Subscription, MailingList.slug)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id == subscriber_id)
        .order_by(MailingList.slug)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def list_slugs_by_subscriber(
    session: Session, subscriber_ids: Collection[int], status: str | None = "active"
) -> dict[int, list[str]]:
    """Slugs of each subscriber's lists, for a whole page or export batch in one query."""
    result: dict[int, list[str]] = {sid: [] for sid in subscriber_ids}
    ids = list(subscriber_ids)
    for start in range(0, len(ids), 5000):
        stmt = (
            select(Subscription.subscriber_id, MailingList.slug)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id.in_(ids[start : start + 5000]))
            .order_by(MailingList.slug)
        )
        if status:
            stmt = stmt.where(Subscription.status == status)
        for sid, slug in session.execute(stmt):
            result[sid].append(slug)
    return result


def subscription_statuses(session: Session, subscriber_id: int) -> dict[int, str]:
    """{list id: subscription status} of one person."""
    stmt = select(Subscription.list_id, Subscription.status).where(
        Subscription.subscriber_id == subscriber_id
    )
    return {list_id: status for list_id, status in session.execute(stmt)}


def suppression_by_hash(session: Session, email_hash: str) -> Suppression | None:
    return session.scalar(select(Suppression).where(Suppression.email_hash == email_hash))


def suppressed_hashes(session: Session, hashes: Collection[str]) -> set[str]:
    found: set[str] = set()
    ordered = list(hashes)
    for start in range(0, len(ordered), 5000):
        stmt = select(Suppression.email_hash).where(
            Suppression.email_hash.in_(ordered[start : start + 5000])
        )
        found.update(session.scalars(stmt))
    return found


def suppressed_keys(session: Session, keys: Collection[str]) -> set[str]:
    found: set[str] = set()
    ordered = list(keys)
    for start in range(0, len(ordered), 5000):
        stmt = select(Suppression.email_key).where(
            Suppression.email_key.in_(ordered[start : start + 5000])
        )
        found.update(k for k in session.scalars(stmt) if k)
    return found


def consent_history(session: Session, subscriber_id: int) -> list[tuple[ConsentEvent, str | None]]:
    stmt = (
        select(ConsentEvent, MailingList.slug)
        .outerjoin(MailingList, MailingList.id == ConsentEvent.list_id)
        .where(ConsentEvent.subscriber_id == subscriber_id)
        .order_by(ConsentEvent.at, ConsentEvent.id)
    )
    return [(row[0], row[1]) for row in session.execute(stmt)]


def set_subscription_status(
    session: Session,
    subscriber_ids: Collection[int],
    list_ids: Collection[int] | None,
    **values: object,
) -> int:
    """Update subscriptions of many people at once; `list_ids=None` means all their lists."""
    if not subscriber_ids:
        return 0
    stmt = update(Subscription).where(Subscription.subscriber_id.in_(list(subscriber_ids)))
    if list_ids is not None:
        stmt = stmt.where(Subscription.list_id.in_(list(list_ids)))
    result = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_subscriber(session: Session, subscriber_id: int) -> None:
    session.execute(delete(Subscriber).where(Subscriber.id == subscriber_id))


def add_signup_request(session: Session, subscriber_id: int, *, name: str, organisation: str,
                       language: str) -> SignupRequest:
    """Store what a web sign-up for a known address asked for, until it is confirmed."""
    request = SignupRequest(subscriber_id=subscriber_id, name=name, organisation=organisation,
                            language=language)
    session.add(request)
    session.flush()
    return request


def signup_request(session: Session, request_id: int, subscriber_id: int) -> SignupRequest | None:
    """The stored request a confirmation link names, if it is this person's and still there."""
    return session.scalars(select(SignupRequest).where(
        SignupRequest.id == request_id, SignupRequest.subscriber_id == subscriber_id)).first()


def signup_requests_of(session: Session, subscriber_id: int) -> list[SignupRequest]:
    return list(session.scalars(select(SignupRequest).where(
        SignupRequest.subscriber_id == subscriber_id).order_by(SignupRequest.id)))


def delete_signup_request(session: Session, request_id: int) -> None:
    session.execute(delete(SignupRequest).where(SignupRequest.id == request_id))


def delete_unconfirmed_signups(session: Session, created_before: dt.datetime) -> int:
    """Delete people the web form created before `created_before` who never confirmed a list.

    One statement for all of them; subscriptions and consent history go with them (cascade).
    """
    confirmed_anything = exists(
        select(Subscription.subscriber_id).where(
            Subscription.subscriber_id == Subscriber.id,
            or_(Subscription.status != "pending", Subscription.confirmed_at.is_not(None)),
        )
    )
    session.execute(delete(SignupRequest).where(SignupRequest.created_at < created_before))
    stmt = delete(Subscriber).where(
        Subscriber.consent_source == "web",
        Subscriber.status == "active",
        Subscriber.created_at < created_before,
        ~confirmed_anything,
    )
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- import, export and listing: set-at-a-time statements --------------------------------------


def like_escape(text: str) -> str:
    """`text` for a LIKE pattern with escape character backslash: its wildcards made literal."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def count_subscribers(session: Session, flt: SubscriberFilter, *, at_most: int | None = None
                      ) -> int:
    """How many match; with `at_most`, counting stops there (a search as you type over many
    people says "more than N" rather than scanning the whole table for an exact figure)."""
    if at_most is None:
        stmt = select(func.count(Subscriber.id)).where(*_filter_clauses(flt))
    else:
        capped = select(Subscriber.id).where(*_filter_clauses(flt)).limit(at_most).subquery()
        stmt = select(func.count()).select_from(capped)
    return int(session.scalar(stmt) or 0)


def subscriber_page(
    session: Session, flt: SubscriberFilter, *, after_id: int, size: int
) -> list[Subscriber]:
    """The next `size` subscribers matching a filter with id above `after_id` (keyset paging).

    Paging by id keeps every page one cheap indexed query, however far into the table it is.
    """
    stmt = (
        select(Subscriber)
        .where(*_filter_clauses(flt), Subscriber.id > after_id)
        .order_by(Subscriber.id)
        .limit(size)
    )
    return list(session.scalars(stmt))


def attribute_maps(
    session: Session, flt: SubscriberFilter, *, size: int = 5000
) -> Iterator[dict[str, Any]]:
    """Just the attributes of every matching subscriber, page by page (for export headers)."""
    after = 0
    while True:
        stmt = (
            select(Subscriber.id, Subscriber.attributes)
            .where(*_filter_clauses(flt), Subscriber.id > after)
            .order_by(Subscriber.id)
            .limit(size)
        )
        rows = session.execute(stmt).all()
        if not rows:
            return
        for _sid, attributes in rows:
            yield attributes or {}
        after = rows[-1][0]


IMPORT_COLUMNS = (
    "id",
    "email",
    "email_key",
    "name",
    "organisation",
    "job_title",
    "region",
    "language",
    "status",
    "attributes",
)


def import_lookup(session: Session, keys: Collection[str]) -> dict[str, dict[str, Any]]:
    """The fields an import compares, for many lower-cased addresses at once, as plain dicts.

    Plain rows, not ORM objects: an import of 100,000 people keeps no identity map.
    """
    columns = [getattr(Subscriber, name) for name in IMPORT_COLUMNS]
    found: dict[str, dict[str, Any]] = {}
    ordered = list(keys)
    for start in range(0, len(ordered), 5000):
        stmt = select(*columns).where(Subscriber.email_key.in_(ordered[start : start + 5000]))
        for row in session.execute(stmt):
            found[row.email_key] = dict(row._mapping)
    return found


def _table(model: type[Any]) -> Table:
    """The Core table of a model: bulk inserts skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


def _bulk_insert(session: Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in the caller's transaction.

    On PostgreSQL this is a COPY, several times faster than INSERT for an import's hundreds of
    thousands of rows; elsewhere one executemany. A database error comes back as SQLAlchemy's
    DatabaseError either way.
    """
    table = _table(model)
    connection = session.connection()
    if connection.dialect.name != "postgresql" or connection.dialect.driver != "psycopg":
        session.execute(insert(table), list(rows))
        return
    import psycopg
    from psycopg.types.json import Json

    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(table.c[name].type, JSON)}
    statement = f'COPY "{table.name}" ({", ".join(columns)}) FROM STDIN'
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [Json(row[name]) if name in json_columns else row[name] for name in columns]
                )
    except psycopg.Error as exc:
        raise DatabaseError(statement, None, exc) from exc


def insert_subscribers(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert many subscribers in one executemany; returns their ids by email_key.

    A plain executemany (no RETURNING) lets psycopg pipeline the rows, about twice as fast on
    PostgreSQL; the ids then come back in one indexed look-up.
    """
    if not rows:
        return {}
    _bulk_insert(session, Subscriber, rows)
    keys = [row["email_key"] for row in rows]
    found: dict[str, int] = {}
    for start in range(0, len(keys), 5000):
        stmt = select(Subscriber.email_key, Subscriber.id).where(
            Subscriber.email_key.in_(keys[start : start + 5000])
        )
        found.update((key, sid) for key, sid in session.execute(stmt))
    return found


def update_subscribers(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Update many subscribers by primary key (each dict has `id`) in one executemany."""
    if rows:
        session.execute(update(Subscriber), list(rows))


def existing_subscriptions(
    session: Session, subscriber_ids: Collection[int], list_ids: Collection[int]
) -> set[tuple[int, int]]:
    """(subscriber id, list id) pairs that exist already, in any status."""
    found: set[tuple[int, int]] = set()
    if not list_ids:
        return found
    ids = list(subscriber_ids)
    for start in range(0, len(ids), 5000):
        stmt = select(Subscription.subscriber_id, Subscription.list_id).where(
            Subscription.subscriber_id.in_(ids[start : start + 5000]),
            Subscription.list_id.in_(list(list_ids)),
        )
        found.update((sid, lid) for sid, lid in session.execute(stmt))
    return found


def insert_subscriptions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        _bulk_insert(session, Subscription, rows)


def insert_consent_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        _bulk_insert(session, ConsentEvent, rows)


def suppression_list(session: Session, reasons: Collection[str] = ()) -> list[Suppression]:
    stmt = select(Suppression).order_by(Suppression.created_at, Suppression.id)
    if reasons:
        stmt = stmt.where(Suppression.reason.in_(list(reasons)))
    return list(session.scalars(stmt))


#: Consent actions that are a person leaving (one list, or everything).
LEAVING = ("unsubscribe", "unsubscribe-all")


def consent_figures(session: Session, since: dt.datetime) -> dict[str, int]:
    """People who signed up on the web (a confirmed subscription from the sign-up form or the
    preferences page) and people who unsubscribed, since `since`: one query on the
    (action, at) index. Erased people are gone from the history, so from these figures too."""
    leaving = ConsentEvent.action.in_(LEAVING)
    signing_up = and_(ConsentEvent.action == "subscribe", ConsentEvent.source == "web")
    stmt = select(
        func.count(distinct(case((signing_up, ConsentEvent.subscriber_id)))),
        func.count(distinct(case((leaving, ConsentEvent.subscriber_id)))),
    ).where(ConsentEvent.action.in_(("subscribe", *LEAVING)), ConsentEvent.at >= since)
    signups, unsubscribes = session.execute(stmt).one()
    return {"signups": int(signups or 0), "unsubscribes": int(unsubscribes or 0)}


def left_with_detail(session: Session, detail: str, since: dt.datetime) -> int:
    """People who unsubscribed since `since` with this detail (the campaign whose link they
    followed, "campaign 12")."""
    stmt = select(func.count(distinct(ConsentEvent.subscriber_id))).where(
        ConsentEvent.action.in_(LEAVING), ConsentEvent.at >= since,
        ConsentEvent.detail == detail)
    return int(session.scalar(stmt) or 0)
