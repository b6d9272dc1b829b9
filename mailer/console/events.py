"""Meeting pages: the list, plan and edit (the daylight-saving checks of the CLI, the repeated
autumn hour offered as a choice), cancel, invite (preview through the real renderer, live
count, test copy), live counts of the answers, the attendee list on screen and as CSV / .xlsx,
and an answer given by phone. Every change goes through mailer.usecases.events (the CLI's
rules and audit trail).
"""

from __future__ import annotations

import html
import logging
from typing import Any

from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from mailer.console.base import Console, ConsoleRoute, Who
from mailer.console.campaigns import preview_csp
from mailer.errors import EventError, MailerError, NotFoundError
from mailer.events import service
from mailer.usecases import events
from mailer.usecases.meeting_mail import send_owed_mail
from subscribers.errors import SubscriberError

__all__ = ["routes"]

log = logging.getLogger("mailer.console")

#: The form's fields; times are read with the use case's daylight-saving rules.
TEXT_FIELDS = ("title", "region", "venue", "address", "online_url", "description")
TIME_FIELDS = {"starts": "starts_at", "ends": "ends_at", "deadline": "rsvp_deadline"}
FIELDS = (*TEXT_FIELDS[:2], "starts", "ends", *TEXT_FIELDS[2:5], "capacity", "deadline",
          "description")
# What an error message names (before its colon) -> the form field it is shown beside.
_ERROR_FIELDS = {"online-url": "online_url", "starts_at": "starts", "ends_at": "ends",
                 "rsvp_deadline": "deadline", "answer": "answer", "to": "to"}
_RSVP_KEYS = ("done", "email", "answer", "changed", "waiting", "position", "promoted")
NOTICES = ("created", "changed", "unchanged", "cancelled", "invited", "scheduled")
_LIMITS = {"title": 200, "region": 100, "venue": 200, "address": 2000, "online_url": 500,
           "description": 20_000, "capacity": 9, "starts": 40, "ends": 40, "deadline": 40}


def _field_of(message: str) -> str:
    """The form field an error is about ("" for the page as a whole)."""
    head = message.split(":", 1)[0].strip()
    if head in FIELDS:
        return head
    return _ERROR_FIELDS.get(head, "")


def _invite_field(message: str) -> str:
    """The invitation form's field an error is about ("" for the page as a whole)."""
    head = message.split(":", 1)[0].strip()
    return {"region": "regions", "regions": "regions", "lists": "lists", "subject": "subject",
            "to": "to", "at": "at"}.get(head, "")


def _posted(form: FormData) -> dict[str, str]:
    # Browsers send a textarea's line ends as CRLF; the meeting keeps LF.
    return {k: str(form.get(k, ""))[:_LIMITS[k]].replace("\r\n", "\n") for k in FIELDS}


def _form_values(info: dict[str, Any] | None) -> dict[str, str]:
    """The form as it opens: empty, or the meeting's values (times as the browser shows them)."""
    if info is None:
        return {k: "" for k in FIELDS}
    return {
        "title": info["title"], "region": info["region"],
        "starts": info["starts"].replace(" ", "T"), "ends": info["ends"].replace(" ", "T"),
        "venue": info["venue"], "address": info["address"], "online_url": info["online_url"],
        "capacity": "" if info["capacity"] is None else str(info["capacity"]),
        "deadline": (info["deadline"] or "").replace(" ", "T"),
        "description": info["description"],
    }


