"""Subscribers, import and export in the console, through the use cases the CLI uses: search
(wildcards literal), the profile and its JSON, edit / unsubscribe / block / reactivate / erase
(typed confirmation), import preview → run → rejects, export as CSV and .xlsx, the audit rows.
"""

from __future__ import annotations

import io
import json

import pytest
from browser_support import wait_for
from console_support import console_client, csrf_token, make_account, sign_in
from sqlalchemy import select

from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.console.imports import MAX_UPLOAD
from mailer.database.connect import session_scope
from subscribers import service
from subscribers.models import Subscriber

PEOPLE = [
    ("anna@utrecht.nl", "Anna de Vries", "Gemeente Utrecht", "Midden", "nl"),
    ("bert@groningen.nl", "Bert Bakker", "Gemeente Groningen", "Noord", "nl"),
    ("chris@zwolle.nl", "Chris 100% Zeker", "Gemeente Zwolle", "Oost", "en"),
    ("dirk_d@assen.nl", "Dirk Dijk", "Gemeente Assen", "Noord", "nl"),
]


def _people(app: App) -> dict[str, str]:
    """The people above on list nieuwsbrief; their public ids by address."""
    ids = {}
    with session_scope(app.sessions) as session:
        service.create_list(session, "nieuwsbrief", "GT Nieuwsbrief")
        service.create_list(session, "regio-noord", "Regio Noord")
        for email, name, org, region, lang in PEOPLE:
            sub = service.add_subscriber(
                session, service.SubscriberData(email=email, name=name, organisation=org,
                                                region=region, language=lang,
                                                attributes={"sector": "=HYPERLINK(\"x\")"}),
                lists=["nieuwsbrief", "regio-noord"] if region == "Noord" else ["nieuwsbrief"],
                regions=app.settings.regions, source="cli", actor="tests")
            ids[email] = sub.public_id
    return ids


def _audit(app: App, prefix: str) -> list[AuditEntry]:
    with session_scope(app.sessions) as session:
        rows = list(session.scalars(select(AuditEntry).where(
            AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)))
        session.expunge_all()
        return rows


@pytest.fixture
def admin(app: App):  # type: ignore[no-untyped-def]
    account = make_account(app, "beheer@gt.example.nl", "admin")
    client = console_client(app)
    sign_in(client, account)
    return client


def test_search_filters_and_literal_wildcards(app: App, admin):  # type: ignore[no-untyped-def]
    ids = _people(app)
    page = admin.get("/subscribers")
    assert page.status_code == 200 and "anna@utrecht.nl" in page.text
    assert 'hx-get="/subscribers/rows"' in page.text
    rows = admin.get("/subscribers/rows", params={"q": "groningen"}).text
    assert "bert@groningen.nl" in rows and "anna@" not in rows
    assert f"/subscribers/{ids['bert@groningen.nl']}" in rows
    assert '<span hx-swap-oob="innerHTML:#found-count">1 gevonden.' in rows
    # % and _ are characters, not wildcards.
    rows = admin.get("/subscribers/rows", params={"q": "100%"}).text
    assert "chris@zwolle.nl" in rows and "anna@" not in rows
    rows = admin.get("/subscribers/rows", params={"q": "%"}).text
    assert "chris@zwolle.nl" in rows and "bert@" not in rows
    rows = admin.get("/subscribers/rows", params={"q": "_d@"}).text
    assert "dirk_d@assen.nl" in rows and "anna@" not in rows
    # The CLI's filters, AND between them.
    rows = admin.get("/subscribers/rows", params={"region": "noord", "list": "regio-noord",
                                                  "language": "nl"}).text
    assert "bert@" in rows and "dirk_d@" in rows and "anna@" not in rows
    rows = admin.get("/subscribers/rows", params={"organisation": "gemeente zwolle"}).text
    assert "chris@" in rows and "bert@" not in rows
    # An unknown region is the CLI's one-line error.
    bad = admin.get("/subscribers", params={"region": "Atlantis"})
    assert bad.status_code == 400 and "unknown region" in bad.text


