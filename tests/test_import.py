"""`mailer subscribers import`: CSV files as people make them, merging, rejects, all or nothing.

Every test runs on SQLite and PostgreSQL (the `run_cli` / `sessions` fixtures).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from mailer.database.connect import session_scope
from subscribers import service
from subscribers.errors import ImportFileError
from subscribers.importer import Reject, import_file
from subscribers.models import ConsentEvent, Subscriber, Subscription

DUTCH = (
    "E-mailadres;Voornaam;Tussenvoegsel;Achternaam;Gemeente;Regio;Functie;Taal;Contractnummer\r\n"
    "anna@utrecht.nl;Anna;de;Vries;Utrecht;midden;Adviseur;nl;GT-001\r\n"
    "\r\n"
    "  jan@Zwolle.nl  ; Jan ; ; Bakker ;Zwolle;Oost;;English;GT-002\r\n"
    'eva@leeuwarden.nl;Eva;van der;Meer;"Leeuwarden; Fryslân";Noord;"Hoofd ""ICT""";;\r\n'
)


def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding))
    return path


def imported(run_cli, path: Path, *args: str) -> dict:
    result = run_cli("subscribers", "import", str(path), *args, "--json")
    return json.loads(result.output)


def people(run_cli) -> dict[str, dict]:
    rows = json.loads(run_cli("subscribers", "ls", "--limit", "0", "--json").output)
    return {row["email"]: row for row in rows}


@pytest.fixture
def nieuwsbrief(run_cli) -> str:
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief")
    return "nieuwsbrief"


def test_dutch_excel_file_with_every_header_kind(run_cli, tmp_path, nieuwsbrief):
    path = write(tmp_path / "deelnemers.csv", DUTCH, "cp1252")
    out = imported(run_cli, path, "--list", nieuwsbrief)
    assert (out["added"], out["updated"], out["unchanged"], out["rejected"]) == (3, 0, 0, 0)
    assert (out["encoding"], out["delimiter"]) == ("cp1252", ";")
    found = people(run_cli)
    anna = found["anna@utrecht.nl"]
    assert anna["name"] == "Anna de Vries"
    assert (anna["organisation"], anna["region"], anna["job_title"]) == (
        "Utrecht", "Midden", "Adviseur")
    assert anna["attributes"] == {"Contractnummer": "GT-001"}
    assert anna["lists"] == ["nieuwsbrief"]
    jan = found["jan@zwolle.nl"]  # the domain is normalised, the local part kept as given
    assert (jan["name"], jan["language"], jan["region"]) == ("Jan Bakker", "en", "Oost")
    eva = found["eva@leeuwarden.nl"]
    assert eva["organisation"] == "Leeuwarden; Fryslân"
    assert eva["name"] == "Eva van der Meer"
    assert eva["job_title"] == 'Hoofd "ICT"'
    assert eva["language"] == "nl"


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b""), ("utf-16", b"")],
)
def test_encodings(run_cli, tmp_path, encoding, prefix):
    content = "Email,Name,Organisation\nrene@ede.nl,René Müller,Gemeente Ede\n"
    path = tmp_path / "people.csv"
    path.write_bytes(prefix + content.encode(encoding))
    out = imported(run_cli, path)
    assert out["added"] == 1, out
    person = people(run_cli)["rene@ede.nl"]
    assert person["name"] == "René Müller"
    assert person["organisation"] == "Gemeente Ede"
    assert "Email" not in person["attributes"] and "\ufeffEmail" not in person["attributes"]


def test_english_headers_comma_quotes_crlf_blank_lines_and_spaces(run_cli, tmp_path):
    content = (
        "\r\n"
        ' "E-mail" , "Full name" , Municipality , Region , Job title , Language , Notes \r\n'
        '"piet@oss.nl", "Jansen, Piet" , Oss , zuid , "Beleidsmedewerker" , EN , "two\r\nlines"\r\n'
        "\r\n"
        " , , , , , , \r\n"
        "kees@delft.nl,Kees,Delft,West,,,\r\n"
    )
    path = write(tmp_path / "people.csv", content)
    out = imported(run_cli, path)
    assert (out["added"], out["rejected"], out["delimiter"]) == (2, 0, ",")
    piet = people(run_cli)["piet@oss.nl"]
    assert piet["name"] == "Jansen, Piet"
    assert (piet["region"], piet["language"]) == ("Zuid", "en")
    assert piet["attributes"] == {"Notes": "two\r\nlines"}


