"""One-off mails from a named template: double opt-in, RSVP confirmation, seat offer, reminder.

`build_transactional("confirm-subscription", to=..., language="nl", context={...}, ...)` finds
`mail/<name>.<language>.html` and `.txt` (Dutch when the language has none), renders both with
the caller's context, and returns (envelope sender, message bytes). The subject is the text
template's `{% block subject %}`, or `context["subject"]`. With `context["unsubscribe_url"]` the
mail also gets List-Unsubscribe headers (a reminder about a meeting the person was invited to).
These are not bulk mail: no Precedence: bulk, but Auto-Submitted: auto-generated (RFC 3834), so
out-of-office replies stay away.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from mailer.compose.environment import environments_for, template_error
from mailer.compose.headers import check_address, clean, encode_unstructured, format_address
from mailer.compose.mime import CalendarBody, Skeleton
from mailer.compose.model import Attachment, SenderView
from mailer.compose.renderer import inline_css, pick_language
from mailer.compose.signing import signer_from_settings
from mailer.errors import TemplateError
from mailer.kernel.tokens import Signer
from mailer.settings import Settings

__all__ = ["build_transactional"]


def build_transactional(
    template: str,
    *,
    to: str,
    language: str,
    context: Mapping[str, Any],
    settings: Settings,
    signer: Signer,
    attachments: Sequence[Attachment] = (),
    calendar: CalendarBody | None = None,
    calendar_method: str | None = None,
) -> tuple[str, bytes]:
    """(envelope sender, message bytes) of one mail from template `template` to `to`.

    `attachments` go with it; `calendar` (with its iTIP method) makes it an iMIP message, as
    an RSVP confirmation is: the meeting inline as text/calendar and as an .ics attachment.
    """
    envs = environments_for(settings)
    code = pick_language(language)
    html_template = envs.find(template, code, "html")
    text_template = envs.find(template, code, "txt")
    sender = settings.sender
    today = dt.datetime.now(settings.tz).date()
    ctx: dict[str, Any] = {
        "language": code,
        "sender": SenderView(
            name=sender.name, address=sender.address, reply_to=sender.reply_to or sender.address
        ),
        "today": today,
        "year": today.year,
        "preheader": "",
        **context,
    }
    try:
        if "subject" in text_template.blocks:
            block = text_template.blocks["subject"]
            subject = "".join(block(text_template.new_context(ctx)))
        elif "subject" in ctx:
            subject = str(ctx["subject"])
        else:
            raise TemplateError(f"{text_template.filename}: no subject block and no subject given")
        ctx["subject"] = subject = clean(subject).strip()
        html = inline_css(html_template.render(ctx))
        text = text_template.render(ctx)
    except TemplateError:
        raise
    except Exception as exc:
        raise template_error(exc) from None

    address = check_address(to.strip())
    fixed = [
        "From: " + format_address(sender.name, sender.address),
        "Reply-To: " + format_address(sender.name, sender.reply_to or sender.address),
        "Auto-Submitted: auto-generated",
    ]
    unsubscribe = ctx.get("unsubscribe_url")
    if unsubscribe:
        mailto = f"mailto:{check_address(sender.unsubscribe_address)}?subject=afmelden"
        fixed.append(f"List-Unsubscribe: <{clean(unsubscribe).strip()}>, <{mailto}>")
        fixed.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    personal = "\r\n".join((
        "Date: " + email.utils.formatdate(usegmt=False),
        "To: " + format_address(str(ctx.get("name") or ""), address),
        encode_unstructured("Subject", subject),
        f"Message-ID: <gt.{template}.{secrets.token_hex(8)}@{sender.list_id_domain}>",
        "",
    ))
    if (calendar is None) != (calendar_method is None):
        raise ValueError("a calendar needs its method, and a method its calendar")
    data = Skeleton(fixed, attachments, calendar_method).assemble(
        personal.encode("utf-8"), text, html, calendar
    )
    dkim = signer_from_settings(settings)
    if dkim is not None:
        data = dkim.sign(data)
    return f"bounces@{sender.bounce_domain}", data
