"""The command groups beyond the subscriber foundation, one module each."""

from __future__ import annotations

import click

__all__ = ["commands"]


def commands() -> list[click.Command]:
    from mailer.cli import audit, bounces, campaigns, console, dkim, events, run, users, web

    found: list[click.Command] = []
    for module in (campaigns, run, bounces, web, events, dkim, console, users, audit):
        found.extend(module.commands)
    return found
