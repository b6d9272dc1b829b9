"""Every registered command documents itself: `--help` works without a database and shows an
`Example:`."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from mailer.cli import cli


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(cli))


def test_the_foundation_commands_are_registered():
    names = {" ".join(p) for p in COMMANDS}
    for expected in (
        "db upgrade", "lists create", "lists ls", "lists show",
        "subscribers add", "subscribers ls", "subscribers show", "subscribers edit",
        "subscribers unsubscribe", "subscribers block", "subscribers erase",
        "subscribers import", "subscribers export",
        "suppress add", "suppress ls", "suppress rm",
    ):
        assert expected in names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "mailer")
def test_help_has_an_example(path, monkeypatch, tmp_path):
    # No configuration or database is needed to read the help.
    monkeypatch.setenv("MAILER_CONFIG", str(tmp_path / "does-not-exist.toml"))
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"mailer {' '.join(path)} --help lacks an Example:"
    example = result.output.split("Example:", 1)[1]
    assert "mailer" in example
