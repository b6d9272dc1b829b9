"""Helpers for campaign and delivery tests: an audience, a content file, settings for a relay."""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mailer.app import App, build_app
from mailer.campaigns import service as campaigns
from mailer.database.connect import session_scope
from mailer.delivery.engine import DeliveryEngine, EngineStats
from mailer.settings import Settings
from subscribers import service as subscribers
from subscribers.service import SubscriberData

CONTENT = textwrap.dedent(
    """\
    ---
    subject: "Nieuws van GT"
    preheader: Raamcontracten en regiobijeenkomsten
    ---
    Beste {{ subscriber.name }},

    Dit is het nieuws voor {{ subscriber.organisation }}.
    """
)

REGIONS = ("Noord", "Oost", "Zuid", "West", "Midden")


def content_file(folder: Path, body: str = CONTENT) -> Path:
    path = folder / "nieuws.md"
    path.write_text(body, encoding="utf-8")
    return path


def make_audience(
    sessions: sessionmaker[Session], count: int, *, lists: Sequence[str] = ("nieuwsbrief",),
    start: int = 0, language: str = "nl",
) -> list[str]:
    """`count` subscribers on `lists`, regions round-robin; their addresses."""
    emails = []
    with session_scope(sessions) as session:
        for slug in lists:
            if subscribers.queries.list_by_slug(session, slug) is None:
                subscribers.create_list(session, slug, slug.title())
        for n in range(start, start + count):
            email = f"p{n:05d}@gemeente{n % 7}.example.nl"
            subscribers.add_subscriber(
                session,
                SubscriberData(email=email, name=f"Persoon {n}", organisation=f"Gemeente {n % 7}",
                               region=REGIONS[n % len(REGIONS)], language=language),
                lists=list(lists),
            )
            emails.append(email)
    return emails


def with_relay(settings: Settings, port: int, **delivery: Any) -> Settings:
    smtp_keys = {k: delivery.pop(k) for k in list(delivery) if k in
                 {f.name for f in dataclasses.fields(settings.smtp)}}
    return dataclasses.replace(
        settings,
        smtp=dataclasses.replace(settings.smtp, host="127.0.0.1", port=port, **smtp_keys),
        delivery=dataclasses.replace(settings.delivery, **delivery),
    )


def relay_app(settings: Settings, port: int, **delivery: Any) -> App:
    return build_app(with_relay(settings, port, **delivery))


def create_campaign(app: App, folder: Path, lists: Sequence[str] = ("nieuwsbrief",),
                    **filters: Sequence[str]) -> int:
    with session_scope(app.sessions) as session:
        campaign = campaigns.create_campaign(
            session, app.settings, app.signer, content_file=content_file(folder),
            audience=campaigns.AudienceSpec(lists=list(lists), **filters),
        )
        return campaign.id


def start(app: App, campaign_id: int) -> int:
    with session_scope(app.sessions) as session:
        return campaigns.start(session, campaign_id)


def deliver(app: App, **kwargs: Any) -> EngineStats:
    engine = DeliveryEngine(app, **kwargs)
    return asyncio.run(engine.run(asyncio.Event(), until_idle=True, idle_seconds=0.05))


def status(app: App, campaign_id: int) -> dict[str, Any]:
    with session_scope(app.sessions) as session:
        return campaigns.campaign_status(session, campaign_id)


def set_config(path: Path, **values: Any) -> None:
    """Set keys in a config.toml copy: set_config(path, smtp__port=2526, delivery__lease_seconds=1).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    for name, value in values.items():
        section, key = name.split("__")
        rendered = f'"{value}"' if isinstance(value, str) else str(value).lower() \
            if isinstance(value, bool) else str(value)
        current = ""
        for i, line in enumerate(lines):
            if line.startswith("["):
                current = line.strip("[] ")
            elif current == section and line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {rendered}"
                break
        else:
            raise KeyError(name)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
