"""Serve the subscriber pages with uvicorn: on their own (`mailer web`) or as a part of
`mailer run` (`web_part`).

The listening socket is bound here, so a busy port is a one-line error, and port 0 works (tests,
or letting the system choose). uvicorn's access log is off: it prints page URLs, which carry
personal tokens; the app logs its own lines without them (web.app.AccessLog). uvicorn's proxy
headers are off too: the app believes X-Forwarded-For only from web.trusted_proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING

import uvicorn

from mailer.errors import ConfigError

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["bind", "serve", "serve_embedded", "serve_part", "web_part"]

log = logging.getLogger("mailer.web")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ConfigError naming the address if it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"web.host: cannot resolve {host!r}: {exc.strerror}") from None
    family, _type, _proto, _name, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"web: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host process (`mailer run`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _config(app: App) -> uvicorn.Config:
    return uvicorn.Config(
        app.web_app(),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        log_level="warning",
    )


async def serve(app: App, sock: socket.socket, stop: asyncio.Event | None = None) -> None:
    """Serve on `sock` until `stop` is set; without `stop`, uvicorn handles SIGINT/SIGTERM."""
    if stop is None:
        await uvicorn.Server(_config(app)).serve(sockets=[sock])
        return
    await serve_embedded(lambda: _config(app), sock, stop)


async def serve_embedded(config: Callable[[], uvicorn.Config], sock: socket.socket,
                         stop: asyncio.Event) -> None:
    """Serve an app that shares the service's event loop on `sock` until `stop` is set (the
    subscriber pages and the staff console alike)."""
    # Building the app imports and compiles its templates: done on a thread, so the engine
    # sharing this event loop is not held up at start.
    server = _EmbeddedServer(await asyncio.to_thread(config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        await task


async def web_part(app: App, stop: asyncio.Event) -> None:
    """The web pages as a part of `mailer run`, on settings.web.host and port.

    If the port cannot be had, the pages are not served and an error is logged, but the rest
    of the service (sending, bounces) keeps running: mail already scheduled must still go out.
    """
    await serve_part(app, stop, serve, host=app.settings.web.host, port=app.settings.web.port,
                     what="the subscriber pages are", logger=log)


async def serve_part(
    app: App,
    stop: asyncio.Event,
    serve: Callable[[App, socket.socket, asyncio.Event], Awaitable[None]],
    *,
    host: str,
    port: int,
    what: str,
    logger: logging.Logger,
) -> None:
    """Bind host:port and `serve` until `stop` (the pages and the console as parts of `mailer
    run`); an address that cannot be had is logged ("<what> not served") and nothing more."""
    try:
        sock = bind(host, port)
    except ConfigError as exc:
        logger.error("%s not served: %s", what, exc)
        return
    try:
        await serve(app, sock, stop)
    finally:
        sock.close()
