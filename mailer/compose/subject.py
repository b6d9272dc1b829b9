"""A campaign's subject as people read it, for tables and status lines: the subject template
rendered for a sample recipient in each language, so `campaigns status` shows "Uitnodiging:
GT Connect regio Noord, dinsdag 13 april" instead of `{% if language == 'en' %}...`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from mailer.compose.environment import LANGUAGES, environments_for
from mailer.compose.headers import clean
from mailer.compose.model import CampaignView, SenderView, sample_recipient
from mailer.settings import Settings

__all__ = ["display_subject"]


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def display_subject(
    settings: Settings,
    subject: str,
    *,
    campaign_id: int = 0,
    kind: str = "newsletter",
    meta: Mapping[str, Any] | None = None,
    event: Mapping[str, Any] | None = None,
    limit: int = 0,
) -> str:
    """The subject as received ("nl-subject / en-subject" when the languages differ).

    Personal values show as a sample recipient's; a subject that cannot be rendered is shown as
    written, never an error (this is for display only).
    """
    if not _is_template(subject):
        text = clean(subject)
    else:
        envs = environments_for(settings)
        try:
            template = envs.string(subject, html=False, name=f"campaign {campaign_id} subject")
            shown = []
            today = dt.datetime.now(settings.tz).date()
            for code in LANGUAGES:
                sample = sample_recipient(settings, language=code)
                subscriber = SimpleNamespace(
                    id=0, email=sample.email, name=sample.name, organisation=sample.organisation,
                    job_title=sample.job_title, region=sample.region, language=code,
                    attributes={},
                )
                rendered = clean(template.render({
                    "language": code, "subscriber": subscriber, "event": event,
                    "campaign": CampaignView(id=campaign_id, kind=kind, template="",
                                             meta=dict(meta or {})),
                    "sender": SenderView(name=settings.sender.name,
                                         address=settings.sender.address,
                                         reply_to=settings.sender.reply_to
                                         or settings.sender.address),
                    "today": today, "year": today.year,
                })).strip()
                if rendered and rendered not in shown:
                    shown.append(rendered)
            text = " / ".join(shown) or clean(subject)
        except Exception:  # display only: the trial render at creation reports real errors
            text = clean(subject)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
