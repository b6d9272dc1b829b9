"""Serve the console with uvicorn: on its own (`mailer console`) or as a part of `mailer run`.

Like the subscriber pages: access logs off (set-up links carry tokens), the client address from
X-Forwarded-For only for a trusted proxy (FORWARDED_ALLOW_IPS, default 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING

import uvicorn

from mailer.web.server import serve_embedded, serve_part

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["serve", "console_part"]

log = logging.getLogger("mailer.console")


def _config(app: App) -> uvicorn.Config:
    return uvicorn.Config(app.console_app(), access_log=False, server_header=False,
                          proxy_headers=True, lifespan="off", log_level="warning")


async def serve(app: App, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve on `sock` until `stop` is set."""
    await serve_embedded(lambda: _config(app), sock, stop)


async def console_part(app: App, stop: asyncio.Event) -> None:
    """The console as a part of `mailer run` (when console.enabled); a busy port is logged and
    the rest of the service goes on sending."""
    await serve_part(app, stop, serve, host=app.settings.console.host,
                     port=app.settings.console.port, what="the staff console is", logger=log)
