"""Finding 10: files, keys and logs. What GT Mailer creates on disk is private to its user; a
short MAILER_SECRET_KEY is refused; each purpose has its own derived key; a service on a
generated key says so loudly; the web log holds no token and no address; database passwords
never appear in a message."""

from __future__ import annotations

import logging
import os
import smtplib
import stat
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from itsdangerous import BadSignature, URLSafeTimedSerializer
from web_support import setup_people

from mailer.cli import cli
from mailer.delivery.capture import CaptureServer
from mailer.kernel import tokens
from mailer.kernel.keys import PURPOSES, derive
from mailer.kernel.links import Links
from mailer.kernel.tokens import Signer

KEY = "k" * 32


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    """The umask many servers run with: what we create must not follow it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def fresh_env(tmp_path: Path, config_file: Path, **extra: str) -> dict[str, str]:
    data = tmp_path / "fresh" / "var"
    return {"MAILER_CONFIG": str(config_file), "MAILER_DATA_DIR": str(data),
            "MAILER_DATABASE_URL": f"sqlite:///{data / 'mailer.db'}", "MAILER_SECRET_KEY": "",
            **extra}


def invoke(args: list[str], environ: dict[str, str]):
    runner = CliRunner()
    clean = {k: v for k, v in environ.items() if v}
    unset = {k: None for k, v in environ.items() if not v}
    return runner.invoke(cli, args, env={**unset, **clean}, catch_exceptions=False)


def test_data_folder_database_and_key_are_private(env, tmp_path: Path, config_file: Path,
                                                  open_umask):
    environ = fresh_env(tmp_path, config_file)
    data = Path(environ["MAILER_DATA_DIR"])
    assert invoke(["db", "upgrade"], environ).exit_code == 0
    assert invoke(["lists", "create", "nieuwsbrief", "--title", "N"], environ).exit_code == 0
    assert mode(data) == 0o700
    assert mode(data.parent) == 0o700  # made for us too
    assert mode(data / "mailer.db") == 0o600
    assert mode(data / "secret.key") == 0o600
    for extra in ("mailer.db-wal", "mailer.db-shm"):
        if (data / extra).exists():
            assert mode(data / extra) == 0o600, extra


def test_captured_mail_is_private(tmp_path: Path, open_umask):
    outbox = tmp_path / "var" / "outbox"
    with CaptureServer(outbox) as server:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.nl", "b@example.nl", "x"
        message.set_content("Beste Anna")
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as smtp:
            smtp.send_message(message)
    files = list(outbox.glob("*.eml"))
    assert files and all(mode(f) == 0o600 for f in files)
    assert mode(outbox) == 0o700


def test_a_short_secret_key_is_refused(env, tmp_path: Path, config_file: Path):
    environ = fresh_env(tmp_path, config_file, MAILER_SECRET_KEY="x" * 31)
    result = invoke(["lists", "ls"], environ)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: MAILER_SECRET_KEY: too short"), lines
    assert "32" in lines[0]


def test_a_service_on_a_generated_key_warns(env, tmp_path: Path, config_file: Path):
    environ = fresh_env(tmp_path, config_file)
    assert invoke(["db", "upgrade"], environ).exit_code == 0
    result = invoke(["run", "--once"], environ)
    assert result.exit_code == 0, result.output
    assert "WARNING: running on a generated secret key" in result.stderr
    environ["MAILER_SECRET_KEY"] = KEY
    result = invoke(["run", "--once"], environ)
    assert "WARNING" not in result.stderr


def test_one_key_per_purpose():
    keys = {purpose: derive(KEY, purpose) for purpose in PURPOSES}
    assert len(set(keys.values())) == len(keys)
    assert all(len(k) == 32 and KEY.encode() not in k for k in keys.values())
    assert derive(KEY, "links") != derive("l" * 32, "links")
    with pytest.raises(ValueError):
        derive(KEY, "anything")


def test_links_are_signed_with_the_derived_key_and_old_links_still_work():
    signer = Signer(KEY)
    token = signer.sign(tokens.UNSUBSCRIBE, {"s": 1})
    # Not signed with the secret key itself...
    raw = URLSafeTimedSerializer(KEY.encode(), salt=f"gt-mailer/{tokens.UNSUBSCRIBE}")
    with pytest.raises(BadSignature):
        raw.loads(token)
    # ...but with the links key; and a link from mail sent before the upgrade still works.
    derived = URLSafeTimedSerializer(derive(KEY, "links"), salt=f"gt-mailer/{tokens.UNSUBSCRIBE}")
    assert derived.loads(token) == {"s": 1}
    assert signer.unsign(tokens.UNSUBSCRIBE, raw.dumps({"s": 2})) == {"s": 2}
    verp = signer.verp_address(42, "bounces.example.nl")
    assert signer.parse_verp(verp) == 42


def test_the_web_log_holds_no_token_and_no_address(client, app, caplog):
    people = setup_people(app)
    links = Links(app.settings.web.base_url, app.signer)
    urls = [links.unsubscribe(people["anna"], people["campaign"]),
            links.preferences(people["anna"]), links.view(people["anna"], people["campaign"])]
    with caplog.at_level(logging.INFO):
        for url in urls:
            client.get(url.removeprefix(app.settings.web.base_url))
        client.get("/subscribe/nieuwsbrief?email=anna@gemeente.example.nl")
        client.get("/u/forged-token-value")
    # The server's records (the test's own HTTP client logs its requests too).
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if r.name.startswith(("mailer", "uvicorn", "starlette")))
    assert "GET /u/… 200" in logged and "GET /p/… 200" in logged and "GET /v/…" in logged
    for url in urls:
        token = url.rsplit("/", 1)[1]
        assert token not in logged
    assert "@" not in logged and "forged-token-value" not in logged


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://mailer:s3cr3t-pw@127.0.0.1:1/mailer",
    "mysql://mailer:s3cr3t-pw@127.0.0.1/mailer",
    "not a url://mailer:s3cr3t-pw@host",
])
def test_database_passwords_are_masked_in_messages(env, url: str):
    result = CliRunner().invoke(cli, ["--database-url", url, "lists", "ls"],
                                catch_exceptions=False)
    assert result.exit_code != 0
    assert "s3cr3t-pw" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_mailer_web_on_its_own_logs_like_the_service_and_no_token(env, app):
    """`mailer web -v` (a real process): the access log in `mailer run`'s format, with the
    page's first segment only: no token, no query, no address."""
    import signal
    import subprocess

    import httpx
    from security_support import MAILER, read_until

    people = setup_people(app)
    links = Links(app.settings.web.base_url, app.signer)
    urls = [links.unsubscribe(people["anna"], people["campaign"]),
            links.preferences(people["anna"])]
    proc = subprocess.Popen([*MAILER, "web", "-v", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})
    try:
        line = read_until(proc, "Serving the subscriber pages on")[-1]
        base = line.split(" on ", 1)[1].split("/ ", 1)[0]
        host = app.settings.web.base_url.split("//", 1)[1].split("/", 1)[0].split(":")[0]
        with httpx.Client(base_url=base, timeout=20, headers={"host": host}) as http:
            for url in urls:
                assert http.get(url.removeprefix(app.settings.web.base_url)).status_code == 200
            http.get("/subscribe/nieuwsbrief?email=anna@gemeente.example.nl")
            http.get("/u/forged-token-value?e=anna@gemeente.example.nl")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, logged = proc.communicate(timeout=30)
    assert " INFO mailer.web.access: " in logged, logged
    assert "GET /u/… 200" in logged and "GET /p/… 200" in logged
    for url in urls:
        assert url.rsplit("/", 1)[1] not in logged
    assert "@" not in logged and "forged-token-value" not in logged
