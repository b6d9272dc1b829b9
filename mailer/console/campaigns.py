"""Campaign pages: list, new and edit (Markdown with live preview through the real renderer),
audience builder with a live count, test send, approval, schedule, pause, resume, cancel, and
live status. Every change goes through mailer.usecases.campaigns (the CLI's rules and audit).
"""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute

from mailer.campaigns.service import AudienceSpec, parse_when
from mailer.console import charts
from mailer.console.base import Console, ConsoleRoute, Who
from mailer.errors import MailerError, NotFoundError
from mailer.usecases import campaigns
from mailer.usecases import dashboard as dashboards

__all__ = ["routes", "PREVIEW_CSP"]

#: The preview shows the newsletter as mail clients do: its inline styles, our and https
#: images; still no scripts, forms or plug-ins.
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
MAX_TEST_ADDRESSES = 10


def _audience(form: FormData) -> AudienceSpec:
    orgs = [o.strip() for o in str(form.get("organisations", "")).split(",") if o.strip()]
    return AudienceSpec(
        lists=[str(v) for v in form.getlist("lists")],
        regions=[str(v) for v in form.getlist("regions")],
        organisations=orgs,
        languages=[str(v) for v in form.getlist("languages")],
    )


def _fields(form: FormData) -> dict[str, str]:
    return {"subject": str(form.get("subject", ""))[:998],
            "preheader": str(form.get("preheader", ""))[:500],
            "body": str(form.get("body", ""))[:200_000]}