def test_profile_json_and_changes_are_audited(app: App, admin):  # type: ignore[no-untyped-def]
    ids = _people(app)
    url = f"/subscribers/{ids['anna@utrecht.nl']}"
    page = admin.get(url)
    assert page.status_code == 200
    assert "Anna de Vries" in page.text and "Toestemmingsgeschiedenis" in page.text
    download = admin.get(f"{url}/record.json")
    assert download.headers["content-disposition"].startswith("attachment")
    record = json.loads(download.text)
    assert record["email"] == "anna@utrecht.nl" and record["lists"] == ["nieuwsbrief"]
    token = csrf_token(page.text)

    edited = admin.post(f"{url}/edit", data={"csrf": token, "email": "anna@utrecht.nl",
                                             "name": "Anna van Vliet", "organisation":
                                             "Gemeente Utrecht", "job_title": "Inkoper",
                                             "region": "Oost", "language": "en"})
    assert edited.status_code == 303, edited.text
    refused = admin.post(f"{url}/edit", data={"csrf": token, "email": "anna@utrecht.nl",
                                              "region": "Atlantis"})
    assert refused.status_code == 400 and "unknown region" in refused.text
    assert admin.post(f"{url}/unsubscribe", data={"csrf": token, "list": "nieuwsbrief"}
                      ).status_code == 303
    again = admin.post(f"{url}/unsubscribe", data={"csrf": token, "list": "nieuwsbrief"})
    assert again.headers["location"].endswith("done=unchanged")
    assert admin.post(f"{url}/block", data={"csrf": token, "note": "gevraagd"}
                      ).status_code == 303
    assert "geblokkeerd" in admin.get(url).text
    no_reason = admin.post(f"{url}/reactivate", data={"csrf": token, "reason": ""})
    assert no_reason.status_code == 400
    assert admin.post(f"{url}/reactivate", data={"csrf": token, "reason": "per telefoon"}
                      ).status_code == 303
    with session_scope(app.sessions) as session:
        anna = service.get_subscriber(session, "anna@utrecht.nl")
        assert (anna.name, anna.region, anna.language, anna.status) == (
            "Anna van Vliet", "Oost", "en", "active")
        assert not service.is_suppressed(session, "anna@utrecht.nl")
        anna_id = anna.id

    rows = _audit(app, "subscriber")
    assert [r.action for r in rows] == [
        "subscriber.access_export", "subscriber.edit", "subscriber.unsubscribe",
        "subscriber.block", "subscriber.reactivate"]
    assert {r.actor for r in rows} == {"beheer@gt.example.nl"}
    assert all(r.object_id == str(anna_id) and r.origin.startswith("console") for r in rows)
    assert rows[1].after is not None and set(rows[1].after["changed"]) == {
        "name", "job_title", "region", "language"}
    # No address or name in the audit trail, which an erasure cannot touch.
    text = json.dumps([[r.before, r.after] for r in rows])
    assert "anna" not in text.lower() and "Vliet" not in text


