"""WCAG 2 contrast of the text in an HTML mail, read from its inline styles (after css-inline),
as a mail client draws it: each text's colour and the background of the nearest element that
sets one (style background-color / background, or the bgcolor attribute)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["contrast", "low_contrast_texts", "parse_colour", "buttons_without_cell"]

_NAMED = {"white": (255, 255, 255), "black": (0, 0, 0), "transparent": None}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
_HEX = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\b")
_RGB = re.compile(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)")

Colour = tuple[int, int, int]


def parse_colour(value: str) -> Colour | None:
    value = value.strip().lower().replace("!important", "").strip()
    if value in _NAMED:
        return _NAMED[value]
    match = _HEX.search(value)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    match = _RGB.search(value)
    if match:
        return (int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return None


def _luminance(colour: Colour) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Colour, b: Colour) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _style(attrs: dict[str, str]) -> dict[str, str]:
    out = {}
    for decl in attrs.get("style", "").split(";"):
        name, _, value = decl.partition(":")
        if value:
            out[name.strip().lower()] = value.strip()
    return out


@dataclass
class _Frame:
    tag: str
    colour: Colour
    background: Colour
    attrs: dict[str, str]


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = [_Frame("#root", (0, 0, 0), (255, 255, 255), {})]
        self.texts: list[tuple[str, Colour, Colour, str]] = []
        self.bare_buttons: list[str] = []
        self._raw = 0

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attr_list}
        if tag in ("style", "script", "title", "head"):
            self._raw += tag != "head"
        style = _style(attrs)
        top = self.stack[-1]
        colour = parse_colour(style.get("color", "")) or top.colour
        background = (parse_colour(style.get("background-color", ""))
                      or parse_colour(style.get("background", ""))
                      or parse_colour(attrs.get("bgcolor", "")) or top.background)
        is_button = tag == "a" and "button" in attrs.get("class", "").split()
        if is_button and (top.tag != "td" or "bgcolor" not in top.attrs):
            self.bare_buttons.append(attrs.get("href", ""))
        if tag not in _VOID:
            self.stack.append(_Frame(tag, colour, background, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title"):
            self._raw = max(0, self._raw - 1)
        for index in range(len(self.stack) - 1, 0, -1):
            if self.stack[index].tag == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        text = data.strip().strip("\u034f\u200c\xa0").strip()
        if not text or self._raw:
            return
        top = self.stack[-1]
        self.texts.append((text[:60], top.colour, top.background, top.tag))


def _hex(colour: Colour) -> str:
    return "#" + "".join(f"{c:02x}" for c in colour)


def low_contrast_texts(html: str, minimum: float = 4.5) -> list[str]:
    """Every text whose colour on its background is below `minimum`:1, described."""
    walker = _Walker()
    walker.feed(html)
    return [
        f"{text!r} in <{tag}>: {_hex(fg)} on {_hex(bg)} "
        f"= {contrast(fg, bg):.2f}:1"
        for text, fg, bg, tag in walker.texts if contrast(fg, bg) < minimum
    ]


def buttons_without_cell(html: str) -> list[str]:
    """Links styled as buttons that are not the only content of a coloured table cell."""
    walker = _Walker()
    walker.feed(html)
    return walker.bare_buttons
