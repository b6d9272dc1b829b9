"""Render once, splice per recipient: probes that stand in for personal values.

A campaign's templates are rendered once per language with *probes* in place of everything
personal (subscriber fields, attributes, per-recipient links). When a template only prints a
probe (`{{ subscriber.name }}`), Jinja's `finalize` hook turns it into a marker
(U+E000 n U+E001, private-use characters no text contains); the output is then split at the
markers into fixed segments, and a recipient's message is the segments joined with that
recipient's values, escaped as the slow path would have escaped them.

Any other use of a probe — a filter (`|upper` calls str()), concatenation, comparison,
iteration — *taints* the run and that language falls back to rendering per recipient, which is
always correct. One kind of logic is supported: truth tests (`{% if subscriber.organisation %}`,
`subscriber.name or "collega"`). A probe answers a truth test from the run's `answers`, and the
renderer keeps one set of segments per combination of answers (a *shape*), at most 2**MAX_KEYS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ProbeRun",
    "Probe",
    "ProbeAttributes",
    "Segments",
    "split_text",
    "split_html",
    "escape_text",
    "escape_attribute",
    "MAX_KEYS",
]

Key = tuple[Hashable, ...]
#: Most truth-tested personal values a template may have and still be spliced.
MAX_KEYS = 6
_MARK = re.compile("\ue000(\\d+)\ue001")


class ProbeRun:
    """One probe render: hands out markers, records truth tests and any other use (taint)."""

    def __init__(self, answers: Mapping[Key, bool]) -> None:
        self.answers = answers
        self.keys: list[Key] = []
        self._index: dict[Key, int] = {}
        self.asked: dict[Key, bool] = {}
        self.tainted = ""

    def marker(self, key: Key) -> str:
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.keys)
            self.keys.append(key)
        return f"\ue000{index}\ue001"

    def taint(self, why: str) -> None:
        if not self.tainted:
            self.tainted = why

    def answer(self, key: Key) -> bool:
        value = self.answers.get(key, True)
        self.asked[key] = value
        return value


class Probe:
    """Stands in for one personal value (or a part made of them: subject, content)."""

    __slots__ = ("_inner", "_key", "_run")

    def __init__(self, run: ProbeRun, key: Key, inner: Any = None) -> None:
        self._run = run
        self._key = key
        self._inner = inner

    def _probe_output(self) -> Any:
        return self._inner if self._inner is not None else self._run.marker(self._key)

    def _taint(self, how: str) -> None:
        self._run.taint(f"{'.'.join(map(str, self._key))}: {how}")

    def __bool__(self) -> bool:
        if self._inner is not None:
            self._taint("truth test of a whole part")
            return True
        return self._run.answer(self._key)

    def __str__(self) -> str:
        self._taint("used in an expression or filter")
        return str(self._probe_output())

    def __html__(self) -> str:
        self._taint("escaped outside output")
        return str(self._probe_output())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._taint(f"attribute {name}")
        raise AttributeError(name)

    def __getitem__(self, item: Any) -> Any:
        self._taint("indexed")
        raise KeyError(item)

    def __eq__(self, other: object) -> bool:
        self._taint("compared")
        return False

    def __hash__(self) -> int:
        self._taint("hashed")
        return id(self)

    def __len__(self) -> int:
        self._taint("len()")
        return 0

    def __iter__(self) -> Any:
        self._taint("iterated")
        return iter(())

    def __contains__(self, item: object) -> bool:
        self._taint("'in' test")
        return False

    def _compare(self, other: object) -> bool:
        self._taint("compared")
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __ne__ = _compare

    def _arith(self, other: object) -> str:
        self._taint("arithmetic or concatenation")
        return ""

    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _arith

    def __format__(self, spec: str) -> str:
        self._taint("formatted")
        return ""

    def __int__(self) -> int:
        self._taint("converted to a number")
        return 0

    __float__ = __int__


class ProbeAttributes:
    """Stands in for `subscriber.attributes`: each key read becomes a probe."""

    __slots__ = ("_run",)

    def __init__(self, run: ProbeRun) -> None:
        self._run = run

    def __getattr__(self, name: str) -> Probe:
        if name.startswith("__"):
            raise AttributeError(name)
        return Probe(self._run, ("attr", name))

    def __getitem__(self, key: Any) -> Probe:
        return Probe(self._run, ("attr", str(key)))

    def get(self, key: Any, default: Any = None) -> Probe:
        try:
            hash(default)
        except TypeError:
            self._run.taint("attributes.get with an unhashable default")
            return Probe(self._run, ("attr", str(key)))
        return Probe(self._run, ("attr-get", str(key), default))

    def _taint(self, *args: Any, **kwargs: Any) -> Any:
        self._run.taint("attributes used as a whole")
        return iter(())

    items = keys = values = __iter__ = _taint

    def __str__(self) -> str:
        self._run.taint("attributes printed as a whole")
        return ""

    __html__ = __str__

    def __bool__(self) -> bool:
        self._run.taint("attributes truth-tested as a whole")
        return True

    def __len__(self) -> int:
        self._run.taint("attributes counted")
        return 0

    def __contains__(self, key: object) -> bool:
        self._run.taint("'in' test on attributes")
        return False


# -- splitting ------------------------------------------------------------------------------


def escape_text(value: str) -> str:
    """How the HTML serializer (css-inline's html5ever) escapes text: & nbsp < >."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "\xa0" in value:
        value = value.replace("\xa0", "&nbsp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def escape_attribute(value: str) -> str:
    """How the HTML serializer escapes a double-quoted attribute value: & nbsp "."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "\xa0" in value:
        value = value.replace("\xa0", "&nbsp;")
    if '"' in value:
        value = value.replace('"', "&quot;")
    return value


def _plain(value: str) -> str:
    return value


@dataclass(frozen=True)
class Segments:
    """A part's fixed text between its personal values: segments[0] v0 segments[1] v1 ..."""

    segments: tuple[str, ...]
    slots: tuple[tuple[int, Callable[[str], str]], ...]  # (value index, escape) per gap

    def join(self, values: list[str]) -> str:
        segments = self.segments
        if not self.slots:
            return segments[0]
        out = [segments[0]]
        for (index, escape), segment in zip(self.slots, segments[1:], strict=True):
            out.append(escape(values[index]))
            out.append(segment)
        return "".join(out)


def split_text(output: str) -> Segments | None:
    """Segments of plain output; None if it holds a stray marker character."""
    parts = _MARK.split(output)
    segments = tuple(parts[0::2])
    if any("\ue000" in s or "\ue001" in s for s in segments):
        return None
    slots = tuple((int(i), _plain) for i in parts[1::2])
    return Segments(segments, slots)


_RAW_ELEMENTS = ("style", "script", "xmp", "iframe", "noembed", "noframes", "plaintext",
                 "noscript", "textarea")
_TOKEN = re.compile(
    r"<!--.*?-->"  # comment (serialized raw)
    r"|<(?P<raw>" + "|".join(_RAW_ELEMENTS) + r")\b[^>]*>.*?</(?P=raw)\s*>"  # raw text element
    # any other tag; attribute values are always double-quoted by the serializer, and may hold '>'
    r'|<[^>"]*(?:"[^"]*"[^>"]*)*>',
    re.DOTALL | re.IGNORECASE,
)
_ATTR_VALUE = re.compile(r'([^\s=/>"]+)="([^"]*)"')


def split_html(output: str) -> Segments | None:
    """Segments of serialized HTML, each value escaped for where it stands (text or attribute).

    Returns None when a marker stands where splicing cannot reproduce the serializer: inside a
    comment, a raw-text element (style, script, ...), a style attribute or a tag name.
    """
    escapes: list[Callable[[str], str]] = []
    position = 0
    for token in _TOKEN.finditer(output):
        for _ in _MARK.finditer(output, position, token.start()):
            escapes.append(escape_text)
        position = token.end()
        text = token.group(0)
        if "\ue000" not in text:
            continue
        if text.startswith("<!--") or token.group("raw"):
            return None
        # A tag: every marker must sit inside a quoted attribute value other than style.
        inside = 0
        for attr in _ATTR_VALUE.finditer(text):
            count = len(_MARK.findall(attr.group(2)))
            if count and attr.group(1).lower() == "style":
                return None
            inside += count
            escapes.extend([escape_attribute] * count)
        if inside != len(_MARK.findall(text)):
            return None
    for _ in _MARK.finditer(output, position):
        escapes.append(escape_text)
    parts = _MARK.split(output)
    segments = tuple(parts[0::2])
    if any("\ue000" in s or "\ue001" in s for s in segments):
        return None
    indexes = [int(i) for i in parts[1::2]]
    if len(indexes) != len(escapes):
        return None
    return Segments(segments, tuple(zip(indexes, escapes, strict=True)))