def test_the_profile_loads_the_kept_mail_that_mentions_the_person_after_itself(app: App, admin):  # type: ignore[no-untyped-def]
    import base64

    from mailer.bounces.models import BounceMessage
    from mailer.events.models import CalendarReply

    ids = _people(app)
    hidden = base64.encodebytes(b"Forwarded: a note from anna@utrecht.nl about April").decode()
    with session_scope(app.sessions) as session:
        for i, body in enumerate((hidden, base64.encodebytes(b"someone else").decode())):
            raw = ("From: postmaster@example.org\r\nSubject: Re: nieuwsbrief\r\n"
                   "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
                   f"Content-Transfer-Encoding: base64\r\n\r\n{body}").encode()
            session.add(BounceMessage(source="lmtp", fingerprint=f"mention-{i}", raw=raw,
                                      size=len(raw), from_header="postmaster@example.org",
                                      subject="Re: nieuwsbrief"))
        # A calendar reply naming her: its table has its own title (it once had none).
        session.add(CalendarReply(source="lmtp", fingerprint="reply-1", from_header="x@y.nl",
                                  subject="Accepted: GT Connect", attendee="anna@utrecht.nl",
                                  outcome="unmatched", raw=None))
    url = f"/subscribers/{ids['anna@utrecht.nl']}"
    page = admin.get(url).text
    # The page itself does not search the kept mail; htmx asks for it once the page is there.
    assert f'hx-get="{url}/mentions" hx-trigger="load"' in page
    assert "Re: nieuwsbrief" not in page
    part = admin.get(f"{url}/mentions", headers={"hx-request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    assert part.text.count("Re: nieuwsbrief") == 1 and "postmaster@example.org" in part.text
    assert "Agenda-antwoorden die de persoon noemen" in part.text
    assert "Accepted: GT Connect" in part.text
    # Without JavaScript: the same as a page of its own.
    alone = admin.get(f"{url}/mentions")
    assert "<html" in alone.text and "Re: nieuwsbrief" in alone.text
    # The access-request answer (JSON, the CLI) still has all of it.
    record = json.loads(admin.get(f"{url}/record.json").text)
    assert len(record["messages_mentioning"]) == 1
    assert "calendar_replies_mentioning" in record
    other = admin.get(f"/subscribers/{ids['bert@groningen.nl']}/mentions",
                      headers={"hx-request": "true"})
    assert 'id="mentions-none"' in other.text
    assert admin.get("/subscribers/nobody/mentions").status_code == 404


def test_erase_needs_the_address_typed(app: App, admin):  # type: ignore[no-untyped-def]
    ids = _people(app)
    url = f"/subscribers/{ids['bert@groningen.nl']}"
    token = csrf_token(admin.get(url).text)
    wrong = admin.post(f"{url}/erase", data={"csrf": token, "confirm": "bert@groningen.n"})
    assert wrong.status_code == 400 and "nothing was erased" in wrong.text
    with session_scope(app.sessions) as session:
        assert service.get_subscriber(session, "bert@groningen.nl")
    done = admin.post(f"{url}/erase", data={"csrf": token, "confirm": " BERT@groningen.nl "})
    assert done.status_code == 303 and done.headers["location"] == "/subscribers?erased=1"
    assert admin.get(url).status_code == 404
    with session_scope(app.sessions) as session:
        assert session.scalar(select(Subscriber).where(
            Subscriber.email_key == "bert@groningen.nl")) is None
        assert service.is_suppressed(session, "bert@groningen.nl")
    erased = _audit(app, "subscriber.erase")
    assert len(erased) == 1 and erased[0].actor == "beheer@gt.example.nl"
    assert "bert" not in json.dumps([erased[0].before, erased[0].after])


def test_roles(app: App):
    ids = _people(app)
    url = f"/subscribers/{ids['anna@utrecht.nl']}"
    viewer, editor = console_client(app), console_client(app)
    sign_in(viewer, make_account(app, "lezer@gt.example.nl", "viewer"))
    sign_in(editor, make_account(app, "redactie@gt.example.nl", "editor"))
    assert viewer.get("/subscribers").status_code == 200
    assert viewer.get(url).status_code == 200
    assert "record.json" not in viewer.get(url).text
    assert viewer.get(f"{url}/record.json").status_code == 403
    assert viewer.get("/subscribers/export").status_code == 403
    assert editor.get(f"{url}/record.json").status_code == 200
    assert editor.get("/subscribers/export").status_code == 200
    page = editor.get(url).text
    assert "/erase" not in page
    assert editor.post(f"{url}/erase", data={"csrf": csrf_token(page),
                                             "confirm": "anna@utrecht.nl"}).status_code == 403
    assert editor.get("/subscribers/import").status_code == 403


def test_search_and_export_filter_on_job_title_and_attributes(app: App, admin):  # type: ignore[no-untyped-def]
    with session_scope(app.sessions) as session:
        service.create_list(session, "nieuwsbrief", "GT Nieuwsbrief")
        for email, job, sector in (("a@x.nl", "Beleidsadviseur", "ICT"),
                                   ("b@x.nl", "Inkoper", "Zorg"),
                                   ("c@x.nl", "beleidsadviseur", "Onderwijs")):
            service.add_subscriber(
                session, service.SubscriberData(email=email, job_title=job,
                                                attributes={"sector": sector}),
                lists=["nieuwsbrief"], regions=app.settings.regions, source="cli",
                actor="tests")
    page = admin.get("/subscribers").text
    assert 'id="f-job_title"' in page and 'id="f-attr"' in page
    rows = admin.get("/subscribers/rows", params={"job_title": "BELEIDSADVISEUR"}).text
    assert "a@x.nl" in rows and "c@x.nl" in rows and "b@x.nl" not in rows
    rows = admin.get("/subscribers/rows", params={"attr": "sector=zorg"}).text
    assert "b@x.nl" in rows and "a@x.nl" not in rows
    rows = admin.get("/subscribers/rows", params={"job_title": "beleidsadviseur",
                                                  "attr": "sector=ICT"}).text
    assert "a@x.nl" in rows and "c@x.nl" not in rows
    # Typed without "=": the one-line error beside the results, not a crash.
    bad = admin.get("/subscribers", params={"attr": "sector"})
    assert bad.status_code == 400 and "use KEY=VALUE" in bad.text
    assert 'value="sector"' in bad.text
    csv_ = admin.get("/subscribers/export", params={"attr": "sector=ICT", "format": "csv"})
    lines = csv_.content.decode("utf-8-sig").splitlines()
    assert len(lines) == 2 and "a@x.nl" in lines[1]
    bad = admin.get("/subscribers/export", params={"attr": "=ICT"})
    assert bad.status_code == 400 and "use KEY=VALUE" in bad.text
    exports = _audit(app, "subscribers.export")
    assert exports[-1].after is not None and exports[-1].after["filter"] == {
        "attributes": ["sector=ICT"]}


def test_export_csv_and_xlsx(app: App, admin):  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    _people(app)
    csv_ = admin.get("/subscribers/export", params={"region": "Noord", "format": "csv"})
    assert csv_.status_code == 200
    assert csv_.content.startswith(b"\xef\xbb\xbf")
    lines = csv_.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("email;name;organisation;")
    assert len(lines) == 3 and "bert@groningen.nl" in csv_.text
    assert "'=HYPERLINK" in csv_.text  # neutralised as the CLI does
    xlsx = admin.get("/subscribers/export", params={"list": "nieuwsbrief", "format": "xlsx"})
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "email" and len(rows) == 5
    cells = [c for row in sheet.iter_rows() for c in row]
    assert all(c.data_type == "s" for c in cells if c.value is not None)
    assert "'=HYPERLINK(\"x\")" in [c.value for c in cells]
    bad = admin.get("/subscribers/export", params={"list": "geen-lijst"})
    assert bad.status_code == 400 and "geen-lijst" in bad.text
    exports = _audit(app, "subscribers.export")
    assert [(e.after or {}).get("count") for e in exports] == [2, 4]
    assert exports[1].after is not None and exports[1].after["filter"] == {
        "lists": ["nieuwsbrief"]}


def _upload(client, body: bytes, name: str = "deelnemers.csv"):  # type: ignore[no-untyped-def]
    page = client.get("/subscribers/import")
    return client.post("/subscribers/import", data={"csrf": csrf_token(page.text)},
                       files={"file": (name, body, "text/csv")})


def _run(client, preview, **fields):  # type: ignore[no-untyped-def]
    token = preview.text.split('/subscribers/import/')[1].split('/run')[0]
    started = client.post(f"/subscribers/import/{token}/run",
                          data={"csrf": csrf_token(preview.text), **fields})
    assert started.status_code == 303
    url = started.headers["location"]
    wait_for(lambda: 'id="import-progress" hx-get' not in client.get(f"{url}/progress").text)
    return url, client.get(url)


def test_import_preview_run_rejects(app: App, admin):  # type: ignore[no-untyped-def]
    _people(app)
    body = ("E-mailadres;Voornaam;Tussenvoegsel;Achternaam;Gemeente;Regio;Sector\r\n"
            "eva@meer.nl;Eva;van der;Meer;Gemeente Meer;Noord;=1+1\r\n"
            "jan@;Jan;;Jansen;;;\r\n"
            "piet@hoorn.nl;Piet;;Hoorn;Gemeente Hoorn;Noord-Holland;\r\n"
            "kees@delft.nl;Kees;;Delft;\x07Gemeente Delft;Zuid;ICT\r\n").encode("cp1252")
    preview = _upload(admin, body)
    assert preview.status_code == 200, preview.text
    assert 'id="p-encoding">cp1252' in preview.text or 'id="p-encoding">utf-8' in preview.text
    assert "puntkomma" in preview.text
    assert "eigen kenmerk" in preview.text and "eva@meer.nl" in preview.text
    with session_scope(app.sessions) as session:  # nothing written yet
        assert session.scalar(select(Subscriber).where(Subscriber.email_key == "eva@meer.nl")
                              ) is None
    url, done = _run(admin, preview, lists="regio-noord")
    assert "2 toegevoegd" in done.text and "2 afgewezen" in done.text, done.text
    assert "regel 3" in done.text and "Noord-Holland" in done.text
    rejects = admin.get(f"{url}/rejects.csv")
    assert rejects.status_code == 200
    lines = rejects.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "line;reason;E-mailadres;Voornaam;Tussenvoegsel;Achternaam;Gemeente;" \
                       "Regio;Sector"
    assert lines[1].startswith("3;")
    with session_scope(app.sessions) as session:
        eva = service.get_subscriber(session, "eva@meer.nl")
        assert eva.name == "Eva van der Meer" and eva.attributes["Sector"] == "=1+1"
        kees = service.get_subscriber(session, "kees@delft.nl")
        assert "\x07" not in kees.organisation
    imported = _audit(app, "subscribers.import")
    assert len(imported) == 1 and imported[0].actor == "beheer@gt.example.nl"
    assert imported[0].after is not None and imported[0].after["added"] == 2
    assert imported[0].after["file"] == "deelnemers.csv"
    # Another admin cannot see this import.
    other = console_client(app)
    sign_in(other, make_account(app, "beheer2@gt.example.nl", "admin"))
    assert other.get(url).status_code == 404


def test_import_refusals(app: App, admin):  # type: ignore[no-untyped-def]
    _people(app)
    no_email = _upload(admin, b"naam;gemeente\r\nAnna;Utrecht\r\n", "lijst.csv")
    assert no_email.status_code == 400
    assert "lijst.csv: no e-mail column" in no_email.text
    assert "/tmp" not in no_email.text
    # An unclosed quote refuses the whole file with its line; nothing is half-imported.
    broken = _upload(admin, b'email;naam\r\nnew1@x.nl;"Een\r\nnew2@x.nl;Twee\r\n'
                            b'new3@x.nl;Drie"\r\n', "kapot.csv")
    assert broken.status_code == 200
    _url, done = _run(admin, broken)
    assert "kapot.csv: line 2: a quote" in done.text and "nothing was imported" in done.text
    with session_scope(app.sessions) as session:
        assert session.scalar(select(Subscriber).where(Subscriber.email_key == "new2@x.nl")
                              ) is None
    assert _audit(app, "subscribers.import") == []
    nothing = admin.post("/subscribers/import", data={
        "csrf": csrf_token(admin.get("/subscribers/import").text)})
    assert nothing.status_code == 400
    # A dry run changes nothing and writes no audit row.
    dry = _upload(admin, b"email\r\nnieuw@x.nl\r\n")
    _url, done = _run(admin, dry, dry_run="1")
    assert "niets opgeslagen" in done.text
    with session_scope(app.sessions) as session:
        assert session.scalar(select(Subscriber).where(Subscriber.email_key == "nieuw@x.nl")
                              ) is None


def test_only_the_upload_takes_a_large_body(app: App, admin):  # type: ignore[no-untyped-def]
    big = b"email\r\n" + b"x" * (7 * 1024 * 1024)
    page = admin.get("/subscribers/import")
    # 7 MiB is over the console's limit everywhere else...
    assert admin.post("/users", data={"csrf": csrf_token(page.text)},
                      files={"file": ("a.csv", big, "text/csv")}).status_code == 413
    # ...and within the upload's.
    assert len(big) < MAX_UPLOAD
    assert _upload(admin, big).status_code in (200, 400)


def test_the_cli_writes_the_same_audit_rows(app: App, run_cli, tmp_path):  # type: ignore[no-untyped-def]
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief")
    run_cli("subscribers", "add", "anna@utrecht.nl", "--name", "Anna", "--list", "nieuwsbrief")
    run_cli("subscribers", "edit", "anna@utrecht.nl", "--region", "Noord")
    run_cli("subscribers", "unsubscribe", "anna@utrecht.nl", "--list", "nieuwsbrief")
    run_cli("subscribers", "edit", "anna@utrecht.nl", "--status", "bounced")
    run_cli("subscribers", "reactivate", "anna@utrecht.nl", "--reason", "nieuwe mailbox")
    run_cli("subscribers", "block", "anna@utrecht.nl")
    file = tmp_path / "in.csv"
    file.write_text("email;naam\nbert@x.nl;Bert\n", encoding="utf-8")
    run_cli("subscribers", "import", str(file))
    run_cli("subscribers", "export", "-o", str(tmp_path / "out.csv"))
    # The CLI's listing is the console's search: wildcards are literal there too.
    assert "bert@x.nl" not in run_cli("subscribers", "ls", "--search", "%").output
    run_cli("subscribers", "erase", "anna@utrecht.nl", "--yes")
    rows = _audit(app, "subscriber")
    assert [r.action for r in rows] == [
        "subscriber.add", "subscriber.edit", "subscriber.unsubscribe", "subscriber.edit",
        "subscriber.reactivate", "subscriber.block",
        "subscribers.import", "subscribers.export", "subscriber.erase"]
    assert all(r.actor.startswith("os:") and r.origin == "cli" for r in rows)
    assert "anna" not in json.dumps([[r.before, r.after] for r in rows]).lower()


def test_the_search_uses_the_trigram_index_on_postgresql(app: App, db_url: str) -> None:
    from sqlalchemy import text

    from subscribers import queries
    from subscribers.queries import SubscriberFilter

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no trigram index (and needs none: see README)")
    stmt = queries.filtered_subscribers(
        None, SubscriberFilter(search="utrecht", limit=50))  # type: ignore[arg-type]
    sql = str(stmt.compile(app.engine, compile_kwargs={"literal_binds": True}))
    with app.engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_subscribers_search' "
                             "AND schemaname = current_schema()")
                        ).first() is None:
            pytest.skip("pg_trgm may not be created on this database (the migration says so)")
        # A tiny table: ask whether the planner *can* use it (not reading the table in order).
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_indexscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "ix_subscribers_search" in plan, plan


