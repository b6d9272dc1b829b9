"""Intake dispatch for answers from calendars: an arrived message that carries an iTIP REPLY
is recorded by mailer.events.replies (not as a bounce), and the mail the answer owes (the
confirmation with the calendar entry, a freed seat) is sent at once, as after the RSVP page.

Every intake (the LMTP/SMTP receiver, the IMAP poller, files and the MTA pipe) hands each
message here first, through mailer.intake.files.ingest_bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mailer.database.connect import session_scope
from mailer.events.replies import ReplyResult, take_reply

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["take_calendar_reply", "KINDS"]

log = logging.getLogger(__name__)
#: How the intake summary counts them.
KINDS = {"recorded": "calendar-reply", "review": "calendar-review",
         "duplicate": "calendar-duplicate"}


def take_calendar_reply(
    app: App, raw: bytes, *, source: str, envelope_to: Sequence[str] = ()
) -> ReplyResult | None:
    """Record the REPLY the message carries (own transaction); None if it carries none."""
    with session_scope(app.sessions) as session:
        result = take_reply(session, app.settings, app.signer, raw, source=source,
                            envelope_to=envelope_to)
    if result is None:
        return None
    log.info("calendar reply: %s %s", result.outcome, result.reason)
    if result.outcome == "recorded" and result.event_id is not None:
        from mailer.usecases.meeting_mail import send_owed_mail

        try:
            send_owed_mail(app, event_id=result.event_id)
        except Exception:  # the answer stands; `mailer run` sends the owed mail on its next round
            log.exception("could not send meeting mail now")
    return result
