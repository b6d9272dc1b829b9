"""What a CLI command gets: settings and the app, built lazily so `--help` needs no database."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

import click

from mailer.app import App, build_app
from mailer.settings import Settings, load_settings

__all__ = ["CliContext", "pass_cli", "current_actor"]


def current_actor() -> str:
    """Who is at the keyboard, for the consent record."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "cli"


@dataclass
class CliContext:
    config_path: str | None = None
    database_url: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _app: App | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides: dict[tuple[str | None, str], str] = (
                {("database", "url"): self.database_url} if self.database_url else {}
            )
            self._settings = load_settings(self.config_path, overrides=overrides)
        return self._settings

    def app(self, *, check_schema: bool = True) -> App:
        """The app; refuses (SchemaError) a database whose schema is behind, unless told not to."""
        if self._app is None:
            self._app = build_app(self.settings, check_schema=check_schema)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
            self._app = None


pass_cli = click.make_pass_decorator(CliContext)
