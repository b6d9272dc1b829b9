"""Subscriber use cases: find, read, add, edit, unsubscribe, block, reactivate, erase, import,
export.

The session-level functions (`find`, `person`, `edit`, `unsubscribe_person`, `block_person`,
`reactivate_person`, `erase_person`, `preview_import`, `run_import`, `export`) hold the rules
the staff console and the CLI share: each checks the actor's permission (subscribers.read,
.export, .manage) and writes the audit trail in the caller's transaction. The `*(app, ...)`
functions below them are what the CLI calls, each one transaction on `app.sessions`, acting as
the OS user (`os:NAME`).

The audit rows name a person by row id only, with the fields that changed and values that
identify no one (status, region, language, lists): the audit trail cannot be erased, so it must
not keep an address or a name that an erasure has to remove.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from sqlalchemy.orm import Session

from mailer import audit
from mailer.audit import Actor, cli_actor
from mailer.bounces import service as bounces
from mailer.campaigns import service as campaigns
from mailer.database.connect import session_scope
from mailer.errors import CampaignError
from mailer.settings import Settings
from mailer.usecases import privacy
from mailer.usecases.users import require
from subscribers import queries, service
from subscribers.csvcells import SafeWriter
from subscribers.errors import (
    ImportFileError,
    InvalidValueError,
    SubscriberError,
    SubscriberNotFoundError,
)
from subscribers.exporter import write_export, write_xlsx
from subscribers.importer import CsvLayout, ImportResult, Reject, detect_layout, import_file
from subscribers.importer import preview_rows as importer_preview_rows
from subscribers.models import SUBSCRIBER_STATUSES, Subscriber
from subscribers.queries import SubscriberFilter

if TYPE_CHECKING:
    from mailer.app import App

__all__ = [
    "Criteria",
    "Found",
    "ImportPreview",
    "RejectsFile",
    "Unsubscribed",
    "EXPORT_FORMATS",
    "attribute_pairs",
    "subscriber_filter",
    "find",
    "person",
    "person_mentions",
    "email_of",
    "edit",
    "unsubscribe_person",
    "block_person",
    "reactivate_person",
    "erase_person",
    "preview_import",
    "run_import",
    "export",
    "choices",
    # What the CLI calls:
    "list_people",
    "get_subscriber",
    "person_record",
    "add_subscriber",
    "edit_subscriber",
    "unsubscribe",
    "block",
    "erase",
    "import_subscribers",
    "export_subscribers",
]

#: What the console offers: the CLI's formats and Excel's own.
EXPORT_FORMATS = ("csv", "xlsx", "json", "jsonl")
#: Profile values that identify no one, so the (unerasable) audit trail may keep them.
_PLAIN = ("status", "region", "language")
_PROFILE = ("name", "organisation", "job_title", "region", "language")


@dataclass(frozen=True)
class Criteria:
    """Who to find, as people type it: filters combine with AND, values within one with OR."""

    lists: Sequence[str] = ()
    statuses: Sequence[str] = ()
    regions: Sequence[str] = ()
    organisations: Sequence[str] = ()
    languages: Sequence[str] = ()
    search: str = ""
    job_titles: Sequence[str] = ()
    # (key, value) pairs as `attribute_pairs` reads KEY=VALUE: keys AND, one key twice: OR.
    attributes: Sequence[tuple[str, str]] = ()

    def as_dict(self) -> dict[str, Any]:
        """The filter for the audit trail (names of lists, regions, organisations, job titles,
        attribute values shared by many: no one's)."""
        out: dict[str, Any] = {
            k: list(v) for k, v in (("lists", self.lists), ("statuses", self.statuses),
                                    ("regions", self.regions),
                                    ("organisations", self.organisations),
                                    ("languages", self.languages),
                                    ("job_titles", self.job_titles)) if v}
        if self.attributes:
            out["attributes"] = [f"{k}={v}" for k, v in self.attributes]
        return out


def attribute_pairs(texts: Sequence[str], option: str = "--attr") -> tuple[tuple[str, str], ...]:
    """KEY=VALUE texts as pairs, read as `campaigns create --attr` reads them; a text without
    "=" or without a key is an InvalidValueError naming it (the subscriber commands' kind)."""
    try:
        pairs = campaigns.parse_attributes(texts, option)
    except CampaignError as exc:
        raise InvalidValueError(str(exc)) from None
    return tuple((key[:100], value[:200]) for key, value in pairs)


@dataclass(frozen=True)
class Found:
    people: list[dict[str, Any]]
    total: int  # how many match (at most `count_cap` + 1 when the count was capped)
    capped: bool = False  # there are more than `total - 1`; the exact figure was not counted


@dataclass(frozen=True)
class Unsubscribed:
    email: str
    changed: bool  # False: not on that list, or already unsubscribed everywhere


@dataclass(frozen=True)
class ImportPreview:
    """What an import will read, shown before anything is written."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    mapping: list[tuple[str, str]]  # (column as written, what it becomes)
    rows: list[list[str]]
    layout: CsvLayout = field(repr=False)


def _consent_by(actor: Actor) -> str:
    # The consent history names the person as before: the login name at the command line.
    return actor.name.removeprefix("os:")


def _source(actor: Actor) -> str:
    """The channel, for the consent history: a console user, or the command line."""
    return "console" if actor.user_id is not None else "cli"


def _lists_of(session: Session, subscriber: Subscriber) -> list[str]:
    return [slug for sub, slug in queries.subscriptions_of(session, subscriber.id)
            if sub.status == "active"]


def _plain(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    return {**{k: getattr(subscriber, k) for k in _PLAIN}, "lists": _lists_of(session, subscriber)}


def _record(session: Session, actor: Actor, action: str, subscriber_id: int,
            before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
    audit.record(session, actor, action, ("subscriber", subscriber_id), before, after)


# -- finding and reading -------------------------------------------------------------------------


def subscriber_filter(session: Session, settings: Settings, criteria: Criteria, *,
                      limit: int | None = None) -> SubscriberFilter:
    """A query filter from what was typed; an unknown list, region, status or language is an
    InvalidValueError / ListNotFoundError naming it (the CLI's and the console's one line)."""
    service.get_lists(session, criteria.lists)
    regions = []
    for region in criteria.regions:
        known = settings.canonical_region(region)
        if known is None:
            raise InvalidValueError(
                f"unknown region {region!r}; use one of {', '.join(settings.regions)}")
        regions.append(known)
    for status in criteria.statuses:
        if status not in SUBSCRIBER_STATUSES:
            raise InvalidValueError(
                f"unknown status {status!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}")
    return SubscriberFilter(
        lists=tuple(criteria.lists),
        statuses=tuple(criteria.statuses),
        regions=tuple(regions),
        organisations=tuple(o for o in criteria.organisations if o),
        languages=tuple(service.validate_language(lang) for lang in criteria.languages),
        search=criteria.search.strip()[:200],
        job_titles=tuple(j for j in criteria.job_titles if j),
        attributes=_attribute_filter(criteria.attributes),
        subscription_status="active",
        limit=limit,
    )


def _attribute_filter(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Key -> accepted values (the audience builder's shape: the same key twice is either)."""
    wanted: dict[str, list[str]] = {}
    for key, value in pairs:
        values = wanted.setdefault(key, [])
        if value not in values:
            values.append(value)
    return wanted


def _row(p: Subscriber, slugs: list[str]) -> dict[str, Any]:
    return {"public_id": p.public_id, "email": p.email, "name": p.name,
            "organisation": p.organisation, "job_title": p.job_title, "region": p.region,
            "language": p.language, "status": p.status, "lists": slugs,
            "attributes": dict(p.attributes or {}), "created_at": p.created_at}


def find(session: Session, settings: Settings, actor: Actor, criteria: Criteria, *,
         limit: int | None = 100, count_cap: int | None = None) -> Found:
    """The first `limit` people matching (None: all), oldest first, and how many match.

    The page is one query ordered by the primary key with a LIMIT, its lists one more; the
    count is exact, or stops after `count_cap` (search as you type: "more than 1,000").
    """
    require(actor, "subscribers.read")
    flt = subscriber_filter(session, settings, criteria, limit=limit)
    people = list(session.scalars(queries.filtered_subscribers(session, flt)))
    slugs = queries.list_slugs_by_subscriber(session, [p.id for p in people])
    if limit is None or len(people) < limit:
        total, capped = len(people), False
    else:
        cap = None if count_cap is None else count_cap + 1
        total = queries.count_subscribers(session, flt, at_most=cap)
        capped = cap is not None and total >= cap
    return Found([_row(p, slugs[p.id]) for p in people], total, capped)


def email_of(session: Session, actor: Actor, public_id: str) -> str:
    """The address of the person a console link names (links carry the public id, never the
    address); SubscriberNotFoundError if there is none."""
    require(actor, "subscribers.read")
    found = queries.subscriber_by_public_id(session, public_id)
    if found is None:
        raise SubscriberNotFoundError("no such subscriber")
    return found.email


def person(session: Session, settings: Settings, actor: Actor, email: str, *,
           download: bool = False, mentions: bool = True) -> dict[str, Any]:
    """Everything held on a person: the answer to an access request (what `subscribers show`
    prints). `download`: it leaves the system as a file, a personal-data export (needs
    subscribers.export, and is written in the audit trail). `mentions=False`: without the
    received mail that mentions them (slow with much kept mail; `person_mentions` gives it)."""
    require(actor, "subscribers.export" if download else "subscribers.read")
    record = privacy.person_record(session, email, settings, mentions=mentions or download)
    if download:
        subscriber = service.get_subscriber(session, email)
        _record(session, actor, "subscriber.access_export", subscriber.id, None, None)
    return record


def person_mentions(session: Session, actor: Actor, email: str) -> dict[str, Any]:
    """The received mail (kept raw, MIME-decoded) that mentions a person: the part of `person`
    a page loads after itself."""
    require(actor, "subscribers.read")
    return privacy.mail_mentioning(session, email)


def choices(session: Session, settings: Settings, actor: Actor) -> dict[str, Any]:
    """What the filters and forms offer: lists, regions, statuses, languages."""
    require(actor, "subscribers.read")
    return {"lists": [(ml.slug, ml.title) for ml in queries.all_lists(session)],
            "regions": list(settings.regions), "statuses": list(SUBSCRIBER_STATUSES),
            "languages": ["nl", "en"]}


# -- changes -------------------------------------------------------------------------------------


def add(session: Session, settings: Settings, actor: Actor, data: service.SubscriberData, *,
        lists: Sequence[str] = (), consent_by: str | None = None) -> Subscriber:
    require(actor, "subscribers.manage")
    subscriber = service.add_subscriber(
        session, data, lists=lists, regions=settings.regions, source="cli",
        actor=_consent_by(actor) if consent_by is None else consent_by)
    _record(session, actor, "subscriber.add", subscriber.id, None, _plain(session, subscriber))
    return subscriber


def edit(session: Session, settings: Settings, actor: Actor, email: str, *,
         status: str | None = None, lists: Sequence[str] = (), new_email: str | None = None,
         attributes: dict[str, Any] | None = None, consent_by: str | None = None,
         **changes: str | None) -> Subscriber:
    """Change a person's fields, then their status and lists, all or nothing; the audit row
    names the fields that changed (not their values: see the module docstring)."""
    require(actor, "subscribers.manage")
    by = _consent_by(actor) if consent_by is None else consent_by
    subscriber = service.get_subscriber(session, email)
    before = {**_plain(session, subscriber), "email": subscriber.email,
              "attributes": dict(subscriber.attributes or {}),
              **{k: getattr(subscriber, k) for k in _PROFILE}}
    subscriber = service.edit_subscriber(session, email, regions=settings.regions,
                                         new_email=new_email, attributes=attributes, **changes)
    if status is not None:
        service.set_status(session, subscriber.email, status, source=_source(actor), actor=by)
    if lists:
        service.subscribe(session, subscriber.email, lists, source=_source(actor), actor=by)
    after = {**_plain(session, subscriber), "email": subscriber.email,
             "attributes": dict(subscriber.attributes or {}),
             **{k: getattr(subscriber, k) for k in _PROFILE}}
    changed = sorted(k for k in after if after[k] != before[k])
    if changed:
        _record(session, actor, "subscriber.edit", subscriber.id,
                {k: before[k] for k in (*_PLAIN, "lists")},
                {"changed": changed, **{k: after[k] for k in (*_PLAIN, "lists")}})
    return subscriber


def unsubscribe_person(session: Session, actor: Actor, email: str,
                       list_slug: str | None = None, *, consent_by: str | None = None
                       ) -> Unsubscribed:
    """Leave one list, or every list; says whether anything changed (only a change is
    audited: doing it twice changes nothing)."""
    require(actor, "subscribers.manage")
    before = service.get_subscriber(session, email)
    was_on = {slug for sub, slug in queries.subscriptions_of(session, before.id)
              if sub.status != "unsubscribed"}
    was = _plain(session, before)
    subscriber = service.unsubscribe(
        session, email, list_slug, source=_source(actor),
        actor=_consent_by(actor) if consent_by is None else consent_by)
    # Leaving one list changes something if the person was on it; leaving all, if on any.
    changed = list_slug in was_on if list_slug else bool(was_on) or was["status"] == "active"
    if changed:
        _record(session, actor, "subscriber.unsubscribe", subscriber.id, was,
                {**_plain(session, subscriber), "list": list_slug or "*"})
    return Unsubscribed(subscriber.email, changed)


def block_person(session: Session, actor: Actor, email: str, *, note: str = "",
                 consent_by: str | None = None) -> Subscriber:
    """Stop all mail to a person: status blocked and the address suppressed."""
    require(actor, "subscribers.manage")
    before = _plain(session, service.get_subscriber(session, email))
    subscriber = service.block(session, email, note=note[:500], source=_source(actor),
                               actor=_consent_by(actor) if consent_by is None else consent_by)
    _record(session, actor, "subscriber.block", subscriber.id, before,
            _plain(session, subscriber))
    return subscriber


def reactivate_person(session: Session, actor: Actor, email: str, reason: str, *,
                      consent_by: str | None = None) -> Subscriber:
    """Make a person active again, with a reason kept in their consent history.

    Bounced or complained: what `subscribers reactivate` does (status active, bounce score
    cleared). Blocked or unsubscribed: what `suppress rm` and `subscribers edit --status
    active` do together (a blocked address leaves the suppression list). A BounceError or
    InvalidValueError says why when there is nothing to do.
    """
    require(actor, "subscribers.manage")
    by = _consent_by(actor) if consent_by is None else consent_by
    subscriber = service.get_subscriber(session, email)
    before = _plain(session, subscriber)
    if subscriber.status in ("bounced", "complained", "active"):
        subscriber = bounces.reactivate(session, email, reason, actor=by)
    else:
        if not reason.strip():
            raise InvalidValueError("a reason is needed to reactivate a subscriber")
        if subscriber.status == "blocked":
            service.unsuppress(session, subscriber.email)
        service.set_status(session, subscriber.email, "active", source="reactivate",
                           actor=by, detail=reason.strip()[:500])
    _record(session, actor, "subscriber.reactivate", subscriber.id, before,
            _plain(session, subscriber))
    return subscriber


def erase_person(session: Session, actor: Actor, email: str, *,
                 confirmation: str | None = None, consent_by: str | None = None) -> None:
    """Erase a person everywhere (AVG art. 17); only a one-way hash stays suppressed.

    `confirmation`, when given, must be the address typed again (any case): the console's
    guard against erasing the wrong person. Call `after_erasure` once committed.
    """
    require(actor, "subscribers.manage")
    subscriber = service.get_subscriber(session, email)
    if confirmation is not None and (
            confirmation.strip().casefold() != subscriber.email.casefold()):
        raise InvalidValueError(
            "the address typed to confirm is not this person's; nothing was erased")
    subscriber_id = subscriber.id
    privacy.erase_person(session, subscriber.email,
                         actor=_consent_by(actor) if consent_by is None else consent_by)
    _record(session, actor, "subscriber.erase", subscriber_id, None, {"erased": True})


def after_erasure(app: App) -> None:
    """Once an erasure is committed (see privacy.after_erasure)."""
    privacy.after_erasure(app.engine)


# -- import and export ---------------------------------------------------------------------------


class RejectsFile:
    """The rejects file, as `subscribers import --rejects` and the console write it: `;` and
    CRLF, the columns `line`, `reason`, then the row's original cells (so it can be fixed in
    Excel and imported again), every cell neutralised against formulas. Use it as `on_reject`;
    `close()` writes the header of a file without rejects."""

    def __init__(self, out: TextIO) -> None:
        self._out = SafeWriter(out, delimiter=";", lineterminator="\r\n")
        self._header = False

    def __call__(self, reject: Reject) -> None:
        if not self._header:
            self._out.writerow(["line", "reason", *reject.header])
            self._header = True
        self._out.writerow([reject.line, reject.reason, *reject.fields])

    def close(self) -> None:
        if not self._header:
            self._out.writerow(["line", "reason"])
            self._header = True


def _named(exc: SubscriberError, path: Path, name: str) -> ImportFileError:
    # The messages name the file as the person knows it, not the server's temporary copy.
    return ImportFileError(str(exc).replace(str(path), name))


def preview_import(actor: Actor, path: Path, *, name: str = "", rows: int = 5) -> ImportPreview:
    """Encoding, delimiter, what each column becomes and the first rows, as the import will
    read them; nothing is written. ImportFileError if the file cannot be imported at all."""
    require(actor, "subscribers.manage")
    try:
        layout = detect_layout(path)
    except ImportFileError as exc:
        raise _named(exc, path, name or path.name) from None
    meaning = {index: field_ for field_, index in layout.fields.items()}
    mapping = []
    for index, title in enumerate(layout.header):
        if not title:
            continue
        if index in meaning:
            mapping.append((title, meaning[index]))
        elif title in layout.attributes and layout.attributes[title] == index:
            mapping.append((title, "attribute"))
        else:
            mapping.append((title, "ignored"))
    return ImportPreview(layout.encoding, layout.delimiter, layout.header, mapping,
                         importer_preview_rows(path, layout, rows), layout)


def run_import(session: Session, settings: Settings, actor: Actor, path: Path, *,
               name: str = "", lists: Sequence[str] = (), dry_run: bool = False,
               on_reject: Callable[[Reject], None] | None = None,
               on_progress: Callable[[int], None] | None = None,
               consent_by: str | None = None) -> ImportResult:
    """Import a CSV file in the caller's transaction, all or nothing, with one audit row for
    the file (its name, lists and counts)."""
    require(actor, "subscribers.manage")
    shown = name or path.name
    try:
        result = import_file(session, path, lists=lists, regions=settings.regions,
                             actor=_consent_by(actor) if consent_by is None else consent_by,
                             dry_run=dry_run, on_reject=on_reject, on_progress=on_progress)
    except ImportFileError as exc:
        raise _named(exc, path, shown) from None
    if not dry_run:
        audit.record(session, actor, "subscribers.import", ("import", Path(shown).name[:64]),
                     None, {"file": shown[:500], "lists": list(lists), "added": result.added,
                            "updated": result.updated, "unchanged": result.unchanged,
                            "rejected": result.rejected, "duplicates": result.duplicates,
                            "encoding": result.encoding, "delimiter": result.delimiter})
    return result


def export(session: Session, settings: Settings, actor: Actor, criteria: Criteria,
           out: TextIO | BinaryIO, *, fmt: str = "csv", delimiter: str = ",") -> int:
    """Write everyone matching to `out` (text for csv/json/jsonl, bytes for xlsx): CSV cells
    and xlsx text neutralised against formulas. A personal-data export: audited with the
    filter, format and count."""
    require(actor, "subscribers.export")
    if fmt not in EXPORT_FORMATS:
        raise InvalidValueError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    flt = subscriber_filter(session, settings, criteria)
    if fmt == "xlsx":
        count = write_xlsx(session, flt, cast(BinaryIO, out))
    else:
        count = write_export(session, flt, cast(TextIO, out), fmt=fmt, delimiter=delimiter)
    audit.record(session, actor, "subscribers.export", None, None,
                 {"filter": criteria.as_dict(), "format": fmt, "count": count})
    return count


# -- what the CLI calls: one transaction each, as the OS user -----------------------------------


def list_people(app: App, criteria: Criteria, *, limit: int | None = 100) -> Found:
    with session_scope(app.sessions) as session:
        return find(session, app.settings, cli_actor(), criteria, limit=limit)


def get_subscriber(app: App, email: str) -> Subscriber:
    """The person with this address; NotFoundError if there is none."""
    with session_scope(app.sessions) as session:
        return service.get_subscriber(session, email)


def person_record(app: App, email: str) -> dict[str, Any]:
    """Everything held on a person (the answer to an access request)."""
    with session_scope(app.sessions) as session:
        return person(session, app.settings, cli_actor(), email)


def add_subscriber(app: App, data: service.SubscriberData, *, lists: Sequence[str] = (),
                   actor: str) -> Subscriber:
    with session_scope(app.sessions) as session:
        return add(session, app.settings, cli_actor(), data, lists=lists, consent_by=actor)


def edit_subscriber(app: App, email: str, *, status: str | None = None,
                    lists: Sequence[str] = (), new_email: str | None = None,
                    attributes: dict[str, Any] | None = None, actor: str,
                    **changes: str | None) -> Subscriber:
    """Change a person's fields, then their status and lists, all or nothing."""
    with session_scope(app.sessions) as session:
        return edit(session, app.settings, cli_actor(), email, status=status, lists=lists,
                    new_email=new_email, attributes=attributes, consent_by=actor, **changes)


def unsubscribe(app: App, email: str, list_slug: str | None = None, *,
                actor: str) -> Unsubscribed:
    """Leave one list, or every list; says whether anything changed."""
    with session_scope(app.sessions) as session:
        return unsubscribe_person(session, cli_actor(), email, list_slug, consent_by=actor)


def block(app: App, email: str, *, note: str = "", actor: str) -> Subscriber:
    """Stop all mail to a person: status blocked and the address suppressed."""
    with session_scope(app.sessions) as session:
        return block_person(session, cli_actor(), email, note=note, consent_by=actor)


def erase(app: App, email: str, *, actor: str) -> None:
    """Erase a person everywhere (AVG art. 17); only a one-way hash stays suppressed."""
    with session_scope(app.sessions) as session:
        erase_person(session, cli_actor(), email, consent_by=actor)
    after_erasure(app)  # committed: now empty SQLite's WAL of the old pages


def import_subscribers(app: App, path: str | Path, *, lists: Sequence[str] = (),
                       dry_run: bool = False, on_reject: Callable[[Reject], None] | None = None,
                       on_progress: Callable[[int], None] | None = None,
                       actor: str) -> ImportResult:
    """Import a CSV file in one transaction; each rejected row goes to `on_reject`, the line
    reached after each batch to `on_progress`."""
    file = Path(path)
    with session_scope(app.sessions) as session:
        return run_import(session, app.settings, cli_actor(), file, name=str(path),
                          lists=lists, dry_run=dry_run, on_reject=on_reject,
                          on_progress=on_progress, consent_by=actor)


def export_subscribers(app: App, criteria: Criteria, out: TextIO, *, fmt: str = "csv",
                       delimiter: str = ",") -> int:
    """Stream the people `criteria` selects to `out`; how many were written."""
    with session_scope(app.sessions) as session:
        return export(session, app.settings, cli_actor(), criteria, out, fmt=fmt,
                      delimiter=delimiter)
