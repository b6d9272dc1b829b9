"""Subscribers, import and export in headless Chromium, as each role: an admin searches as
they type, opens a profile, edits, unsubscribes from one list, blocks, reactivates, erases
(typing the address), imports a file (preview, run, rejects) and exports; an editor exports and
downloads the access-request JSON but changes nothing; a viewer only reads. Every page is
checked with axe-core (WCAG 2.1 AA) and for CSP violations; the search works by keyboard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from browser_support import BROWSER_MARKS, wait_for
from console_support import make_account
from test_console_browser import Checked, sign_in

from mailer.app import App
from mailer.database.connect import session_scope
from subscribers import service

pytestmark = BROWSER_MARKS

CSV = ("E-mailadres;Voornaam;Achternaam;Gemeente;Regio;Opmerking\r\n"
       "eva@meer.nl;Eva;Müller;Súdwest-Fryslân;Noord;=HYPERLINK(\"https://evil.example\")\r\n"
       "jan@;Jan;Jansen;;;\r\n"
       + "".join(f"p{n}@hoorn.nl;P;{n};Gemeente Hoorn;West;\r\n" for n in range(3000)))


def _people(app: App) -> dict[str, str]:
    ids = {}
    with session_scope(app.sessions) as session:
        service.create_list(session, "nieuwsbrief", "GT Nieuwsbrief")
        service.create_list(session, "regio-noord", "Regio Noord")
        for n, (email, name, region) in enumerate((
                ("anna@utrecht.nl", "Anna de Vries", "Midden"),
                ("bert@groningen.nl", "Bert Bakker", "Noord"),
                ("chris_100%@zwolle.nl", "Chris Zeker", "Oost"))):
            sub = service.add_subscriber(
                session, service.SubscriberData(email=email, name=name, region=region,
                                                organisation=f"Gemeente {n}"),
                lists=["nieuwsbrief", "regio-noord"], regions=app.settings.regions,
                source="cli", actor="tests")
            ids[email] = sub.public_id
    return ids


def _context(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="nl-NL",
                               accept_downloads=True)


def test_admin_finds_changes_erases_imports_exports(browser: Any, app: App,
                                                    tmp_path: Path) -> None:
    ids = _people(app)
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    with_file = tmp_path / "deelnemers.csv"
    with_file.write_bytes(CSV.encode("cp1252"))

    with _served(app) as base:
        ad = Checked(_context(browser))
        sign_in(ad, base, admin.email, admin.password, admin.code())
        p = ad.page
        p.get_by_role("link", name="Abonnees").click()
        p.wait_for_url(f"{base}/subscribers")
        ad.check("subscribers")
        # Search as you type, by keyboard: the results follow without a page load.
        p.locator("#q").focus()
        p.keyboard.type("groning")
        wait_for(lambda: p.locator("#results").inner_text().count("@") == 1)
        assert "bert@groningen.nl" in p.inner_text("#results")
        # Only the count is a status region: it is what a screen reader announces.
        wait_for(lambda: p.inner_text("#found-count").strip() == "1 gevonden.")
        assert p.url == f"{base}/subscribers"
        # % is a character, not a wildcard.
        p.fill("#q", "")
        p.keyboard.type("100%")
        wait_for(lambda: "chris_100%@zwolle.nl" in p.inner_text("#results")
                 and "bert@" not in p.inner_text("#results"))
        p.fill("#q", "")
        p.select_option("#f-region", "Noord")
        wait_for(lambda: "anna@" not in p.inner_text("#results")
                 and "bert@" in p.inner_text("#results"))
        ad.check()

        p.goto(f"{base}/subscribers/{ids['anna@utrecht.nl']}")
        ad.check("subscriber")
        p.fill("#e-name", "Anna van Vliet")
        p.get_by_role("button", name="Opslaan").click()
        p.wait_for_selector("text=De gegevens zijn opgeslagen.")
        assert "Anna van Vliet" in p.inner_text("#h-profile + p + dl")
        p.get_by_role("button", name="Afmelden voor regio-noord").click()
        p.wait_for_selector("text=Afgemeld.")
        p.get_by_role("button", name="Blokkeren").click()
        p.wait_for_selector("text=Geblokkeerd; het adres staat op de blokkeerlijst.")
        p.fill("#reason", "per telefoon")
        p.get_by_role("button", name="Weer actief maken").click()
        p.wait_for_selector("text=Weer actief.")
        ad.check()
        # Erasure: a mistyped address is refused beside the field, the right one erases.
        p.fill("#confirm", "anna@utrecht.n")
        p.get_by_role("button", name="Definitief wissen").click()
        p.wait_for_selector("#error-erase")
        ad.check()
        p.locator("#confirm").focus()  # by keyboard: type the address, Enter submits
        p.keyboard.type("anna@utrecht.nl")
        p.keyboard.press("Enter")
        p.wait_for_selector("text=De persoon is gewist.")
        with session_scope(app.sessions) as session:
            assert service.is_suppressed(session, "anna@utrecht.nl")

        # Import: what will be read first, then the run with its progress, then the rejects.
        p.goto(f"{base}/subscribers/import")
        ad.check()
        p.set_input_files("#file", str(with_file))
        p.get_by_role("button", name="Bekijken").click()
        p.wait_for_selector("#mapping")
        assert p.inner_text("#p-encoding") == "cp1252"
        assert "puntkomma" in p.inner_text("#p-delimiter")
        assert "eva@meer.nl" in p.inner_text("#first-rows")
        ad.check("import-preview")
        p.get_by_label("Regio Noord (regio-noord)").check()
        p.get_by_role("button", name="Importeren", exact=True).click()
        p.wait_for_selector("#import-result", timeout=60_000)
        assert "3001 toegevoegd" in p.inner_text("#import-result")
        assert "1 afgewezen" in p.inner_text("#import-result")
        ad.check("import-done")
        with p.expect_download() as got:
            p.get_by_role("link", name="Afgewezen regels downloaden (CSV)").click()
        rejects = Path(got.value.path()).read_bytes().decode("utf-8-sig")
        assert rejects.splitlines()[1].startswith("3;")

        # Export with the filters: CSV for Excel, and .xlsx.
        p.goto(f"{base}/subscribers?region=Noord")
        with p.expect_download() as got:
            p.get_by_role("button", name="Exporteren").click()
        data = Path(got.value.path()).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") and b"bert@groningen.nl" in data
        assert b"'=HYPERLINK" in data and b"p1@hoorn.nl" not in data
        p.check("#fmt-xlsx")
        with p.expect_download() as got:
            p.get_by_role("button", name="Exporteren").click()
        assert got.value.suggested_filename.endswith(".xlsx")


def test_editor_exports_viewer_reads(browser: Any, app: App) -> None:
    ids = _people(app)
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    with _served(app) as base:
        ed = Checked(_context(browser))
        sign_in(ed, base, editor.email, editor.password, editor.code())
        p = ed.page
        p.goto(f"{base}/subscribers/{ids['bert@groningen.nl']}")
        ed.check()
        assert p.locator("#e-name").count() == 0 and p.locator("#confirm").count() == 0
        with p.expect_download() as got:
            p.get_by_role("link", name="Downloaden als JSON (inzageverzoek)").click()
        record = json.loads(Path(got.value.path()).read_text(encoding="utf-8"))
        assert record["email"] == "bert@groningen.nl"
        response = p.goto(f"{base}/subscribers/import")
        assert response is not None and response.status == 403
        ed.check()

        vi = Checked(_context(browser))
        sign_in(vi, base, viewer.email, viewer.password, viewer.code())
        q = vi.page
        q.goto(f"{base}/subscribers")
        vi.check()
        assert q.get_by_role("button", name="Exporteren").count() == 0
        response = q.goto(f"{base}/subscribers/export")
        assert response is not None and response.status == 403
        response = q.goto(f"{base}/subscribers/{ids['bert@groningen.nl']}/record.json")
        assert response is not None and response.status == 403


def _served(app: App) -> Any:
    from console_support import console_served

    return console_served(app)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
