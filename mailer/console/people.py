"""Subscriber pages: search as you type with the CLI's filters, the profile (the access-request
answer, downloadable as JSON), edit, unsubscribe per list, block, reactivate, erase (typed
confirmation), and the export (CSV for Excel or .xlsx). Everything goes through
mailer.usecases.subscribers, which checks the permission and writes the audit trail.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from sqlalchemy.orm import Session
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from mailer.audit import jsonable
from mailer.console.base import Console, ConsoleRoute, Who
from mailer.errors import MailerError
from mailer.usecases import subscribers as usecases
from subscribers.errors import SubscriberError, SubscriberNotFoundError

__all__ = ["routes", "criteria_from", "PAGE_SIZE", "COUNT_CAP"]

#: Rows shown per search; the count stops at COUNT_CAP ("more than 1000").
PAGE_SIZE = 50
COUNT_CAP = 1000
_DONE = ("edit", "unsubscribe", "unchanged", "block", "reactivate")
_EDIT_FIELDS = ("name", "organisation", "job_title", "region", "language")


def criteria_from(q: QueryParams | FormData) -> usecases.Criteria:
    """The filters as the search form sends them (repeated keys: OR within one filter)."""
    def values(key: str) -> tuple[str, ...]:
        return tuple(str(v).strip()[:200] for v in q.getlist(key) if str(v).strip())[:50]

    return usecases.Criteria(lists=values("list"), statuses=values("status"),
                             regions=values("region"), organisations=values("organisation"),
                             languages=values("language"), job_titles=values("job_title"),
                             attributes=usecases.attribute_pairs(values("attr"),
                                                                 option="attribute"),
                             search=str(q.get("q", ""))[:200])


def _filters(q: QueryParams) -> dict[str, Any]:
    return {"q": q.get("q", ""), **{k: list(q.getlist(k)) for k in (
        "list", "status", "region", "language", "organisation", "job_title", "attr")}}


class _People:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = console.settings

    @staticmethod
    def actor(request: Request) -> Any:
        who: Who = request.state.who
        return who.actor(request)

    # -- search ----------------------------------------------------------------------------

    def _search(self, session: Session, request: Request) -> dict[str, Any]:
        actor = self.actor(request)
        out: dict[str, Any] = {"choices": usecases.choices(session, self.settings, actor),
                               "found": None, "search_error": ""}
        try:
            out["found"] = usecases.find(session, self.settings, actor,
                                         criteria_from(request.query_params),
                                         limit=PAGE_SIZE, count_cap=COUNT_CAP)
        except SubscriberError as exc:
            out["search_error"] = str(exc)
        return out

    async def listing(self, request: Request) -> Response:
        found = await self.console.db(self._search, request)
        return self.console.render(request, "subscribers.html", {
            **found, "f": _filters(request.query_params), "cap": COUNT_CAP, "export_error": "",
            "fragment": False,
            "erased": request.query_params.get("erased") == "1"},
            status=400 if found["search_error"] else 200)

    async def rows(self, request: Request) -> Response:
        found = await self.console.db(self._search, request)
        return self.console.render(request, "_subscriber_rows.html", {
            **found, "cap": COUNT_CAP, "fragment": True})

    # -- export ----------------------------------------------------------------------------

    async def export(self, request: Request) -> Response:
        q = request.query_params
        fmt = q.get("format", "csv")
        # Written to a temporary file first (on disk beyond 8 MiB), so an error is a page, not
        # half a download; then streamed out.
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+b")  # noqa: SIM115

        def work(session: Session) -> str:
            try:
                criteria = criteria_from(q)
                if fmt == "xlsx":
                    usecases.export(session, self.settings, self.actor(request), criteria,
                                    cast(BinaryIO, spool), fmt="xlsx")
                else:
                    # Excel reads UTF-8 only with a BOM; JSON has none.
                    text = io.TextIOWrapper(spool, newline="",
                                            encoding="utf-8-sig" if fmt == "csv" else "utf-8")
                    usecases.export(session, self.settings, self.actor(request), criteria,
                                    text, fmt=fmt, delimiter=";")
                    text.flush()
                    text.detach()
            except (SubscriberError, MailerError) as exc:
                session.rollback()
                return str(exc)
            return ""

        error = await self.console.db(work)
        if error:
            spool.close()
            found = await self.console.db(self._search, request)
            return self.console.render(request, "subscribers.html", {
                **found, "f": _filters(q), "cap": COUNT_CAP, "export_error": error,
                "fragment": False,
                "erased": False},
                status=400)
        spool.seek(0)
        kinds = {"xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                          "xlsx"),
                 "json": ("application/json", "json"), "jsonl": ("application/x-ndjson", "jsonl")}
        media, ext = kinds.get(fmt, ("text/csv; charset=utf-8", "csv"))

        def chunks() -> Iterator[bytes]:
            with spool:
                while block := spool.read(1 << 16):
                    yield block

        return StreamingResponse(iterate_in_threadpool(chunks()), media_type=media, headers={
            "content-disposition": f'attachment; filename="gt-mailer-subscribers.{ext}"'})

    # -- one person ------------------------------------------------------------------------

    def _person(self, session: Session, request: Request) -> dict[str, Any]:
        actor = self.actor(request)
        public_id = str(request.path_params["public_id"])
        try:
            email = usecases.email_of(session, actor, public_id)
        except SubscriberNotFoundError:
            raise HTTPException(404) from None
        # Without the kept mail that mentions them: searching every raw message takes seconds
        # with a few thousand kept; the page loads it after itself (`mentions`).
        record = usecases.person(session, self.settings, actor, email, mentions=False)
        return {"r": record, "public_id": public_id,
                "choices": usecases.choices(session, self.settings, actor)}

    def _shown(self, value: Any) -> Any:
        """Times in the configured time zone, to the second (the JSON keeps them exact)."""
        if isinstance(value, dt.datetime):
            return value.astimezone(self.settings.tz).strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, dict):
            return {k: self._shown(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._shown(v) for v in value]
        return value

    async def profile(self, request: Request, *, error: str = "", error_for: str = "",
                      notice: str = "", status: int = 200) -> Response:
        info = await self.console.db(self._person, request)
        r = info["r"] = self._shown(info["r"])
        tables = [(k, v) for k, v in r.items() if isinstance(v, list) and k not in (
            "lists", "subscriptions") and v]
        return self.console.render(request, "subscriber.html", {
            **info, "tables": tables, "error": error, "error_for": error_for,
            "notice": notice, "edit_fields": _EDIT_FIELDS}, status=status)

    async def show(self, request: Request) -> Response:
        done = request.query_params.get("done", "")
        return await self.profile(request, notice=done if done in _DONE else "")

    async def mentions(self, request: Request) -> Response:
        """The received mail that mentions the person: htmx loads it into the profile page
        after the page; without JavaScript the page links here (a page of its own)."""
        actor = self.actor(request)
        public_id = str(request.path_params["public_id"])

        def work(session: Session) -> dict[str, Any]:
            try:
                email = usecases.email_of(session, actor, public_id)
            except SubscriberNotFoundError:
                raise HTTPException(404) from None
            return usecases.person_mentions(session, actor, email)

        found = self._shown(await self.console.db(work))
        context = {"public_id": public_id, "tables": [(k, v) for k, v in found.items() if v]}
        if request.headers.get("hx-request"):
            return self.console.render(request, "_mentions.html", context)
        return self.console.render(request, "subscriber_mentions.html", context)

    async def download(self, request: Request) -> Response:
        actor = self.actor(request)
        public_id = str(request.path_params["public_id"])

        def work(session: Session) -> dict[str, Any]:
            try:
                email = usecases.email_of(session, actor, public_id)
            except SubscriberNotFoundError:
                raise HTTPException(404) from None
            return usecases.person(session, self.settings, actor, email, download=True)

        record = await self.console.db(work)
        body = json.dumps(jsonable(record), ensure_ascii=False, indent=2) + "\n"
        return Response(body, media_type="application/json", headers={
            "content-disposition": f'attachment; filename="inzage-{public_id}.json"'})

    def change(self, name: str, act: Callable[[Session, Any, str, FormData], str | None]
               ) -> Any:
        """A POST that changes one person: the use case's error on the page beside its form,
        otherwise back to the profile (post/redirect/get) with what was done."""
        async def endpoint(request: Request) -> Response:
            form = await request.form()
            public_id = str(request.path_params["public_id"])
            actor = self.actor(request)

            def work(session: Session) -> tuple[str, str]:
                try:
                    email = usecases.email_of(session, actor, public_id)
                except SubscriberNotFoundError:
                    raise HTTPException(404) from None
                try:
                    return "", act(session, actor, email, form) or name
                except (SubscriberError, MailerError) as exc:
                    session.rollback()
                    return str(exc), ""

            error, done = await self.console.db(work)
            if error:
                return await self.profile(request, error=error, error_for=name, status=400)
            if name == "erase":
                await run_in_threadpool(usecases.after_erasure, self.console.app)
                return self.console.redirect("/subscribers?erased=1")
            return self.console.redirect(f"/subscribers/{public_id}?done={done}")

        endpoint.__name__ = f"subscriber_{name}"
        return endpoint

    def _edit(self, session: Session, actor: Any, email: str, form: FormData) -> str | None:
        def given(key: str) -> str | None:  # a field not in the form stays as it is
            return str(form.get(key, ""))[:200] if key in form else None

        new_email = str(form.get("email", "")).strip()[:320]
        usecases.edit(session, self.settings, actor, email, name=given("name"),
                      organisation=given("organisation"), job_title=given("job_title"),
                      region=given("region"), language=given("language"),
                      new_email=new_email if new_email and new_email != email else None)
        return None

    @staticmethod
    def _unsubscribe(session: Session, actor: Any, email: str, form: FormData) -> str | None:
        slug = str(form.get("list", "")) or None
        done = usecases.unsubscribe_person(session, actor, email, slug)
        return "unsubscribe" if done.changed else "unchanged"

    @staticmethod
    def _block(session: Session, actor: Any, email: str, form: FormData) -> str | None:
        usecases.block_person(session, actor, email, note=str(form.get("note", ""))[:500])
        return None

    @staticmethod
    def _reactivate(session: Session, actor: Any, email: str, form: FormData) -> str | None:
        usecases.reactivate_person(session, actor, email, str(form.get("reason", ""))[:500])
        return None

    @staticmethod
    def _erase(session: Session, actor: Any, email: str, form: FormData) -> str | None:
        usecases.erase_person(session, actor, email,
                              confirmation=str(form.get("confirm", ""))[:320])
        return None

    def routes(self) -> list[BaseRoute]:
        def r(path: str, endpoint: Any, permission: str, methods: tuple[str, ...] = ("GET",)
              ) -> ConsoleRoute:
            return ConsoleRoute(path, endpoint, permission=permission, console=self.console,
                                methods=list(methods))

        one = "/subscribers/{public_id}"
        manage = "subscribers.manage"
        return [
            r("/subscribers", self.listing, "subscribers.read"),
            r("/subscribers/rows", self.rows, "subscribers.read"),
            r("/subscribers/export", self.export, "subscribers.export"),
            r(one, self.show, "subscribers.read"),
            r(f"{one}/mentions", self.mentions, "subscribers.read"),
            r(f"{one}/record.json", self.download, "subscribers.export"),
            r(f"{one}/edit", self.change("edit", self._edit), manage, ("POST",)),
            r(f"{one}/unsubscribe", self.change("unsubscribe", self._unsubscribe), manage,
              ("POST",)),
            r(f"{one}/block", self.change("block", self._block), manage, ("POST",)),
            r(f"{one}/reactivate", self.change("reactivate", self._reactivate), manage,
              ("POST",)),
            r(f"{one}/erase", self.change("erase", self._erase), manage, ("POST",)),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _People(console).routes()
