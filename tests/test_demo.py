"""`mailer demo` on a fresh data folder: set-up, scheduled send, delivered .eml files; twice."""

from __future__ import annotations

from pathlib import Path

from delivery_support import set_config

from mailer.delivery.capture import free_port
from mailer.settings import load_settings


def test_demo_delivers_the_sample_newsletter_and_can_run_again(env, config_file: Path, run_cli):
    set_config(config_file, smtp__port=free_port())
    first = run_cli("demo", "--delay", "1")
    assert "Delivered 20 of 20 messages" in first.output
    settings = load_settings()
    outbox = settings.data_dir / "outbox" / "campaign-1"
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 20
    anna = next(f for f in files if "anna.de.vries" in f.name).read_bytes()
    assert b"Anna de Vries" in anna and b"List-Unsubscribe:" in anna
    preview = outbox / "preview.html"
    assert preview.exists() and "<html" in preview.read_text(encoding="utf-8").lower()
    assert str(preview) in first.output

    second = run_cli("demo", "--delay", "1")  # idempotent set-up, a new demo campaign
    assert "(0 sample subscribers added)" in second.output
    assert "Delivered 20 of 20 messages" in second.output
    assert len(list((settings.data_dir / "outbox" / "campaign-2").glob("*.eml"))) == 20
    status = run_cli("campaigns", "status", "2", "--json")
    assert '"status": "finished"' in status.output
