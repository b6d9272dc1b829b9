"""Message composition: templates, content files, personalisation and the bytes that are sent.

The delivery engine builds one `CampaignRenderer` per campaign run (`build_renderer`) and asks
it for `message_bytes(recipient)` and `envelope_sender(recipient)`; previews use `render`.
One-off mails (double opt-in, RSVP confirmations) use `build_transactional`.

One module per job:

    model.py         Recipient, Attachment, MeetingCalendar, Rendered, Content: the values
                     passed around
    content.py       content files (front matter) and Markdown to HTML, Jinja tags shielded
    plaintext.py     the text/plain part from Markdown or HTML
    environment.py   the Jinja environments, template lookup by name and language, error lines
    filters.py       date and time filters in the reader's language (babel)
    person.py        one recipient's values as templates see them
    splice.py        probes and segments: render once, splice per recipient
    linktokens.py    the recipient's signed link URLs, made fast
    headers.py       header values: no CR/LF, RFC 2047, addresses
    mime.py          the message skeleton, quoted-printable bodies, attachments, iMIP calendar
    subject.py       a subject as people read it, for tables (templates rendered for a sample)
    signing.py       DKIM
    renderer.py      CampaignRenderer, build_renderer
    transactional.py build_transactional
"""

from __future__ import annotations

from mailer.compose.content import load_content
from mailer.compose.model import Attachment, Content, Recipient, Rendered, sample_recipient
from mailer.compose.renderer import (
    CampaignExtras,
    CampaignRenderer,
    RendererFactory,
    build_renderer,
)
from mailer.compose.transactional import build_transactional

__all__ = [
    "Recipient",
    "Attachment",
    "Rendered",
    "Content",
    "CampaignRenderer",
    "CampaignExtras",
    "RendererFactory",
    "build_renderer",
    "load_content",
    "build_transactional",
    "sample_recipient",
]
