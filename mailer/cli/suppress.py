"""`mailer suppress` (to be filled in)."""

from __future__ import annotations

import click

__all__ = ["group"]


@click.group("suppress")
def group() -> None:
    """Manage suppress."""
