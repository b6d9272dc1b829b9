"""CLI commands for events (to be filled in)."""

from __future__ import annotations

import click

commands: list[click.Command] = []
