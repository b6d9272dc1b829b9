"""Addresses with accents before the @ (renée@...): SMTPUTF8 (RFC 6531) when the relay offers
it; otherwise that one delivery fails permanently, saying why, and nothing else is held up:
no connection failure, no paused campaign, no bounce against the person."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from delivery_support import create_campaign, deliver, make_audience, relay_app, start, status
from smtp_support import SmtpServer
from sqlalchemy import select

from mailer.app import App
from mailer.campaigns.models import Delivery
from mailer.database.connect import session_scope
from mailer.settings import Settings
from subscribers import service as subscribers
from subscribers.service import SubscriberData

RENEE = "renée@assen.nl"


def _add_renee(app: App) -> None:
    with session_scope(app.sessions) as session:
        subscribers.add_subscriber(
            session, SubscriberData(email=RENEE, name="Renée", region="Noord"),
            lists=["nieuwsbrief"],
        )


@pytest.fixture(params=[False, True], ids=["no-smtputf8", "smtputf8"])
def relay(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    server = SmtpServer(smtputf8=request.param).start()
    yield server
    server.stop()


def test_an_accented_address(settings: Settings, relay: SmtpServer, tmp_path: Path) -> None:
    app = relay_app(settings, relay.port, retry_base_seconds=0.05)
    try:
        emails = make_audience(app.sessions, 3)
        _add_renee(app)
        campaign_id = create_campaign(app, tmp_path)
        assert start(app, campaign_id) == 4
        bounced: list[tuple[int, int, str]] = []
        stats = deliver(app, on_permanent_failures=lambda _s, failures: bounced.extend(failures))
        info = status(app, campaign_id)
        assert info["status"] == "finished" and not stats.paused
        assert set(emails) <= set(relay.rcpts())
        with session_scope(app.sessions) as session:
            row = session.scalar(select(Delivery).where(Delivery.email == RENEE))
            assert row is not None
            if relay.smtputf8:
                assert row.status == "sent"
                (received,) = [r for r in relay.received if r.rcpt == RENEE]
                assert "Renée".encode() in received.data or b"Ren=C3=A9e" in received.data
            else:
                assert row.status == "failed" and row.last_code == 553
                assert "does not offer SMTPUTF8" in row.last_error
                # Our relay's limit, not the person's fault: no bounce is counted.
                assert bounced == []
        assert (RENEE in relay.rcpts()) == relay.smtputf8
    finally:
        app.close()
