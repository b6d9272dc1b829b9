"""The plain-text part: from the Markdown source, or converted from HTML.

Every message carries a text/plain part (bulk-sender rules and screen readers want one). For
Markdown content the source is already readable text; we only spell out links and drop emphasis
marks. For HTML content a small converter keeps paragraphs, line breaks, list items and link
targets. Jinja tags are shielded in both, so the result is still a template.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from mailer.compose.content import shield_jinja

__all__ = ["markdown_to_text", "html_to_text"]

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)((?:(?!\n\s*\n).)+?)(?<=\S)\1", re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _restore(text: str, tags: list[str]) -> str:
    return re.sub(r"JJTAG(\d+)QZ", lambda m: tags[int(m.group(1))], text)


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1), match.group(2)
    if url in (label, f"mailto:{label}"):
        return label
    return f"{label} ({url})"


def markdown_to_text(source: str) -> str:
    """Markdown as plain text: links as `text (url)`, headings underlined, no ** marks."""
    text, tags = shield_jinja(source)
    text = _IMAGE.sub(lambda m: m.group(1), text)
    text = _LINK.sub(_link, text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)

    def heading(match: re.Match[str]) -> str:
        title = match.group(2)
        underline = "=" if len(match.group(1)) == 1 else "-"
        # The shielded tokens are longer than the text they stand for; close enough for a rule.
        return f"{title}\n{underline * min(len(title), 60)}"

    text = _HEADING.sub(heading, text)
    return _restore(text.strip() + "\n", tags)


_BLOCKS = {"p", "div", "table", "tr", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
           "blockquote", "section", "article", "header", "footer", "hr", "pre"}
_SKIP = {"style", "script", "head", "title"}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.links: list[str | None] = []
        self.pre = 0
        self._link_start = 0

    def _newlines(self, count: int) -> None:
        if not self.out:
            return
        joined = "".join(self.out[-3:])
        have = len(joined) - len(joined.rstrip("\n"))
        if have < count:
            self.out.append("\n" * (count - have))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCKS:
            self._newlines(2)
            if tag == "pre":
                self.pre += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self._newlines(1)
            self.out.append("- ")
        elif tag == "td":
            self.out.append(" ")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))
            self.out.append("")
            self._link_start = len(self.out)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
            self._newlines(2)
        elif tag == "a" and self.links:
            href = self.links.pop()
            label = "".join(self.out[self._link_start:]).strip()
            if href and not href.startswith("#") and href not in (label, f"mailto:{label}"):
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
            if self.out and self.out[-1].endswith(("\n", " ")):
                data = data.lstrip(" ")
        self.out.append(data)


def html_to_text(html: str) -> str:
    """HTML (with Jinja tags) as readable plain text (with the same Jinja tags)."""
    shielded, tags = shield_jinja(html)
    parser = _TextParser()
    parser.feed(shielded)
    parser.close()
    text = "".join(parser.out)
    text = "\n".join(line.rstrip() for line in text.splitlines())
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return _restore(text, tags)
