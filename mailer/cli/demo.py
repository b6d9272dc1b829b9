"""`mailer demo`: the main job for real on the embedded defaults, from a fresh clone.

SQLite database in the data folder (migrated), sample lists and subscribers (Dutch
municipalities), the sample Dutch newsletter, a capture SMTP server on loopback, a send scheduled
a few seconds ahead and delivered by the scheduler and the delivery engine, and a short report of
where the delivered messages are. The set-up is idempotent: running it again adds nothing twice
and sends a new demo campaign.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from mailer.app import App, build_app
from mailer.campaigns import service as campaigns
from mailer.database.connect import make_engine, session_scope, upgrade_schema
from mailer.delivery.capture import CaptureServer, free_port, port_is_free
from mailer.errors import MailerError
from mailer.kernel.clock import utcnow
from mailer.service.scheduler import Service
from mailer.settings import Settings
from subscribers import queries as subscriber_queries
from subscribers import service as subscribers
from subscribers.service import SubscriberData

__all__ = ["run_demo", "SAMPLE_PEOPLE"]

REPO = Path(__file__).resolve().parent.parent.parent
SAMPLE_CONTENT = REPO / "templates" / "content" / "voorbeeld-nieuwsbrief.md"

LISTS = (
    ("nieuwsbrief", "GT Nieuwsbrief", "Het nieuws van GT, eens per maand."),
    ("regio-noord", "Regio Noord", "Bijeenkomsten en nieuws voor de gemeenten in Noord."),
)

# (name, municipality, region, job title, language)
SAMPLE_PEOPLE = (
    ("Anna de Vries", "Groningen", "Noord", "Adviseur ICT", "nl"),
    ("Sjoerd Hoekstra", "Leeuwarden", "Noord", "Contractmanager", "nl"),
    ("Marieke Bakker", "Assen", "Noord", "Inkoopadviseur", "nl"),
    ("Jeroen Smit", "Zwolle", "Oost", "Informatiemanager", "nl"),
    ("Fatima El Amrani", "Enschede", "Oost", "Adviseur telefonie", "nl"),
    ("Thijs van Dijk", "Arnhem", "Oost", "Teamleider ICT", "nl"),
    ("Sanne Mulder", "Nijmegen", "Oost", "Contractmanager", "nl"),
    ("Pieter Jansen", "Apeldoorn", "Oost", "CIO", "nl"),
    ("Lotte Peeters", "Maastricht", "Zuid", "Inkoper", "nl"),
    ("Ruud van den Berg", "Eindhoven", "Zuid", "Adviseur netwerken", "nl"),
    ("Ilse Verhoeven", "Tilburg", "Zuid", "Servicemanager", "nl"),
    ("Bas de Graaf", "Breda", "Zuid", "Adviseur ICT", "nl"),
    ("Noor van der Heijden", "'s-Hertogenbosch", "Zuid", "Informatiemanager", "nl"),
    ("Daan Visser", "Den Haag", "West", "Contractmanager", "nl"),
    ("Emma de Jong", "Rotterdam", "West", "Adviseur mobiliteit", "nl"),
    ("Kees Vermeulen", "Leiden", "West", "Inkoopadviseur", "nl"),
    ("Julia Hendriks", "Haarlem", "West", "Teamleider ICT", "nl"),
    ("Mark Bos", "Utrecht", "Midden", "CISO", "nl"),
    ("Sophie Dekker", "Amersfoort", "Midden", "Policy officer", "en"),
    ("Tom Wouters", "Almere", "Midden", "ICT advisor", "en"),
)

FALLBACK_CONTENT = """\
---
subject: "GT Nieuwsbrief: nieuws voor {{ subscriber.organisation or 'uw gemeente' }}"
preheader: Nieuwe raamovereenkomst mobiele telefonie en de regiobijeenkomsten van dit voorjaar
---
Beste {{ subscriber.name or "collega" }},

Dit is de voorbeeldnieuwsbrief van GT Mailer.

## Nieuwe raamovereenkomst mobiele telefonie

De deelnemende gemeenten kunnen vanaf volgende maand afnemen onder de nieuwe overeenkomst.

## Regiobijeenkomsten

Ook in regio {{ subscriber.region or "uw regio" }} organiseren we dit voorjaar een bijeenkomst.

Met vriendelijke groet,

