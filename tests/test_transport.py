"""The SMTP transport against a real server: pipelining rests on one private aiosmtplib
method (the reply buffer), so a release without it must fail here, loudly, instead of every
send quietly falling back to four round trips per message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiosmtplib
import pytest
from smtp_support import SmtpServer

from mailer.delivery import transport
from mailer.settings import load_settings

FROM = "nieuwsbrief@gt.example.nl"


@pytest.fixture(params=[True, False], ids=["pipelining", "stepwise"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    relay = SmtpServer(pipelining=request.param).start()
    yield relay
    relay.stop()


def test_aiosmtplib_still_has_the_reply_buffer_pipelining_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay = SmtpServer(pipelining=True).start()
    monkeypatch.setenv("MAILER_SMTP_PORT", str(relay.port))

    async def protocol() -> object:
        client = await transport.connect(load_settings())
        try:
            return client.protocol
        finally:
            await client.quit()

    try:
        proto = asyncio.run(asyncio.wait_for(protocol(), 20))
    finally:
        relay.stop()
    for name in (transport._REPLY_BUFFER, transport._BUFFERED_REPLY):
        assert hasattr(proto, name), (
            f"aiosmtplib {aiosmtplib.__version__}'s SMTPProtocol has no {name}: pipelined sends "
            "would silently become stepwise. Pin aiosmtplib below this release in "
            "pyproject.toml, or port mailer/delivery/transport.py's _next_reply."
        )


def test_pipelined_and_stepwise_sends(server: SmtpServer, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setenv("MAILER_SMTP_PORT", str(server.port))
    settings = load_settings()
    server.behaviour.rcpt_replies["weg@assen.nl"] = [(550, "5.1.1 unknown")]
    server.behaviour.rcpt_replies["later@assen.nl"] = [(451, "4.7.1 later")]

    async def scenario() -> list[transport.Outcome]:
        client = await transport.connect(settings)
        try:
            assert transport.pipelining(client) is server.pipelining
            outcomes = []
            for to in ("anna@assen.nl", "weg@assen.nl", "later@assen.nl", "bram@emmen.nl"):
                data = f"From: {FROM}\r\nTo: {to}\r\nSubject: t\r\n\r\n.dot\r\n".encode()
                outcomes.append(await transport.send_one(client, FROM, to, data))
            return outcomes
        finally:
            await client.quit()

    outcomes = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert [(o.kind, o.code) for o in outcomes] == [
        ("sent", 250), ("permanent", 550), ("temporary", 451), ("sent", 250)
    ]
    assert server.rcpts() == {"anna@assen.nl": 1, "bram@emmen.nl": 1}
    assert len(server.connections) == 1
    assert all(r.data.rstrip().endswith(b".dot") for r in server.received)
