"""Intake adapter: poll a bounce mailbox over IMAP (Exchange Online or any IMAP server).

imaplib in a worker thread, not an asyncio IMAP client: a poll every few minutes gains nothing
from async I/O, the standard library's client is the one Exchange and Dovecot are tested
against, and it is one dependency fewer. Implicit TLS on any port but 143, STARTTLS on 143;
never plain text. The password comes from MAILER_IMAP_PASSWORD; with imap_auth = "xoauth2"
(Exchange Online, which refuses passwords over IMAP) an OAuth 2.0 client-credentials token is
fetched for each poll and sent with SASL XOAUTH2.

Each message is ingested in its own transaction and only then moved to
bounces.imap_processed_folder (IMAP MOVE, or COPY + delete of that one UID). A message that
could not be stored stays where it is and is tried again at the next poll; none is deleted
without a copy in the processed folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import json
import logging
import re
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mailer.bounces.parse import MAX_BYTES
from mailer.errors import ConfigError
from mailer.intake.files import ingest_bytes

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["PollSummary", "poll_once", "fetch_oauth_token", "imap_part"]

log = logging.getLogger(__name__)
_SIZE_RE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass
class PollSummary:
    processed: int = 0
    failed: int = 0


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(result: tuple[str, list[Any]], what: str) -> list[Any]:
    typ, data = result
    if typ != "OK":
        raise imaplib.IMAP4.error(f"{what}: {data!r}")
    return data


def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    typ, data = conn.capability()
    if typ != "OK" or not data or not isinstance(data[0], bytes):
        return {c.upper() for c in conn.capabilities}
    return set(data[0].decode("ascii", "replace").upper().split())


def _connect(app: App, ssl_context: ssl.SSLContext | None) -> imaplib.IMAP4:
    settings = app.settings.bounces
    if not settings.imap_host:
        raise ConfigError("bounces.imap_host is not set")
    context = ssl_context or ssl.create_default_context()
    conn: imaplib.IMAP4
    if settings.imap_port == 143:
        conn = imaplib.IMAP4(settings.imap_host, settings.imap_port, timeout=60)
        conn.starttls(ssl_context=context)
    else:
        conn = imaplib.IMAP4_SSL(settings.imap_host, settings.imap_port,
                                 ssl_context=context, timeout=60)
    if settings.imap_auth == "xoauth2":
        token = fetch_oauth_token(app)
        sasl = f"user={settings.imap_username}\x01auth=Bearer {token}\x01\x01".encode()
        conn.authenticate("XOAUTH2", lambda _challenge: sasl)
    else:
        conn.login(settings.imap_username, settings.imap_password)
    return conn


def fetch_oauth_token(app: App) -> str:
    """An access token by the OAuth 2.0 client-credentials grant (Microsoft identity platform:
    the app registration needs the IMAP.AccessAsApp permission and access to the mailbox)."""
    settings = app.settings.bounces
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_id": settings.imap_oauth_client_id,
        "client_secret": settings.imap_oauth_client_secret,
        "scope": settings.imap_oauth_scope,
    }).encode()
    request = urllib.request.Request(settings.imap_oauth_token_url, data=form, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read(1_000_000))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"bounces.imap_oauth_token_url: no token: {exc}") from None
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise ConfigError("bounces.imap_oauth_token_url: the answer has no access_token")
    return token


def poll_once(app: App, *, ssl_context: ssl.SSLContext | None = None) -> PollSummary:
    """Fetch every message in bounces.imap_folder, ingest it, move it when stored. Blocking."""
    settings = app.settings.bounces
    summary = PollSummary()
    conn = _connect(app, ssl_context)
    try:
        processed = _quote(settings.imap_processed_folder)
        conn.create(processed)  # fails harmlessly if it exists
        _check(conn.select(_quote(settings.imap_folder)), f"select {settings.imap_folder}")
        # Servers announce more after login (Dovecot's MOVE, UIDPLUS): ask again.
        capabilities = _capabilities(conn)
        can_move = "MOVE" in capabilities
        uidplus = "UIDPLUS" in capabilities
        data = _check(conn.uid("SEARCH", "UNDELETED"), "search")
        uids = [u.decode() for u in (data[0] or b"").split()] if isinstance(data[0], bytes) else []
        for uid in uids:
            fetched = _check(conn.uid("FETCH", uid, f"(RFC822.SIZE BODY.PEEK[]<0.{MAX_BYTES}>)"),
                             f"fetch {uid}")
            raw, size = b"", None
            for item in fetched:
                if isinstance(item, tuple) and len(item) == 2:
                    match = _SIZE_RE.search(item[0])
                    size = int(match.group(1)) if match else None
                    raw = item[1]
            try:
                ingest_bytes(app, raw, source="imap", size=size)
            except Exception:
                log.exception("IMAP message %s not stored; left in %s for the next poll", uid,
                              settings.imap_folder)
                summary.failed += 1
                continue
            if can_move:
                _check(conn.uid("MOVE", uid, processed), f"move {uid}")
            else:
                _check(conn.uid("COPY", uid, processed), f"copy {uid}")
                _check(conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), f"flag {uid}")
                if uidplus:
                    _check(conn.uid("EXPUNGE", uid), f"expunge {uid}")
            summary.processed += 1
        if not can_move and not uidplus and summary.processed:
            conn.expunge()
        conn.close()
    finally:
        with contextlib.suppress(Exception):
            conn.logout()
    return summary


async def imap_part(
    app: App, stop: asyncio.Event, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    """Service part for `mailer run`: poll every bounces.imap_poll_seconds, if imap_host is set."""
    settings = app.settings.bounces
    if not settings.imap_host:
        return
    while not stop.is_set():
        try:
            summary = await asyncio.to_thread(poll_once, app, ssl_context=ssl_context)
            if summary.processed or summary.failed:
                log.info("IMAP poll: %d stored, %d left for later", summary.processed,
                         summary.failed)
        except Exception as exc:
            log.warning("IMAP poll of %s failed: %s", settings.imap_host, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(10, settings.imap_poll_seconds))
