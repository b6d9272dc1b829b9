"""Debian's Chromium for the page tests: where it is, how it is started, and when tests skip.

Outside CI a missing Chromium skips the browser tests with the reason; under CI=true they must
run, so a missing browser fails them. The `browser` fixture itself is in conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mailer.app import App
from mailer.web.server import serve

CHROMIUM = Path("/usr/bin/chromium")
# The flags keep a headless Chromium off the network it cannot reach here and out of the sandbox
# it cannot make as root.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"

# `pytestmark = BROWSER_MARKS` in a browser test module.
BROWSER_MARKS: list[pytest.MarkDecorator] = [pytest.mark.browser]
if not CHROMIUM.exists() and not IN_CI:
    BROWSER_MARKS.append(pytest.mark.skip(
        reason=f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)"
    ))


def launch_chromium() -> Iterator[Any]:
    """A headless Chromium for one test module (Playwright's sync API: one per thread)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing under CI=true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until `condition()` holds (the mail is sent after the page is answered)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(0.02)


@contextmanager
def pages_served(app: App, sock: socket.socket) -> Iterator[None]:
    """The subscriber pages served on `sock` from a thread of their own (Playwright's sync API
    keeps an event loop on the test's thread); stopped and closed on leaving."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    # The socket listens already, so the browser may connect before the thread gets going.
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(app, sock, stop),),
                              daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=15)
        loop.close()
        sock.close()
