"""The set-at-a-time reads the mailer package uses to reach subscriber data."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from subscribers import queries, service
from subscribers.service import SubscriberData


def _people(session: Session) -> list[int]:
    service.create_list(session, "news", "Zeta news")
    service.create_list(session, "events", "Alpha events")
    ids = []
    for email, name in [
        ("b@example.org", "bob"),
        ("a@example.org", "Anna"),
        ("c@example.org", "anna"),
    ]:
        sub = service.add_subscriber(session, SubscriberData(email=email, name=name),
                                     lists=["news"])
        ids.append(sub.id)
    session.flush()
    return ids


def test_subscribers_by_ids_and_by_id(session: Session) -> None:
    ids = _people(session)
    found = queries.subscribers_by_ids(session, [*ids, 999_999], refresh=True)
    assert sorted(found) == sorted(ids)
    assert queries.subscriber_by_id(session, ids[0]) is found[ids[0]]
    assert queries.subscriber_by_id(session, 999_999) is None
    assert queries.subscribers_by_ids(session, []) == {}


def test_known_ids_select_drops_unknown_ids(session: Session) -> None:
    ids = _people(session)
    rows = session.scalars(queries.known_ids_select([ids[0], 999_999])).all()
    assert rows == [ids[0]]


def test_contact_rows_by_name_orders_by_name_then_id(session: Session) -> None:
    ids = _people(session)
    wanted = select(union_all(*(select(literal(i).label("i")) for i in ids)).subquery().c.i)
    rows = queries.contact_rows_by_name(session, wanted)
    assert [r["id"] for r in rows] == [ids[1], ids[2], ids[0]]
    assert set(rows[0]) == {"id", "name", "email", "organisation", "region"}


def test_mailable_people_select_leaves_out_inactive_and_suppressed(session: Session) -> None:
    ids = _people(session)
    service.suppress(session, "a@example.org")
    service.block(session, "c@example.org")
    session.flush()
    wanted = select(union_all(*(select(literal(i).label("i")) for i in ids)).subquery().c.i)
    rows = session.execute(queries.mailable_people_select(wanted)).all()
    assert [tuple(r) for r in rows] == [(ids[0], "b@example.org")]


def test_lists_and_subscription_statuses(session: Session) -> None:
    ids = _people(session)
    lists = queries.all_lists(session)
    assert [ml.slug for ml in lists] == ["events", "news"]
    assert [ml.slug for ml in queries.lists_by_ids(session, [ml.id for ml in lists])] == [
        "events", "news"]
    assert queries.lists_by_ids(session, []) == []
    news = queries.list_by_slug(session, "news")
    assert news is not None
    assert queries.subscription_statuses(session, ids[0]) == {news.id: "active"}


def test_delete_unconfirmed_signups(session: Session) -> None:
    service.create_list(session, "news", "News", double_opt_in=True)
    service.add_subscriber(session, SubscriberData(email="w@example.org"), lists=["news"],
                           source="web", pending=True)
    service.add_subscriber(session, SubscriberData(email="k@example.org"), lists=["news"],
                           source="cli")
    session.flush()
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert queries.delete_unconfirmed_signups(session, future) == 1
    assert queries.subscriber_by_key(session, "w@example.org") is None
    assert queries.subscriber_by_key(session, "k@example.org") is not None
