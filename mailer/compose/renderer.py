"""CampaignRenderer: a campaign's templates compiled once, and each recipient's message bytes.

Construction compiles every template the campaign uses and renders a sample recipient in each
language, so a broken template is a TemplateError (file and line) before anything is sent. Then,
per language, it renders once with probes (splice.py) and keeps the fixed segments; a message
is the segments joined with the recipient's values, quoted-printable encoded, behind the
campaign's fixed header block (mime.py). Templates that use personal values in ways splicing
cannot reproduce are rendered per recipient instead: slower, same result.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import re
import secrets
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeAlias

import css_inline
import jinja2
from markupsafe import Markup

from mailer.compose.content import markdown_to_html
from mailer.compose.environment import LANGUAGES, Environments, environments_for, template_error
from mailer.compose.headers import (
    check_address,
    clean,
    display_name,
    encode_unstructured,
    format_address,
    unsubscribe_mailto,
)
from mailer.compose.linktokens import fast_links
from mailer.compose.mime import CalendarBody, EncodedPart, Skeleton, encode_qp
from mailer.compose.model import (
    Attachment,
    CampaignView,
    MeetingCalendar,
    Recipient,
    Rendered,
    SenderView,
    sample_recipient,
)
from mailer.compose.person import SUBSCRIBER_FIELDS, LinksView, Person, SubscriberView, link_names
from mailer.compose.plaintext import html_to_text, markdown_to_text
from mailer.compose.signing import DkimSigner, signer_from_settings
from mailer.compose.splice import (
    MAX_KEYS,
    Probe,
    ProbeAttributes,
    ProbeRun,
    Segments,
    split_html,
    split_text,
)
from mailer.errors import TemplateError
from mailer.kernel.links import Links
from mailer.kernel.tokens import Signer
from mailer.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mailer.campaigns.models import Campaign

__all__ = [
    "CampaignRenderer",
    "CampaignExtras",
    "RendererFactory",
    "build_renderer",
    "pick_language",
    "inline_css",
]

#: What a meeting campaign adds to its messages: (the `event` template context, the
#: meeting's calendar, personal per recipient).
CampaignExtras: TypeAlias = (
    "Callable[[Session, Campaign, Settings, Signer], tuple[Mapping[str, Any], MeetingCalendar]]"
)
#: How the engine, previews and pages get a campaign's renderer.
RendererFactory: TypeAlias = "Callable[[Session, Campaign, Settings, Signer], CampaignRenderer]"

Key = tuple[Hashable, ...]

_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def inline_css(html: str) -> str:
    """Style sheets moved into style attributes (mail clients drop <style>); @media rules kept."""
    try:
        return _INLINER.inline(html)
    except ValueError as exc:  # css_inline reports bad CSS this way
        raise TemplateError(f"CSS cannot be inlined: {exc}") from None


def pick_language(language: str | None) -> str:
    """The template language for a subscriber's language: ours, or Dutch."""
    code = (language or "").strip().lower()[:2]
    return code if code in LANGUAGES else LANGUAGES[0]


_MARKER = re.compile("\ue000(\\d+)\ue001")


def _part_truth(inner: str) -> bool | None:
    """A part's truth when known without the person: any text outside the markers decides."""
    return True if _MARKER.sub("", inner) else (False if not inner else None)


class ProbeSubscriberView(SimpleNamespace):
    """`subscriber` in a probe render."""


class ProbeLinksView(SimpleNamespace):
    """`links` in a probe render."""


class _PartProbe(Probe):
    """A whole part made of personal values (subject, preheader, content) in the layout."""

    __slots__ = ()

    def __bool__(self) -> bool:
        inner = str(self._inner)
        known = _part_truth(inner)
        if known is not None:
            return known
        # Only personal values: it is true when their text joined is not empty.
        keys = tuple(self._run.keys[int(i)] for i in _MARKER.findall(inner))
        return self._run.answer(("joined", keys))


@dataclass
class _Shape:
    """Fixed segments for one language and one set of truth-test answers."""

    keys: list[Key]
    subject: Segments
    html: Segments
    text: Segments
    html_qp: EncodedPart
    text_qp: EncodedPart


