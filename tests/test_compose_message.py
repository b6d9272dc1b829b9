"""The bytes of a campaign message: headers, both parts, personalisation, safety, splicing."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from compose_support import SECRET, bodies, campaign, compose_settings, parse

from mailer.compose import Attachment, CampaignRenderer, Recipient, sample_recipient
from mailer.kernel.tokens import UNSUBSCRIBE, Signer
from mailer.settings import Settings


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return compose_settings(config_file)


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


def person(**fields: object) -> Recipient:
    values: dict[str, object] = {
        "subscriber_id": 7,
        "public_id": "pid-of-jan-jansen-7",
        "email": "j.jansen@gemeente-voorbeeld.nl",
        "name": "Jan Jansen",
        "organisation": "Gemeente Voorbeeld",
        "job_title": "Adviseur",
        "region": "Noord",
        "language": "nl",
        "attributes": {"functie": "inkoper"},
        "delivery_id": 1234,
    }
    values.update(fields)
    return Recipient(**values)  # type: ignore[arg-type]


def test_headers_of_a_newsletter(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    message = parse(renderer.message_bytes(person()))

    assert message["From"].addresses[0].addr_spec == "nieuwsbrief@gt.example.nl"
    assert message["From"].addresses[0].display_name == "GT Gemeentelijke Telecommunicatie"
    assert message["Reply-To"].addresses[0].addr_spec == "info@gt.example.nl"
    assert message["To"].addresses[0].addr_spec == "j.jansen@gemeente-voorbeeld.nl"
    assert message["To"].addresses[0].display_name == "Jan Jansen"
    assert message["Subject"] == "Nieuws voor Jan Jansen"
    assert message["Message-ID"] == f"<gt.{signer.message_token(1234)}@gt.example.nl>"
    assert message["Date"].datetime is not None
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "GT Gemeentelijke Telecommunicatie <nieuwsbrief.gt.example.nl>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk"
    assert message["Feedback-ID"] == "42:newsletter:gt.example.nl"
    assert message["Auto-Submitted"] is None
    assert message.get_content_type() == "multipart/alternative"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    assert https.startswith("http://127.0.0.1:8025/u/")
    # The person's own signed token: mail to it unsubscribes exactly them, whatever its From.
    local = mailto.removeprefix("mailto:").split("@")[0]
    assert local.startswith("afmelden+")
    assert mailto.endswith("@bounces.gt.example.nl?subject=afmelden")
    assert renderer._signer.parse_mailto_token(local.split("+", 1)[1]) == person().subscriber_id
    # Every header appears once, and every line ends in CRLF.
    data = renderer.message_bytes(person())
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":")[0].lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"]
    assert len(names) == len(set(names))
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_unsubscribe_token_names_the_subscriber_and_campaign(
    settings: Settings, signer: Signer
) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    message = parse(renderer.message_bytes(person(subscriber_id=99, public_id="pid-of-person-99")))
    https = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])[0]
    token = unquote(https.rsplit("/", 1)[1])
    assert signer.unsign(UNSUBSCRIBE, token) == {"s": "pid-of-person-99", "c": 42}
    text, html = bodies(message)
    # The body links to the same page as the header.
    assert https in text
    assert https in html


def test_envelope_sender_is_verp_for_a_delivery(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    verp = renderer.envelope_sender(person(delivery_id=123456))
    assert verp.endswith("@bounces.gt.example.nl")
    assert signer.parse_verp(verp) == 123456
    assert renderer.envelope_sender(person(delivery_id=None)) == "bounces@bounces.gt.example.nl"


def test_both_parts_are_personalised(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    text, html = bodies(parse(renderer.message_bytes(person())))
    for body in (text, html):
        assert "Beste Jan Jansen," in body
        assert "Uw organisatie: Gemeente Voorbeeld in regio Noord." in body
        assert "Functie: inkoper" in body
    assert "<h1" in html and "style=" in html  # CSS inlined
    assert "Nieuws\n======" in text
    assert "Afmelden: http://127.0.0.1:8025/u/" in text
    assert "U ontvangt deze nieuwsbrief" in text


def test_a_missing_attribute_is_empty_not_an_error(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    text, _html = bodies(parse(renderer.message_bytes(person(attributes={}))))
    assert "Functie: \n" in text


def test_language_chooses_the_template(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    text_nl, html_nl = bodies(parse(renderer.message_bytes(person(language="nl"))))
    text_en, html_en = bodies(parse(renderer.message_bytes(person(language="en"))))
    assert "Afmelden" in text_nl and "Unsubscribe" not in text_nl
    assert "Unsubscribe" in text_en and "Afmelden" not in text_en
    assert 'lang="nl"' in html_nl and 'lang="en"' in html_en
    # An unknown language gets the Dutch default.
    text_fr, _ = bodies(parse(renderer.message_bytes(person(language="fr"))))
    assert "Afmelden" in text_fr


def test_html_escapes_personal_values(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    nasty = '<script>alert("x")</script> & O\'Brien'
    text, html = bodies(parse(renderer.message_bytes(person(name=nasty))))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert nasty in text  # plain text is not HTML: it is shown as typed
    assert parse(renderer.message_bytes(person(name=nasty)))["Subject"] == f"Nieuws voor {nasty}"


@pytest.mark.parametrize(
    "field",
    ["name", "organisation", "region"],
)
def test_no_header_injection_through_personal_values(
    settings: Settings, signer: Signer, field: str
) -> None:
    renderer = CampaignRenderer(
        campaign(subject="{{ subscriber.name }} {{ subscriber.organisation }} "
                         "{{ subscriber.region }} {{ subscriber.attributes.x }}"),
        settings, signer,
    )
    evil = "Eva\r\nBcc: victim@example.org\r\n\r\nbody"
    data = renderer.message_bytes(person(**{field: evil}, attributes={"x": "a\nX-Evil: 1"}))
    message = parse(data)
    assert message["Bcc"] is None
    assert message["X-Evil"] is None
    assert "Bcc: victim@example.org" in message["Subject"]  # kept, as text on one line
    assert "\n" not in message["Subject"] and "\n" not in str(message["To"])


def test_no_header_injection_through_the_campaign_subject(
    settings: Settings, signer: Signer
) -> None:
    renderer = CampaignRenderer(campaign(subject="Nieuws\r\nBcc: x@example.org"), settings, signer)
    message = parse(renderer.message_bytes(person()))
    assert message["Bcc"] is None
    assert message["Subject"] == "Nieuws Bcc: x@example.org"


def test_a_bad_recipient_address_is_refused(settings: Settings, signer: Signer) -> None:
    from mailer.errors import TemplateError

    renderer = CampaignRenderer(campaign(), settings, signer)
    with pytest.raises(TemplateError, match="not a usable e-mail address"):
        renderer.message_bytes(person(email="a@example.org>\r\nBcc: b@example.org"))


def test_internationalised_addresses(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    data = renderer.message_bytes(person(email="josé@gemeente-één.nl"))
    # Accents before the @ stay UTF-8 (RFC 6532, sent with SMTPUTF8); the domain becomes IDNA.
    assert "To: Jan Jansen <josé@xn--gemeente-n-j7aa.nl>\r\n".encode() in data


def _unfolded_except_list_headers(head: bytes) -> list[bytes]:
    """The header lines of `head`, without those of List-* headers (continuations included)."""
    kept, in_list = [], False
    for line in head.split(b"\r\n"):
        if line[:1] not in b" \t":
            in_list = line.startswith(b"List-")
        if not in_list:
            kept.append(line)
    return kept


def test_non_ascii_subject_and_names_are_encoded(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(
        campaign(subject="Één nieuwsbrief voor {{ subscriber.name }} — " + "lang " * 20),
        settings, signer,
    )
    data = renderer.message_bytes(person(name="Zoë Ağaoğlu-Müller"))
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    # List-* headers hold URLs, which cannot be folded (nor can a sealed mailto token).
    assert all(len(line) <= 78 for line in _unfolded_except_list_headers(head))
    long_name = "Ëlisabeth " * 20
    long_head = renderer.message_bytes(person(name=long_name)).split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in _unfolded_except_list_headers(long_head)
               if line[:1] in b" T")
    shown = parse(renderer.message_bytes(person(name=long_name)))["To"].addresses[0].display_name
    # The stdlib parser keeps the folding space between encoded words (RFC 2047 says drop it).
    assert shown.split() == long_name.split()
    message = parse(data)
    expected = "Één nieuwsbrief voor Zoë Ağaoğlu-Müller — " + ("lang " * 20).strip()
    assert message["Subject"] == expected
    assert message["To"].addresses[0].display_name == "Zoë Ağaoğlu-Müller"


def test_attachments_make_a_mixed_message(settings: Settings, signer: Signer) -> None:
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    renderer = CampaignRenderer(
        campaign(), settings, signer,
        attachments=[Attachment("uitnodiging.ics", "text/calendar; method=REQUEST", ics)],
    )
    message = parse(renderer.message_bytes(person()))
    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_attachments())
    assert len(parts) == 1
    assert parts[0].get_content_type() == "text/calendar"
    assert parts[0].get_param("method") == "REQUEST"
    assert parts[0].get_filename() == "uitnodiging.ics"
    assert parts[0].get_content().encode() == ics
    text, html = bodies(message)
    assert "Beste Jan Jansen" in text and "Beste Jan Jansen" in html


def test_render_for_preview(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(campaign(), settings, signer)
    rendered = renderer.render(sample_recipient(settings))
    assert rendered.subject == "Nieuws voor Voorbeeld Ontvanger"
    assert "Beste Voorbeeld Ontvanger" in rendered.html
    assert "Beste Voorbeeld Ontvanger" in rendered.text


# -- the spliced path equals the straightforward one ------------------------------------------

SPLICE_CASES = {
    "plain": campaign(),
    "truth tests": campaign(
        content=(
            "{% if subscriber.name %}Beste {{ subscriber.name }},{% else %}Beste lezer,{% endif %}"
            "\n\n{{ subscriber.organisation or 'uw gemeente' }} in {{ subscriber.region }}\n\n"
            "[Afmelden]({{ links.unsubscribe }}) {{ subscriber.attributes.get('functie', '-') }}"
        )
    ),
    "filters and logic (per recipient)": campaign(
        subject="{{ subscriber.name|upper }}",
        content="{% if subscriber.region == 'Noord' %}Noorden{% endif %} "
        "{{ subscriber.name|title }}\n\n"
        "{% for k, v in subscriber.attributes.items() %}{{ k }}={{ v }} {% endfor %}",
    ),
    "partly spliced": campaign(
        content="{% if subscriber.name %}{{ subscriber.name|title }}{% else %}Beste lezer"
        "{% endif %}, {{ subscriber.region }}",
    ),
    "html content": campaign(
        content_format="html",
        content='<p title="{{ subscriber.name }}">Hallo <b>{{ subscriber.name }}</b></p>'
        '<p><a href="{{ links.preferences }}">voorkeuren</a></p>',
    ),
}

PEOPLE = [
    person(),
    person(name="", organisation="", attributes={}),
    person(name='A & B <c> "d" \'e\'\xa0f', organisation="Ö & Zn", region="", language="en"),
    person(name="x\r\ny\tz\x00", attributes={"functie": 5}),
    person(language="de", name="Ümit", attributes={"functie": "a&amp;b"}),
]


@pytest.mark.parametrize("case", sorted(SPLICE_CASES))
def test_spliced_output_equals_per_recipient_rendering(
    settings: Settings, signer: Signer, case: str
) -> None:
    renderer = CampaignRenderer(SPLICE_CASES[case], settings, signer)
    report = renderer.splice_report()
    if case.endswith("(per recipient)"):
        assert report["nl"] != "spliced"
    elif case == "partly spliced":
        assert report["nl"].startswith("partly spliced; per recipient when subscriber.name")
    else:
        assert report == {"nl": "spliced", "en": "spliced"}
    for recipient in PEOPLE:
        values = renderer.person(recipient)
        assert renderer.render_person(values) == renderer.render_slow(values)


@pytest.mark.parametrize("case", sorted(SPLICE_CASES))
def test_spliced_message_bytes_equal_the_slow_build(
    settings: Settings, signer: Signer, case: str
) -> None:
    # A fixed clock, so both builds have the same Date and link timestamps.
    renderer = CampaignRenderer(SPLICE_CASES[case], settings, signer, clock=lambda: 1_800_000_000.0)
    for recipient in PEOPLE:
        assert renderer.message_bytes(recipient) == renderer.message_slow(recipient)


def test_fast_links_are_the_links_of_mailer_links() -> None:
    from mailer.compose.linktokens import FastLinks, fast_links
    from mailer.kernel.links import Links

    links = Links("https://gt.example.nl/", Signer(SECRET))
    fast = fast_links(links, SECRET)
    assert isinstance(fast, FastLinks)
    pid = "a-public-id-of-22-char"
    urls = (fast.unsubscribe(pid, 6), fast.preferences(pid), fast.view(pid, 6),
            fast.rsvp(pid, 7, "no"))
    assert all(url.startswith("https://gt.example.nl/") for url in urls)
    token = fast.unsubscribe(pid, 6).rsplit("/", 1)[1]
    assert Signer(SECRET).unsign(UNSUBSCRIBE, token) == {"s": pid, "c": 6}
    # Only a public id's alphabet goes into the JSON unescaped.
    with pytest.raises(ValueError):
        fast.preferences('x","s":"other-person-id-0')
    # With another key the self-check fails, and the plain Links are used.
    assert fast_links(links, "another-secret-key-0123456789") is links


def test_encoded_part_equals_encoding_the_whole() -> None:
    import random

    from mailer.compose.mime import EncodedPart, encode_qp
    from mailer.compose.splice import Segments, escape_text

    rng = random.Random(7)
    alphabet = "ab =\t.é€<>\"'xyz\n" + "r" * 8
    for _ in range(300):
        count = rng.randint(0, 4)
        segments = tuple(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
            for _ in range(count + 1)
        )
        slots = tuple((rng.randrange(2), escape_text) for _ in range(count))
        part = Segments(segments, slots)
        values = ["".join(rng.choice(alphabet.replace("\n", "")) for _ in range(rng.randint(0, 90)))
                  for _ in range(2)]
        assert EncodedPart(part).encode(values) == encode_qp(part.join(values))


def test_a_meeting_invitation_has_rsvp_links_and_the_calendar(
    settings: Settings, signer: Signer
) -> None:
    from mailer.kernel.tokens import RSVP

    renderer = CampaignRenderer(
        campaign(
            kind="invitation", event_id=5,
            content="{{ event.title }}: [ja]({{ links.rsvp_yes }}) [nee]({{ links.rsvp_no }}) "
                    "[misschien]({{ links.rsvp_maybe }}) [wijzig]({{ links.rsvp }})",
        ),
        settings, signer,
        event={"id": 5, "title": "Regiobijeenkomst Noord"},
        attachments=[Attachment("uitnodiging.ics", "text/calendar; method=REQUEST", b"X")],
    )
    assert renderer.splice_report()["nl"] == "spliced"
    message = parse(renderer.message_bytes(person(subscriber_id=31, public_id="pid-of-person-31")))
    assert message["Feedback-ID"] == "42:invitation:gt.example.nl"
    text, _html = bodies(message)
    urls = re.findall(r"\((http://127\.0\.0\.1:8025/r/[^)]+)\)", text)
    assert [u.partition("?")[2] for u in urls] == ["a=yes", "a=no", "a=maybe", ""]
    token = urls[0].partition("?")[0].rsplit("/", 1)[1]
    assert signer.unsign(RSVP, token) == {"s": "pid-of-person-31", "e": 5}
    assert "Regiobijeenkomst Noord:" in text


def test_a_typo_in_a_branch_the_sample_does_not_take_fails_at_construction(
    settings: Settings, signer: Signer
) -> None:
    from mailer.errors import TemplateError

    # The sample recipient has an organisation; the probes also try the case without one.
    content = "Hallo\n\n{% if not subscriber.organisation %}\n{{ subscriber.nmae }}\n{% endif %}\n"
    with pytest.raises(TemplateError, match=r"content, line 4: 'subscriber' has no .*nmae"):
        CampaignRenderer(campaign(content=content), settings, signer)


def test_random_values_splice_exactly(settings: Settings, signer: Signer) -> None:
    import random

    content = (
        "# Nieuws\n\nBeste {{ subscriber.name }},\n\n"
        '<span title="{{ subscriber.name }}">{{ subscriber.attributes.x }}</span>\n\n'
        "| a | b |\n|---|---|\n| {{ subscriber.organisation }} | {{ subscriber.region }} |\n"
    )
    renderer = CampaignRenderer(
        campaign(content=content, preheader="{{ subscriber.organisation }}"),
        settings, signer, clock=lambda: 1_800_000_000.0,
    )
    assert renderer.splice_report() == {"nl": "spliced", "en": "spliced"}
    rng = random.Random(3)
    alphabet = [*"aZ <>&\"'=;:/\\\t\r\n\x00\x0b\x0c\x7f\x85\xa0\u2028\u200b\ufeff\ue000é€𝄞{}%#",
                "&amp;", "&#39;", "<!--", "-->", "<script>", "{{ x }}"]

    def value() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))

    for number in range(300):
        recipient = person(
            subscriber_id=number, public_id=f"random-person-{number:04d}", name=value(),
            organisation=value(), region=value(),
            language=rng.choice(["nl", "en", "xx"]), attributes={"x": value()},
        )
        assert renderer.message_bytes(recipient) == renderer.message_slow(recipient)


def test_sender_names_are_quoted_or_encoded(config_file: Path, signer: Signer) -> None:
    for name in ("GT, Gemeentelijke \"Telecom\"", "GT Één Loket"):
        settings = compose_settings(config_file, **{"sender.name": name})
        data = CampaignRenderer(campaign(), settings, signer).message_bytes(person())
        assert data.split(b"\r\n\r\n", 1)[0].isascii()
        message = parse(data)
        assert message["From"].addresses[0].display_name == name
        assert message["From"].addresses[0].addr_spec == "nieuwsbrief@gt.example.nl"
        assert message["List-Id"].endswith("<nieuwsbrief.gt.example.nl>")


def test_content_can_switch_on_the_language(settings: Settings, signer: Signer) -> None:
    renderer = CampaignRenderer(
        campaign(subject='{% if language == "en" %}News{% else %}Nieuws{% endif %}',
                 content='{% if language == "en" %}Dear{% else %}Beste{% endif %} '
                         "{{ subscriber.name }}"),
        settings, signer,
    )
    assert renderer.splice_report() == {"nl": "spliced", "en": "spliced"}
    english = renderer.render(person(language="en"))
    dutch = renderer.render(person(language="nl"))
    assert (english.subject, dutch.subject) == ("News", "Nieuws")
    assert "Dear Jan Jansen" in english.text and "Beste Jan Jansen" in dutch.text
