"""List use cases: the lists with their counts and growth, one list, create and edit; audited.

What `mailer lists` and the console's list pages do, as session-level functions: the caller
owns the transaction (the CLI's `session_scope`, the console's `Console.db`), so a change and
its audit row are committed together. Reading needs `lists.read`, changing `lists.manage`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from mailer import audit
from mailer.audit import Actor
from mailer.kernel.clock import utcnow
from mailer.usecases.users import require
from subscribers import queries, service
from subscribers.errors import DuplicateError, SubscriberError
from subscribers.models import MailingList

__all__ = ["GROWTH_MONTHS", "overview", "get_list", "create_list", "edit_list", "error_field",
           "months_back"]

#: How far back the growth figures go.
GROWTH_MONTHS = 12


def _view(ml: MailingList) -> dict[str, Any]:
    return {"slug": ml.slug, "title": ml.title, "description": ml.description,
            "opt_in": ml.opt_in, "public": ml.public}


def months_back(now: dt.datetime, count: int = GROWTH_MONTHS) -> list[tuple[int, int]]:
    """The last `count` calendar months as (year, month), oldest first, this month last."""
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def overview(session: Session, actor: Actor, *, growth: bool = False,
             now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every list with its active and pending subscribers (what `lists ls` prints); with
    `growth`, also `months`: (year, month, joined, left) for each of the last GROWTH_MONTHS
    months, and their totals `joined` and `left`, from one grouped query over all lists."""
    require(actor, "lists.read")
    rows = [{**_view(ml), "active": active, "pending": pending, "created_at": ml.created_at,
             "id": ml.id}
            for ml, active, pending in queries.list_summaries(session)]
    if growth:
        months = months_back(now or utcnow())
        first_year, first_month = months[0]
        since = dt.datetime(first_year, first_month, 1, tzinfo=dt.UTC)
        moves: dict[tuple[int, int, int], tuple[int, int]] = {
            (list_id, y, m): (joined, left)
            for list_id, y, m, joined, left in queries.list_growth(session, since)}
        for row in rows:
            per_month = [(y, m, *moves.get((row["id"], y, m), (0, 0))) for y, m in months]
            row["months"] = per_month
            row["joined"] = sum(p[2] for p in per_month)
            row["left"] = sum(p[3] for p in per_month)
    for row in rows:
        del row["id"]
    return rows


def get_list(session: Session, actor: Actor, slug: str, *, growth: bool = False,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """One list with its counts (what `lists show` prints); ListNotFoundError if none."""
    require(actor, "lists.read")
    service.get_list(session, slug)
    return next(r for r in overview(session, actor, growth=growth, now=now)
                if r["slug"] == slug)


def create_list(session: Session, actor: Actor, slug: str, title: str, description: str = "",
                *, double_opt_in: bool = False, public: bool = False) -> MailingList:
    """A new list (the subscribers package checks slug and title, and strips controls)."""
    require(actor, "lists.manage")
    created = service.create_list(session, slug, title, description,
                                  double_opt_in=double_opt_in, public=public)
    audit.record(session, actor, "list.create", ("list", created.slug), None, _view(created))
    return created


def edit_list(session: Session, actor: Actor, slug: str, *, title: str | None = None,
              description: str | None = None, double_opt_in: bool | None = None,
              public: bool | None = None) -> MailingList:
    """Change a list; None leaves a field as it is. Audited only when something changed."""
    require(actor, "lists.manage")
    before = _view(service.get_list(session, slug))
    changed = service.edit_list(session, slug, title=title, description=description,
                                double_opt_in=double_opt_in, public=public)
    after = _view(changed)
    if after != before:
        audit.record(session, actor, "list.edit", ("list", changed.slug),
                     {k: v for k, v in before.items() if after[k] != v},
                     {k: v for k, v in after.items() if before[k] != v})
    return changed


def error_field(exc: SubscriberError) -> str:
    """Which form field a list error is about ("slug", "title" or "" for the page), so the
    console shows the CLI's one-line message beside it."""
    message = str(exc)
    if isinstance(exc, DuplicateError) or "slug" in message:
        return "slug"
    if "title" in message:
        return "title"
    return ""
