"""`mailer subscribers`: add, find, change, import, export and erase people.

A thin layer: each command parses its options, calls the subscribers package (or
mailer.usecases.privacy for access and erasure) in one transaction, and prints a table for people or
JSON for scripts. Errors are the domain's, turned into one line by the `mailer` group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from mailer.cli.context import CliContext, current_actor, pass_cli
from mailer.cli.output import print_json, print_table, to_jsonable, visible
from mailer.usecases import subscribers as usecases
from subscribers import service
from subscribers.errors import InvalidValueError
from subscribers.exporter import FORMATS
from subscribers.importer import ImportResult
from subscribers.models import SUBSCRIBER_STATUSES

__all__ = ["group", "current_actor"]


def _attributes(pairs: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidValueError(f"--attr {pair!r}: use KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


def _criteria(
    *,
    lists: Sequence[str] = (),
    statuses: Sequence[str] = (),
    regions: Sequence[str] = (),
    organisations: Sequence[str] = (),
    languages: Sequence[str] = (),
    job_titles: Sequence[str] = (),
    attrs: Sequence[str] = (),
    search: str = "",
) -> usecases.Criteria:
    """The filter options as the use cases take them (they check lists, regions, ...)."""
    return usecases.Criteria(lists=tuple(lists), statuses=tuple(statuses),
                             regions=tuple(regions), organisations=tuple(organisations),
                             languages=tuple(languages), job_titles=tuple(job_titles),
                             attributes=usecases.attribute_pairs(attrs), search=search)


def filter_options(func: Any) -> Any:
    """The audience filters shared by `ls` and `export`."""
    options = [
        click.option("--list", "lists", multiple=True, metavar="SLUG",
                     help="Only people on this list (active subscription). Repeatable."),
        click.option("--status", "statuses", multiple=True,
                     type=click.Choice(SUBSCRIBER_STATUSES), help="Only this status. Repeatable."),
        click.option("--region", "regions", multiple=True, help="Only this region. Repeatable."),
        click.option("--organisation", "organisations", multiple=True, metavar="NAME",
                     help="Only this organisation (municipality). Repeatable."),
        click.option("--language", "languages", multiple=True, metavar="LANG",
                     help="Only this language (nl, en). Repeatable."),
        click.option("--job-title", "job_titles", multiple=True, metavar="TITLE",
                     help="Only this job title (functie). Repeatable."),
        click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE",
                     help="Only people with this attribute value (repeatable; the same key "
                          "twice: either value), as campaigns create --attr."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group("subscribers")
def group() -> None:
    """Add, find, change, import, export and erase subscribers.

    \b
    Example:
      mailer subscribers add anna@utrecht.nl --name "Anna de Vries" --list nieuwsbrief
      mailer subscribers import deelnemers.csv --list nieuwsbrief --dry-run
    """


@group.command("add")
@click.argument("email")
@click.option("--name", default="", help="Full name.")
@click.option("--organisation", default="", help="Organisation, usually the municipality.")
@click.option("--job-title", default="", help="Job title (functie).")
@click.option("--region", default="", help="One of the configured regions.")
@click.option("--language", default="nl", show_default=True, help="nl or en.")
@click.option("--list", "lists", multiple=True, metavar="SLUG",
              help="Subscribe to this list. Repeatable.")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE",
              help="A free attribute for templates. Repeatable.")
@pass_cli
def add(
    ctx: CliContext,
    email: str,
    name: str,
    organisation: str,
    job_title: str,
    region: str,
    language: str,
    lists: tuple[str, ...],
    attrs: tuple[str, ...],
) -> None:
    """Add one person (consent recorded as given on the command line, by you).

    \b
    Example:
      mailer subscribers add anna@utrecht.nl --name "Anna de Vries" \\
        --organisation "Gemeente Utrecht" --region Midden --list nieuwsbrief
    """
    data = service.SubscriberData(
        email=email, name=name, organisation=organisation, job_title=job_title,
        region=region, language=language, attributes=_attributes(attrs),
    )
    subscriber = usecases.add_subscriber(ctx.app(), data, lists=lists, actor=current_actor())
    on = f" on {', '.join(lists)}" if lists else ""
    click.echo(f"Added {subscriber.email}{on}.")


@group.command("ls")
@filter_options
@click.option("--search", default="", help="Text in the address, name or organisation.")
@click.option("--limit", default=100, show_default=True, help="At most this many; 0 for all.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_cli
def ls(
    ctx: CliContext,
    lists: tuple[str, ...],
    statuses: tuple[str, ...],
    regions: tuple[str, ...],
    organisations: tuple[str, ...],
    languages: tuple[str, ...],
    job_titles: tuple[str, ...],
    attrs: tuple[str, ...],
    search: str,
    limit: int,
    as_json: bool,
) -> None:
    """List subscribers, newest last.

    \b
    Example:
      mailer subscribers ls --list nieuwsbrief --region Noord
      mailer subscribers ls --status bounced --json
      mailer subscribers ls --job-title Beleidsadviseur --attr sector=ICT
    """
    found = usecases.list_people(
        ctx.app(), _criteria(lists=lists, statuses=statuses, regions=regions,
                             organisations=organisations, languages=languages,
                             job_titles=job_titles, attrs=attrs, search=search),
        limit=limit or None)
    people = found.people
    if as_json:
        print_json([{k: p[k] for k in ("email", "name", "organisation", "job_title", "region",
                                       "language", "status", "lists", "attributes",
                                       "created_at")} for p in people])
        return
    print_table(
        ("email", "name", "organisation", "region", "lang", "status", "lists"),
        ((p["email"], p["name"], p["organisation"], p["region"], p["language"], p["status"],
          " ".join(p["lists"])) for p in people),
    )
    if found.total > len(people):
        click.echo(f"Showing {len(people)} of {found.total}; use --limit 0 to see all.")


@group.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_cli
def show(ctx: CliContext, email: str, as_json: bool) -> None:
    """Everything held on one person: the answer to an access request (AVG art. 15).

    Profile, attributes, consent record and history, subscriptions, suppression, and the
    mailings sent to them.

    \b
    Example:
      mailer subscribers show anna@utrecht.nl --json > inzageverzoek-anna.json
    """
    record = usecases.person_record(ctx.app(), email)
    if as_json:
        print_json(record)
        return
    _print_record(record)


def _print_record(record: dict[str, Any]) -> None:
    plain = {k: v for k, v in record.items() if not isinstance(v, list | dict)}
    consent = record.get("consent", {})
    plain["consent"] = " / ".join(str(to_jsonable(v)) for v in consent.values() if v)
    plain["lists"] = " ".join(record.get("lists", [])) or "-"
    for key, value in plain.items():
        click.echo(f"{key + ':':<14}{visible(to_jsonable(value))}")
    for key, value in (record.get("attributes") or {}).items():
        click.echo(f"{'  ' + visible(key) + ':':<14}{visible(value)}")
    tables = [(k, v) for k, v in record.items() if isinstance(v, list) and k != "lists"]
    for title, rows in tables:
        if not rows:
            continue
        columns = list(rows[0].keys())
        print_table(columns, ([row.get(c) for c in columns] for row in rows),
                    title=title.replace("_", " "))


@group.command("edit")
@click.argument("email")
@click.option("--email", "new_email", default=None, help="A new address.")
@click.option("--name", default=None, help="Full name.")
@click.option("--organisation", default=None, help="Organisation (municipality).")
@click.option("--job-title", default=None, help="Job title (functie).")
@click.option("--region", default=None, help="One of the configured regions.")
@click.option("--language", default=None, help="nl or en.")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE",
              help="Set an attribute. Repeatable.")
@click.option("--unset-attr", "unset", multiple=True, metavar="KEY",
              help="Remove an attribute. Repeatable.")
@click.option("--list", "lists", multiple=True, metavar="SLUG",
              help="Also subscribe to this list. Repeatable.")
@click.option("--status", type=click.Choice(SUBSCRIBER_STATUSES), default=None,
              help="Set the overall status, e.g. active to reactivate someone.")
@pass_cli
def edit(
    ctx: CliContext,
    email: str,
    new_email: str | None,
    name: str | None,
    organisation: str | None,
    job_title: str | None,
    region: str | None,
    language: str | None,
    attrs: tuple[str, ...],
    unset: tuple[str, ...],
    lists: tuple[str, ...],
    status: str | None,
) -> None:
    """Change a person's details; options not given stay as they are.

    \b
    Example:
      mailer subscribers edit anna@utrecht.nl --region Noord --attr sector=ICT
      mailer subscribers edit anna@utrecht.nl --email a.devries@utrecht.nl
    """
    attributes: dict[str, Any] = {**_attributes(attrs), **dict.fromkeys(unset)}
    subscriber = usecases.edit_subscriber(
        ctx.app(), email, status=status, lists=lists, new_email=new_email,
        attributes=attributes or None, actor=current_actor(), name=name,
        organisation=organisation, job_title=job_title, region=region, language=language,
    )
    click.echo(f"Updated {subscriber.email}.")


@group.command("unsubscribe")
@click.argument("email")
@click.option("--list", "list_slug", default=None, metavar="SLUG",
              help="Leave only this list; without it, leave every list.")
@pass_cli
def unsubscribe(ctx: CliContext, email: str, list_slug: str | None) -> None:
    """Unsubscribe a person from one list, or from everything.

    \b
    Example:
      mailer subscribers unsubscribe anna@utrecht.nl --list regio-noord
    """
    done = usecases.unsubscribe(ctx.app(), email, list_slug, actor=current_actor())
    if list_slug and not done.changed:
        click.echo(f"{done.email} was not on list {list_slug}; nothing changed.")
    elif not done.changed:
        click.echo(f"{done.email} was already unsubscribed; nothing changed.")
    else:
        where = f"list {list_slug}" if list_slug else "every list"
        click.echo(f"Unsubscribed {done.email} from {where}.")


@group.command("block")
@click.argument("email")
@click.option("--note", default="", help="Why, for the suppression list.")
@pass_cli
def block(ctx: CliContext, email: str, note: str) -> None:
    """Stop all mail to a person: status blocked and the address suppressed.

    \b
    Example:
      mailer subscribers block spam@example.org --note "asked by phone, 12 May"
    """
    subscriber = usecases.block(ctx.app(), email, note=note, actor=current_actor())
    click.echo(f"Blocked {subscriber.email}; it is on the suppression list.")


@group.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_cli
def erase(ctx: CliContext, email: str, yes: bool) -> None:
    """Erase a person (AVG art. 17): their data goes, a one-way hash stays suppressed.

    Mail not yet sent to them is skipped; sent mail keeps its statistics without the address.
    A later import or sign-up of the same address is refused.

    \b
    Example:
      mailer subscribers erase anna@utrecht.nl --yes
    """
    app = ctx.app()
    subscriber = usecases.get_subscriber(app, email)
    if not yes:
        click.confirm(f"Erase {subscriber.email} and everything held on them?", abort=True)
    usecases.erase(app, email, actor=current_actor())
    click.echo(f"Erased {email.strip()}; only a one-way hash is kept on the suppression list.")


@contextmanager
def _output(path: str | None, encoding: str) -> Iterator[TextIO]:
    """stdout, or a file written beside its final name and renamed only when complete."""
    if path is None or path == "-":
        yield sys.stdout
        return
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        fh = partial.open("w", encoding=encoding, newline="")
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    try:
        with fh:
            yield fh
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        # Writing or renaming our file failed (a full disk); other errors are not ours to word.
        if exc.filename not in (None, str(partial), str(target)):
            raise
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@group.command("import")
@click.argument("file")
@click.option("--list", "lists", multiple=True, metavar="SLUG",
              help="Subscribe everyone in the file to this list. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Check and count, change nothing.")
@click.option("--rejects", "rejects_path", default=None, metavar="FILE",
              help="Write rejected rows (line, reason, original cells) to this CSV file.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_cli
def import_(
    ctx: CliContext,
    file: str,
    lists: tuple[str, ...],
    dry_run: bool,
    rejects_path: str | None,
    as_json: bool,
) -> None:
    """Import people from a CSV file (Excel: ; or , and any encoding), all or nothing.

    Headers in Dutch or English are recognised (e-mail, naam or voornaam + tussenvoegsel +
    achternaam, gemeente or organisatie, regio, functie, taal); other columns become
    attributes. Known people are updated from filled cells; suppressed addresses are rejected.
    Running the same file again changes nothing.

    \b
    Example:
      mailer subscribers import deelnemers.csv --list nieuwsbrief --rejects afgewezen.csv
    """
    app = ctx.app()
    with _output(rejects_path, "utf-8-sig") if rejects_path else _nothing() as fh:
        # Rejects go straight to the file (same columns as the input, after line and reason),
        # so the file can be fixed in Excel and imported again.
        rejects_out = usecases.RejectsFile(fh) if fh else None
        with _import_progress(file) as on_progress:
            result = usecases.import_subscribers(app, file, lists=lists, dry_run=dry_run,
                                                 on_reject=rejects_out, on_progress=on_progress,
                                                 actor=current_actor())
        if rejects_out is not None:
            rejects_out.close()
    _report_import(file, result, rejects_path, as_json)
    if result.rejected:
        # The accepted rows are saved and every reject is reported (and in --rejects FILE);
        # the exit status tells a script that the file was not taken whole.
        raise click.exceptions.Exit(1)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


@contextmanager
def _import_progress(file: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr while a file is imported, when stderr is a terminal.

    Into a pipe or a log it stays quiet: the summary line is what a script reads. The total is
    the file's line count (one quick pass over the bytes), the progress the line reached.
    """
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    try:
        with open(file, "rb") as fh:
            total = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        total = 0  # import_file names the problem with the file
    columns = (TextColumn("[bold]Importing"), BarColumn(), MofNCompleteColumn(),
               TextColumn("lines"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("import", total=total or None)
        yield lambda line: bar.update(task, completed=min(line, total) if total else line)


def _report_import(
    file: str, result: ImportResult, rejects_path: str | None, as_json: bool
) -> None:
    if as_json:
        print_json(
            {"file": file, "dry_run": result.dry_run, "added": result.added,
             "updated": result.updated, "unchanged": result.unchanged,
             "rejected": result.rejected, "duplicates": result.duplicates,
             "encoding": result.encoding, "delimiter": result.delimiter,
             "rejects": [{"line": r.line, "email": r.email, "reason": r.reason}
                         for r in result.rejects]}
        )
        return
    verb = "Would import" if result.dry_run else "Imported"
    click.echo(
        f"{verb} {file}: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.rejected} rejected"
        + (f", {result.duplicates} duplicate rows merged" if result.duplicates else "")
        + "."
    )
    for reject in sorted(result.rejects, key=lambda r: r.line):
        click.echo(f"  line {reject.line}: {reject.reason}")
    if result.rejected > len(result.rejects):
        more = result.rejected - len(result.rejects)
        where = f"; all are in {rejects_path}" if rejects_path else "; use --rejects FILE"
        click.echo(f"  ... and {more} more{where}")
    if result.dry_run:
        click.echo("Dry run: nothing was saved.")


@group.command("export")
@filter_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="csv (one column per attribute), json (one array) or jsonl (one per line).")
@click.option("--delimiter", type=click.Choice([",", ";"]), default=",", show_default=True,
              help="CSV delimiter; ; suits Dutch Excel.")
@click.option("-o", "--output", "output", default=None, metavar="FILE",
              help="Write to FILE instead of standard output.")
@pass_cli
def export(
    ctx: CliContext,
    lists: tuple[str, ...],
    statuses: tuple[str, ...],
    regions: tuple[str, ...],
    organisations: tuple[str, ...],
    languages: tuple[str, ...],
    job_titles: tuple[str, ...],
    attrs: tuple[str, ...],
    fmt: str,
    delimiter: str,
    output: str | None,
) -> None:
    """Export subscribers, streamed (any number of people, little memory).

    \b
    Example:
      mailer subscribers export --list nieuwsbrief --status active -o nieuwsbrief.csv
      mailer subscribers export --region Noord --format json > noord.json
      mailer subscribers export --attr sector=ICT --attr sector=Zorg -o ict-zorg.csv
    """
    encoding = "utf-8-sig" if fmt == "csv" and output not in (None, "-") else "utf-8"
    criteria = _criteria(lists=lists, statuses=statuses, regions=regions,
                         organisations=organisations, languages=languages,
                         job_titles=job_titles, attrs=attrs)
    with _output(output, encoding) as out:
        count = usecases.export_subscribers(ctx.app(), criteria, out, fmt=fmt,
                                            delimiter=delimiter)
    if output not in (None, "-"):
        click.echo(f"Exported {count} subscribers to {output}.")