def test_rejects_with_line_numbers_and_rejects_file(run_cli, tmp_path):
    content = (
        "e-mail;naam;regio;taal\n"
        "goed@breda.nl;Goed;Zuid;nl\n"  # line 2
        "geen-apenstaartje;Fout;;\n"  # line 3
        ";Leeg;;\n"  # line 4
        "\n"
        "regio@breda.nl;Regio;Atlantis;\n"  # line 6
        'taal@breda.nl;"Taal\nover twee regels";;fr\n'  # line 7-8
        "laatste@breda.nl;Laatste;;\n"  # line 9
    )
    path = write(tmp_path / "in.csv", content)
    rejects = tmp_path / "afgewezen.csv"
    result = run_cli("subscribers", "import", str(path), "--rejects", str(rejects), ok=False)
    assert result.exit_code == 1  # rows were rejected; the good ones are saved
    assert "2 added, 0 updated, 0 unchanged, 4 rejected" in result.output
    assert "line 3: invalid e-mail address 'geen-apenstaartje'" in result.output
    assert "line 4: no e-mail address" in result.output
    assert "line 6: unknown region 'Atlantis'" in result.output
    assert "line 7: unknown language 'fr'" in result.output
    with rejects.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    assert rows[0] == ["line", "reason", "e-mail", "naam", "regio", "taal"]
    assert [r[0] for r in rows[1:]] == ["3", "4", "6", "7"]
    assert rows[2][2:] == ["", "Leeg", "", ""]
    assert set(people(run_cli)) == {"goed@breda.nl", "laatste@breda.nl"}


def test_duplicates_in_file_merge_case_insensitively_and_rerun_changes_nothing(
    run_cli, tmp_path, nieuwsbrief
):
    content = (
        "email,name,organisation,region,Team\n"
        "Anna@Utrecht.nl,Anna de Vries,,Midden,\n"
        "anna@utrecht.nl,Other Name,Utrecht,Noord,Inkoop\n"
        "ANNA@UTRECHT.NL,,,,\n"
        "bob@ede.nl,Bob,,,\n"
    )
    path = write(tmp_path / "dups.csv", content)
    first = imported(run_cli, path, "--list", nieuwsbrief)
    assert (first["added"], first["duplicates"], first["rejected"]) == (2, 2, 0)
    anna = people(run_cli)["Anna@utrecht.nl"]
    # The first row wins; later rows of the same address only fill what it left empty.
    assert (anna["name"], anna["organisation"], anna["region"]) == (
        "Anna de Vries", "Utrecht", "Midden")
    assert anna["attributes"] == {"Team": "Inkoop"}

    again = imported(run_cli, path, "--list", nieuwsbrief)
    assert (again["added"], again["updated"], again["unchanged"], again["duplicates"]) == (
        0, 0, 2, 2)
    assert people(run_cli)["Anna@utrecht.nl"] == anna


def test_duplicates_across_batches(sessions: sessionmaker[Session], tmp_path):
    rows = [f"p{i}@x.nl,Person {i}" for i in range(5)] + ["P0@X.NL,Late", "p1@x.nl,"]
    path = write(tmp_path / "b.csv", "email,name\n" + "\n".join(rows) + "\n")
    with session_scope(sessions) as session:
        result = import_file(session, path, batch_size=2)
    assert (result.added, result.duplicates, result.updated) == (5, 2, 0)
    with session_scope(sessions) as session:
        assert service.get_subscriber(session, "p0@x.nl").name == "Person 0"
        again = import_file(session, path, batch_size=3)
    assert (again.added, again.updated, again.unchanged, again.duplicates) == (0, 0, 5, 2)


def test_against_database_updates_filled_cells_and_keeps_others(run_cli, tmp_path, nieuwsbrief):
    run_cli("subscribers", "add", "anna@utrecht.nl", "--name", "Anna", "--organisation",
            "Utrecht", "--language", "en", "--attr", "sector=ICT")
    content = "email;name;gemeente;taal;sector;extra\nANNA@utrecht.nl;Anna de Vries;;;;ja\n"
    path = write(tmp_path / "upd.csv", content)
    out = imported(run_cli, path, "--list", nieuwsbrief)
    assert (out["added"], out["updated"], out["unchanged"]) == (0, 1, 0)
    anna = people(run_cli)["anna@utrecht.nl"]
    assert anna["name"] == "Anna de Vries"
    assert (anna["organisation"], anna["language"]) == ("Utrecht", "en")
    assert anna["attributes"] == {"sector": "ICT", "extra": "ja"}
    assert anna["lists"] == ["nieuwsbrief"]
    assert imported(run_cli, path, "--list", nieuwsbrief)["unchanged"] == 1


