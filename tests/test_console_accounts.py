"""Staff accounts and sign-in, against the running console app on both databases."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from console_support import (
    CONSOLE,
    PASSWORD,
    console_client,
    csrf_token,
    forget_used_codes,
    make_account,
    sign_in,
)
from sqlalchemy import select, text

from mailer.accounts import service as accounts
from mailer.accounts.models import ConsoleSession, ConsoleUser
from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.database.connect import session_scope


def actions(app: App) -> list[tuple[str, str]]:
    with session_scope(app.sessions) as session:
        return [(e.actor, e.action) for e in session.scalars(
            select(AuditEntry).order_by(AuditEntry.id))]


def test_users_add_prints_a_one_time_link_that_sets_up_the_account(run_cli, app: App):
    result = run_cli("users", "add", "Bea@GT.example.nl", "--role", "admin", "--name", "Bea")
    link = result.stdout.strip()
    assert link.startswith(f"{CONSOLE}/setup/")
    assert "acting as os:" in result.stderr
    client = console_client(app)
    page = client.get(link.removeprefix(CONSOLE))
    assert page.status_code == 200
    assert "Bea@gt.example.nl" in page.text
    secret = page.text.split('name="secret" value="')[1].split('"')[0]
    import pyotp

    # An admin must set up the second factor.
    response = client.post(link.removeprefix(CONSOLE), data={
        "csrf": csrf_token(page.text), "password": PASSWORD, "password2": PASSWORD,
        "secret": secret, "code": ""})
    assert response.status_code == 400
    assert "second factor" in response.text
    response = client.post(link.removeprefix(CONSOLE), data={
        "csrf": csrf_token(page.text), "password": PASSWORD, "password2": PASSWORD,
        "secret": secret, "code": pyotp.TOTP(secret).now()})
    assert response.status_code == 303
    # The link works once.
    assert client.get(link.removeprefix(CONSOLE)).status_code == 400
    with session_scope(app.sessions) as session:
        user = session.scalars(select(ConsoleUser)).one()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert user.totp_secret == secret
        assert (user.setup_token_hash and link.rsplit("/", 1)[1] not in user.setup_token_hash) \
            or not user.setup_token_hash
    assert [a for _, a in actions(app)] == ["user.add", "user.setup"]
    assert actions(app)[0][0].startswith("os:")


def test_a_weak_password_and_a_wrong_role_are_refused(run_cli, app: App):
    result = run_cli("users", "add", "x@gt.example.nl", "--role", "boss", ok=False)
    assert result.exit_code != 0 and "boss" in result.output
    link = run_cli("users", "add", "x@gt.example.nl", "--role", "editor").stdout.strip()
    client = console_client(app)
    page = client.get(link.removeprefix(CONSOLE))
    response = client.post(link.removeprefix(CONSOLE), data={
        "csrf": csrf_token(page.text), "password": "short", "password2": "short",
        "secret": "", "code": ""})
    assert response.status_code == 400 and "at least 12" in response.text
    again = run_cli("users", "add", "X@gt.example.nl", "--role", "editor", ok=False)
    assert "already an account" in again.output


def test_sign_in_with_totp_rotates_the_session(app: App):
    account = make_account(app, "redactie@gt.example.nl", "editor")
    client = console_client(app)
    assert client.get("/").headers["location"] == "/signin"
    page = client.get("/signin")
    response = client.post("/signin", data={
        "csrf": csrf_token(page.text), "email": account.email, "password": PASSWORD})
    assert response.headers["location"] == "/signin/code"
    half = client.cookies.get("gt_console")
    # Password alone opens nothing.
    assert client.get("/campaigns").headers["location"] == "/signin"
    page = client.get("/signin/code")
    wrong = client.post("/signin/code", data={"csrf": csrf_token(page.text), "code": "000000"})
    assert wrong.status_code == 400
    used = account.code()
    response = client.post("/signin/code", data={"csrf": csrf_token(page.text), "code": used})
    assert response.status_code == 303 and response.headers["location"] == "/"
    full = client.cookies.get("gt_console")
    assert full and full != half
    assert client.get("/campaigns").status_code == 200
    # The half session is gone: its cookie opens nothing.
    other = console_client(app)
    other.cookies.set("gt_console", half or "")
    assert other.get("/").status_code == 303
    # The same code cannot be used twice.
    replay = console_client(app)
    page = replay.get("/signin")
    replay.post("/signin", data={"csrf": csrf_token(page.text), "email": account.email,
                                 "password": PASSWORD})
    page = replay.get("/signin/code")
    again = replay.post("/signin/code", data={"csrf": csrf_token(page.text), "code": used})
    assert again.status_code == 400
    assert ("redactie@gt.example.nl", "signin") in actions(app)


def test_a_session_cookie_from_before_sign_in_is_not_kept(app: App):
    """Session fixation: a cookie planted before sign-in is never the signed-in session."""
    account = make_account(app, "v@gt.example.nl", "viewer", totp=False)
    client = console_client(app)
    client.cookies.set("gt_console", "planted-by-an-attacker-0123456789abcdef", domain="127.0.0.1")
    sign_in(client, account)
    assert client.cookies.get("gt_console") != "planted-by-an-attacker-0123456789abcdef"


def test_lock_out_after_repeated_failures_and_one_answer_for_all(app: App):
    account = make_account(app, "a@gt.example.nl", "approver", totp=False)
    client = console_client(app)

    def attempt(email: str, password: str) -> int:
        page = client.get("/signin")
        return client.post("/signin", data={"csrf": csrf_token(page.text), "email": email,
                                             "password": password}).status_code

    unknown = client.post("/signin", data={"csrf": csrf_token(client.get("/signin").text),
                                           "email": "nobody@gt.example.nl", "password": "x"})
    for _ in range(app.settings.console.lockout_after):
        assert attempt(account.email, "wrong password!") == 400
    # Locked: the right password is refused too, with the same words as for an unknown address.
    locked = client.post("/signin", data={"csrf": csrf_token(client.get("/signin").text),
                                          "email": account.email, "password": PASSWORD})
    assert locked.status_code == 400
    assert locked.text.replace(account.email, "") == unknown.text.replace(
        "nobody@gt.example.nl", "")
    with session_scope(app.sessions) as session:
        user = session.scalars(select(ConsoleUser)).one()
        assert user.locked_until is not None
        user.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert attempt(account.email, PASSWORD) == 303


def test_sign_in_rate_limit_per_client(app: App, monkeypatch: pytest.MonkeyPatch):
    import dataclasses

    app.settings = dataclasses.replace(app.settings, console=dataclasses.replace(
        app.settings.console, signin_rate_per_client=3))
    client = console_client(app)
    codes = []
    for _ in range(4):
        page = client.get("/signin")
        codes.append(client.post("/signin", data={
            "csrf": csrf_token(page.text), "email": "x@gt.example.nl", "password": "y"}
        ).status_code)
    assert codes == [400, 400, 400, 429]


def test_idle_and_absolute_timeouts_end_the_session(app: App):
    account = make_account(app, "e@gt.example.nl", "editor", totp=False)
    client = console_client(app)
    sign_in(client, account)
    assert client.get("/").status_code == 200
    with session_scope(app.sessions) as session:
        cs = session.scalars(select(ConsoleSession)).one()
        cs.last_seen_at = cs.last_seen_at - dt.timedelta(minutes=app.settings.console.idle_minutes)
    assert client.get("/").headers["location"] == "/signin"
    sign_in(client, account)
    with session_scope(app.sessions) as session:
        cs = session.scalars(select(ConsoleSession)).one()
        cs.created_at = cs.created_at - dt.timedelta(hours=app.settings.console.session_hours)
    assert client.get("/").headers["location"] == "/signin"


def test_sign_out_everywhere_ends_every_session(app: App):
    account = make_account(app, "e@gt.example.nl", "editor")
    first, second = console_client(app), console_client(app)
    sign_in(first, account)
    forget_used_codes(app, account.email)
    sign_in(second, account)
    page = first.get("/account")
    response = first.post("/signout/everywhere", data={"csrf": csrf_token(page.text)})
    assert response.status_code == 303
    assert second.get("/").headers["location"] == "/signin"
    assert first.get("/").headers["location"] == "/signin"


def test_disable_and_reset_end_sessions(run_cli, app: App):
    account = make_account(app, "e@gt.example.nl", "editor", totp=False)
    client = console_client(app)
    sign_in(client, account)
    run_cli("users", "disable", account.email)
    assert client.get("/").headers["location"] == "/signin"
    page = client.get("/signin")
    refused = client.post("/signin", data={"csrf": csrf_token(page.text),
                                           "email": account.email, "password": PASSWORD})
    assert refused.status_code == 400
    run_cli("users", "enable", account.email)
    sign_in(client, account)
    link = run_cli("users", "reset", account.email).stdout.strip()
    assert link.startswith(f"{CONSOLE}/setup/")
    assert client.get("/").headers["location"] == "/signin"
    listing = run_cli("users", "ls", "--json").stdout
    assert '"set_up": false' in listing
    audit = run_cli("audit", "ls", "--action", "user.").stdout
    for action in ("user.add", "user.disable", "user.enable", "user.reset"):
        assert action in audit


def test_every_form_needs_its_csrf_token(app: App):
    account = make_account(app, "adm@gt.example.nl", "admin")
    client = console_client(app)
    assert client.post("/signin", data={"email": account.email,
                                        "password": PASSWORD}).status_code == 403
    sign_in(client, account)
    # No token, a token of another session, a cross-site post: all refused, nothing done.
    assert client.post("/users", data={"email": "n@gt.example.nl",
                                       "role": "admin"}).status_code == 403
    forged = client.post("/users", data={"csrf": "0" * 64, "email": "n@gt.example.nl",
                                         "role": "admin"})
    assert forged.status_code == 403
    page = client.get("/users")
    cross = client.post("/users", data={"csrf": csrf_token(page.text), "email": "n@x.nl",
                                        "role": "admin"}, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    with session_scope(app.sessions) as session:
        assert session.scalar(text("select count(*) from console_users")) == 1


def test_admin_adds_a_user_in_the_console(app: App):
    account = make_account(app, "adm@gt.example.nl", "admin")
    client = console_client(app)
    sign_in(client, account)
    page = client.get("/users")
    response = client.post("/users", data={"csrf": csrf_token(page.text),
                                           "email": "nieuw@gt.example.nl", "role": "editor"})
    assert response.status_code == 200
    assert f"{CONSOLE}/setup/" in response.text
    assert ("adm@gt.example.nl", "user.add") in actions(app)


def test_the_audit_trail_is_append_only(app: App):
    make_account(app, "e@gt.example.nl", "editor", totp=False)
    for statement in ("update audit_log set actor = 'someone else'", "delete from audit_log"):
        with pytest.raises(Exception, match="append-only"), session_scope(app.sessions) as s:
            s.execute(text(statement))


def test_audit_export_for_admins(app: App):
    admin = make_account(app, "adm@gt.example.nl", "admin")
    client = console_client(app)
    sign_in(client, admin)
    page = client.get("/audit?action=user.")
    assert page.status_code == 200 and "user.setup" in page.text
    export = client.get("/audit.csv")
    assert export.status_code == 200
    assert export.text.startswith("\ufeffid;at;actor;action")
    assert "adm@gt.example.nl;signin" in export.text


def test_console_settings_are_checked(tmp_path: Path):
    from mailer.errors import ConfigError
    from mailer.settings import load_settings

    config = tmp_path / "c.toml"
    config.write_text('[console]\nport = 8025\n[web]\nport = 8025\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"console\.port: the console needs its own listener"):
        load_settings(config, environ={"MAILER_SECRET_KEY": "x" * 20})


def test_the_users_page_and_ls_show_who_signs_in_with_the_provider(run_cli, app: App):
    admin = make_account(app, "beheer@gt.example.nl", "admin")
    make_account(app, "gekoppeld@gt.example.nl", "editor", totp=False)
    subject = "https://login.example/tenant/v2.0|sub-0123456789"
    with session_scope(app.sessions) as session:
        # One linked by address (password and provider), one the provider made (no password).
        session.scalars(select(ConsoleUser).where(
            ConsoleUser.email == "gekoppeld@gt.example.nl")).one().oidc_subject = subject
        accounts.add_oidc_user(session, "entra@gt.example.nl", "viewer", subject + "-2")
    client = console_client(app)
    sign_in(client, admin)
    page = client.get("/users").text
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr>\s*<td>([^<]+)<.*?</tr>", page,
                                                         re.S)}
    assert "<td>wachtwoord</td>" in rows["beheer@gt.example.nl"]
    assert "<td>OIDC, wachtwoord</td>" in rows["gekoppeld@gt.example.nl"]
    # Made by the provider: set up (not "not set up yet"), signs in with OIDC only.
    assert "<td>OIDC</td>" in rows["entra@gt.example.nl"]
    assert "actief" in rows["entra@gt.example.nl"]
    # The subject is a stable identifier of the person: not on the page.
    assert "sub-0123456789" not in page
    table = run_cli("users", "ls").stdout
    assert "oidc+password" in table and "sub-0123456789" not in table
    listing = {r["email"]: r for r in json.loads(run_cli("users", "ls", "--json").stdout)}
    assert listing["entra@gt.example.nl"]["signin_methods"] == ["oidc"]
    assert listing["gekoppeld@gt.example.nl"]["oidc_subject"] == subject
    assert listing["beheer@gt.example.nl"]["signin_methods"] == ["password"]
    assert listing["beheer@gt.example.nl"]["oidc_subject"] == ""
    # Reset unlinks: the listing says so.
    run_cli("users", "reset", "gekoppeld@gt.example.nl")
    listing = {r["email"]: r for r in json.loads(run_cli("users", "ls", "--json").stdout)}
    assert listing["gekoppeld@gt.example.nl"]["signin_methods"] == []


def test_a_half_session_remembers_how_its_first_step_was_taken(app: App):
    account = make_account(app, "half@gt.example.nl", "admin")
    with session_scope(app.sessions) as session:
        user = session.scalars(select(ConsoleUser).where(ConsoleUser.email == account.email)).one()
        stages = {}
        for method in ("password", "oidc"):
            token = accounts.start_session(session, user, stage="totp", method=method)
            found = accounts.load_session(session, token)
            assert found is not None
            stages[method] = accounts.session_stage(found[0])
        full = accounts.load_session(session, accounts.start_session(session, user))
        assert full is not None
        assert accounts.session_stage(full[0]) == ("full", "")
    assert stages == {"password": ("totp", "password"), "oidc": ("totp", "oidc")}
