"""Content files (Markdown or HTML with front matter) and turning their bodies into templates.

A content file:

    ---
    subject: "Nieuws van GT, {{ subscriber.name }}"
    preheader: Raamcontracten, regiobijeenkomsten en meer
    datum: 2027-04-10
    ---
    Beste {{ subscriber.name }},
    ...

`subject` is required; `preheader` is optional; every other key goes to `campaign.meta`.
`language: nl` (or en) says the content is written in that language: then everyone gets the
whole message in it (layout, dates), instead of a frame in their own language round it.
The body may use Jinja placeholders. Markdown is converted to HTML once, with the Jinja tags
shielded from the Markdown parser (it would otherwise escape the quotes inside `{{ ... }}`).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import frontmatter
import yaml
from markdown_it import MarkdownIt

from mailer.compose.model import Content
from mailer.errors import TemplateError

__all__ = ["load_content", "markdown_to_html", "shield_jinja", "unshield_jinja", "FORMATS"]

FORMATS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}

_JINJA = re.compile(r"\{\{.*?\}\}|\{%-?.*?-?%\}|\{#.*?#\}", re.DOTALL)
_md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def _plain(value: Any) -> Any:
    """Front-matter values as JSON-storable values (YAML dates become ISO strings)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def load_content(path: str | Path, *, subject: str | None = None) -> Content:
    """Read a content file; TemplateError naming the file if it cannot be used.

    A `subject` given here (the --subject flag) replaces the front matter's, which may then be
    missing altogether.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise TemplateError(f"{path}: content must be a .md or .html file")
    try:
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise TemplateError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise TemplateError(f"{path}{line}: front matter is not valid YAML") from None
    meta = {str(k): _plain(v) for k, v in post.metadata.items()}
    front_subject = meta.pop("subject", None)
    subject = subject if subject and subject.strip() else front_subject
    if not isinstance(subject, str) or not subject.strip():
        raise TemplateError(
            f"{path}: no subject (give `subject:` in the front matter, or --subject)"
        )
    language = meta.get("language")
    if language is not None:
        from mailer.compose.environment import LANGUAGES

        if str(language).strip().lower() not in LANGUAGES:
            raise TemplateError(
                f"{path}: language must be one of {', '.join(LANGUAGES)}, got {language!r}"
            )
        meta["language"] = str(language).strip().lower()
    preheader = meta.pop("preheader", "")
    if not isinstance(preheader, str):
        raise TemplateError(f"{path}: preheader must be text")
    if not post.content.strip():
        raise TemplateError(f"{path}: the body is empty")
    return Content(subject.strip(), preheader.strip(), post.content, fmt, meta)


def shield_jinja(source: str) -> tuple[str, list[str]]:
    """Replace Jinja tags by inert tokens (letters and digits only); returns (text, tags)."""
    tags: list[str] = []

    def keep(match: re.Match[str]) -> str:
        tags.append(match.group(0))
        return f"JJTAG{len(tags) - 1}QZ"

    return _JINJA.sub(keep, source), tags


def unshield_jinja(text: str, tags: list[str]) -> str:
    """Put the Jinja tags back in place of their tokens."""

    def alone(match: re.Match[str]) -> str:
        # A statement ({% %}, {# #}) alone between blank lines became a paragraph of its own;
        # drop the <p> around it. An expression ({{ }}) alone is real paragraph text.
        if tags[int(match.group(2))].startswith("{{"):
            return match.group(0)
        return match.group(1) + "\n"

    text = re.sub(r"<p>(JJTAG(\d+)QZ)</p>\n?", alone, text)
    return re.sub(r"JJTAG(\d+)QZ", lambda m: tags[int(m.group(1))], text)


def markdown_to_html(source: str) -> str:
    """Markdown (with Jinja tags) to HTML (with the same Jinja tags)."""
    shielded, tags = shield_jinja(source)
    return unshield_jinja(_md.render(shielded), tags)