def test_new_list_counts_as_update_but_unsubscribed_people_are_not_resubscribed(
    run_cli, tmp_path, nieuwsbrief
):
    run_cli("lists", "create", "regio-noord", "--title", "Regio Noord")
    run_cli("subscribers", "add", "a@x.nl", "--list", nieuwsbrief)
    run_cli("subscribers", "add", "b@x.nl", "--list", nieuwsbrief)
    run_cli("subscribers", "unsubscribe", "b@x.nl")
    path = write(tmp_path / "l.csv", "email\na@x.nl\nb@x.nl\n")
    out = imported(run_cli, path, "--list", "regio-noord", "--list", nieuwsbrief)
    assert (out["updated"], out["unchanged"]) == (1, 1)
    found = people(run_cli)
    assert found["a@x.nl"]["lists"] == ["nieuwsbrief", "regio-noord"]
    assert found["b@x.nl"]["lists"] == []
    assert found["b@x.nl"]["status"] == "unsubscribed"


def test_suppressed_and_erased_addresses_are_not_brought_back(run_cli, tmp_path):
    run_cli("subscribers", "add", "weg@x.nl", "--name", "Weg")
    run_cli("subscribers", "erase", "weg@x.nl", "--yes")
    run_cli("suppress", "add", "nooit@x.nl")
    run_cli("subscribers", "add", "blok@x.nl")
    run_cli("subscribers", "block", "blok@x.nl")
    path = write(tmp_path / "s.csv", "email,name\nWEG@x.nl,Weer\nnooit@X.nl,N\nblok@x.nl,B\n")
    result = run_cli("subscribers", "import", str(path), ok=False)
    assert result.exit_code == 1  # rows were rejected; the good ones are saved
    assert "0 added, 0 updated, 0 unchanged, 3 rejected" in result.output
    assert "line 2: on the suppression list" in result.output
    found = people(run_cli)
    assert set(found) == {"blok@x.nl"}
    assert found["blok@x.nl"]["name"] == ""


