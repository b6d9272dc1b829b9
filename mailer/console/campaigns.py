"""Campaign pages: list, new and edit (Markdown with live preview through the real renderer),
image upload, audience builder with a live count, a sample of who is in it and saved segments,
duplicate, test send, ask for approval, the pre-flight checklist, approval, schedule, pause,
resume, cancel, and live status. Every change goes through mailer.usecases (the CLI's rules
and audit).
"""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute

from mailer.campaigns.service import AudienceSpec, parse_attributes, parse_when
from mailer.console import charts
from mailer.console.base import Console, ConsoleRoute, Who
from mailer.errors import MailerError, NotFoundError
from mailer.settings import Settings
from mailer.usecases import campaigns, media, preflight, segments
from mailer.usecases import dashboard as dashboards

__all__ = ["routes", "PREVIEW_CSP", "preview_csp"]

#: The preview shows the newsletter as mail clients do: its inline styles, our and https
#: images (and the subscriber pages' own, where uploaded images are served); still no scripts,
#: forms or plug-ins. `sandbox` (no allow-* tokens) gives the staff-written document an origin
#: of its own and no meta refresh, top navigation or popups, whether it is shown in the
#: editor's frame or opened on its own: an editor's content cannot act in an approver's console
#: session, nor send the frame to a look-alike sign-in page.
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data: "
               "{media}; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox")
MAX_TEST_ADDRESSES = 10


def _commas(value: object) -> list[str]:
    return [o.strip() for o in str(value or "").split(",") if o.strip()]


def _audience(form: FormData) -> AudienceSpec:
    """The audience builder's fields; attributes are KEY=VALUE lines."""
    lines = [line.strip() for line in str(form.get("attributes", "")).splitlines()
             if line.strip()][:50]
    return AudienceSpec(
        lists=[str(v) for v in form.getlist("lists")],
        regions=[str(v) for v in form.getlist("regions")],
        organisations=_commas(form.get("organisations")),
        languages=[str(v) for v in form.getlist("languages")],
        job_titles=_commas(form.get("job_titles")),
        attributes=parse_attributes(lines, option="attribute"),
    )


