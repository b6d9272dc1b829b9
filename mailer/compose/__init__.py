"""Message composition: templates, content files, personalisation and the bytes that are sent.

The delivery engine builds one `CampaignRenderer` per campaign run (`build_renderer`) and asks
it for `message_bytes(recipient)` and `envelope_sender(recipient)`; previews use `render`.
One-off mails (double opt-in, RSVP confirmations) use `build_transactional`.
"""

from __future__ import annotations

from mailer.compose.content import load_content
from mailer.compose.model import Attachment, Content, Recipient, Rendered, sample_recipient
from mailer.compose.renderer import CampaignRenderer, build_renderer
from mailer.compose.transactional import build_transactional

__all__ = [
    "Recipient",
    "Attachment",
    "Rendered",
    "Content",
    "CampaignRenderer",
    "build_renderer",
    "load_content",
    "build_transactional",
    "sample_recipient",
]
