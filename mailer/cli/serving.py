"""What `mailer web` and `mailer console` share: serve a bound socket until Ctrl+C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["serve_until_signalled"]

Serve = Callable[["App", socket.socket, asyncio.Event], Awaitable[None]]


def serve_until_signalled(app: App, sock: socket.socket, serve: Serve) -> None:
    """Run `serve(app, sock, stop)` until SIGINT or SIGTERM sets `stop`; then close `sock` and
    say so."""

    async def until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(app, sock, stop)

    try:
        asyncio.run(until_signalled())
    finally:
        sock.close()
    click.echo("Stopped.")
