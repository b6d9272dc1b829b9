"""Real bounces from a real MTA: a private Postfix on loopback returns mail for an unknown user,
a full mailbox and a relay that keeps answering 452, through LMTP to GT Mailer's own receiver.

Also runs the captured Postfix bounces in tests/data/bounces/postfix_*.eml (made by this test
with SAVE_POSTFIX_BOUNCES=DIR) through the pipeline, which needs no Postfix.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from bounces_support import DATA, sample, sent_delivery, verp_for
from conftest import IN_CI
from postfix_support import (
    FULL_DOMAIN,
    LOCAL_DOMAIN,
    SLOW_DOMAIN,
    PrivatePostfix,
    free_port,
    usable,
)
from sqlalchemy import select

from mailer.bounces import service
from mailer.bounces.models import Bounce, BounceMessage, BounceScore
from mailer.database.connect import session_scope
from mailer.intake.receiver import serve
from subscribers import service as subscribers

UNKNOWN = f"onbekend@{LOCAL_DOMAIN}"
FULL = f"full@{FULL_DOMAIN}"
SLOW = f"anna@{SLOW_DOMAIN}"


class _Refuse452:
    async def handle_RCPT(self, server, session, envelope, address, options):
        return "452 4.2.2 Mailbox full, try again later"


class _Receiver:
    """GT Mailer's bounce receiver on its own event loop in a thread."""

    def __init__(self, app, protocol: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop_event = asyncio.Event()
        self.ready = threading.Event()
        self.port = 0

        def ready(port: int) -> None:
            self.port = port
            self.ready.set()

        async def main() -> None:
            await serve(app, self.stop_event, host="127.0.0.1", port=0, protocol=protocol,
                        ready=ready)

        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(main(),),
                                       daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "bounce receiver did not start"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def postfix_ok() -> None:
    problem = usable()
    if problem:
        if IN_CI:
            pytest.fail(f"Postfix is needed under CI=true: {problem}")
        pytest.skip(problem)


def _wait_for(app, count: int, timeout: float, postfix: PrivatePostfix) -> list[Bounce]:
    deadline = time.monotonic() + timeout
    next_flush = time.monotonic() + 10
    while True:
        with session_scope(app.sessions) as session:
            rows = list(session.scalars(select(Bounce).order_by(Bounce.id)))
        if len(rows) >= count:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(rows)} of {count} bounces arrived:\n{postfix.log()[-4000:]}")
        if time.monotonic() > next_flush:  # past what Postfix needs when not starved
            postfix.flush()
            next_flush = time.monotonic() + 5
        time.sleep(0.2)


@pytest.mark.postfix
def test_real_postfix_bounces_through_lmtp(postfix_ok, app):
    with session_scope(app.sessions) as session:
        deliveries = {email: sent_delivery(session, email) for email in (UNKNOWN, FULL, SLOW)}
        verps = {email: verp_for(app.signer, d) for email, d in deliveries.items()}
        ids = {email: d.id for email, d in deliveries.items()}
    receiver = _Receiver(app, "lmtp")
    slow = Controller(_Refuse452(), hostname="127.0.0.1", port=free_port())
    slow.start()
    postfix = PrivatePostfix(bounce_domain=app.settings.sender.bounce_domain,
                             bounce_port=receiver.port, slow_port=slow.port, lmtp=True)
    try:
        with postfix, smtplib.SMTP("127.0.0.1", postfix.smtp_port, timeout=30) as smtp:
            for email, verp in verps.items():
                body = (f"From: GT <nieuwsbrief@gt.example.nl>\r\nTo: {email}\r\n"
                        f"Subject: GT Nieuwsbrief\r\nMessage-ID: <n-{ids[email]}@gt.example.nl>"
                        "\r\n\r\nBeste lezer,\r\n" + "Nieuws uit de regio.\r\n" * 200)
                assert smtp.sendmail(verp, [email], body) == {}
            # unknown user, full mailbox, delay warning, and the expired deferral
            rows = _wait_for(app, 4, 90, postfix)
    finally:
        receiver.close()
        slow.stop()

    by_delivery: dict[int, list[tuple[str, str]]] = {}
    for row in rows:
        assert (row.source, row.matched_by, row.token_valid) == ("lmtp", "verp", True)
        by_delivery.setdefault(row.delivery_id, []).append((row.kind, row.status))
    assert by_delivery[ids[UNKNOWN]] == [("hard", "5.1.1")]
    assert by_delivery[ids[FULL]] == [("soft", "5.2.2")]
    assert sorted(by_delivery[ids[SLOW]]) == [("delayed", "4.2.2"), ("soft", "4.2.2")]
    with session_scope(app.sessions) as session:
        assert subscribers.get_subscriber(session, UNKNOWN).status == "bounced"
        for email in (FULL, SLOW):
            sub = subscribers.get_subscriber(session, email)
            assert sub.status == "active"
            assert session.get(BounceScore, sub.id).score == 1
        save = os.environ.get("SAVE_POSTFIX_BOUNCES")
        if save:  # refresh tests/data/bounces/postfix_*.eml
            names = {(ids[UNKNOWN], "hard"): "unknown_user", (ids[FULL], "soft"): "mailbox_full",
                     (ids[SLOW], "delayed"): "delayed", (ids[SLOW], "soft"): "expired_452"}
            for row in rows:
                message = session.get(BounceMessage, row.message_id)
                Path(save, f"postfix_{names[(row.delivery_id, row.kind)]}.eml").write_bytes(
                    message.raw)


@pytest.mark.parametrize(("name", "kind", "status"), [
    ("postfix_unknown_user.eml", "hard", "5.1.1"),
    ("postfix_mailbox_full.eml", "soft", "5.2.2"),
    ("postfix_delayed.eml", "delayed", "4.2.2"),
    ("postfix_expired_452.eml", "soft", "4.2.2"),
])
def test_captured_postfix_bounces(session, app, name, kind, status):
    delivery = sent_delivery(session)
    result = service.ingest(session, sample(name, verp_for(app.signer, delivery)), source="file",
                            settings=app.settings, signer=app.signer)
    (bounce,) = result.bounces
    assert (bounce.kind, bounce.status, bounce.delivery_id) == (kind, status, delivery.id)
    assert (DATA / name).exists()