def test_progress_is_shown_while_the_import_runs(app: App, admin, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """Another transaction holds the table, so the import is caught running (on SQLite every
    transaction takes the write lock, so the console itself would wait: see README)."""
    from sqlalchemy import text

    if not db_url.startswith("postgresql"):
        pytest.skip("on SQLite the console's own requests wait for the import's lock")
    _people(app)
    preview = _upload(admin, b"email\r\n" + b"".join(b"p%d@x.nl\r\n" % n for n in range(50)))
    token = preview.text.split('/subscribers/import/')[1].split('/run')[0]
    url = f"/subscribers/import/{token}"
    with app.engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE subscribers IN EXCLUSIVE MODE"))
        started = admin.post(f"{url}/run", data={"csrf": csrf_token(preview.text)})
        assert started.status_code == 303
        page = admin.get(url).text
        assert 'hx-trigger="every 1s"' in page and "<progress" in page
        assert "Regel 0 van 51" in admin.get(f"{url}/progress").text
        # A second run of the same upload is not started.
        again = admin.post(f"{url}/run", data={"csrf": csrf_token(preview.text)})
        assert again.status_code == 303
        blocker.rollback()
    wait_for(lambda: 'hx-get' not in admin.get(f"{url}/progress").text)
    assert "50 toegevoegd" in admin.get(url).text
