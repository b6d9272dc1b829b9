"""The plain values composition works with: who a message is for, what it carries, what came out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, SimpleNamespace
from typing import Any, Protocol

__all__ = [
    "Recipient",
    "Attachment",
    "MeetingCalendar",
    "Rendered",
    "Content",
    "CampaignView",
    "SenderView",
    "sample_recipient",
]


@dataclass(frozen=True)
class Recipient:
    """One person a message is rendered for; the engine builds these from its delivery rows."""

    subscriber_id: int
    email: str
    name: str = ""
    organisation: str = ""
    job_title: str = ""
    region: str = ""
    language: str = "nl"
    attributes: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    delivery_id: int | None = None


@dataclass(frozen=True)
class Attachment:
    """A file sent with every message of a campaign, e.g. the meeting's iCalendar invitation.

    `content_type` may carry parameters: "text/calendar; method=REQUEST".
    """

    filename: str
    content_type: str
    data: bytes


class MeetingCalendar(Protocol):
    """A meeting's calendar, personal per recipient (mailer.events.ical.PersonalCalendar)."""

    @property
    def method(self) -> str: ...

    def text(self, name: str, email: str, subscriber_id: int, language: str,
             partstat: str = "NEEDS-ACTION") -> str: ...

    def filename(self, language: str) -> str: ...


@dataclass(frozen=True)
class Rendered:
    """One recipient's subject and both bodies, as they go into the message (CSS inlined)."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Content:
    """A content file: subject and preheader from its front matter, the body as written.

    `format` is "markdown" or "html"; every other front-matter key is in `meta` (campaign.meta).
    """

    subject: str
    preheader: str
    body: str
    format: str
    meta: Mapping[str, Any]


class CampaignView(SimpleNamespace):
    """`campaign` in a template (a named type, so errors say 'campaign', not 'SimpleNamespace')."""


class SenderView(SimpleNamespace):
    """`sender` in a template."""


def sample_recipient(settings: Any, *, language: str = "nl") -> Recipient:
    """A made-up recipient for previews and the construction-time trial render."""
    region = settings.regions[0] if settings.regions else ""
    return Recipient(
        subscriber_id=0,
        email="voorbeeld@gemeente.example.nl",
        name="Voorbeeld Ontvanger" if language == "nl" else "Sample Recipient",
        organisation="Gemeente Voorbeeld",
        job_title="Adviseur ICT",
        region=region,
        language=language,
        attributes=MappingProxyType({}),
    )
