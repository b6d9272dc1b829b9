"""`mailer subscribers` (to be filled in)."""

from __future__ import annotations

import click

__all__ = ["group"]


@click.group("subscribers")
def group() -> None:
    """Manage subscribers."""
