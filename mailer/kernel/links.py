"""The URLs of the subscriber pages, each carrying a signed, purpose-bound token.

One place decides the URL scheme, so the mail that links and the pages that answer agree:

    /u/<token>            unsubscribe (GET: confirm page; POST: RFC 8058 one-click)
    /p/<token>            preferences (lists, language, leave everything, copy of my data)
    /v/<token>            the newsletter as sent, viewed in the browser
    /r/<token>?a=yes      RSVP to a meeting (a = yes | no | maybe)
    /subscribe/<slug>     subscribe form of a list
    /c/<token>            double opt-in confirmation (expires)
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from mailer.kernel import tokens
from mailer.kernel.tokens import Signer

__all__ = ["Links", "RSVP_ANSWERS"]

RSVP_ANSWERS = ("yes", "no", "maybe")


class Links:
    def __init__(self, base_url: str, signer: Signer) -> None:
        self.base = base_url.rstrip("/")
        self.signer = signer

    def _url(self, prefix: str, purpose: str, payload: dict[str, object]) -> str:
        return f"{self.base}/{prefix}/{quote(self.signer.sign(purpose, payload), safe='')}"

    def unsubscribe(self, subscriber_id: int, campaign_id: int | None = None) -> str:
        payload: dict[str, object] = {"s": subscriber_id}
        if campaign_id is not None:
            payload["c"] = campaign_id
        return self._url("u", tokens.UNSUBSCRIBE, payload)

    def preferences(self, subscriber_id: int) -> str:
        return self._url("p", tokens.PREFERENCES, {"s": subscriber_id})

    def view(self, subscriber_id: int, campaign_id: int) -> str:
        return self._url("v", tokens.VIEW, {"s": subscriber_id, "c": campaign_id})

    def rsvp(self, subscriber_id: int, event_id: int, answer: str | None = None) -> str:
        url = self._url("r", tokens.RSVP, {"s": subscriber_id, "e": event_id})
        if answer is not None:
            if answer not in RSVP_ANSWERS:
                raise ValueError(f"unknown RSVP answer {answer!r}")
            url += f"?a={answer}"
        return url

    def subscribe(self, list_slug: str) -> str:
        return f"{self.base}/subscribe/{quote(list_slug, safe='')}"

    def confirm(self, subscriber_id: int, list_ids: Sequence[int]) -> str:
        return self._url("c", tokens.CONFIRM, {"s": subscriber_id, "l": list(list_ids)})
