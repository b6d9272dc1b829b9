"""The composition root: builds GT Mailer's parts from one Settings object. No globals."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailer.database.connect import make_engine, make_sessionmaker, require_current_schema
from mailer.kernel.tokens import Signer
from mailer.settings import Settings

__all__ = ["App", "build_app"]


@dataclass
class App:
    """What every adapter (CLI, web pages, scheduler, workers) needs, built once."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer

    def close(self) -> None:
        self.engine.dispose()


def build_app(settings: Settings, *, check_schema: bool = True) -> App:
    """Connect to the database (refusing an outdated schema) and build the shared parts."""
    engine = make_engine(settings.database.url)
    if check_schema:
        try:
            require_current_schema(engine)
        except Exception:
            engine.dispose()
            raise
    return App(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        signer=Signer(settings.secret_key),
    )
