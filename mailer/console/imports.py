"""Importing a CSV file in the console: upload, see what it will read (encoding, delimiter,
what each column becomes, the first rows) before anything is written, run it (in a worker
thread, progress polled by htmx), download the rejects file.

The reading, checking and applying are the CLI's (mailer.usecases.subscribers.preview_import /
run_import over subscribers.importer): the same one-line errors, all or nothing. An upload is
kept in a private folder under data_dir until it is imported or a day old; an import is seen
only by the admin who uploaded it. The jobs live in this process (the console is one process).
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute

from mailer.console.base import Console, ConsoleRoute, Who
from mailer.database.connect import session_scope
from mailer.errors import MailerError
from mailer.files import private_folder
from mailer.usecases import subscribers as usecases
from subscribers.errors import SubscriberError
from subscribers.importer import ImportResult

__all__ = ["routes", "UPLOAD_PATH", "MAX_UPLOAD", "Job"]

#: The one route that takes a file; console/app.py lets its body be this large.
UPLOAD_PATH = "/subscribers/import"
MAX_UPLOAD = 64 * 1024 * 1024  # ~700,000 rows of a typical export
_KEEP = dt.timedelta(days=1)
PERMISSION = "subscribers.manage"


@dataclass
class Job:
    """One uploaded file: previewed, then importing, then done or failed."""

    token: str
    owner: int | None
    name: str
    folder: Path
    lines: int
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    state: str = "ready"  # ready, running, done, failed
    line: int = 0
    lists: tuple[str, ...] = ()
    dry_run: bool = False
    result: ImportResult | None = None
    error: str = ""

    @property
    def upload(self) -> Path:
        return self.folder / "upload.csv"

    @property
    def rejects(self) -> Path:
        return self.folder / "rejects.csv"

    @property
    def percent(self) -> int:
        if self.state in ("done", "failed"):
            return 100
        return min(99, int(100 * self.line / self.lines)) if self.lines else 0


class _Imports:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.settings = console.settings
        self.root = Path(console.settings.data_dir) / "console-imports"
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    @staticmethod
    def who(request: Request) -> Who:
        who: Who = request.state.who
        return who

    def job(self, request: Request) -> Job:
        """The job the path names, if it is this admin's; otherwise 404."""
        job = self.jobs.get(str(request.path_params["upload"]))
        if job is None or job.owner != self.who(request).user_id:
            raise HTTPException(404)
        return job

    def _forget_old(self) -> None:
        now = dt.datetime.now(dt.UTC)
        with self.lock:
            for token, job in list(self.jobs.items()):
                if job.state != "running" and now - job.created > _KEEP:
                    shutil.rmtree(job.folder, ignore_errors=True)
                    del self.jobs[token]

    async def lists(self, request: Request) -> list[tuple[str, str]]:
        actor = self.who(request).actor(request)
        found = await self.console.db(lambda s: usecases.choices(s, self.settings, actor))
        return list(found["lists"])

    async def form_page(self, request: Request, *, error: str = "", status: int = 200
                        ) -> Response:
        return self.console.render(request, "import.html", {
            "job": None, "preview": None, "error": error, "lists": await self.lists(request),
            "max_mib": MAX_UPLOAD >> 20}, status=status)

    async def start(self, request: Request) -> Response:
        return await self.form_page(request)

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return await self.form_page(request, error="import.nofile", status=400)
        self._forget_old()
        token = secrets.token_urlsafe(16)
        folder = private_folder(self.root / token)
        name = Path(file.filename).name[:200] or "upload.csv"
        job = Job(token, self.who(request).user_id, name, folder, 0)

        def save() -> int:
            lines = 0
            with job.upload.open("wb") as out:
                job.upload.chmod(0o600)
                file.file.seek(0)
                while chunk := file.file.read(1 << 20):
                    lines += chunk.count(b"\n")
                    out.write(chunk)
            return lines

        from starlette.concurrency import run_in_threadpool

        job.lines = await run_in_threadpool(save)
        with self.lock:
            self.jobs[token] = job
        return await self.preview_page(request, job)

    async def preview_page(self, request: Request, job: Job, *, error: str = "",
                           status: int = 200) -> Response:
        from starlette.concurrency import run_in_threadpool

        actor = self.who(request).actor(request)
        preview = None
        try:
            preview = await run_in_threadpool(
                lambda: usecases.preview_import(actor, job.upload, name=job.name))
        except (SubscriberError, MailerError) as exc:
            error, status = str(exc), 400
        names = {";": "semicolon", ",": "comma", "\t": "tab"}
        return self.console.render(request, "import.html", {
            "job": job, "preview": preview, "error": error,
            "delimiter_name": names.get(preview.delimiter, "comma") if preview else "",
            "lists": await self.lists(request), "max_mib": MAX_UPLOAD >> 20}, status=status)

    def _work(self, job: Job, actor: Any) -> None:
        """The import, on its own thread and in one transaction: all or nothing."""
        def progress(line: int) -> None:
            job.line = line

        try:
            with job.rejects.open("w", encoding="utf-8-sig", newline="") as out:
                job.rejects.chmod(0o600)
                rejects = usecases.RejectsFile(out)
                with session_scope(self.console.app.sessions) as session:
                    job.result = usecases.run_import(
                        session, self.settings, actor, job.upload, name=job.name,
                        lists=job.lists, dry_run=job.dry_run, on_reject=rejects,
                        on_progress=progress)
                rejects.close()
            job.state = "done"
        except (SubscriberError, MailerError) as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # the thread must end in a state the page can show
            import logging

            logging.getLogger("mailer.console").exception("import failed", exc_info=exc)
            job.error, job.state = "import.crashed", "failed"
        finally:
            job.upload.unlink(missing_ok=True)  # the people are in the database now (or not)

    async def run(self, request: Request) -> Response:
        job = self.job(request)
        form = await request.form()
        with self.lock:
            if job.state != "ready":
                return self.console.redirect(f"{UPLOAD_PATH}/{job.token}")
            job.state = "running"
        job.lists = tuple(str(v) for v in form.getlist("lists"))[:50]
        job.dry_run = bool(form.get("dry_run"))
        actor = self.who(request).actor(request)
        threading.Thread(target=self._work, args=(job, actor), name=f"import-{job.token[:6]}",
                         daemon=True).start()
        return self.console.redirect(f"{UPLOAD_PATH}/{job.token}")

    async def status(self, request: Request) -> Response:
        job = self.job(request)
        if job.state == "ready":
            return await self.preview_page(request, job)
        return self.console.render(request, "import.html", {
            "job": job, "preview": None, "error": "", "lists": [], "max_mib": MAX_UPLOAD >> 20})

    async def progress(self, request: Request) -> Response:
        return self.console.render(request, "_import_progress.html", {"job": self.job(request)})

    async def rejects(self, request: Request) -> Response:
        job = self.job(request)
        if job.state != "done" or not job.rejects.exists():
            raise HTTPException(404)
        return FileResponse(job.rejects, media_type="text/csv; charset=utf-8",
                            filename=f"afgewezen-{Path(job.name).stem[:60]}.csv")

    def routes(self) -> list[BaseRoute]:
        def r(path: str, endpoint: Any, methods: tuple[str, ...] = ("GET",)) -> ConsoleRoute:
            return ConsoleRoute(path, endpoint, permission=PERMISSION, console=self.console,
                                methods=list(methods))

        one = UPLOAD_PATH + "/{upload}"
        return [
            r(UPLOAD_PATH, self.start),
            r(UPLOAD_PATH, self.upload, ("POST",)),
            r(one, self.status),
            r(f"{one}/run", self.run, ("POST",)),
            r(f"{one}/progress", self.progress),
            r(f"{one}/rejects.csv", self.rejects),
        ]


def routes(console: Console) -> list[BaseRoute]:
    return _Imports(console).routes()
