"""The composition root: builds every part of GT Mailer from one Settings object. No globals.

Nothing below this module decides how the parts fit together: the renderer is handed what
campaign kinds add (a meeting's details and calendar file), the delivery engine its hook for
send-time failures (the bounce policy), `mailer run` its list of parts. The CLI, `mailer run`,
the demo and the staff console all take their parts from an `App`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from mailer.bounces.service import send_failure_hook
from mailer.compose import RendererFactory, build_renderer
from mailer.console.app import create_console_app
from mailer.console.server import console_part
from mailer.database.connect import make_engine, make_sessionmaker, require_current_schema
from mailer.delivery.engine import DeliveryEngine, FailureHook
from mailer.delivery.sender import Sender
from mailer.events.service import invitation_extras
from mailer.intake.imap import imap_part
from mailer.intake.receiver import receiver_part
from mailer.kernel.links import Links
from mailer.kernel.tokens import Signer
from mailer.service.purge import purge_part
from mailer.settings import Settings
from mailer.usecases.meeting_mail import due_work as meeting_due_work
from mailer.usecases.outbox import due_work as outbox_due_work
from mailer.web.app import create_web_app
from mailer.web.cleanup import cleanup_part
from mailer.web.server import web_part

__all__ = ["App", "build_app", "Part", "DueWork"]

#: A long-running part of `mailer run`: `await part(app, stop)` returns when `stop` is set.
Part = Callable[["App", asyncio.Event], Awaitable[None]]
#: Work `mailer run` does on every poll: `work(app, now)` does whatever has come due.
DueWork = Callable[["App", dt.datetime], None]


@dataclass
class App:
    """What every adapter (CLI, web pages, service, intake, console) needs, built once."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer
    links: Links
    renderer_factory: RendererFactory
    failure_hook: FailureHook
    # The one sender of one-off mail: meeting mail, the pages' mails, data copies, test sends.
    sender: Sender

    def delivery_engine(self, **kwargs: Any) -> DeliveryEngine:
        """A delivery worker with the bounce policy recording send-time failures."""
        kwargs.setdefault("on_permanent_failures", self.failure_hook)
        return DeliveryEngine(self, **kwargs)

    def web_app(self) -> Starlette:
        """The subscriber pages as an ASGI app."""
        return create_web_app(self)

    def console_app(self) -> Starlette:
        """The staff console as an ASGI app."""
        return create_console_app(self)

    def service_parts(self) -> list[Part]:
        """What `mailer run` starts beside the scheduler and the delivery engine."""
        found: list[Part] = [web_part, cleanup_part]
        if self.settings.bounces.receiver_port:
            found.append(receiver_part)
        if self.settings.bounces.imap_host:
            found.append(imap_part)
        found.append(purge_part)
        if self.settings.console.enabled:  # the staff console on its own listener
            found.append(console_part)
        return found

    def due_work(self) -> list[DueWork]:
        """What `mailer run` does on every poll: meeting reminders and owed RSVP mail, and the
        one-off mail waiting in the outbox."""
        return [meeting_due_work, outbox_due_work]

    def reconfigured(self, settings: Settings) -> App:
        """The same database with every other part built from other settings."""
        return _parts(settings, self.engine)

    def close(self) -> None:
        self.sender.close()
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
    return _parts(settings, engine)


def _parts(settings: Settings, engine: Engine) -> App:
    signer = Signer(settings.secret_key)
    sessions = make_sessionmaker(engine)
    return App(
        settings=settings,
        engine=engine,
        sessions=sessions,
        signer=signer,
        links=Links(settings.web.base_url, signer),
        renderer_factory=functools.partial(build_renderer, extras=invitation_extras),
        failure_hook=send_failure_hook(settings.bounces),
        sender=Sender(settings, sessions),
    )
