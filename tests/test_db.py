"""Schema creation, upgrade and the refusal to run on an outdated schema, on both backends."""

from __future__ import annotations

from pathlib import Path

from mailer.database.connect import make_engine, schema_status, upgrade_schema


def test_upgrade_is_idempotent(run_cli, db_url):
    result = run_cli("db", "upgrade")
    assert "up to date" in result.output
    engine = make_engine(db_url)
    current, head = schema_status(engine)
    engine.dispose()
    assert current == head


def test_commands_refuse_an_empty_database(run_cli, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run_cli("--database-url", url, "lists", "ls", ok=False)
    assert result.exit_code == 1
    assert "mailer db upgrade" in result.output
    assert "Traceback" not in result.output


def test_commands_refuse_a_schema_that_is_behind(run_cli, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade_schema(engine, "0001")
    engine.dispose()
    result = run_cli("--database-url", url, "lists", "ls", ok=False)
    assert result.exit_code == 1
    assert "behind" in result.output
    run_cli("--database-url", url, "db", "upgrade")
    run_cli("--database-url", url, "lists", "ls")


def test_an_unreachable_database_is_one_line(run_cli):
    result = run_cli("--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/x", "lists", "ls",
                     ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open the database:")
    assert len(result.output.strip().splitlines()) == 1
