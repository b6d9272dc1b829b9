"""The audit trail for admins: filter on screen, export as CSV (Excel-friendly)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from mailer.console.base import Console, ConsoleRoute, Who
from mailer.usecases import audit

__all__ = ["routes"]

PERMISSION = "audit.read"


def routes(console: Console) -> list[BaseRoute]:
    tz = console.settings.tz

    def read(session: Session, request: Request, limit: int | None
             ) -> list[dict[str, object]]:
        who: Who = request.state.who
        q = request.query_params
        obj_type, _, obj_id = q.get("object", "").partition(":")
        return [audit.as_dict(e) for e in audit.entries(
            session, who.actor(request), who=q.get("actor") or None,
            action=q.get("action") or None, object_type=obj_type or None,
            object_id=obj_id or None, limit=limit)]

    async def page(request: Request) -> Response:
        rows = await console.db(read, request, 200)
        for row in rows:
            row["local"] = dt.datetime.fromisoformat(str(row["at"])).astimezone(tz).strftime(
                "%Y-%m-%d %H:%M:%S")
            row["change"] = json.dumps(row["after"], ensure_ascii=False) if row["after"] else ""
        q = request.query_params
        return console.render(request, "audit.html", {
            "rows": rows, "filters": {k: q.get(k, "") for k in ("actor", "action", "object")}})

    async def export(request: Request) -> Response:
        rows = await console.db(read, request, None)
        out = io.StringIO()
        out.write("\ufeff")  # Excel reads UTF-8 only with a BOM
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["id", "at", "actor", "action", "object_type", "object_id", "origin",
                         "before", "after"])
        for r in rows:
            writer.writerow([r["id"], r["at"], r["actor"], r["action"], r["object_type"],
                             r["object_id"], r["origin"],
                             json.dumps(r["before"], ensure_ascii=False) if r["before"] else "",
                             json.dumps(r["after"], ensure_ascii=False) if r["after"] else ""])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "content-disposition": 'attachment; filename="gt-mailer-audit.csv"'})

    return [
        ConsoleRoute("/audit", page, permission=PERMISSION, console=console),
        ConsoleRoute("/audit.csv", export, permission=PERMISSION, console=console),
    ]
