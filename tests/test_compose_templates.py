"""Templates, content files, filters, transactional mail: errors early, with file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from compose_support import SECRET, bodies, campaign, compose_settings, parse
from sqlalchemy.orm import Session

from mailer.campaigns.models import Campaign
from mailer.compose import (
    CampaignRenderer,
    Recipient,
    build_renderer,
    build_transactional,
    load_content,
    sample_recipient,
)
from mailer.compose.plaintext import html_to_text, markdown_to_text
from mailer.errors import TemplateError
from mailer.kernel.tokens import Signer
from mailer.settings import Settings

SHIPPED_CONTENT = Path(__file__).resolve().parent.parent / "templates/content"


@pytest.fixture
def compose(config_file: Path) -> Settings:
    return compose_settings(config_file)


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


def test_a_typo_in_the_content_fails_at_construction_with_line(
    compose: Settings, signer: Signer
) -> None:
    content = "# Nieuws\n\nBeste {{ subscriber.name }},\n\nUw {{ subscriber.organsation }}\n"
    with pytest.raises(TemplateError, match=r"campaign 42 content, line 5: .*organsation"):
        CampaignRenderer(campaign(content=content), compose, signer)


def test_a_syntax_error_names_the_line(compose: Settings, signer: Signer) -> None:
    with pytest.raises(TemplateError, match=r"campaign 42 content, line 4: .*endif"):
        CampaignRenderer(campaign(content="a\n\n{% if x %}\nb\n"), compose, signer)
    with pytest.raises(TemplateError, match=r"campaign 42 subject, line 1"):
        CampaignRenderer(campaign(subject="Hallo {{ subscriber.name "), compose, signer)


def test_a_typo_in_a_template_file_names_the_file(
    config_file: Path, signer: Signer, tmp_path: Path
) -> None:
    override = tmp_path / "override"
    (override / "mail").mkdir(parents=True)
    (override / "mail/newsletter.nl.html").write_text(
        '{% extends "mail/base.html" %}\n{% block footer %}\n'
        "{{ links.afmelden }}\n{% endblock %}\n",
        encoding="utf-8",
    )
    settings = compose_settings(config_file, **{"templates.override_dir": str(override)})
    with pytest.raises(TemplateError) as caught:
        CampaignRenderer(campaign(), settings, signer)
    message = str(caught.value)
    assert "newsletter.nl.html, line 3" in message and "afmelden" in message
    assert "\n" not in message


def test_the_override_folder_wins(config_file: Path, signer: Signer, tmp_path: Path) -> None:
    override = tmp_path / "override"
    (override / "mail").mkdir(parents=True)
    (override / "mail/newsletter.nl.txt").write_text(
        "EIGEN TEKST\n{{ content }}\n{{ links.unsubscribe }}\n", encoding="utf-8"
    )
    settings = compose_settings(config_file, **{"templates.override_dir": str(override)})
    renderer = CampaignRenderer(campaign(), settings, signer)
    rendered = renderer.render(sample_recipient(settings))
    assert rendered.text.startswith("EIGEN TEKST\n")
    assert "Bekijk deze nieuwsbrief" in rendered.html  # the HTML is still the shipped one
    # English has no override and no English text in the folder: the shipped one is used.
    english = renderer.render(sample_recipient(settings, language="en"))
    assert "Unsubscribe" in english.text


def test_an_unknown_template_is_named(compose: Settings, signer: Signer) -> None:
    with pytest.raises(TemplateError, match="template 'bestaatniet' not found"):
        CampaignRenderer(campaign(template="bestaatniet"), compose, signer)
    with pytest.raises(TemplateError, match="template name"):
        CampaignRenderer(campaign(template="../etc/passwd"), compose, signer)


# -- content files ---------------------------------------------------------------------------


def test_the_sample_newsletter_loads_and_renders(compose: Settings, signer: Signer) -> None:
    content = load_content(SHIPPED_CONTENT / "voorbeeld-nieuwsbrief.md")
    assert content.format == "markdown"
    assert content.subject.startswith("GT-nieuws")
    assert content.preheader
    assert content.meta["regiodag"] == "2027-04-13"  # YAML dates are stored as ISO text
    renderer = CampaignRenderer(
        campaign(subject=content.subject, preheader=content.preheader, content=content.body,
                 meta=dict(content.meta)),
        compose, signer,
    )
    assert renderer.splice_report() == {"nl": "spliced", "en": "spliced"}
    rendered = renderer.render(sample_recipient(compose))
    assert "dinsdag 13 april 2027" in rendered.text
    assert "regio Noord" in rendered.html


def test_content_file_errors(tmp_path: Path) -> None:
    missing_subject = tmp_path / "a.md"
    missing_subject.write_text("---\npreheader: x\n---\nTekst\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"a\.md: no subject"):
        load_content(missing_subject)
    bad_yaml = tmp_path / "b.md"
    bad_yaml.write_text("---\nsubject: [x\n---\nTekst\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"b\.md.*not valid YAML"):
        load_content(bad_yaml)
    with pytest.raises(TemplateError, match=r"must be a \.md or \.html"):
        load_content(tmp_path / "c.txt")
    with pytest.raises(TemplateError, match="file not found"):
        load_content(tmp_path / "d.md")


def test_html_content_file(tmp_path: Path) -> None:
    path = tmp_path / "brief.html"
    path.write_text(
        "---\nsubject: Hallo\nthema: contracten\n---\n<p>Beste {{ subscriber.name }}</p>\n",
        encoding="utf-8",
    )
    content = load_content(path)
    assert (content.format, content.subject, dict(content.meta)) == (
        "html", "Hallo", {"thema": "contracten"}
    )


# -- filters and plain text --------------------------------------------------------------------


def test_dates_in_the_readers_language(compose: Settings, signer: Signer) -> None:
    start = dt.datetime(2027, 4, 13, 11, 30, tzinfo=dt.UTC)  # 13.30 in Amsterdam (summer time)
    body = "{{ campaign.meta.start|datum }} / {{ campaign.meta.start|tijd }} / " \
           "{{ campaign.meta.start|datumtijd }} / {{ '2027-01-05'|datum('d MMMM') }}"
    renderer = CampaignRenderer(campaign(content=body, meta={"start": start}), compose, signer)
    nl = renderer.render(sample_recipient(compose)).text
    assert ("dinsdag 13 april 2027 / 13.30 uur / dinsdag 13 april 2027 om 13.30 uur / 5 januari"
            in nl)
    en = renderer.render(sample_recipient(compose, language="en")).text
    assert "Tuesday 13 April 2027 / 1:30 PM / Tuesday 13 April 2027, 1:30 PM / 5 January" in en
    assert " om " not in en and "uur" not in en


def test_markdown_to_text() -> None:
    text = markdown_to_text(
        "# Kop\n\nZie **dit** en [de site](https://gt.example.nl) of "
        "[info@gt.example.nl](mailto:info@gt.example.nl).\n\n{% if x %}ja{% endif %}\n"
    )
    assert text == (
        "Kop\n===\n\nZie dit en de site (https://gt.example.nl) of info@gt.example.nl.\n\n"
        "{% if x %}ja{% endif %}\n"
    )


def test_html_to_text() -> None:
    text = html_to_text(
        "<style>p{color:red}</style><h1>Titel</h1><p>Beste {{ subscriber.name }},<br>"
        "welkom &amp; tot <a href='https://x.example'>ziens</a>.</p><ul><li>een</li><li>twee</li></ul>"
    )
    assert text == (
        "Titel\n\nBeste {{ subscriber.name }},\nwelkom & tot ziens (https://x.example).\n\n"
        "- een\n- twee\n"
    )


# -- transactional mail ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "subject", "words"),
    [("nl", "Bevestig uw aanmelding bij GT", "Beste Eva"),
     ("en", "Please confirm your GT subscription", "Dear Eva")],
)
def test_confirmation_mail(
    compose: Settings, signer: Signer, language: str, subject: str, words: str
) -> None:
    envelope, data = build_transactional(
        "confirm-subscription",
        to="eva@gemeente.example.nl",
        language=language,
        context={"name": "Eva <b>", "confirm_url": "https://gt.example.nl/c/abc?x=1&y=2",
                 "list_names": ["Nieuwsbrief"], "valid_hours": 72},
        settings=compose,
        signer=signer,
    )
    assert envelope == "bounces@bounces.gt.example.nl"
    message = parse(data)
    assert message["Subject"] == subject
    assert message["To"].addresses[0].addr_spec == "eva@gemeente.example.nl"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Precedence"] is None and message["List-Unsubscribe"] is None
    assert message["Message-ID"].endswith("@gt.example.nl>")
    text, html = bodies(message)
    assert words in text and "https://gt.example.nl/c/abc?x=1&y=2" in text
    assert "Eva &lt;b&gt;" in html and 'href="https://gt.example.nl/c/abc?x=1&amp;y=2"' in html
    assert "72" in text


def test_transactional_with_unsubscribe_and_errors(compose: Settings, signer: Signer) -> None:
    context = {"name": "", "confirm_url": "https://x.example/c/1", "list_names": [],
               "valid_hours": 1, "unsubscribe_url": "https://x.example/u/tok"}
    _envelope, data = build_transactional(
        "confirm-subscription", to="a@example.org", language="nl", context=context,
        settings=compose, signer=signer,
    )
    message = parse(data)
    assert message["List-Unsubscribe"].startswith("<https://x.example/u/tok>, <mailto:")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    del context["confirm_url"]
    with pytest.raises(TemplateError, match=r"confirm-subscription\.nl\.(txt|html), line \d+"):
        build_transactional("confirm-subscription", to="a@example.org", language="nl",
                            context=context, settings=compose, signer=signer)
    with pytest.raises(TemplateError, match="not found"):
        build_transactional("geen-sjabloon", to="a@example.org", language="nl", context={},
                            settings=compose, signer=signer)


# -- with the campaign table, on both databases ------------------------------------------------


def test_build_renderer_for_a_stored_campaign(
    session: Session, settings: Settings, signer: Signer
) -> None:
    row = Campaign(subject="Nieuws voor {{ subscriber.name }}",
                   content="Beste {{ subscriber.name }}",
                   audience={"lists": ["nieuwsbrief"]}, meta={})
    session.add(row)
    session.flush()
    renderer = build_renderer(session, row, settings, signer)
    message = parse(renderer.message_bytes(
        Recipient(subscriber_id=1, public_id="public-id-of-ans-1", email="a@example.org",
                  name="Ans",
                  delivery_id=5)
    ))
    assert message["Subject"] == "Nieuws voor Ans"
    # Fixed per delivery, and no row id in it (recipients see it).
    assert message["Message-ID"] == f"<gt.{signer.message_token(5)}@gt.example.nl>"
    assert f".{row.id}." not in message["Message-ID"] and ".5@" not in message["Message-ID"]


def test_content_in_one_language_is_sent_in_that_language(compose: Settings, signer: Signer
                                                         ) -> None:
    """A Dutch newsletter reaches English readers all in Dutch, not in an English frame with
    English dates round Dutch text ("Tuesday, 13 April 2027 om 13.30 uur")."""
    body = "De dag is {{ campaign.meta.dag|datum }} om 13.30 uur."
    renderer = CampaignRenderer(
        campaign(content=body, meta={"dag": "2027-04-13", "language": "nl"}), compose, signer
    )
    en = renderer.render(sample_recipient(compose, language="en"))
    assert "De dag is dinsdag 13 april 2027 om 13.30 uur." in en.text
    assert "Tuesday" not in en.text and 'lang="nl"' in en.html