class _CampaignPages:
    """The endpoints, sharing the console and the settings."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = console.settings
        self.signer = console.app.signer


    def actor(self, request: Request) -> Any:
        who: Who = request.state.who
        return who.actor(request)

    async def campaign_list(self, request: Request) -> Response:
        wanted = request.query_params.get("page", "1")
        page = int(wanted) if wanted.isdigit() and len(wanted) < 7 else 1
        found = await self.console.db(lambda s: campaigns.overview_page(
            s, self.settings, self.actor(request), page=page))
        return self.console.render(request, "campaigns.html", found)

    async def editor(self, request: Request, *, campaign_id: int | None, values: dict[str, Any],
                     error: str = "", status: int = 200) -> Response:
        choices = await self.console.db(
            lambda s: campaigns.audience_choices(s, self.settings, self.actor(request)))
        return self.console.render(request, "editor.html", {
            "campaign_id": campaign_id, "v": values, "choices": choices, "error": error,
        }, status=status)

    def _blank(self) -> dict[str, Any]:
        return {"subject": "", "preheader": "", "body": "", "audience": {
            "lists": [], "regions": [], "organisations": [], "languages": []}}

    async def new_page(self, request: Request) -> Response:
        return await self.editor(request, campaign_id=None, values=self._blank())

    def _posted(self, form: FormData) -> dict[str, Any]:
        spec = _audience(form)
        return {**_fields(form), "audience": {
            "lists": list(spec.lists), "regions": list(spec.regions),
            "organisations": list(spec.organisations), "languages": list(spec.languages)}}

    async def create(self, request: Request) -> Response:
        form = await request.form()

        def work(session: Session) -> int | str:
            try:
                return campaigns.create_draft(
                    session, self.settings, self.signer, self.actor(request),
                    audience=_audience(form), **_fields(form)).id
            except MailerError as exc:
                session.rollback()
                return str(exc)

        result = await self.console.db(work)
        if isinstance(result, str):
            return await self.editor(request, campaign_id=None, values=self._posted(form),
                                     error=result, status=400)
        return self.console.redirect(f"/campaigns/{result}")

    def _load(self, session: Session, request: Request, campaign_id: int) -> dict[str, Any] | None:
        try:
            info = campaigns.detail(session, self.actor(request), campaign_id)
        except NotFoundError:
            return None
        return info

    def _draft(self, session: Session, request: Request, campaign_id: int
               ) -> dict[str, Any] | None:
        try:
            return campaigns.draft_fields(session, self.actor(request), campaign_id)
        except NotFoundError:
            return None

    async def edit_page(self, request: Request) -> Response:
        campaign_id: int = request.path_params["campaign_id"]
        # Not `detail`: the editor needs no delivery or audience counts (it asks for its
        # live count itself), and counting a 100,000-person audience took most of the page.
        info = await self.console.db(self._draft, request, campaign_id)
        if info is None:
            raise HTTPException(404)
        if info["status"] != "draft":
            return self.console.redirect(f"/campaigns/{campaign_id}")
        audience = {"lists": [], "regions": [], "organisations": [], "languages": [],
                    **info["audience"]}
        return await self.editor(request, campaign_id=campaign_id, values={
            "subject": info["subject"], "preheader": info["preheader"], "body": info["body"],
            "audience": audience})

    async def edit(self, request: Request) -> Response:
        campaign_id: int = request.path_params["campaign_id"]
        form = await request.form()

        def work(session: Session) -> str:
            try:
                campaigns.edit_draft(
                    session, self.settings, self.signer, self.actor(request), campaign_id,
                    audience=_audience(form), **_fields(form))
            except NotFoundError:
                raise HTTPException(404) from None
            except MailerError as exc:
                session.rollback()
                return str(exc)
            return ""

        error = await self.console.db(work)
        if error:
            return await self.editor(request, campaign_id=campaign_id, values=self._posted(form),
                                error=error, status=400)
        return self.console.redirect(f"/campaigns/{campaign_id}")

    async def preview(self, request: Request) -> Response:
        form = await request.form()
        lang = "en" if form.get("lang") == "en" else "nl"

        def work(session: Session) -> tuple[str, str]:
            fields = _fields(form)
            try:
                rendered = campaigns.preview(
                    session, self.settings, self.signer, self.actor(request), language=lang,
                    subject=fields["subject"], preheader=fields["preheader"],
                    body=fields["body"])
            except MailerError as exc:
                return "", str(exc)
            finally:
                session.rollback()  # a preview stores nothing
            return rendered.html, ""

        body, error = await self.console.db(work)
        if error:
            body = ("<!doctype html><html><body><p role=\"alert\">"
                    f"{html.escape(error)}</p></body></html>")
        return HTMLResponse(body, headers={"content-security-policy": PREVIEW_CSP})

    async def count(self, request: Request) -> Response:
        form = await request.form()

        def work(session: Session) -> str:
            try:
                n = campaigns.audience_count(session, self.settings, self.actor(request),
                                             _audience(form))
            except MailerError as exc:
                return str(exc)
            return str(n)

        value = await self.console.db(work)
        return self.console.render(request, "_count.html", {"count": value})

    def _status(self, session: Session, request: Request, campaign_id: int
                ) -> dict[str, Any] | None:
        """The campaign with its live status: bounces and alerts, unsubscribes, charts."""
        try:
            info = dashboards.live_status(session, self.settings, self.actor(request),
                                          campaign_id)
        except NotFoundError:
            return None
        series, tz = info["series"], self.settings.tz
        info["charts"] = {
            "sent": charts.bars(series["sent"], tz=tz, step=series["step"]),
            "bounces": charts.bars([(at, sum(kinds.values())) for at, kinds in series["bounces"]],
                                   tz=tz, step=series["step"]),
        }
        return info

    async def campaign_page(self, request: Request, *, error: str = "", notice: str = "",
                            status: int = 200) -> Response:
        campaign_id: int = request.path_params["campaign_id"]
        info = await self.console.db(self._status, request, campaign_id)
        if info is None:
            raise HTTPException(404)
        return self.console.render(request, "campaign.html", {
            "c": info, "error": error, "notice": notice}, status=status)

    async def show(self, request: Request) -> Response:
        return await self.campaign_page(request)

    async def live_status(self, request: Request) -> Response:
        campaign_id: int = request.path_params["campaign_id"]
        info = await self.console.db(self._status, request, campaign_id)
        if info is None:
            raise HTTPException(404)
        return self.console.render(request, "_status.html", {"c": info})

    async def test_send(self, request: Request) -> Response:
        campaign_id: int = request.path_params["campaign_id"]
        form = await request.form()
        to = [a.strip() for a in str(form.get("to", "")).replace(";", ",").split(",")
              if a.strip()][:MAX_TEST_ADDRESSES]
        if not to:
            return await self.campaign_page(request, error="test.none", status=400)
        try:  # the CLI's test send: copies personalised as those subscribers, links working
            await _thread(lambda: campaigns.send_test(self.console.app, campaign_id, to=to,
                                                      actor=self.actor(request)))
        except MailerError as exc:
            return await self.campaign_page(request, error=str(exc), status=400)
        return await self.campaign_page(request, notice="test.sent")

    def action(self, name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            campaign_id: int = request.path_params["campaign_id"]
            form = await request.form()

            def work(session: Session) -> str:
                a = self.actor(request)
                try:
                    if name == "approve":
                        version = str(form.get("version", ""))
                        campaigns.approve(session, a, campaign_id,
                                          version=int(version) if version.isdigit() else None)
                    elif name == "schedule":
                        when = parse_when(str(form.get("at", "")), self.settings)
                        campaigns.schedule(session, self.settings, a, campaign_id, when)
                    elif name == "send":
                        campaigns.send(session, self.settings, a, campaign_id)
                    elif name == "pause":
                        campaigns.pause(session, a, campaign_id)
                    elif name == "resume":
                        campaigns.resume(session, self.settings, a, campaign_id)
                    else:
                        campaigns.cancel(session, a, campaign_id)
                except NotFoundError:
                    raise HTTPException(404) from None
                except MailerError as exc:
                    session.rollback()
                    return str(exc)
                return ""

            error = await self.console.db(work)
            if error:
                return await self.campaign_page(request, error=error, status=400)
            return self.console.redirect(f"/campaigns/{campaign_id}")

        endpoint.__name__ = f"campaign_{name}"
        return endpoint

    def routes(self) -> list[BaseRoute]:
        def r(path: str, endpoint: Any, permission: str, methods: tuple[str, ...] = ("GET",)
              ) -> ConsoleRoute:
            return ConsoleRoute(path, endpoint, permission=permission, console=self.console,
                                methods=list(methods))

        one = "/campaigns/{campaign_id:int}"
        return [
            r("/campaigns", self.campaign_list, "campaigns.read"),
            r("/campaigns/new", self.new_page, "campaigns.edit"),
            r("/campaigns/new", self.create, "campaigns.edit", ("POST",)),
            r("/campaigns/preview", self.preview, "campaigns.read", ("POST",)),
            r("/campaigns/count", self.count, "campaigns.read", ("POST",)),
            r(one, self.show, "campaigns.read"),
            r(f"{one}/status", self.live_status, "campaigns.read"),
            r(f"{one}/edit", self.edit_page, "campaigns.edit"),
            r(f"{one}/edit", self.edit, "campaigns.edit", ("POST",)),
            r(f"{one}/test", self.test_send, "campaigns.test", ("POST",)),
            r(f"{one}/approve", self.action("approve"), "campaigns.approve", ("POST",)),
            *(r(f"{one}/{name}", self.action(name), "campaigns.schedule", ("POST",))
              for name in ("schedule", "send", "pause", "resume", "cancel")),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _CampaignPages(console).routes()


async def _thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
