"""Every kind of message GT Mailer sends, built by the real composition code with sample
values and no database: newsletter, invitation, update, cancellation (campaigns) and each
one-off mail, in Dutch and English. The mail-quality tests check each one."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from compose_support import campaign

from mailer.compose import CampaignRenderer, Recipient, build_transactional
from mailer.compose.content import load_content
from mailer.compose.mime import CalendarBody
from mailer.events.ical import METHOD_CANCEL, METHOD_REQUEST, PARTSTATS
from mailer.events.models import Event
from mailer.events.service import event_context, personal_calendar
from mailer.kernel.tokens import Signer
from mailer.settings import Settings

__all__ = ["gallery", "LANGUAGES", "TRANSACTIONAL", "CALENDAR_METHOD", "sample_event"]

LANGUAGES = ("nl", "en")
ROOT = Path(__file__).resolve().parent.parent
#: One-off mails and whether they carry the meeting's calendar.
TRANSACTIONAL = {
    "confirm-subscription": False, "welcome": False, "already-subscribed": False,
    "data-copy": False, "rsvp-confirmation": True, "rsvp-waitlist": False,
    "waitlist-seat": True, "event-reminder": True, "event-nudge": False,
}
CAMPAIGNS = {"invitation": "invitation", "update": "event-update",
             "cancellation": "event-cancellation"}
#: message name -> the iTIP method of its calendar (absent: no calendar).
CALENDAR_METHOD = {
    "invitation": METHOD_REQUEST, "event-update": METHOD_REQUEST,
    "event-cancellation": METHOD_CANCEL, "rsvp-confirmation": METHOD_REQUEST,
    "waitlist-seat": METHOD_REQUEST, "event-reminder": METHOD_REQUEST,
}
_PEOPLE = {"nl": ("Anna de Vries", "anna@assen.nl"), "en": ("John Smith", "john@example.org")}


def sample_event(settings: Settings, *, status: str = "active") -> Event:
    start = dt.datetime(2027, 4, 13, 11, 30, tzinfo=dt.UTC)  # 13.30 in Amsterdam
    return Event(
        id=7, uid="5f0c1d2e-aaaa-bbbb-cccc-000000000007@gt.example.nl",
        title="GT Connect regio Noord", region="Noord", starts_at=start,
        ends_at=start + dt.timedelta(hours=2, minutes=30), timezone=settings.timezone,
        venue="Provinciehuis", address="Martinikerkhof 12\nGroningen",
        online_url="https://meet.gt.example.nl/noord", capacity=40,
        rsvp_deadline=start - dt.timedelta(days=7),
        description="13.30 Inloop\n14.00 Stand van zaken\n15.30 Vragen",
        status=status, sequence=1 if status == "cancelled" else 0, organizer_format="sealed",
    )


def _one_off(settings: Settings, signer: Signer, name: str, language: str) -> bytes:
    person, address = _PEOPLE[language]
    event = sample_event(settings)
    base = "https://mail.gt.example.nl"
    context = {
        "name": person, "email": address,
        "event": event_context(event, seats=12),
        "rsvp": {a: f"{base}/r/tok-{a}?a={a}" for a in ("yes", "no", "maybe")},
        "rsvp_url": f"{base}/r/tok", "position": 3, "kind": name,
        "preferences_url": f"{base}/p/tok", "confirm_url": f"{base}/c/tok", "valid_hours": 48,
        "details_url": f"{base}/c/tok-details",
        "list_names": ["Nieuwsbrief", "Regio Noord"],
        "record_json": json.dumps({"email": address, "name": person}, indent=2),
    }
    if name in ("event-reminder", "event-nudge", "welcome", "already-subscribed"):
        context["unsubscribe_url"] = f"{base}/u/tok"
    calendar = method = None
    if TRANSACTIONAL[name]:
        meeting = personal_calendar(settings, signer, event, method=METHOD_REQUEST)
        calendar = CalendarBody(
            meeting.text(person, address, 3, language, PARTSTATS["yes"]),
            meeting.filename(language),
        )
        method = METHOD_REQUEST
    _envelope, data = build_transactional(
        name, to=address, language=language, context=context, settings=settings,
        signer=signer, calendar=calendar, calendar_method=method,
    )
    return data


def _campaign(settings: Settings, signer: Signer, kind: str, language: str) -> bytes:
    person, address = _PEOPLE[language]
    if kind == "newsletter":
        content = load_content(ROOT / "templates" / "content" / "voorbeeld-nieuwsbrief.md")
        meta = dict(content.meta)
        meta.pop("language", None)  # the sample is Dutch; show the English frame too
        renderer = CampaignRenderer(
            campaign(subject=content.subject, preheader=content.preheader,
                     content=content.body, meta=meta),
            settings, signer,
        )
    else:
        event = sample_event(settings, status="cancelled" if kind == "cancellation" else
                             "active")
        method = METHOD_CANCEL if kind == "cancellation" else METHOD_REQUEST
        from mailer.events.announce import _SUBJECTS

        renderer = CampaignRenderer(
            campaign(kind=kind, template=CAMPAIGNS[kind], subject=_SUBJECTS[kind], preheader="",
                     content="", event_id=event.id),
            settings, signer, event=event_context(event, seats=12),
            calendar=personal_calendar(settings, signer, event, method=method),
        )
    return renderer.message_bytes(Recipient(
        subscriber_id=3, public_id="public-id-of-person-3", email=address, name=person,
        organisation="Gemeente Assen",
        region="Noord", language=language, delivery_id=11,
    ))


def gallery(settings: Settings, signer: Signer) -> dict[str, bytes]:
    """"<template>.<language>" -> the message as it goes over SMTP."""
    found: dict[str, bytes] = {}
    for language in LANGUAGES:
        found[f"newsletter.{language}"] = _campaign(settings, signer, "newsletter", language)
        for kind, template in CAMPAIGNS.items():
            found[f"{template}.{language}"] = _campaign(settings, signer, kind, language)
        for name in TRANSACTIONAL:
            found[f"{name}.{language}"] = _one_off(settings, signer, name, language)
    return found
