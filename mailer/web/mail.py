"""The one-off mails the subscriber pages send: confirm a sign-up, welcome, already subscribed,
a copy of one's data.

Each is composed, queued in the outbox and handed to the app's one sender
(mailer.delivery.sender) at once; a relay that defers or cannot be reached leaves it in the
outbox, and the service retries it. Mails go out after the answer page is sent (a background
task): the page takes the same time whether or not a mail is sent, so its timing does not tell
whether an address is known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mailer.compose import build_transactional
from mailer.database.connect import session_scope
from mailer.delivery.sender import Message

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["Mail", "send_mail"]

log = logging.getLogger("mailer.web")

# Template names given to build_transactional.
CONFIRM = "confirm-subscription"
WELCOME = "welcome"
ALREADY_SUBSCRIBED = "already-subscribed"
DATA_COPY = "data-copy"


@dataclass(frozen=True)
class Mail:
    """A transactional mail to send once the page is answered."""

    template: str
    to: str
    language: str
    context: Mapping[str, Any] = field(default_factory=dict)
    # Whom it is about: erasing them drops the mail if it is still owed.
    subscriber_id: int | None = None


def send_mail(app: App, mail: Mail) -> None:
    """Compose, queue and send one mail; failures are logged, never shown (the page is sent)."""
    try:
        envelope, data = build_transactional(
            mail.template,
            to=mail.to,
            language=mail.language,
            context=dict(mail.context),
            settings=app.settings,
            signer=app.signer,
        )
        with session_scope(app.sessions) as session:
            ids = app.sender.queue(session, mail.template, [Message(envelope, mail.to, data)],
                                   subscriber_id=mail.subscriber_id)
        report = app.sender.deliver_outbox(ids=ids)
    except Exception:
        # The address is not logged: the log would become a record of who signed up.
        log.exception("could not send the %s mail", mail.template)
        return
    if not report.sent:
        log.warning("the %s mail is queued for a retry: %s", mail.template,
                    report.errors[0] if report.errors else "the relay budget is used up")
