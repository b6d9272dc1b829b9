"""The Jinja2 environments mail is rendered with, and finding a template by name and language.

Templates live in `mail/` under the override folder (settings.templates.override_dir) first, then
the shipped `templates/` folder, so an organisation replaces a file by putting one of the same name
in its folder. A template is looked up as `mail/<name>.<language>.<html|txt>`, then the Dutch
`mail/<name>.nl.<ext>` (Dutch is the default language), then `mail/<name>.<ext>`.

Two environments share the loader: HTML autoescapes, text does not. Both use StrictUndefined, so a
typo is an error at the trial render, and a `finalize` hook that lets the splicing renderer
(splice.py) see every value a template prints.
"""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from mailer.compose.filters import make_filters
from mailer.compose.splice import Probe
from mailer.errors import TemplateError
from mailer.settings import Settings

__all__ = [
    "SHIPPED_TEMPLATES",
    "LANGUAGES",
    "Environments",
    "make_environments",
    "environments_for",
    "template_error",
]

#: The templates folder shipped beside the packages.
SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
#: Languages with shipped templates; the first is the default.
LANGUAGES = ("nl", "en")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
_VIEW = re.compile(r"'(?:\w+\.)*(?:Probe)?(\w+)View object'")


def _finalize(value: Any) -> Any:
    # Probes (splice.py) print as their marker; everything else is printed as it is.
    return value._probe_output() if isinstance(value, Probe) else value


@dataclass(frozen=True)
class Environments:
    html: Environment
    text: Environment

    def find(self, name: str, language: str, ext: str) -> jinja2.Template:
        """The template `name` for `language` ("html" or "txt"); TemplateError if there is none."""
        if not _NAME.match(name):
            raise TemplateError(f"template name {name!r}: use lower-case letters, digits and -")
        env = self.html if ext == "html" else self.text
        candidates = [f"mail/{name}.{language}.{ext}", f"mail/{name}.{LANGUAGES[0]}.{ext}",
                      f"mail/{name}.{ext}"]
        try:
            return env.select_template(list(dict.fromkeys(candidates)))
        except jinja2.TemplatesNotFound:
            raise TemplateError(
                f"template {name!r} not found: looked for {', '.join(candidates)}"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise template_error(exc) from None

    def string(self, source: str, *, html: bool, name: str) -> jinja2.Template:
        """Compile template text that is not a file (campaign content, subject)."""
        env = self.html if html else self.text
        try:
            # compile() with a filename, so errors and tracebacks name the content, not <template>
            code = env.compile(source, name=name, filename=name)
        except jinja2.TemplateSyntaxError as exc:
            raise template_error(exc) from None
        return env.template_class.from_code(env, code, env.make_globals(None), None)


def make_environments(override_dir: str | Path | None, tz: Any) -> Environments:
    """Both environments with the override folder (if any) before the shipped templates."""
    folders = [str(SHIPPED_TEMPLATES)]
    if override_dir:
        folders.insert(0, str(override_dir))
    loader = ChoiceLoader([FileSystemLoader(folders)])
    filters = make_filters(tz)

    def make(autoescape: bool) -> Environment:
        env = Environment(
            loader=loader,
            autoescape=autoescape,
            undefined=StrictUndefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Template files are stat()ed when a renderer is built, so an edited override
            # takes effect at the next campaign run without a restart.
            auto_reload=True,
            cache_size=400,
        )
        env.filters.update(filters)
        return env

    return Environments(html=make(True), text=make(False))


@lru_cache(maxsize=8)
def _cached(override_dir: str, timezone: str) -> Environments:
    return make_environments(override_dir or None, ZoneInfo(timezone))


def environments_for(settings: Settings) -> Environments:
    """The environments for these settings, shared in the process (templates compile once)."""
    override = settings.templates.override_dir
    return _cached(str(settings.resolve_path(override)) if override else "", settings.timezone)


_MACRO_FILES = ("buttons.html",)


def template_error(exc: BaseException, fallback: str = "template") -> TemplateError:
    """A one-line TemplateError naming the template file and line of a Jinja failure."""
    if isinstance(exc, TemplateError):
        return exc
    where = fallback
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{exc.filename or exc.name or fallback}, line {exc.lineno}"
        message = exc.message or str(exc)
    else:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # "'mailer.compose.person.SubscriberView object' has no attribute 'x'" → "'subscriber' ..."
        message = _VIEW.sub(lambda m: f"'{m.group(1).lower()}'", message)
        # Jinja rewrites tracebacks so template frames carry the template's file and line.
        # A value handed to a macro (the buttons) fails where the macro prints it: name the
        # template that handed it over, which is where the mistake is.
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not f.filename.endswith(".py")]
        callers = [f for f in frames if not f.filename.endswith(_MACRO_FILES)] or frames
        if callers:
            where = f"{callers[-1].filename}, line {callers[-1].lineno}"
    return TemplateError(f"{where}: {message}")
