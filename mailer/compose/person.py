"""One recipient's personal values for templates, each computed at most once.

Both rendering paths read values through `Person`: the slow path through the views below, the
splicing path by key. Link tokens cost a signature each, so they are made only when a template
(or the List-Unsubscribe header) asks for them, and the header and the body share one token.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol, cast

from mailer.compose.headers import clean
from mailer.compose.model import Recipient
from mailer.kernel.links import RSVP_ANSWERS

__all__ = ["Person", "SUBSCRIBER_FIELDS", "link_names", "SubscriberView", "LinksView"]

SUBSCRIBER_FIELDS = ("id", "email", "name", "organisation", "job_title", "region", "language")
_LINKS = ("unsubscribe", "preferences", "view_online")
_RSVP_LINKS = ("rsvp", "rsvp_yes", "rsvp_no", "rsvp_maybe")


def link_names(with_event: bool) -> tuple[str, ...]:
    """The names under `links` in a template: RSVP links only in a mail about a meeting."""
    return _LINKS + _RSVP_LINKS if with_event else _LINKS


def _value(value: Any) -> Any:
    # Personal text is one line without control characters and outer spaces, in every path.
    return clean(value).strip() if isinstance(value, str) else value


class LinkMaker(Protocol):
    """What Person needs of kernel.links.Links (or linktokens.FastLinks, which makes the same)."""

    def unsubscribe(self, subscriber_id: int, campaign_id: int | None = None) -> str: ...
    def preferences(self, subscriber_id: int) -> str: ...
    def view(self, subscriber_id: int, campaign_id: int) -> str: ...
    def rsvp(self, subscriber_id: int, event_id: int, answer: str | None = None) -> str: ...


class Attributes(dict[str, Any]):
    """A subscriber's free-form attributes; a key this person lacks reads as empty text.

    Attributes differ between people (imports add columns), so a missing one must not stop a
    send halfway; a typo in a fixed name (subscriber.nmae) is still an error.
    """

    def __missing__(self, key: str) -> str:
        return ""


class Person:
    __slots__ = (
        "_campaign_id",
        "_event_id",
        "_links",
        "_urls",
        "attributes",
        "fields",
        "recipient",
    )

    def __init__(
        self, recipient: Recipient, links: LinkMaker, campaign_id: int, event_id: int | None
    ) -> None:
        self.recipient = recipient
        self.fields: dict[str, Any] = {
            "id": recipient.subscriber_id,
            "email": _value(recipient.email),
            "name": _value(recipient.name or ""),
            "organisation": _value(recipient.organisation or ""),
            "job_title": _value(recipient.job_title or ""),
            "region": _value(recipient.region or ""),
            "language": _value(recipient.language or ""),
        }
        self.attributes = Attributes(
            {str(k): _value(v) for k, v in (recipient.attributes or {}).items()}
        )
        self._links = links
        self._campaign_id = campaign_id
        self._event_id = event_id
        self._urls: dict[str, str] = {}

    def link(self, name: str) -> str:
        url = self._urls.get(name)
        if url is None:
            sid = self.recipient.subscriber_id
            if name == "unsubscribe":
                url = self._links.unsubscribe(sid, self._campaign_id)
            elif name == "preferences":
                url = self._links.preferences(sid)
            elif name == "view_online":
                url = self._links.view(sid, self._campaign_id)
            elif name == "rsvp" and self._event_id is not None:
                url = self._links.rsvp(sid, self._event_id)
            elif name.removeprefix("rsvp_") in RSVP_ANSWERS and self._event_id is not None:
                # The answer links share the RSVP page's token: one signature, not four.
                url = f"{self.link('rsvp')}?a={name.removeprefix('rsvp_')}"
            else:
                raise KeyError(name)
            self._urls[name] = url
        return url

    def value(self, key: tuple[Hashable, ...]) -> Any:
        kind = key[0]
        if kind == "subscriber":
            return self.fields[str(key[1])]
        if kind == "links":
            return self.link(str(key[1]))
        if kind == "attr":
            return self.attributes[str(key[1])]
        if kind == "attr-get":
            return self.attributes.get(str(key[1]), key[2])
        if kind == "joined":  # a part made only of personal values (splice.py)
            parts = cast(tuple[tuple[Hashable, ...], ...], key[1])
            return "".join(str(self.value(k)) for k in parts)
        raise KeyError(key)


class SubscriberView:
    """`subscriber` in a template, for the per-recipient (slow) path."""

    def __init__(self, person: Person) -> None:
        for name, value in person.fields.items():
            setattr(self, name, value)
        self.attributes = person.attributes


class LinksView:
    """`links` in a template, for the per-recipient (slow) path; URLs made on first use."""

    def __init__(self, person: Person, names: tuple[str, ...]) -> None:
        self._person = person
        self._names = names

    def __getattr__(self, name: str) -> str:
        if name.startswith("_") or name not in self._names:
            raise AttributeError(name)
        return self._person.link(name)
