"""Helpers shared by the composition tests: a campaign-like object, settings, parsing."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mailer.settings import Settings, load_settings

SECRET = "test-secret-key-0123456789abcdef"


def compose_settings(config_file: Path, **overrides: Any) -> Settings:
    """Settings from the test's config copy, without a database (composition needs none)."""
    return load_settings(
        config_file,
        environ={"MAILER_SECRET_KEY": SECRET},
        overrides={tuple(k.split(".", 1)) if "." in k else (None, k): v  # type: ignore[misc]
                   for k, v in overrides.items()},
    )


def campaign(**fields: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "id": 42,
        "kind": "newsletter",
        "subject": "Nieuws voor {{ subscriber.name }}",
        "preheader": "Kort nieuws uit het programma",
        "template": "newsletter",
        "content": (
            "# Nieuws\n\nBeste {{ subscriber.name }},\n\n"
            "Uw organisatie: {{ subscriber.organisation }} in regio {{ subscriber.region }}.\n\n"
            "Functie: {{ subscriber.attributes.functie }}\n"
        ),
        "content_format": "markdown",
        "meta": {},
        "audience": {"lists": ["nieuwsbrief"]},
        "event_id": None,
    }
    values.update(fields)
    return SimpleNamespace(**values)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a parsed message, with newlines as in Python (the wire has CRLF)."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return (
        str(text.get_content()).replace("\r\n", "\n"),
        str(html.get_content()).replace("\r\n", "\n"),
    )
