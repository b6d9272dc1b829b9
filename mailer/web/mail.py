"""The one-off mails the subscriber pages send: confirm a sign-up, welcome, already subscribed,
a copy of one's data.

Composition (mailer.compose.build_transactional) and delivery (mailer.delivery.transport) are
imported when a mail is sent, so the pages start even while those parts are being set up. Mails
go out after the answer page is sent (a background task): the page takes the same time whether
or not a mail is sent, so its timing does not tell whether an address is known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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


def send_mail(app: App, mail: Mail) -> None:
    """Compose and send one mail; failures are logged, never shown (the page is already sent)."""
    try:
        from mailer.compose import build_transactional
        from mailer.delivery.transport import send_message_sync

        envelope, data = build_transactional(
            mail.template,
            to=mail.to,
            language=mail.language,
            context=dict(mail.context),
            settings=app.settings,
            signer=app.signer,
        )
        send_message_sync(app.settings, envelope, [mail.to], data)
    except Exception:
        # The address is not logged: the log would become a record of who signed up.
        log.exception("could not send the %s mail", mail.template)
