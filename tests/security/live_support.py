"""The running parts the attacks are replayed against: the subscriber pages served by uvicorn
on a loopback port (real HTTP), with their mail going to a capture SMTP server.

Test modules import the `live` and `live_factory` fixtures from here (not a conftest.py, whose
module name would shadow tests/conftest.py for `from conftest import ...`)."""

from __future__ import annotations

import asyncio
import re
import smtplib
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import httpx

from browser_support import pages_served, wait_for
from web_support import CSRF_RE, csrf_token, messages, pow_solution

from mailer.app import App, build_app
from mailer.delivery.capture import CaptureServer
from mailer.intake.receiver import serve
from mailer.settings import load_settings
from mailer.web.server import bind


@dataclass
class Live:
    app: App
    base: str
    capture: CaptureServer
    http: httpx.Client

    def path(self, url: str) -> str:
        return url.removeprefix(self.base)

    def csrf(self, url: str) -> str:
        page = self.http.get(url)
        assert page.status_code == 200, (url, page.status_code)
        match = CSRF_RE.search(page.text)
        assert match, f"no CSRF field on {url}"
        return match.group(1)

    def sign_up(self, slug: str, address: str, **extra: str) -> httpx.Response:
        """Post the sign-up form as a stranger would (a fresh form, its CSRF token)."""
        form = self.http.get(f"/subscribe/{slug}")
        assert form.status_code == 200, form.status_code
        data = {"csrf": csrf_token(form.text), "email": address, "name": "",
                "organisation": "", "language": "nl", "lang": "nl",
                "altcha": pow_solution(form.text), **extra}
        return self.http.post(f"/subscribe/{slug}", data=data)

    def mails_to(self, address: str, count: int = 1) -> list:
        def found() -> list:
            return [m for m in messages(self.capture.folder)
                    if m["To"].addresses[0].addr_spec.lower() == address.lower()]
        wait_for(lambda: len(found()) >= count)
        return found()

    def all_mail(self) -> list:
        return messages(self.capture.folder)


@pytest.fixture
def live_factory(env: dict[str, str], config_file: Path, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Live]]:
    """Start the pages; keyword arguments replace `key = value` lines of config.toml first."""
    started: list[tuple[Live, CaptureServer]] = []
    stack: list[object] = []

    def start(**config: object) -> Live:
        text = config_file.read_text(encoding="utf-8")
        for key, value in config.items():
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert n == 1, key
        config_file.write_text(text, encoding="utf-8")
        capture = CaptureServer(tmp_path / "outbox").start()
        sock = bind("127.0.0.1", 0)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        monkeypatch.setenv("MAILER_SMTP_PORT", str(capture.port))
        monkeypatch.setenv("MAILER_BASE_URL", base)
        app = build_app(load_settings())
        served = pages_served(app, sock)
        served.__enter__()
        stack.append(served)
        live = Live(app, base, capture, httpx.Client(base_url=base, timeout=20))
        started.append((live, capture))
        return live

    yield start
    for served in reversed(stack):
        served.__exit__(None, None, None)  # type: ignore[attr-defined]
    for live, capture in started:
        live.http.close()
        live.app.close()
        capture.stop()


@pytest.fixture
def live(live_factory: Callable[..., Live]) -> Live:
    return live_factory()


class Receiver:
    """The bounce receiver on a loopback port, on a thread with its own event loop."""

    def __init__(self, app) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        ready = threading.Event()
        self.port = 0

        def listening(port: int) -> None:
            self.port = port
            ready.set()

        self.thread = threading.Thread(
            target=self.loop.run_until_complete,
            args=(serve(app, self.stop, host="127.0.0.1", port=0, protocol="smtp",
                        ready=listening),), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def send(self, sender: str, to: str, raw: bytes) -> None:
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as smtp:
            smtp.sendmail(sender, [to], raw)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        self.loop.close()