Het GT-team
"""


def _email(name: str, municipality: str) -> str:
    local = name.lower().replace(" ", ".").replace("'", "")
    domain = municipality.lower().replace("'s-", "s").replace(" ", "")
    return f"{local}@{domain}.example.nl"


def _sample_content(settings: Settings) -> Path:
    if SAMPLE_CONTENT.exists():
        return SAMPLE_CONTENT
    path = settings.data_dir / "demo" / "voorbeeld-nieuwsbrief.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FALLBACK_CONTENT, encoding="utf-8")
    return path


def _set_up_people(settings: Settings, sessions: sessionmaker[Session]) -> int:
    """Lists and sample subscribers; those already there are left as they are."""
    added = 0
    with session_scope(sessions) as session:
        for slug, title, description in LISTS:
            if subscriber_queries.list_by_slug(session, slug) is None:
                subscribers.create_list(session, slug, title, description)
        for name, municipality, region, job, language in SAMPLE_PEOPLE:
            email = _email(name, municipality)
            if subscriber_queries.subscriber_by_key(session, email.lower()) is not None:
                continue
            lists = ["nieuwsbrief"] + (["regio-noord"] if region == "Noord" else [])
            subscribers.add_subscriber(
                session,
                SubscriberData(email=email, name=name, organisation=f"Gemeente {municipality}",
                               job_title=job, region=region, language=language,
                               attributes={"gemeente": municipality}),
                lists=lists, regions=settings.regions, source="cli", actor="mailer demo",
            )
            added += 1
    return added


def run_demo(
    settings: Settings, *, delay_seconds: int = 5, echo: Callable[[str], None] = print,
    timeout_seconds: float = 120,
) -> dict[str, object]:
    """Set up, schedule, deliver and report; returns the figures it printed."""
    engine = make_engine(settings.database.url)
    try:
        upgrade_schema(engine)
    finally:
        engine.dispose()
    host = "127.0.0.1"
    port = settings.smtp.port if port_is_free(host, settings.smtp.port) else free_port(host)
    settings = dataclasses.replace(
        settings,
        smtp=dataclasses.replace(settings.smtp, host=host, port=port, tls="none", username=""),
        delivery=dataclasses.replace(settings.delivery, poll_seconds=0.5),
    )
    app = build_app(settings)
    try:
        added = _set_up_people(settings, app.sessions)
        content = _sample_content(settings)
        with session_scope(app.sessions) as session:
            campaign = campaigns.create_campaign(
                session, settings, app.signer, content_file=content,
                audience=campaigns.AudienceSpec(lists=["nieuwsbrief"]),
            )
            campaign_id = campaign.id
            at = utcnow() + dt.timedelta(seconds=delay_seconds)
            campaigns.schedule(session, campaign_id, at)
        outbox = settings.data_dir / "outbox" / f"campaign-{campaign_id}"
        echo(f"Database:    {settings.database.url}  ({added} sample subscribers added)")
        echo(f"Newsletter:  {content}  (campaign {campaign_id})")
        echo(f"Relay:       capture server on {host}:{port}, writing to {outbox}")
        local = at.astimezone(settings.tz).strftime("%H:%M:%S")
        echo(f"Scheduled:   {local} ({settings.timezone}); the scheduler delivers it...")
        with CaptureServer(outbox, host=host, port=port):
            started = time.monotonic()
            asyncio.run(_deliver(app, campaign_id, timeout_seconds))
            elapsed = time.monotonic() - started
        with session_scope(app.sessions) as session:
            info = campaigns.campaign_status(session, campaign_id)
            preview = outbox / "preview.html"
            _write_preview(app, session, campaign_id, preview)
        files = sorted(outbox.glob("*.eml"))
        echo("")
        echo(f"Delivered {info['sent']} of {info['recipients']} messages "
             f"(campaign {campaign_id}: {info['status']}, {elapsed:.1f}s).")
        echo(f"Messages:    {outbox}/*.eml ({len(files)} files)")
        if files:
            echo(f"  e.g.       {files[0]}")
        echo(f"Preview:     {preview}")
        echo(f"Status:      mailer campaigns status {campaign_id}")
        if info["status"] != "finished":
            raise MailerError(f"the demo campaign did not finish: {info['status']} "
                              f"{info['pause_reason']}".strip())
        return {"campaign_id": campaign_id, "sent": info["sent"], "outbox": outbox,
                "preview": preview, "files": len(files)}
    finally:
        app.close()


async def _deliver(app: App, campaign_id: int, timeout: float) -> None:
    """The real service path: the scheduler wakes at the time, the engine delivers."""
    stop = asyncio.Event()
    service = Service(app, report=lambda line: None)
    engine = app.delivery_engine()
    tasks = [asyncio.create_task(service.run(stop)), asyncio.create_task(engine.run(stop))]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            done = await asyncio.to_thread(_finished, app, campaign_id)
            if done:
                break
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _finished(app: App, campaign_id: int) -> bool:
    with session_scope(app.sessions) as session:
        return campaigns.get_campaign(session, campaign_id).status in (
            "finished", "paused", "cancelled", "missed")


def _write_preview(app: App, session: Session, campaign_id: int, path: Path) -> None:
    from mailer.compose import Recipient

    campaign = campaigns.get_campaign(session, campaign_id)
    renderer = app.renderer_factory(session, campaign, app.settings, app.signer)
    name, municipality, region, job, language = SAMPLE_PEOPLE[0]
    sub = subscriber_queries.subscriber_by_key(session, _email(name, municipality).lower())
    recipient = Recipient(
        subscriber_id=sub.id if sub else 0, email=_email(name, municipality), name=name,
        organisation=f"Gemeente {municipality}", job_title=job, region=region,
        language=language, attributes={"gemeente": municipality},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(renderer.render(recipient).html, encoding="utf-8")

