"""`mailer web`: serve the subscriber pages on their own (`mailer run` serves them too)."""

from __future__ import annotations

import click

from mailer.cli.context import CliContext, pass_cli
from mailer.cli.run import setup_logging, warn_if_generated_key
from mailer.cli.serving import serve_until_signalled

__all__ = ["commands"]


@click.command("web")
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port to listen on (default: web.port; 0 lets the system choose).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log every request (never a token or an address), as `mailer run -v`.")
@pass_cli
def web(ctx: CliContext, host: str | None, port: int | None, verbose: bool) -> None:
    """Serve the subscriber pages: unsubscribe, preferences, subscribe, view online.

    Links in mail point to web.base_url; put the pages behind a reverse proxy with TLS at that
    address. Ctrl+C stops.

    \b
    Example:
      mailer web --host 127.0.0.1 --port 8025
    """
    from mailer.web.server import bind, serve

    # Served on their own, the same log as in `mailer run` (format, levels, masking).
    setup_logging(verbose)
    app = ctx.app()
    warn_if_generated_key(app)
    settings = app.settings
    host = host or settings.web.host
    sock = bind(host, settings.web.port if port is None else port)
    actual = sock.getsockname()[1]
    click.echo(f"Serving the subscriber pages on http://{host}:{actual}/ "
               f"(links in mail point to {settings.web.base_url}). Ctrl+C stops.")
    serve_until_signalled(app, sock, serve)


commands: list[click.Command] = [web]