def _capacity(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit():
        raise EventError(f"capacity: a whole number of seats, or empty for no limit; got "
                         f"{value[:20]!r}")
    return int(value)


class _EventPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = console.settings
        self.signer = console.app.signer

    @staticmethod
    def actor(request: Request) -> Any:
        who: Who = request.state.who
        return who.actor(request)

    def _time(self, form: FormData, name: str) -> Any:
        value = str(form.get(name, ""))[:40]
        if not value.strip():
            return None
        return events.read_time(self.settings, value, name,
                                offset=str(form.get(f"{name}_offset", ""))[:8])

    # -- the list and one meeting -----------------------------------------------------------

    async def event_list(self, request: Request, *, template: str = "events.html") -> Response:
        everything = request.query_params.get("all") == "1"
        rows = await self.console.db(
            lambda s: events.overview(s, self.actor(request), include_past=everything))
        return self.console.render(request, template, {"events": rows, "all": everything})

    async def event_table(self, request: Request) -> Response:
        """The list's table alone: what the page polls for its live counts (one grouped query
        for all meetings, as the page itself)."""
        return await self.event_list(request, template="_event_table.html")

    async def _detail(self, request: Request, event_id: int) -> dict[str, Any]:
        def work(session: Session) -> dict[str, Any] | None:
            try:
                return events.detail(session, self.actor(request), event_id)
            except NotFoundError:
                return None

        info = await self.console.db(work)
        if info is None:
            raise HTTPException(404)
        return info

    async def event_page(self, request: Request, *, error: str = "", notice: str = "",
                         status: int = 200, rsvp: dict[str, str] | None = None,
                         rsvp_error: str = "") -> Response:
        event_id: int = request.path_params["event_id"]
        info = await self._detail(request, event_id)
        shown = notice or request.query_params.get("notice", "")
        return self.console.render(request, "event.html", {
            "e": info, "error": error, "rsvp_error": rsvp_error,
            "notice": shown if shown in NOTICES else "",
            "rsvp": dict.fromkeys(_RSVP_KEYS, "") | (rsvp or {}),
            "answers": ("yes", "maybe", "no"),
        }, status=status)

    async def show(self, request: Request) -> Response:
        return await self.event_page(request)

    async def live_counts(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]

        def work(session: Session) -> dict[str, Any] | None:
            try:
                return events.counts(session, self.actor(request), event_id)
            except NotFoundError:
                return None

        info = await self.console.db(work)
        if info is None:
            raise HTTPException(404)
        return self.console.render(request, "_event_counts.html", {"e": info})

    # -- plan and edit ----------------------------------------------------------------------

    async def form_page(self, request: Request, *, event_id: int | None, values: dict[str, str],
                        error: Any = None, status: int = 200) -> Response:
        message = str(error) if error is not None else ""
        offsets = getattr(error, "offsets", None)
        return self.console.render(request, "event_form.html", {
            "event_id": event_id, "v": values, "error": message, "field": _field_of(message),
            "offsets": [o for o, _at in offsets] if offsets else [],
            "regions": list(self.settings.regions),
        }, status=status)

    async def new_page(self, request: Request) -> Response:
        return await self.form_page(request, event_id=None, values=_form_values(None))

    def _fields(self, form: FormData) -> service.EventFields:
        v = _posted(form)
        starts, ends = self._time(form, "starts"), self._time(form, "ends")
        if starts is None or ends is None:
            raise EventError(f"{'starts' if starts is None else 'ends'}: give a date and time")
        return service.EventFields(
            title=v["title"], region=v["region"], starts_at=starts, ends_at=ends,
            venue=v["venue"], address=v["address"], online_url=v["online_url"],
            capacity=_capacity(v["capacity"]), rsvp_deadline=self._time(form, "deadline"),
            description=v["description"])

    async def create(self, request: Request) -> Response:
        form = await request.form()

        def work(session: Session) -> int | MailerError:
            try:
                return events.create(session, self.settings, self.actor(request),
                                     self._fields(form)).id
            except MailerError as exc:
                session.rollback()
                return exc

        result = await self.console.db(work)
        if isinstance(result, MailerError):
            return await self.form_page(request, event_id=None, values=_posted(form),
                                        error=result, status=400)
        return self.console.redirect(f"/events/{result}?notice=created")

    async def edit_page(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        info = await self._detail(request, event_id)
        if info["status"] == "cancelled":
            return self.console.redirect(f"/events/{event_id}")
        return await self.form_page(request, event_id=event_id, values=_form_values(info))

    def _changes(self, form: FormData, current: dict[str, str]) -> dict[str, Any]:
        """The fields whose value differs from what the form showed. A time left as shown is
        not read again (the repeated autumn hour would otherwise be asked about each time)."""
        posted = _posted(form)
        changes: dict[str, Any] = {}
        for key in TEXT_FIELDS:
            if posted[key] != current[key]:
                changes[key] = posted[key]
        for name, column in TIME_FIELDS.items():
            if posted[name] != current[name]:
                changes[column] = self._time(form, name)
        if posted["capacity"] != current["capacity"]:
            changes["capacity"] = _capacity(posted["capacity"])
        return changes

    async def edit(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        form = await request.form()

        def work(session: Session) -> str | MailerError:
            a = self.actor(request)
            try:
                current = _form_values(events.detail(session, a, event_id))
                changes = self._changes(form, current)
                if not changes:
                    return "unchanged"
                change = events.edit(session, self.settings, self.signer, a, event_id, changes)
            except NotFoundError:
                raise HTTPException(404) from None
            except MailerError as exc:
                session.rollback()
                return exc
            return "changed" if change.changed else "unchanged"

        result = await self.console.db(work)
        if isinstance(result, MailerError):
            return await self.form_page(request, event_id=event_id, values=_posted(form),
                                        error=result, status=400)
        return self.console.redirect(f"/events/{event_id}?notice={result}")

    async def cancel(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        form = await request.form()
        if form.get("confirm") != "yes":
            return await self.event_page(request, error="event.cancel.confirm_needed",
                                         status=400)

        def work(session: Session) -> str:
            try:
                events.cancel(session, self.settings, self.signer, self.actor(request),
                              event_id)
            except NotFoundError:
                raise HTTPException(404) from None
            except MailerError as exc:
                session.rollback()
                return str(exc)
            return ""

        error = await self.console.db(work)
        if error:
            return await self.event_page(request, error=error, status=400)
        return self.console.redirect(f"/events/{event_id}?notice=cancelled")

    # -- an answer given by phone -----------------------------------------------------------

    async def rsvp(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        form = await request.form()
        email = str(form.get("email", ""))[:320].strip()
        answer = str(form.get("answer", ""))[:8]
        posted = {"email": email, "answer": answer}

        def work(session: Session) -> dict[str, Any] | str:
            try:
                outcome = events.record_answer(session, self.settings, self.actor(request),
                                               event_id, email, answer)
            except NotFoundError:
                raise HTTPException(404) from None
            except SubscriberError as exc:
                session.rollback()
                return f"email: {exc}"
            except MailerError as exc:
                session.rollback()
                return str(exc)
            return {"changed": outcome.changed, "waiting": outcome.waiting,
                    "position": outcome.position, "promoted": len(outcome.promoted)}

        result = await self.console.db(work)
        if isinstance(result, str):
            return await self.event_page(request, rsvp_error=result, status=400, rsvp=posted)
        response = await self.event_page(request, rsvp={**posted, **{
            k: str(v) for k, v in result.items()}, "done": "1"})
        # As the RSVP page does: send the mail the answer owes now (the service retries).
        response.background = BackgroundTask(self._send_owed, event_id)
        return response

    def _send_owed(self, event_id: int) -> None:
        try:
            send_owed_mail(self.console.app, event_id=event_id)
        except Exception:  # the answer stands; `mailer run` sends the owed mail later
            log.exception("could not send meeting mail now")

    # -- attendees --------------------------------------------------------------------------

    async def attendee_page(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        info = await self._detail(request, event_id)
        rows = await self.console.db(
            lambda s: events.attendees(s, self.actor(request), event_id))
        return self.console.render(request, "event_attendees.html", {"e": info, "rows": rows})

    def download(self, fmt: str) -> Any:
        async def endpoint(request: Request) -> Response:
            event_id: int = request.path_params["event_id"]

            def work(session: Session) -> tuple[bytes, str, str]:
                try:
                    return events.attendee_file(session, self.actor(request), event_id, fmt)
                except NotFoundError:
                    raise HTTPException(404) from None

            body, media_type, name = await self.console.db(work)
            return Response(body, media_type=media_type, headers={
                "content-disposition": f'attachment; filename="{name}"'})

        endpoint.__name__ = f"attendees_{fmt}"
        return endpoint

    # -- invitations ------------------------------------------------------------------------

    def _invite_values(self, form: FormData | None, info: dict[str, Any]) -> dict[str, Any]:
        if form is None:
            return {"regions": [info["region"]], "lists": [], "subject": "", "at": "",
                    "to": ""}
        return {"regions": [str(v)[:100] for v in form.getlist("regions")][:20],
                "lists": [str(v)[:64] for v in form.getlist("lists")][:50],
                "subject": str(form.get("subject", ""))[:998],
                "at": str(form.get("at", ""))[:40], "to": str(form.get("to", ""))[:2000]}

    async def invite_page(self, request: Request, *, form: FormData | None = None,
                          error: Any = None, notice: str = "", status: int = 200
                          ) -> Response:
        event_id: int = request.path_params["event_id"]
        info = await self._detail(request, event_id)
        if info["status"] == "cancelled":
            return self.console.redirect(f"/events/{event_id}")
        choices = await self.console.db(
            lambda s: events.invite_choices(s, self.settings, self.actor(request)))
        message = str(error) if error is not None else ""
        offsets = getattr(error, "offsets", None)
        return self.console.render(request, "event_invite.html", {
            "e": info, "v": self._invite_values(form, info), "choices": choices,
            "error": message, "field": _invite_field(message), "notice": notice,
            "offsets": [o for o, _at in offsets] if offsets else [],
        }, status=status)

    async def invite_form(self, request: Request) -> Response:
        return await self.invite_page(request)

    async def invite(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        form = await request.form()
        v = self._invite_values(form, {"region": ""})

        def work(session: Session) -> events.Invited | MailerError:
            try:
                at = self._time(form, "at")
                return events.invite_people(
                    session, self.settings, self.signer, self.actor(request), event_id,
                    lists=v["lists"], regions=v["regions"], at=at,
                    subject=v["subject"].strip() or None)
            except NotFoundError:
                raise HTTPException(404) from None
            except (MailerError, SubscriberError) as exc:
                session.rollback()
                return exc if isinstance(exc, MailerError) else MailerError(f"lists: {exc}")

        result = await self.console.db(work)
        if isinstance(result, MailerError):
            return await self.invite_page(request, form=form, error=result, status=400)
        notice = "scheduled" if result.at is not None else "invited"
        return self.console.redirect(f"/events/{event_id}?notice={notice}")

    async def invite_count(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        form = await request.form()
        v = self._invite_values(form, {"region": ""})

        def work(session: Session) -> str:
            try:
                return str(events.invitation_count(session, self.settings, self.actor(request),
                                                   event_id, lists=v["lists"],
                                                   regions=v["regions"]))
            except (MailerError, SubscriberError) as exc:
                return str(exc)

        return self.console.render(request, "_count.html", {"count": await self.console.db(work)})

    async def invite_preview(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        if request.method == "POST":
            form = await request.form()
            lang, subject = str(form.get("lang", "")), str(form.get("subject", ""))[:998]
        else:
            lang, subject = request.query_params.get("lang", ""), ""
        lang = "en" if lang == "en" else "nl"

        def work(session: Session) -> tuple[str, str]:
            try:
                rendered = events.invitation_preview(
                    session, self.settings, self.signer, self.actor(request), event_id,
                    language=lang, subject=subject.strip() or None)
            except MailerError as exc:
                return "", str(exc)
            finally:
                session.rollback()  # a preview stores nothing
            return rendered.html, ""

        body, error = await self.console.db(work)
        if error:
            body = ("<!doctype html><html><body><p role=\"alert\">"
                    f"{html.escape(error)}</p></body></html>")
        return HTMLResponse(body, headers={"content-security-policy": preview_csp(self.settings)})

    async def invite_test(self, request: Request) -> Response:
        event_id: int = request.path_params["event_id"]
        form = await request.form()
        v = self._invite_values(form, {"region": ""})
        to = [a.strip() for a in v["to"].replace(";", ",").split(",") if a.strip()]
        try:  # `campaigns test`'s rules: copies personalised as those subscribers
            await run_in_threadpool(lambda: events.send_invitation_test(
                self.console.app, event_id, to=to, subject=v["subject"].strip() or None,
                actor=self.actor(request)))
        except NotFoundError:
            raise HTTPException(404) from None
        except MailerError as exc:
            return await self.invite_page(request, form=form, error=exc, status=400)
        return await self.invite_page(request, form=form, notice="event.test.sent")

    def routes(self) -> list[BaseRoute]:
        def r(path: str, endpoint: Any, permission: str, methods: tuple[str, ...] = ("GET",)
              ) -> ConsoleRoute:
            return ConsoleRoute(path, endpoint, permission=permission, console=self.console,
                                methods=list(methods))

        one = "/events/{event_id:int}"
        return [
            r("/events", self.event_list, "events.read"),
            r("/events/table", self.event_table, "events.read"),
            r("/events/new", self.new_page, "events.edit"),
            r("/events/new", self.create, "events.edit", ("POST",)),
            r(one, self.show, "events.read"),
            r(f"{one}/counts", self.live_counts, "events.read"),
            r(f"{one}/edit", self.edit_page, "events.edit"),
            r(f"{one}/edit", self.edit, "events.edit", ("POST",)),
            r(f"{one}/cancel", self.cancel, "events.edit", ("POST",)),
            r(f"{one}/rsvp", self.rsvp, "events.rsvp", ("POST",)),
            r(f"{one}/attendees", self.attendee_page, "events.read"),
            r(f"{one}/attendees.csv", self.download("csv"), "subscribers.export"),
            r(f"{one}/attendees.xlsx", self.download("xlsx"), "subscribers.export"),
            r(f"{one}/invite", self.invite_form, "events.edit"),
            r(f"{one}/invite", self.invite, "events.invite", ("POST",)),
            r(f"{one}/invite/count", self.invite_count, "events.edit", ("POST",)),
            r(f"{one}/invite/preview", self.invite_preview, "events.edit", ("GET", "POST")),
            r(f"{one}/invite/test", self.invite_test, "events.edit", ("POST",)),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _EventPages(console).routes()

