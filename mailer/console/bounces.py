"""Bounce pages: the records with their reason, one record with its message, the figures by
reason and by receiving domain over time, the review queue with "apply", the domain pauses
with "resume", and reactivation of one person or of everyone a filter matches (counted first,
then done after a confirmation). Everything goes through mailer.usecases.bounces, the CLI's
rules and audit.

Bounce mail is written by strangers: its text is only ever shown escaped (autoescape), as
text (never made into links), with control and bidirectional characters shown as `\\x1b`-style
escapes (`visible`), so it cannot disguise itself.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.bounces.models import KINDS
from mailer.bounces.reasons import REASONS
from mailer.console.base import Console, ConsoleRoute, Who
from mailer.errors import MailerError, NotFoundError
from mailer.usecases import bounces
from subscribers.controls import strip_controls
from subscribers.errors import SubscriberError

__all__ = ["routes", "visible"]

#: C0 and C1 controls, DEL, and the invisible and bidirectional formatting characters.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069"
                     "\ufeff]")
_HIDDEN_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069"
                             "\ufeff]")
#: How many addresses a count (dry run) shows before acting.
SHOWN_ADDRESSES = 50


def visible(value: Any, multiline: bool = False) -> str:
    """`value` as text with its hidden characters written out (`\\x1b`, `\\u202e`)."""
    text = "" if value is None else str(value)
    if multiline:
        text = text.replace("\r\n", "\n")
    pattern = _HIDDEN if multiline else _HIDDEN_IN_LINE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _since(text: str) -> dt.datetime | None:
    """A date (YYYY-MM-DD) as midnight UTC; ValueError for anything else."""
    text = text.strip()
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)


def _field(form: FormData, name: str, limit: int) -> str:
    """A posted value without control characters (PostgreSQL cannot even compare a NUL)."""
    return strip_controls(str(form.get(name, ""))).strip()[:limit]


def _filter(form: FormData) -> dict[str, Any]:
    return {"reasons": [str(r) for r in form.getlist("reason")][:len(REASONS)],
            "since": _field(form, "since", 10), "domain": _field(form, "domain", 253)}


def _bars(counts: list[int], peak: int) -> list[dict[str, float]]:
    """Bar geometry for one row's inline SVG (8 px bars, 24 px high)."""
    top = max(peak, 1)
    return [{"x": i * 10 + 1, "h": round(24 * n / top, 1)} for i, n in enumerate(counts)]


