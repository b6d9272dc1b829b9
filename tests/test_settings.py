"""Configuration: config.toml defaults, MAILER_* environment overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli import cli
from mailer.errors import ConfigError
from mailer.settings import DEFAULT_CONFIG, load_settings

SECRET = "a-test-secret-of-enough-length-0123"


def config(tmp_path: Path, extra: str = "", *, data_dir: bool = True) -> Path:
    path = tmp_path / "config.toml"
    head = f'data_dir = "{tmp_path / "var"}"\n' if data_dir else ""
    path.write_text(head + extra, encoding="utf-8")
    return path


def test_shipped_config_loads_with_documented_defaults(tmp_path):
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        'data_dir = "var"', f'data_dir = "{tmp_path / "var"}"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, environ={})
    assert settings.timezone == "Europe/Amsterdam"
    assert settings.regions == ("Noord", "Oost", "Zuid", "West", "Midden")
    assert settings.database.url == f"sqlite:///{tmp_path / 'var' / 'mailer.db'}"
    assert settings.smtp.tls == "none"
    assert settings.sender.reply_to == "info@gt.example.nl"
    assert settings.web.base_url.startswith("http")
    # Without MAILER_SECRET_KEY a key is generated once and kept in the data folder.
    assert len(settings.secret_key) >= 32
    assert load_settings(path, environ={}).secret_key == settings.secret_key
    assert settings.canonical_region("noord") == "Noord"
    assert settings.canonical_region("Atlantis") is None


def test_environment_overrides_the_file(tmp_path):
    path = config(tmp_path, '[smtp]\nhost = "relay.example"\nport = 25\n')
    env = {
        "MAILER_DATABASE_URL": "postgresql+psycopg://mailer@db/mailer",
        "MAILER_SMTP_HOST": "smtp.office365.com",
        "MAILER_SMTP_PORT": "587",
        "MAILER_SMTP_USERNAME": "nieuwsbrief@gt.example.nl",
        "MAILER_SMTP_PASSWORD": "geheim",
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": "https://mailer.gt.example.nl",
    }
    settings = load_settings(path, environ=env)
    assert settings.database.url == env["MAILER_DATABASE_URL"]
    assert (settings.smtp.host, settings.smtp.port) == ("smtp.office365.com", 587)
    assert settings.smtp.username == "nieuwsbrief@gt.example.nl"
    assert settings.smtp.password == "geheim"
    assert settings.secret_key == SECRET
    assert settings.web.base_url == "https://mailer.gt.example.nl"
    assert "geheim" not in repr(settings) and SECRET not in repr(settings)


def test_mailer_config_names_the_file_and_flags_win(tmp_path):
    path = config(tmp_path, 'regions = ["Noord", "Zuid"]\n')
    settings = load_settings(environ={"MAILER_CONFIG": str(path), "MAILER_SECRET_KEY": SECRET})
    assert settings.config_path == path.resolve()
    assert settings.regions == ("Noord", "Zuid")
    flagged = load_settings(
        path,
        environ={"MAILER_DATABASE_URL": "sqlite:////tmp/env.db", "MAILER_SECRET_KEY": SECRET},
        overrides={("database", "url"): "sqlite:////tmp/flag.db"},
    )
    assert flagged.database.url == "sqlite:////tmp/flag.db"


@pytest.mark.parametrize(
    ("content", "env", "key"),
    [
        ("[smtp]\nport = \"abc\"\n", {}, "smtp.port: must be a whole number"),
        ("[smtp]\nport = 70000\n", {}, "smtp.port: must be between 1 and 65535"),
        ("", {"MAILER_SMTP_PORT": "twenty"}, "smtp.port: must be a whole number"),
        ("[smtp]\ntls = \"ssl\"\n", {}, "smtp.tls: must be one of none, starttls, tls"),
        ("[smtp]\npassword = \"x\"\n", {}, "smtp.password: secrets are read only from the env"),
        ("secret_key = \"x\"\n", {}, "secret_key: secrets are read only from the environment"),
        ("timezone = \"Mars/Olympus\"\n", {}, "timezone: unknown time zone"),
        ("regions = []\n", {}, "regions: at least one region"),
        ("colour = \"blue\"\n", {}, "colour: unknown setting"),
        ("[database]\nurls = \"x\"\n", {}, "database.urls: unknown setting"),
        ("[web]\nbase_url = \"mailer.example\"\n", {}, "web.base_url: must start with http"),
        ("[dkim]\nenabled = \"maybe\"\n", {}, "dkim.enabled: must be true or false"),
        ("[sender]\naddress = \"nobody\"\n", {}, "sender.address: not an e-mail address"),
        ("smtp = 3\n", {}, "smtp: must be a table"),
        ("[smtp\n", {}, "not valid TOML"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, content, env, key):
    path = config(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"MAILER_SECRET_KEY": SECRET, **env})
    message = str(caught.value)
    assert message.startswith(f"{path.resolve()}: ")
    assert key in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_cli_reports_config_errors_in_one_line(tmp_path, monkeypatch):
    path = config(tmp_path, "[smtp]\nport = \"abc\"\n")
    monkeypatch.setenv("MAILER_SECRET_KEY", SECRET)
    monkeypatch.delenv("MAILER_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["--config", str(path), "lists", "ls"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert str(path.resolve()) in lines[0] and "smtp.port" in lines[0]
    assert result.exception is None or isinstance(result.exception, SystemExit)
