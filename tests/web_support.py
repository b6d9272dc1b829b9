"""Helpers for the subscriber-page tests: a capture SMTP server, people and lists, form tokens."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.orm import Session

from mailer.app import App
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from subscribers import service
from subscribers.models import Subscriber

#: The base URL the pages are tested under (TestClient, links in captured mail).
BASE = "http://127.0.0.1:8025"

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def setup_people(app: App) -> dict[str, int]:
    """Two lists (one double opt-in), a Dutch and an English subscriber, and a campaign."""
    with session_scope(app.sessions) as session:
        service.create_list(session, "nieuwsbrief", "GT Nieuwsbrief", "Het laatste nieuws.")
        service.create_list(session, "regio-noord", "Regio Noord", double_opt_in=True)
        anna = service.add_subscriber(
            session,
            service.SubscriberData(email="anna@gemeente.example.nl", name="Anna de Vries"),
            lists=["nieuwsbrief", "regio-noord"],
        )
        john = service.add_subscriber(
            session,
            service.SubscriberData(email="john@example.org", name="John Smith", language="en"),
            lists=["nieuwsbrief"],
        )
        campaign = Campaign(subject="Nieuwsbrief", audience={"lists": ["nieuwsbrief"]})
        session.add(campaign)
        session.flush()
        return {"anna": anna.id, "john": john.id, "campaign": campaign.id}


def subscription_states(app: App, email_address: str) -> tuple[str, dict[str, str]]:
    """(subscriber status, {list slug: subscription status})."""
    with session_scope(app.sessions) as session:
        record = service.subscriber_record(session, email_address)
    return record["status"], {s["list"]: s["status"] for s in record["subscriptions"]}


def consent_actions(session: Session, email_address: str) -> list[tuple[str, str | None, str]]:
    record = service.subscriber_record(session, email_address)
    return [(ev["action"], ev["list"], ev["source"]) for ev in record["consent_history"]]


def subscriber(session: Session, email_address: str) -> Subscriber:
    return service.get_subscriber(session, email_address)


def messages(folder: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        found.append(msg)
    return found


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    assert part is not None
    return str(part.get_content())


def link_in(msg: EmailMessage, prefix: str) -> str:
    """The first link in the message's plain text that starts with `prefix`."""
    match = re.search(re.escape(prefix) + r"[^\s<>\")\]]+", body_text(msg))
    assert match, f"no link {prefix}... in:\n{body_text(msg)}"
    return match.group(0)