class _BouncePages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = console.settings
        console.env.filters.setdefault("visible", visible)

    @staticmethod
    def actor(request: Request) -> Any:
        who: Who = request.state.who
        return who.actor(request)

    @staticmethod
    def by(request: Request) -> str:
        """The name the bounces package keeps with the record: the staff member's address."""
        who: Who = request.state.who
        return who.email

    # -- reading ---------------------------------------------------------------------------

    async def records(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "")
        reason = request.query_params.get("reason", "")
        chosen = {"kind": kind if kind in KINDS else "",
                  "reason": reason if reason in REASONS else ""}
        rows = await self.console.db(lambda s: bounces.records(
            s, self.actor(request), kind=chosen["kind"] or None,
            reason=chosen["reason"] or None, limit=200))
        return self.console.render(request, "bounces.html", {
            "rows": rows, "kinds": KINDS, "reasons": REASONS, "chosen": chosen})

    async def one(self, request: Request) -> Response:
        bounce_id: int = request.path_params["bounce_id"]

        def work(session: Session) -> dict[str, Any] | None:
            try:
                return bounces.record(session, self.actor(request), bounce_id)
            except NotFoundError:
                return None

        info = await self.console.db(work)
        if info is None:
            raise HTTPException(404)
        return self.console.render(request, "bounce.html", {"b": info})

    async def figures(self, request: Request) -> Response:
        figures = await self.console.db(lambda s: bounces.over_time(s, self.actor(request)))
        for key in ("reasons", "domains"):  # one scale per table, so rows compare
            peak = max([n for row in figures[key] for n in row["counts"]], default=0)
            for row in figures[key]:
                row["bars"] = _bars(row["counts"], peak)
        return self.console.render(request, "bounce_figures.html", {"f": figures})

    async def review(self, request: Request, *, error: str = "", notice: str = "",
                     status: int = 200) -> Response:
        rows = await self.console.db(lambda s: bounces.held(s, self.actor(request)))
        return self.console.render(request, "bounce_review.html", {
            "rows": rows, "error": error, "notice": notice}, status=status)

    async def review_page(self, request: Request) -> Response:
        return await self.review(request)

    async def pauses(self, request: Request, *, error: str = "", notice: str = "",
                     status: int = 200) -> Response:
        rows = await self.console.db(lambda s: bounces.pauses(s, self.actor(request)))
        return self.console.render(request, "bounce_pauses.html", {
            "rows": rows, "error": error, "notice": notice}, status=status)

    async def pauses_page(self, request: Request) -> Response:
        return await self.pauses(request)

    # -- acting ----------------------------------------------------------------------------

    async def apply(self, request: Request) -> Response:
        bounce_id: int = request.path_params["bounce_id"]

        def work(session: Session) -> str:
            try:
                bounces.apply(session, self.settings, self.actor(request), bounce_id,
                              by=self.by(request))
            except NotFoundError:
                raise HTTPException(404) from None
            except MailerError as exc:
                session.rollback()
                return str(exc)
            return ""

        error = await self.console.db(work)
        if error:
            return await self.review(request, error=error, status=400)
        return await self.review(request, notice=f"#{bounce_id}")

    async def resume(self, request: Request) -> Response:
        form = await request.form()
        domain = _field(form, "domain", 253)

        def work(session: Session) -> tuple[str, str]:
            try:
                return bounces.resume_domain(session, self.actor(request), domain,
                                             by=self.by(request)), ""
            except MailerError as exc:
                session.rollback()
                return "", str(exc)

        name, error = await self.console.db(work)
        if error:
            return await self.pauses(request, error=error, status=400)
        return await self.pauses(request, notice=name)

    async def reactivate_page(self, request: Request, *, values: dict[str, Any] | None = None,
                              found: list[str] | None = None, error: str = "",
                              error_one: str = "", notice: str = "",
                              status: int = 200) -> Response:
        return self.console.render(request, "bounce_reactivate.html", {
            "reasons": REASONS, "f": values or {"reasons": [], "since": "", "domain": ""},
            "found": found, "shown": (found or [])[:SHOWN_ADDRESSES], "error": error,
            "error_one": error_one, "notice": notice}, status=status)

    async def reactivate_form(self, request: Request) -> Response:
        return await self.reactivate_page(request)

    async def reactivate_many(self, request: Request) -> Response:
        """`count` is the dry run; `confirm` acts, only if the count is still what was shown."""
        form = await request.form()
        flt = _filter(form)
        acting = form.get("step") == "confirm"
        note = _field(form, "note", 500)
        expected = str(form.get("expected", ""))
        try:
            since = _since(flt["since"])
        except ValueError:
            return await self.reactivate_page(request, values=flt, error="reactivate.since.bad",
                                              status=400)

        def work(session: Session) -> tuple[list[str], str]:
            args: dict[str, Any] = {"reasons_": flt["reasons"], "since": since,
                                    "domain": flt["domain"] or None, "by": self.by(request)}
            try:
                found = bounces.reactivate_matching(session, self.actor(request), note=note,
                                                    dry_run=True, **args)
                if not acting or str(len(found)) != expected:
                    return found, "" if not acting else "reactivate.changed"
                return bounces.reactivate_matching(session, self.actor(request), note=note,
                                                   **args), "done"
            except MailerError as exc:
                session.rollback()
                return [], str(exc)

        found, outcome = await self.console.db(work)
        if outcome == "done":
            return await self.reactivate_page(request, notice=str(len(found)))
        if outcome and outcome != "reactivate.changed":
            return await self.reactivate_page(request, values=flt, error=outcome, status=400)
        return await self.reactivate_page(request, values=flt, found=found, error=outcome,
                                          status=409 if outcome else 200)

    async def reactivate_one(self, request: Request) -> Response:
        form = await request.form()
        email = _field(form, "email", 320)
        reason = _field(form, "why", 500)

        def work(session: Session) -> str:
            try:
                bounces.reactivate(session, self.actor(request), email, reason,
                                   by=self.by(request))
            except (MailerError, SubscriberError) as exc:
                session.rollback()
                return str(exc)
            return ""

        error = await self.console.db(work)
        if error:
            return await self.reactivate_page(request, error_one=error, status=400)
        return await self.reactivate_page(request, notice="1")

    def routes(self) -> list[BaseRoute]:
        def r(path: str, endpoint: Any, permission: str, method: str = "GET") -> ConsoleRoute:
            return ConsoleRoute(path, endpoint, permission=permission, console=self.console,
                                methods=[method])

        return [
            r("/bounces", self.records, "bounces.read"),
            r("/bounces/figures", self.figures, "bounces.read"),
            r("/bounces/review", self.review_page, "bounces.read"),
            r("/bounces/pauses", self.pauses_page, "bounces.read"),
            r("/bounces/pauses/resume", self.resume, "bounces.manage", "POST"),
            r("/bounces/reactivate", self.reactivate_form, "bounces.manage"),
            r("/bounces/reactivate", self.reactivate_many, "bounces.manage", "POST"),
            r("/bounces/reactivate/one", self.reactivate_one, "bounces.manage", "POST"),
            r("/bounces/{bounce_id:int}", self.one, "bounces.read"),
            r("/bounces/{bounce_id:int}/apply", self.apply, "bounces.manage", "POST"),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _BouncePages(console).routes()