@dataclass
class _Language:
    code: str
    html: jinja2.Template
    text: jinja2.Template
    base: dict[str, Any]
    truth_keys: list[Key] = field(default_factory=list)
    shapes: dict[tuple[bool, ...], _Shape | None] = field(default_factory=dict)
    slow_reason: str = ""  # set: every recipient of this language is rendered per recipient
    taint: str = ""  # why some answer combinations are rendered per recipient


class CampaignRenderer:
    """Renders one campaign for any recipient; build it once per campaign run (see module doc)."""

    def __init__(
        self,
        campaign: Campaign | Any,
        settings: Settings,
        signer: Signer,
        *,
        event: Mapping[str, Any] | None = None,
        attachments: Sequence[Attachment] = (),
        calendar: MeetingCalendar | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.campaign_id = int(campaign.id or 0)
        self.kind = str(campaign.kind or "newsletter")
        self.event = dict(event) if event is not None else None
        self.event_id = campaign.event_id if campaign.event_id is not None else (
            (self.event or {}).get("id")
        )
        self._signer = signer
        # Content written in one language (front matter `language: nl`) is sent in that
        # language to everyone: layout, dates and all, never an English frame round Dutch text.
        pinned = str((campaign.meta or {}).get("language") or "").strip().lower()
        self._pinned = pinned if pinned in LANGUAGES else ""
        # Same URLs as mailer.kernel.links makes, faster; it checks itself against Links first.
        self._links = fast_links(Links(settings.web.base_url, signer), settings.secret_key, clock)
        self._link_names = link_names(self.event is not None and self.event_id is not None)
        self._envs: Environments = environments_for(settings)
        label = f"campaign {self.campaign_id}"
        self._compile_content(campaign, label)
        template = str(campaign.template or "newsletter")
        today = dt.datetime.now(settings.tz).date()
        common = {
            "campaign": CampaignView(
                id=self.campaign_id, kind=self.kind, template=template,
                meta=dict(campaign.meta or {}),
            ),
            "event": self.event,
            "sender": SenderView(
                name=settings.sender.name, address=settings.sender.address,
                reply_to=settings.sender.reply_to or settings.sender.address,
            ),
            "today": today,
            "year": today.year,
        }
        self._languages: dict[str, _Language] = {}
        for code in LANGUAGES:
            self._languages[code] = _Language(
                code=code,
                html=self._envs.find(template, code, "html"),
                text=self._envs.find(template, code, "txt"),
                base={**common, "language": code},
            )
        self._dkim: DkimSigner | None = signer_from_settings(settings)
        self._build_headers(campaign)
        self._calendar = calendar
        self._skeleton = Skeleton(self._fixed_headers, attachments,
                                  calendar.method if calendar is not None else None)
        self._date_cache: tuple[int, bytes] = (0, b"")
        self._subject_lines: dict[str, bytes] = {}
        # The trial render: every template, every language, with real (sample) values; errors
        # here name the file and line. Then the splice segments for every truth-test shape.
        for code, lang in self._languages.items():
            sample = self.person(sample_recipient(settings, language=code))
            ctx = self._context(lang, SubscriberView(sample), LinksView(sample, self._link_names))
            try:
                self._source.render(ctx)
            except Exception as exc:
                raise template_error(exc) from None
            self.render_slow(sample)
            self._warm(lang)

    # -- construction ----------------------------------------------------------------------

    def _compile_content(self, campaign: Any, label: str) -> None:
        envs = self._envs
        content = str(campaign.content or "")
        fmt = str(campaign.content_format or "markdown")
        if fmt not in ("markdown", "html"):
            raise TemplateError(f"{label}: unknown content format {fmt!r}")
        # The source as written is itself a template: compiling it first reports syntax errors
        # at the line the author sees, before the Markdown conversion moves lines about.
        self._source = envs.string(content, html=fmt == "html", name=f"{label} content")
        self._subject = envs.string(str(campaign.subject or ""), html=False,
                                    name=f"{label} subject")
        self._preheader = envs.string(str(campaign.preheader or ""), html=False,
                                      name=f"{label} preheader")
        if fmt == "markdown":
            html, text = markdown_to_html(content), markdown_to_text(content)
        else:
            html, text = content, html_to_text(content)
        self._body_html = envs.string(html, html=True, name=f"{label} content (HTML)")
        self._body_text = envs.string(text, html=False, name=f"{label} content (text)")

    def _build_headers(self, campaign: Any) -> None:
        s = self.settings.sender
        domain = self.settings.sender.list_id_domain
        lists = list((campaign.audience or {}).get("lists") or [])
        list_slug = clean(str(lists[0])).replace(" ", "-") if lists else self.kind
        self._list_id = f"<{list_slug}.{domain}>"
        self._mailto = f"mailto:{check_address(s.unsubscribe_address)}?subject=afmelden"
        fixed = [
            "From: " + format_address(s.name, s.address),
            "Reply-To: " + format_address(s.name, s.reply_to or s.address),
            f"List-Id: {display_name(s.name)} {self._list_id}".replace("  ", " "),
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Precedence: bulk",
            f"Feedback-ID: {self.campaign_id}:{clean(self.kind)}:{domain}",
        ]
        self._fixed_headers = fixed

    # -- people and values -----------------------------------------------------------------

    def language_of(self, recipient: Recipient) -> str:
        """The language this recipient's message is in: the content's, else their own."""
        return self._pinned or pick_language(recipient.language)

    def person(self, recipient: Recipient) -> Person:
        """The recipient's values (links made lazily, shared by headers and bodies)."""
        return Person(recipient, self._links, self.campaign_id, self.event_id)

    def _context(self, lang: _Language, subscriber: Any, links: Any) -> dict[str, Any]:
        return {**lang.base, "subscriber": subscriber, "links": links}

    # -- the slow path: everything per recipient -------------------------------------------

    def render_slow(self, person: Person) -> Rendered:
        """Render every template for one person; the reference the splicing path must equal."""
        lang = self._languages[self.language_of(person.recipient)]
        ctx = self._context(lang, SubscriberView(person), LinksView(person, self._link_names))
        try:
            subject = clean(self._subject.render(ctx))
            preheader = clean(self._preheader.render(ctx))
            body_html = Markup(self._body_html.render(ctx))
            body_text = self._body_text.render(ctx)
            parts = {"subject": subject, "preheader": preheader}
            html = lang.html.render({**ctx, **parts, "content": body_html})
            text = lang.text.render({**ctx, **parts, "content": body_text})
        except TemplateError:
            raise
        except Exception as exc:
            raise template_error(exc) from None
        return Rendered(subject, inline_css(html), text)

    # -- the fast path: probes, shapes, segments -------------------------------------------

    def _probe_context(self, lang: _Language, run: ProbeRun) -> dict[str, Any]:
        subscriber = ProbeSubscriberView(
            **{name: Probe(run, ("subscriber", name)) for name in SUBSCRIBER_FIELDS},
            attributes=ProbeAttributes(run),
        )
        links = ProbeLinksView(**{n: Probe(run, ("links", n)) for n in self._link_names})
        return self._context(lang, subscriber, links)

    def _probe(self, lang: _Language, answers: dict[Key, bool]) -> tuple[_Shape | None, ProbeRun]:
        run = ProbeRun(answers)
        ctx = self._probe_context(lang, run)
        try:
            # The source first: an error in it is reported at the line the author wrote.
            self._source.render(ctx)
            subject = clean(self._subject.render(ctx))
            preheader = clean(self._preheader.render(ctx))
            body_html = Markup(self._body_html.render(ctx))
            body_text = self._body_text.render(ctx)
            parts = {
                "subject": _PartProbe(run, ("part", "subject"), subject),
                "preheader": _PartProbe(run, ("part", "preheader"), preheader),
            }
            html = lang.html.render(
                {**ctx, **parts, "content": _PartProbe(run, ("part", "html"), body_html)}
            )
            text = lang.text.render(
                {**ctx, **parts, "content": _PartProbe(run, ("part", "text"), body_text)}
            )
        except Exception as exc:
            if run.tainted:
                return None, run
            raise template_error(exc) from None
        if run.tainted:
            return None, run
        html_segments = split_html(inline_css(html))
        subject_segments = split_text(subject)
        text_segments = split_text(text)
        if html_segments is None or subject_segments is None or text_segments is None:
            run.taint("a personal value stands where it cannot be spliced")
            return None, run
        shape = _Shape(list(run.keys), subject_segments, html_segments, text_segments,
                       EncodedPart(html_segments), EncodedPart(text_segments))
        return shape, run

    def _build_shape(self, lang: _Language, answers: tuple[bool, ...]) -> bool:
        """Make the segments for one combination of answers; False if new truth tests showed up.

        A combination whose render uses a personal value in a way splicing cannot reproduce
        is stored as None: recipients with those answers are rendered per recipient.
        """
        shape, run = self._probe(lang, dict(zip(lang.truth_keys, answers, strict=True)))
        new = [k for k in run.asked if k not in lang.truth_keys]
        if new:
            # A truth test we had not seen: every earlier shape assumed "true" for it.
            lang.truth_keys.extend(new)
            lang.shapes.clear()
            if len(lang.truth_keys) > MAX_KEYS:
                lang.slow_reason = "too many personal values in truth tests"
            return False
        if shape is None and not lang.taint:
            lang.taint = run.tainted
        lang.shapes[answers] = shape
        return True

    def _warm(self, lang: _Language) -> None:
        """Make every shape now, so a template error in any branch shows before sending."""
        for _ in range(MAX_KEYS + 2):
            keys = list(lang.truth_keys)
            for answers in itertools.product((True, False), repeat=len(keys)):
                if lang.slow_reason:
                    return
                if answers not in lang.shapes and not self._build_shape(lang, answers):
                    break  # the keys changed: start over with the longer list
            else:
                return
        lang.slow_reason = "truth tests did not settle"

    def _shape(self, lang: _Language, person: Person) -> _Shape | None:
        """The segments for this person's truth-test answers (None: render per recipient)."""
        for _ in range(MAX_KEYS + 2):
            if lang.slow_reason:
                return None
            answers = tuple(bool(person.value(k)) for k in lang.truth_keys)
            if answers in lang.shapes:
                return lang.shapes[answers]
            self._build_shape(lang, answers)
        lang.slow_reason = "truth tests did not settle"
        return None

    def render_person(self, person: Person) -> Rendered:
        lang = self._languages[self.language_of(person.recipient)]
        shape = self._shape(lang, person)
        if shape is None:
            return self.render_slow(person)
        values = [str(person.value(k)) for k in shape.keys]
        return Rendered(shape.subject.join(values), shape.html.join(values),
                        shape.text.join(values))

    def splice_report(self) -> dict[str, str]:
        """Per language: "spliced", or why it is rendered per recipient (for docs and tests)."""
        report = {}
        for code, lang in self._languages.items():
            if lang.slow_reason or all(shape is None for shape in lang.shapes.values()):
                report[code] = lang.slow_reason or lang.taint
            elif lang.taint:
                report[code] = f"partly spliced; per recipient when {lang.taint}"
            else:
                report[code] = "spliced"
        return report

    # -- the interface -----------------------------------------------------------------------

    def render(self, recipient: Recipient) -> Rendered:
        """Subject, HTML (CSS inlined) and text for one recipient: preview and "view online"."""
        return self.render_person(self.person(recipient))

    def _person_mailto(self, recipient: Recipient) -> str:
        if not recipient.subscriber_id:
            return self._mailto
        token = self._signer.mailto_token(recipient.subscriber_id)
        return unsubscribe_mailto(self.settings.sender.unsubscribe_address, token)

    def envelope_sender(self, recipient: Recipient) -> str:
        """The SMTP MAIL FROM: the signed VERP address of the delivery, or the bounce mailbox."""
        domain = self.settings.sender.bounce_domain
        if recipient.delivery_id is not None:
            return self._signer.verp_address(recipient.delivery_id, domain)
        return f"bounces@{domain}"

    def message_id(self, recipient: Recipient) -> str:
        """The Message-ID: fixed per delivery (a resend after a crash keeps it), else unique.
        Like the VERP token it shows no row id (recipients see it; forwarded mail carries it)."""
        domain = self.settings.sender.list_id_domain
        if recipient.delivery_id is not None:
            return f"<gt.{self._signer.message_token(recipient.delivery_id)}@{domain}>"
        return f"<gt.{secrets.token_hex(12)}@{domain}>"

    def message_bytes(self, recipient: Recipient) -> bytes:
        """The complete message (RFC 5322, CRLF line ends), DKIM-signed if configured."""
        person = self.person(recipient)
        lang = self._languages[self.language_of(recipient)]
        shape = self._shape(lang, person)
        if shape is None:
            rendered = self.render_slow(person)
            return self._message(
                person, rendered.subject, encode_qp(rendered.text), encode_qp(rendered.html)
            )
        values = [str(person.value(k)) for k in shape.keys]
        return self._message(
            person, shape.subject.join(values),
            shape.text_qp.encode(values), shape.html_qp.encode(values),
        )

    def message_slow(self, recipient: Recipient) -> bytes:
        """message_bytes without splicing: the reference path, for tests and benchmarks."""
        person = self.person(recipient)
        rendered = self.render_slow(person)
        return self._message(
            person, rendered.subject, encode_qp(rendered.text), encode_qp(rendered.html)
        )

    def _message(self, person: Person, subject: str, text: bytes, html: bytes) -> bytes:
        recipient = person.recipient
        now = int(self._clock())
        if self._date_cache[0] != now:
            stamp = email.utils.format_datetime(dt.datetime.fromtimestamp(now, dt.UTC))
            self._date_cache = (now, f"Date: {stamp}\r\n".encode("ascii"))
        subject_line = self._subject_lines.get(subject)
        if subject_line is None:
            if len(self._subject_lines) > 1000:
                self._subject_lines.clear()
            subject_line = (encode_unstructured("Subject", subject) + "\r\n").encode("ascii")
            self._subject_lines[subject] = subject_line
        personal = "".join((
            "To: ", format_address(person.fields["name"], recipient.email), "\r\n",
            "Message-ID: ", self.message_id(recipient), "\r\n",
            "List-Unsubscribe: <", person.link("unsubscribe"), ">,\r\n <",
            self._person_mailto(recipient), ">\r\n",
        )).encode("utf-8")  # ASCII except an address with accents before the @ (RFC 6532)
        calendar = None
        if self._calendar is not None:
            # Only the ORGANIZER (the person's reply address) and ATTENDEE lines are personal.
            code = self.language_of(recipient)
            calendar = CalendarBody(
                self._calendar.text(str(person.fields["name"]), recipient.email,
                                    recipient.subscriber_id, code),
                self._calendar.filename(code),
            )
        data = self._skeleton.assemble_encoded(
            self._date_cache[1] + subject_line + personal, text, html, calendar
        )
        return self._dkim.sign(data) if self._dkim is not None else data


def build_renderer(
    session: Session,
    campaign: Campaign,
    settings: Settings,
    signer: Signer,
    *,
    extras: CampaignExtras | None = None,
) -> CampaignRenderer:
    """The renderer for a campaign; for a meeting invitation with the event and its .ics, which
    `extras` (handed in by the composition root: composition knows no meetings) provides."""
    event: Mapping[str, Any] | None = None
    calendar: MeetingCalendar | None = None
    if campaign.event_id is not None:
        if extras is None:
            raise TemplateError(
                f"campaign {campaign.id} is about a meeting: its renderer needs the meeting's "
                "details (build it with the application's renderer factory)"
            )
        event, calendar = extras(session, campaign, settings, signer)
    return CampaignRenderer(campaign, settings, signer, event=event, calendar=calendar)