def _audience_values(audience: dict[str, Any]) -> dict[str, Any]:
    """A stored audience as the editor's fields show it."""
    attributes = audience.get("attributes") or {}
    return {"lists": list(audience.get("lists") or []),
            "regions": list(audience.get("regions") or []),
            "organisations": list(audience.get("organisations") or []),
            "languages": list(audience.get("languages") or []),
            "job_titles": list(audience.get("job_titles") or []),
            "attributes": "\n".join(f"{k}={v}" for k, values in attributes.items()
                                    for v in values)}


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
        self.preview_csp = preview_csp(self.settings)

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
                     error: str = "", notice: str = "", status: int = 200) -> Response:
        def load(session: Session) -> dict[str, Any]:
            a = self.actor(request)
            found = campaigns.audience_choices(session, self.settings, a)
            found["segments"] = [row["name"] for row in segments.segments(session, a)]
            return found

        choices = await self.console.db(load)
        return self.console.render(request, "editor.html", {
            "campaign_id": campaign_id, "v": values, "choices": choices, "error": error,
            "notice": notice, "max_image_kb": self.settings.console.image_max_bytes // 1024,
        }, status=status)

    def _blank(self) -> dict[str, Any]:
        return {"subject": "", "preheader": "", "body": "", "segment_name": "",
                "audience": _audience_values({})}

    async def new_page(self, request: Request) -> Response:
        values = self._blank()
        chosen = request.query_params.get("segment", "")
        if chosen:  # "start from a saved segment": its audience in the builder
            def load(session: Session) -> dict[str, Any] | None:
                try:
                    spec = segments.segment_spec(session, chosen)
                except NotFoundError:
                    return None
                from mailer.campaigns.service import clean_audience

                return clean_audience(session, self.settings, spec)

            audience = await self.console.db(load)
            if audience is None:
                raise HTTPException(404)
            values["audience"] = _audience_values(audience)
            values["segment_name"] = chosen
        return await self.editor(request, campaign_id=None, values=values)

    def _posted(self, form: FormData) -> dict[str, Any]:
        try:
            spec = _audience(form)
            attributes = str(form.get("attributes", ""))
        except MailerError:
            spec, attributes = AudienceSpec(lists=[str(v) for v in form.getlist("lists")]), ""
        return {**_fields(form), "segment_name": str(form.get("segment_name", ""))[:100],
                "audience": {
                    "lists": list(spec.lists), "regions": list(spec.regions),
                    "organisations": list(spec.organisations),
                    "languages": list(spec.languages), "job_titles": list(spec.job_titles),
                    "attributes": attributes[:5000]}}

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
        return await self.editor(request, campaign_id=campaign_id, values={
            "subject": info["subject"], "preheader": info["preheader"], "body": info["body"],
            "segment_name": "", "audience": _audience_values(info["audience"])})

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
        return HTMLResponse(body, headers={"content-security-policy": self.preview_csp})

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

    async def sample(self, request: Request) -> Response:
        """The first people of the audience being built (names: campaigns.edit)."""
        form = await request.form()

        def work(session: Session) -> tuple[list[tuple[str, str]], str]:
            try:
                return segments.audience_sample(session, self.settings, self.actor(request),
                                                _audience(form)), ""
            except MailerError as exc:
                return [], str(exc)

        people, error = await self.console.db(work)
        return self.console.render(request, "_sample.html", {"people": people, "error": error})

    async def save_segment(self, request: Request) -> Response:
        """Save the builder's audience under a name (the editor's other fields are kept)."""
        form = await request.form()
        name = str(form.get("segment_name", ""))
        campaign_id = str(form.get("campaign_id", ""))

        def work(session: Session) -> str:
            try:
                segments.save_segment(session, self.settings, self.actor(request), name,
                                      _audience(form))
            except MailerError as exc:
                session.rollback()
                return str(exc)
            return ""

        error = await self.console.db(work)
        return await self.editor(
            request, campaign_id=int(campaign_id) if campaign_id.isdigit() else None,
            values=self._posted(form), error=error, notice="" if error else "segment.saved",
            status=400 if error else 200)

    async def upload_image(self, request: Request) -> Response:
        """An image for the text: checked and re-encoded by the use case, served from the
        subscriber pages. JSON for the editor's script, a page without it."""
        form = await request.form()
        upload = form.get("image")
        alt = str(form.get("alt", ""))
        limit = self.settings.console.image_max_bytes
        data = b""
        filename = ""
        if upload is not None and not isinstance(upload, str):
            filename = upload.filename or ""
            data = await upload.read(limit + 1)  # one byte more tells "too large"

        def work(session: Session) -> media.StoredImage | str:
            try:
                return media.store_image(session, self.settings, self.actor(request), data,
                                         filename=filename, alt=alt)
            except MailerError as exc:
                session.rollback()
                return str(exc)

        result = await self.console.db(work)
        wants_json = "application/json" in request.headers.get("accept", "")
        if isinstance(result, str):
            if wants_json:
                return JSONResponse({"error": result}, status_code=400)
            return self.console.render(request, "image.html", {"error": result, "image": None},
                                       status=400)
        if wants_json:
            return JSONResponse({"markdown": result.markdown, "url": result.url})
        return self.console.render(request, "image.html", {"error": "", "image": result})

    async def checks(self, request: Request) -> Response:
        """The pre-flight checklist (network checks: each within check_timeout_seconds)."""
        campaign_id: int = request.path_params["campaign_id"]
        try:
            found = await _thread(lambda: preflight.run_checks(
                self.console.app, campaign_id, actor=self.actor(request)))
        except NotFoundError:
            raise HTTPException(404) from None
        context = {"checks": found, "campaign_id": campaign_id,
                   "failed": preflight.failed(found)}
        if request.headers.get("hx-request"):
            return self.console.render(request, "_checks.html", context)
        return self.console.render(request, "checks.html", context)

    async def duplicate(self, request: Request) -> Response:
        campaign_id: int = request.path_params["campaign_id"]

        def work(session: Session) -> int | str:
            try:
                return campaigns.duplicate(session, self.settings, self.signer,
                                           self.actor(request), campaign_id).id
            except NotFoundError:
                raise HTTPException(404) from None
            except MailerError as exc:
                session.rollback()
                return str(exc)

        result = await self.console.db(work)
        if isinstance(result, str):
            return await self.campaign_page(request, error=result, status=400)
        return self.console.redirect(f"/campaigns/{result}/edit")

    async def ask_approval(self, request: Request) -> Response:
        """Record the request, and mail the approvers through the one sender (queued in the
        same transaction; what the relay does not take now, `mailer run` sends later)."""
        campaign_id: int = request.path_params["campaign_id"]
        app = self.console.app

        def work(session: Session) -> list[int] | str:
            try:
                _c, ids = campaigns.request_approval(session, self.settings,
                                                     self.actor(request), campaign_id,
                                                     sender=app.sender)
            except NotFoundError:
                raise HTTPException(404) from None
            except MailerError as exc:
                session.rollback()
                return str(exc)
            return ids

        result = await self.console.db(work)
        if isinstance(result, str):
            return await self.campaign_page(request, error=result, status=400)
        if result:
            await _thread(lambda: _deliver(app, result))
        return self.console.redirect(f"/campaigns/{campaign_id}")

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
            r("/campaigns/sample", self.sample, "campaigns.edit", ("POST",)),
            r("/campaigns/segments", self.save_segment, "campaigns.edit", ("POST",)),
            r("/campaigns/images", self.upload_image, "campaigns.edit", ("POST",)),
            r(one, self.show, "campaigns.read"),
            r(f"{one}/status", self.live_status, "campaigns.read"),
            r(f"{one}/edit", self.edit_page, "campaigns.edit"),
            r(f"{one}/edit", self.edit, "campaigns.edit", ("POST",)),
            r(f"{one}/checks", self.checks, "campaigns.read"),
            r(f"{one}/duplicate", self.duplicate, "campaigns.edit", ("POST",)),
            r(f"{one}/ask", self.ask_approval, "campaigns.edit", ("POST",)),
            r(f"{one}/test", self.test_send, "campaigns.test", ("POST",)),
            r(f"{one}/approve", self.action("approve"), "campaigns.approve", ("POST",)),
            *(r(f"{one}/{name}", self.action(name), "campaigns.schedule", ("POST",))
              for name in ("schedule", "send", "pause", "resume", "cancel")),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _CampaignPages(console).routes()


def preview_csp(settings: Settings) -> str:
    """The preview document's CSP, with the subscriber pages' address for uploaded images."""
    return PREVIEW_CSP.format(media=_origin(settings.web.base_url))


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _deliver(app: Any, ids: list[int]) -> None:
    """Hand the queued notes to the relay now; failures stay in the outbox for `mailer run`."""
    import logging

    try:
        app.sender.deliver_outbox(ids=ids)
    except Exception:
        logging.getLogger("mailer.console").exception("could not send the approval request")


async def _thread(fn: Any, *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
