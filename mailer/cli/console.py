"""`mailer console`: serve the staff console on its own listener (`mailer run` can too)."""

from __future__ import annotations

import click

from mailer.cli.context import CliContext, pass_cli
from mailer.cli.run import setup_logging, warn_if_generated_key
from mailer.cli.serving import serve_until_signalled

__all__ = ["commands"]


@click.command("console")
@click.option("--host", default=None, help="Address to listen on (default: console.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port to listen on (default: console.port; 0 lets the system choose).")
@click.option("-v", "--verbose", is_flag=True,
              help="Log every request (never a token or an address), as `mailer run -v`.")
@pass_cli
def console(ctx: CliContext, host: str | None, port: int | None, verbose: bool) -> None:
    """Serve the staff console (sign-in, campaigns, users, audit trail).

    It listens on loopback by default; put it behind a reverse proxy with TLS at
    console.base_url. Ctrl+C stops.

    \b
    Example:
      mailer console --port 8026
    """
    from mailer.console.server import serve
    from mailer.web.server import bind

    # Served on their own, the same log as in `mailer run` (format, levels, masking).
    setup_logging(verbose)
    app = ctx.app()
    warn_if_generated_key(app)
    settings = app.settings
    host = host or settings.console.host
    sock = bind(host, settings.console.port if port is None else port)
    actual = sock.getsockname()[1]
    click.echo(f"Serving the staff console on http://{host}:{actual}/ "
               f"(its public address: {settings.console.base_url}). Ctrl+C stops.")
    serve_until_signalled(app, sock, serve)


commands: list[click.Command] = [console]
