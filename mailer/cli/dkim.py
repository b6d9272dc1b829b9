"""`mailer dkim`: make a DKIM signing key and show the DNS record that publishes it."""

from __future__ import annotations

from pathlib import Path

import click

from mailer.cli.context import CliContext, pass_cli
from mailer.usecases import dkim as usecases

__all__ = ["commands"]


@click.group("dkim")
def dkim() -> None:
    """DKIM signing keys: make one, show its DNS record.

    \b
    Example:
      mailer dkim keygen /etc/gt-mailer/dkim.pem
      mailer dkim record
    """


def _print_record(record: usecases.DkimRecord) -> None:
    click.echo(f"Publish this TXT record at {record.name}:")
    click.echo(record.value)


@dkim.command("keygen")
@click.argument("key_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--bits", type=click.Choice(["2048", "3072", "4096"]), default="2048",
              show_default=True, help="RSA key size (2048 is what receivers expect).")
@pass_cli
def keygen(ctx: CliContext, key_file: Path, bits: str) -> None:
    """Write a new RSA private key to KEY_FILE (mode 600) and print its DNS record.

    An existing file is never overwritten. Then set [dkim] enabled, domain, selector and
    key_file in config.toml.

    \b
    Example:
      mailer dkim keygen /etc/gt-mailer/dkim.pem
    """
    record = usecases.make_key(ctx.settings, key_file, int(bits))
    click.echo(f"Wrote {key_file} ({bits}-bit RSA, readable by you only).")
    _print_record(record)


@dkim.command("record")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Private key file (default: dkim.key_file).")
@pass_cli
def record(ctx: CliContext, key_file: Path | None) -> None:
    """Print the TXT record (name and value) for the configured DKIM key.

    \b
    Example:
      mailer dkim record
      mailer dkim record --key /etc/gt-mailer/dkim.pem
    """
    _print_record(usecases.key_record(ctx.settings, key_file))


commands = [dkim]
