"""List pages: every list with its subscribers and growth, one list month by month, create and
edit (title, description, opt-in kind, public). Everything goes through mailer.usecases.lists,
the CLI's rules and audit; errors are the CLI's one-line messages, beside their field.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.console.base import Console, ConsoleRoute, Who
from mailer.usecases import lists
from subscribers.errors import ListNotFoundError, SubscriberError

__all__ = ["routes"]


def _fields(form: FormData) -> dict[str, Any]:
    """The posted list fields, cut to what the columns hold (the use case checks the rest)."""
    return {"slug": str(form.get("slug", "")).strip()[:64],
            "title": str(form.get("title", ""))[:400],
            "description": str(form.get("description", ""))[:4000],
            "opt_in": "double" if form.get("opt_in") == "double" else "single",
            "public": form.get("public") == "yes"}


def _bars(months: list[tuple[int, int, int, int]]) -> dict[str, Any]:
    """Bar geometry for one list's inline SVG: joined above the line, left below."""
    peak = max([max(j, left) for _y, _m, j, left in months] + [1])
    bars = []
    for i, (_y, _m, joined, left) in enumerate(months):
        bars.append({"x": i * 10 + 1, "up": round(20 * joined / peak, 1),
                     "down": round(20 * left / peak, 1)})
    return {"bars": bars, "width": len(months) * 10}


class _ListPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    @staticmethod
    def actor(request: Request) -> Any:
        who: Who = request.state.who
        return who.actor(request)

    async def page(self, request: Request, *, values: dict[str, Any] | None = None,
                   error: str = "", field: str = "", status: int = 200) -> Response:
        rows = await self.console.db(lambda s: lists.overview(s, self.actor(request),
                                                              growth=True))
        for row in rows:
            row["chart"] = _bars(row["months"])
        return self.console.render(request, "lists.html", {
            "lists": rows, "v": values or {"slug": "", "title": "", "description": "",
                                           "opt_in": "single", "public": False},
            "error": error, "field": field}, status=status)

    async def list_page(self, request: Request) -> Response:
        return await self.page(request)

    async def create(self, request: Request) -> Response:
        form = await request.form()
        v = _fields(form)

        def work(session: Session) -> tuple[str, str]:
            try:
                lists.create_list(session, self.actor(request), v["slug"], v["title"],
                                  v["description"], double_opt_in=v["opt_in"] == "double",
                                  public=v["public"])
            except SubscriberError as exc:
                session.rollback()
                return str(exc), lists.error_field(exc)
            return "", ""

        error, field = await self.console.db(work)
        if error:
            return await self.page(request, values=v, error=error, field=field, status=400)
        return self.console.redirect(f"/lists/{v['slug']}?done=created")

    async def one(self, request: Request, *, values: dict[str, Any] | None = None,
                  error: str = "", field: str = "", status: int = 200) -> Response:
        slug: str = request.path_params["slug"]

        def work(session: Session) -> dict[str, Any] | None:
            try:
                return lists.get_list(session, self.actor(request), slug, growth=True)
            except ListNotFoundError:
                return None

        info = await self.console.db(work)
        if info is None:
            raise HTTPException(404)
        done = request.query_params.get("done", "")
        return self.console.render(request, "list.html", {
            "l": info, "v": values or info, "error": error, "field": field,
            "notice": done if done in ("created", "saved") else ""}, status=status)

    async def show(self, request: Request) -> Response:
        return await self.one(request)

    async def edit(self, request: Request) -> Response:
        slug: str = request.path_params["slug"]
        form = await request.form()
        v = {**_fields(form), "slug": slug}

        def work(session: Session) -> tuple[str, str]:
            try:
                lists.edit_list(session, self.actor(request), slug, title=v["title"],
                                description=v["description"],
                                double_opt_in=v["opt_in"] == "double", public=v["public"])
            except ListNotFoundError:
                raise HTTPException(404) from None
            except SubscriberError as exc:
                session.rollback()
                return str(exc), lists.error_field(exc)
            return "", ""

        error, field = await self.console.db(work)
        if error:
            return await self.one(request, values=v, error=error, field=field, status=400)
        return self.console.redirect(f"/lists/{slug}?done=saved")

    def routes(self) -> list[BaseRoute]:
        def r(path: str, endpoint: Any, permission: str, method: str = "GET") -> ConsoleRoute:
            return ConsoleRoute(path, endpoint, permission=permission, console=self.console,
                                methods=[method])

        return [
            r("/lists", self.list_page, "lists.read"),
            r("/lists", self.create, "lists.manage", "POST"),
            r("/lists/{slug}", self.show, "lists.read"),
            r("/lists/{slug}", self.edit, "lists.manage", "POST"),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _ListPages(console).routes()