def test_dry_run_counts_but_saves_nothing(run_cli, tmp_path, nieuwsbrief):
    path = write(tmp_path / "d.csv", DUTCH, "cp1252")
    result = run_cli("subscribers", "import", str(path), "--list", nieuwsbrief, "--dry-run")
    assert "Would import" in result.output and "3 added" in result.output
    assert "nothing was saved" in result.output
    assert people(run_cli) == {}
    assert imported(run_cli, path, "--list", nieuwsbrief)["added"] == 3


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with session_scope(sessions) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _install_failing_trigger(session: Session, backend: str) -> None:
    """A real database error on one address: what a full disk or a crash mid-file looks like."""
    if backend == "sqlite":
        session.execute(text(
            "CREATE TRIGGER boom BEFORE INSERT ON subscribers "
            "WHEN NEW.email_key = 'boom@x.nl' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        ))
    else:
        session.execute(text(
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
            "IF NEW.email_key = 'boom@x.nl' THEN RAISE EXCEPTION 'disk full'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        ))
        session.execute(text(
            "CREATE TRIGGER boom BEFORE INSERT ON subscribers "
            "FOR EACH ROW EXECUTE FUNCTION boom()"
        ))


def _drop_failing_trigger(session: Session, backend: str) -> None:
    if backend == "sqlite":
        session.execute(text("DROP TRIGGER boom"))
    else:
        session.execute(text("DROP TRIGGER boom ON subscribers"))
        session.execute(text("DROP FUNCTION boom()"))


@pytest.fixture
def failing_insert(sessions: sessionmaker[Session], db_url: str):
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    with session_scope(sessions) as session:
        _install_failing_trigger(session, backend)
    yield
    with session_scope(sessions) as session:
        _drop_failing_trigger(session, backend)


def test_database_error_half_way_leaves_database_as_it_was(
    sessions: sessionmaker[Session], tmp_path, failing_insert
):
    with session_scope(sessions) as session:
        service.create_list(session, "nieuwsbrief", "N")
        service.add_subscriber(session, service.SubscriberData("old@x.nl", name="Old"))
    before = (_count(sessions, Subscriber), _count(sessions, Subscription),
              _count(sessions, ConsentEvent))
    rows = ["old@x.nl,New name"] + [f"p{i}@x.nl,P" for i in range(6)] + ["boom@x.nl,Boom"]
    path = write(tmp_path / "f.csv", "email,name\n" + "\n".join(rows) + "\n")
    with pytest.raises(ImportFileError, match=r"disk full.*nothing was imported"), \
            session_scope(sessions) as session:
        import_file(session, path, lists=["nieuwsbrief"], batch_size=3)
    after = (_count(sessions, Subscriber), _count(sessions, Subscription),
             _count(sessions, ConsentEvent))
    assert after == before
    with session_scope(sessions) as session:
        assert service.get_subscriber(session, "old@x.nl").name == "Old"


def test_database_error_through_the_cli_is_one_line(run_cli, tmp_path, failing_insert):
    path = write(tmp_path / "f.csv", "email\na@x.nl\nboom@x.nl\nz@x.nl\n")
    result = run_cli("subscribers", "import", str(path), ok=False)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "nothing was imported" in lines[0]
    assert people(run_cli) == {}


def test_crash_half_way_rolls_back(sessions: sessionmaker[Session], tmp_path):
    path = write(tmp_path / "c.csv", "email\n" + "".join(f"p{i}@x.nl\n" for i in range(10))
                 + "bad\n" + "q@x.nl\n")

    def crash(_reject: Reject) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), session_scope(sessions) as session:
        import_file(session, path, batch_size=4, on_reject=crash)
    assert _count(sessions, Subscriber) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("naam;gemeente\nAnna;Utrecht\n", "no e-mail column"),
        ("", "the file is empty"),
        ("\r\n ; \r\n", "the file is empty"),
        ("email,e-mailadres\na@x.nl,b@x.nl\n", "both mean email"),
    ],
)
def test_unreadable_files_are_one_line_errors(run_cli, tmp_path, content, message):
    path = write(tmp_path / "bad.csv", content)
    result = run_cli("subscribers", "import", str(path), ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_missing_file_and_unknown_list(run_cli, tmp_path):
    result = run_cli("subscribers", "import", str(tmp_path / "nope.csv"), ok=False)
    assert result.exit_code == 1 and "no such file" in result.output
    result = run_cli("subscribers", "import", str(tmp_path), ok=False)
    assert result.exit_code == 1 and "not a file" in result.output
    path = write(tmp_path / "ok.csv", "email\na@x.nl\n")
    result = run_cli("subscribers", "import", str(path), "--list", "onbekend", ok=False)
    assert result.exit_code == 1 and "no list 'onbekend'" in result.output
    assert people(run_cli) == {}


def test_extra_cells_beyond_the_header(run_cli, tmp_path):
    content = "email;name\na@x.nl;A;;\nb@x.nl;B;surprise\n"
    path = write(tmp_path / "w.csv", content)
    result = run_cli("subscribers", "import", str(path), ok=False)
    assert result.exit_code == 1  # rows were rejected; the good ones are saved
    assert "1 added" in result.output
    assert "line 3: 3 fields, the header has 2" in result.output


def test_export_can_be_imported_again(run_cli, tmp_path, nieuwsbrief):
    path = write(tmp_path / "d.csv", DUTCH, "cp1252")
    imported(run_cli, path, "--list", nieuwsbrief)
    exported = tmp_path / "export.csv"
    run_cli("subscribers", "export", "-o", str(exported), "--delimiter", ";")
    again = imported(run_cli, exported, "--list", nieuwsbrief)
    assert (again["added"], again["updated"], again["unchanged"], again["rejected"]) == (
        0, 0, 3, 0)


def test_excel_sep_hint_line(run_cli, tmp_path):
    path = write(tmp_path / "sep.csv", "sep=;\r\nNaam;E-mail\r\nJansen, Piet;piet@oss.nl\r\n")
    out = imported(run_cli, path)
    assert (out["added"], out["delimiter"]) == (1, ";")
    assert people(run_cli)["piet@oss.nl"]["name"] == "Jansen, Piet"
