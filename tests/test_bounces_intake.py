"""Every intake path, on both backends: CLI file / Maildir / mbox / folder / stdin, and the
SMTP and LMTP receivers over a real loopback connection; plus the review commands."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import mailbox
import os
import socket
import subprocess
import sys

import aiosmtplib
import pytest
from bounces_support import ANNA, sample, sent_delivery, verp_for
from sqlalchemy import func, select

from mailer.bounces.models import Bounce
from mailer.database.connect import session_scope
from mailer.intake.receiver import serve
from subscribers import service as subscribers


@pytest.fixture
def verp(app) -> str:
    with session_scope(app.sessions) as session:
        delivery = sent_delivery(session)
        return verp_for(app.signer, delivery)


def kinds(app) -> list[str]:
    with session_scope(app.sessions) as session:
        return list(session.scalars(select(Bounce.kind).order_by(Bounce.id)))


def status(app) -> str:
    with session_scope(app.sessions) as session:
        return subscribers.get_subscriber(session, ANNA).status


def test_ingest_one_file_and_again(run_cli, app, verp, tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(sample("handmade_hard_511.eml", verp))
    assert "1 hard" in run_cli("bounces", "ingest", str(path)).output
    assert "seen before" in run_cli("bounces", "ingest", str(path)).output
    assert kinds(app) == ["hard"] and status(app) == "bounced"


def test_ingest_maildir(run_cli, app, verp, tmp_path):
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for name in ("handmade_delayed.eml", "handmade_out_of_office.eml", "handmade_soft_422.eml"):
        box.add(sample(name, verp))
    result = run_cli("bounces", "ingest", str(tmp_path / "Maildir"))
    assert "Ingested 3 message(s)" in result.output
    assert sorted(kinds(app)) == ["autoreply", "delayed", "soft"]


def test_ingest_mbox_and_folder(run_cli, app, verp, tmp_path):
    box = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
    box.add(sample("handmade_arf_complaint.eml", verp))
    box.add(sample("handmade_garbled.eml", verp))
    box.close()
    assert "Ingested 2" in run_cli("bounces", "ingest", str(tmp_path / "bounces.mbox")).output
    folder = tmp_path / "eml"
    folder.mkdir()
    (folder / "a.eml").write_bytes(sample("handmade_exim_plain.eml", verp))
    assert "1 hard" in run_cli("bounces", "ingest", str(folder)).output
    assert sorted(kinds(app)) == ["complaint", "hard", "unknown"]


def test_ingest_stdin_like_an_mta_pipe(run_cli, app, verp):
    raw = sample("handmade_hard_511.eml", verp).replace(
        b"Delivered-To: " + verp.encode() + b"\n", b"")
    raw = raw.replace(b"To: " + verp.encode(), b"To: undisclosed-recipients:;")
    result = run_cli("bounces", "ingest", "-", "--envelope-to", verp, input=raw)
    assert "1 hard" in result.output
    with session_scope(app.sessions) as session:
        bounce = session.scalars(select(Bounce)).one()
        assert (bounce.matched_by, bounce.token_valid) == ("verp", True)


def test_stdin_as_a_real_process_and_its_exit_codes(app, verp, env, tmp_path):
    # As an MTA's pipe runs it: a separate process, the message on standard input.
    mailer = [sys.executable, "-m", "mailer"]
    raw = sample("handmade_hard_511.eml", verp)
    done = subprocess.run([*mailer, "bounces", "ingest", "-"], input=raw, capture_output=True,
                          env={**os.environ, **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert kinds(app) == ["hard"]
    # No usable database: exit 75 (EX_TEMPFAIL), so the MTA keeps the message and retries.
    broken = {**os.environ, **env, "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"}
    failed = subprocess.run([*mailer, "bounces", "ingest", "-"], input=raw, capture_output=True,
                            env=broken, timeout=120)
    assert failed.returncode == 75 and b"try again later" in failed.stderr
    assert b"Traceback" not in failed.stderr


def test_missing_path_is_a_one_line_error(run_cli, tmp_path):
    missing = run_cli("bounces", "ingest", str(tmp_path / "nope.eml"), ok=False)
    assert missing.exit_code == 1 and "no such file" in missing.output
    assert "Traceback" not in missing.output


def test_review_commands(run_cli, app, verp, tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(sample("handmade_hard_511.eml", verp))
    run_cli("bounces", "ingest", str(path))
    rows = json.loads(run_cli("bounces", "ls", "--kind", "hard", "--json").output)
    assert [r["kind"] for r in rows] == ["hard"]
    assert "5.1.1" in run_cli("bounces", "ls").output
    shown = run_cli("bounces", "show", str(rows[0]["id"])).output
    assert "Undelivered Mail Returned to Sender" in shown and "Reporting-MTA" in shown
    stats = json.loads(run_cli("bounces", "stats", "--json").output)
    assert stats[0]["hard"] == 1 and stats[0]["bounce_rate"] == 1.0
    flagged = run_cli("bounces", "stats", "--campaign", str(rows[0]["campaign_id"])).output
    assert "hard-bounce rate" in flagged
    assert "Purged the raw text of 0" in run_cli("bounces", "purge").output
    missing = run_cli("bounces", "show", "999", ok=False)
    assert missing.exit_code == 1 and "no bounce 999" in missing.output
    bad = run_cli("subscribers", "reactivate", ANNA, ok=False)
    assert bad.exit_code == 2  # --reason is required
    run_cli("subscribers", "reactivate", ANNA, "--reason", "nieuwe mailbox")
    assert status(app) == "active"


def _run_receiver(app, protocol: str, client) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(serve(app, stop, host="127.0.0.1", port=0, protocol=protocol,
                                         ready=ready.set_result))
        try:
            port = await asyncio.wait_for(ready, 10)
            await client(port)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())


def test_smtp_receiver(app, verp):
    async def client(port: int) -> None:
        raw = sample("handmade_hard_511.eml", verp)
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
            await smtp.sendmail("", [verp], raw)  # bounces come with the null sender
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                await smtp.sendmail("", ["someone@elsewhere.nl"], raw)

    _run_receiver(app, "smtp", client)
    assert kinds(app) == ["hard"] and status(app) == "bounced"
    with session_scope(app.sessions) as session:
        assert session.scalars(select(Bounce.source)).one() == "smtp"


def test_lmtp_receiver(app, verp):
    def lmtp_send(port: int) -> list[bytes]:
        # Two recipients: LMTP answers DATA once per recipient (smtplib reads only one).
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = sock.makefile("rb")
            replies = [reader.readline()]
            for line in ("LHLO test.local", "MAIL FROM:<>", f"RCPT TO:<{verp}>",
                         "RCPT TO:<afmelden@bounces.gt.example.nl>", "DATA"):
                sock.sendall(line.encode() + b"\r\n")
                replies.append(reader.readline())
                while replies[-1][3:4] == b"-":
                    replies.append(reader.readline())
            body = sample("handmade_soft_422.eml", verp).replace(b"\r\n", b"\n")
            sock.sendall(body.replace(b"\n", b"\r\n") + b"\r\n.\r\n")
            replies += [reader.readline(), reader.readline()]
            sock.sendall(b"QUIT\r\n")
            return replies

    async def client(port: int) -> None:
        replies = await asyncio.to_thread(lmtp_send, port)
        assert [r[:3] for r in replies[-2:]] == [b"250", b"250"], replies

    _run_receiver(app, "lmtp", client)
    with session_scope(app.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Bounce)) == 1
        assert session.scalars(select(Bounce.source)).one() == "lmtp"
    assert kinds(app) == ["soft"]


def test_subscribers_show_has_the_bounce_history(run_cli, app, verp, tmp_path):
    path = tmp_path / "bounce.eml"
    path.write_bytes(sample("handmade_soft_422.eml", verp))
    run_cli("bounces", "ingest", str(path))
    record = json.loads(run_cli("subscribers", "show", ANNA, "--json").output)
    assert record["bounce_score"] == 1
    assert [(b["kind"], b["status"]) for b in record["bounces"]] == [("soft", "4.2.2")]
    assert "Mailbox full" in run_cli("subscribers", "show", ANNA).output


def test_campaigns_status_flags_bounce_and_complaint_rates(run_cli, app, verp, tmp_path):
    path = tmp_path / "complaint.eml"
    path.write_bytes(sample("handmade_arf_complaint.eml", verp))
    run_cli("bounces", "ingest", str(path))
    with session_scope(app.sessions) as session:
        campaign_id = session.scalars(select(Bounce.campaign_id)).one()
    shown = run_cli("campaigns", "status", str(campaign_id)).output
    assert "0 hard, 0 soft, 1 complaints" in shown
    assert "flagged:    complaint rate 100.00% is above 0.3%" in shown
    info = json.loads(run_cli("campaigns", "status", str(campaign_id), "--json").output)
    assert info["bounces"]["complaints"] == 1 and len(info["bounces"]["flags"]) == 1


def test_mailer_run_starts_the_receiver(app, verp):
    from mailer.service.scheduler import run_forever

    port = _free_port()
    settings = dataclasses.replace(
        app.settings,
        bounces=dataclasses.replace(app.settings.bounces, receiver_port=port),
        web=dataclasses.replace(app.settings.web, port=_free_port()),
    )
    service_app = dataclasses.replace(app, settings=settings)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_forever(service_app, stop))
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                try:
                    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
                    await smtp.connect()
                    break
                except (OSError, aiosmtplib.SMTPConnectError):
                    assert asyncio.get_running_loop().time() < deadline, "receiver not started"
                    await asyncio.sleep(0.05)
            await smtp.sendmail("", [verp], sample("handmade_hard_511.eml", verp))
            await smtp.quit()
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())
    assert kinds(app) == ["hard"] and status(app) == "bounced"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
