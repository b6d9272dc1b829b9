"""CLI commands for web (to be filled in)."""

from __future__ import annotations

import click

commands: list[click.Command] = []
