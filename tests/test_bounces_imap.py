"""The IMAP poller against a real Dovecot on loopback (TLS, passwd-file user), both backends:
stored messages are moved to the processed folder; ones that could not be stored stay."""

from __future__ import annotations

import asyncio
import dataclasses
import imaplib
import time

import pytest
from bounces_support import sample, sent_delivery, verp_for
from conftest import IN_CI
from imap_support import PASSWORD, USER, OAuthServer, PrivateDovecot, usable
from sqlalchemy import select

from mailer.app import App, build_app
from mailer.bounces.models import Bounce
from mailer.database.connect import session_scope
from mailer.errors import ConfigError
from mailer.intake.imap import imap_part, poll_once


@pytest.fixture
def dovecot():
    problem = usable()
    if problem:
        if IN_CI:
            pytest.fail(f"Dovecot is needed under CI=true: {problem}")
        pytest.skip(problem)
    with PrivateDovecot() as server:
        yield server


def imap_app(app: App, server: PrivateDovecot, **changes) -> App:
    bounces = dataclasses.replace(
        app.settings.bounces, imap_host="127.0.0.1", imap_port=server.port,
        imap_username=USER, imap_password=PASSWORD, imap_processed_folder="Verwerkt",
        imap_poll_seconds=1,
    )
    settings = dataclasses.replace(app.settings, bounces=bounces, **changes)
    return app.reconfigured(settings)


def mailbox_counts(server: PrivateDovecot, *folders: str) -> list[int]:
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=server.ssl_context())
    conn.login(USER, PASSWORD)
    counts = []
    for folder in folders:
        typ, data = conn.select(folder, readonly=True)
        counts.append(int(data[0]) if typ == "OK" else -1)
    conn.logout()
    return counts


def append(server: PrivateDovecot, *messages: bytes) -> None:
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.port, ssl_context=server.ssl_context())
    conn.login(USER, PASSWORD)
    for message in messages:
        assert conn.append("INBOX", None, None, message)[0] == "OK"
    conn.logout()


def test_poll_moves_stored_messages(app, dovecot):
    with session_scope(app.sessions) as session:
        verp = verp_for(app.signer, sent_delivery(session))
    append(dovecot, sample("handmade_hard_511.eml", verp),
           sample("handmade_out_of_office.eml", verp), sample("handmade_garbled.eml", verp))
    polling = imap_app(app, dovecot)
    summary = poll_once(polling, ssl_context=dovecot.ssl_context())
    assert (summary.processed, summary.failed) == (3, 0)
    assert mailbox_counts(dovecot, "INBOX", "Verwerkt") == [0, 3]
    with session_scope(app.sessions) as session:
        rows = session.execute(select(Bounce.kind, Bounce.source).order_by(Bounce.id)).all()
    assert [tuple(r) for r in rows] == [("hard", "imap"), ("autoreply", "imap"),
                                        ("unknown", "imap")]
    assert poll_once(polling, ssl_context=dovecot.ssl_context()).processed == 0


def test_unstored_messages_stay_in_the_inbox(app, dovecot, tmp_path):
    append(dovecot, sample("handmade_delayed.eml", "bounces+1-aaaaaaaaaaaaaaaa@x.nl"))
    broken = build_app(dataclasses.replace(
        app.settings, database=dataclasses.replace(
            app.settings.database, url=f"sqlite:///{tmp_path / 'no-schema.db'}")),
        check_schema=False)
    try:
        polling = imap_app(broken, dovecot)
        summary = poll_once(polling, ssl_context=dovecot.ssl_context())
    finally:
        broken.close()
    assert (summary.processed, summary.failed) == (0, 1)
    assert mailbox_counts(dovecot, "INBOX", "Verwerkt") == [1, 0]


def test_service_part_polls_until_stopped(app, dovecot):
    with session_scope(app.sessions) as session:
        verp = verp_for(app.signer, sent_delivery(session))
    append(dovecot, sample("handmade_soft_422.eml", verp))
    polling = imap_app(app, dovecot)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(imap_part(polling, stop, ssl_context=dovecot.ssl_context()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with session_scope(app.sessions) as session:
                if session.scalars(select(Bounce)).first() is not None:
                    break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert mailbox_counts(dovecot, "INBOX", "Verwerkt") == [0, 1]


def test_exchange_style_xoauth2(app):
    problem = usable()
    if problem:
        if IN_CI:
            pytest.fail(f"Dovecot is needed under CI=true: {problem}")
        pytest.skip(problem)
    oauth = OAuthServer("gt-mailer-app", "client-secret-from-env")
    try:
        with PrivateDovecot(introspection_url=oauth.introspection_url) as server:
            with session_scope(app.sessions) as session:
                verp = verp_for(app.signer, sent_delivery(session))
            append(server, sample("handmade_hard_511.eml", verp))
            polling = imap_app(app, server)
            bounces = dataclasses.replace(
                polling.settings.bounces, imap_auth="xoauth2", imap_password="",
                imap_oauth_token_url=oauth.token_url, imap_oauth_client_id="gt-mailer-app",
                imap_oauth_client_secret="client-secret-from-env")
            polling = dataclasses.replace(
                polling, settings=dataclasses.replace(polling.settings, bounces=bounces))
            summary = poll_once(polling, ssl_context=server.ssl_context())
            assert (summary.processed, oauth.token_requests) == (1, 1)
            assert mailbox_counts(server, "INBOX", "Verwerkt") == [0, 1]
            wrong = dataclasses.replace(bounces, imap_oauth_client_secret="wrong")
            refused = dataclasses.replace(
                polling, settings=dataclasses.replace(polling.settings, bounces=wrong))
            with pytest.raises(ConfigError, match="no token"):
                poll_once(refused, ssl_context=server.ssl_context())
    finally:
        oauth.close()


@pytest.mark.parametrize("announced", [{"UIDPLUS"}, set()])
def test_servers_without_move(app, dovecot, monkeypatch, announced):
    # Older servers: COPY, then flag and expunge (only that UID when UIDPLUS is there).
    import mailer.intake.imap as imap_module

    monkeypatch.setattr(imap_module, "_capabilities", lambda conn: set(announced))
    with session_scope(app.sessions) as session:
        verp = verp_for(app.signer, sent_delivery(session))
    append(dovecot, sample("handmade_hard_511.eml", verp), sample("handmade_delayed.eml", verp))
    summary = poll_once(imap_app(app, dovecot), ssl_context=dovecot.ssl_context())
    assert summary.processed == 2
    assert mailbox_counts(dovecot, "INBOX", "Verwerkt") == [0, 2]
