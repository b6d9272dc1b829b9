"""Finding 11: HTTP. HSTS when base_url is https; only base_url's host is served; X-Forwarded-For
is believed only from web.trusted_proxies, so nobody can choose the client address that the rate
limits and consent records see. Replayed against `mailer web` (real uvicorn, port 0) and the app,
on both databases."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from delivery_support import set_config
from security_support import MAILER
from web_support import setup_people

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from mailer.app import build_app
from mailer.database.connect import session_scope
from mailer.kernel.links import Links
from mailer.settings import load_settings
from mailer.web.app import HSTS, create_web_app
from subscribers import service

SPOOFED = "203.0.113.7"


@contextmanager
def mailer_web(env: dict[str, str]) -> Iterator[str]:
    """`mailer web --port 0` in a subprocess; yields its base address."""
    proc = subprocess.Popen([*MAILER, "web", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket listens
        port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def one_click_actor(app, base: str, people: dict[str, int], who: str, email: str,
                    forwarded_for: str) -> str:
    """Unsubscribe `who` with one click through `base`; who the consent record says did it."""
    url = Links(app.settings.web.base_url, app.signer).unsubscribe(people[who],
                                                                  people["campaign"])
    answer = httpx.post(base + url.removeprefix(app.settings.web.base_url),
                        data={"List-Unsubscribe": "One-Click"},
                        headers={"x-forwarded-for": forwarded_for}, timeout=10)
    assert answer.status_code == 200, answer.text
    with session_scope(app.sessions) as session:
        record = service.subscriber_record(session, email)
    return [ev["by"] for ev in record["consent_history"] if ev["action"] == "unsubscribe"][-1]


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(env, app, config_file: Path):
    people = setup_people(app)
    with mailer_web(env) as base:
        assert one_click_actor(app, base, people, "anna", "anna@gemeente.example.nl",
                               SPOOFED) == "127.0.0.1"
    set_config(config_file, web__trusted_proxies=["127.0.0.1"])
    assert load_settings().web.trusted_proxies == ("127.0.0.1",)
    with mailer_web(env) as base:
        assert one_click_actor(app, base, people, "john", "john@example.org",
                               f"198.51.100.1, {SPOOFED}") == SPOOFED


def test_only_the_base_url_host_is_served(env, app):
    setup_people(app)
    with mailer_web(env) as base:
        ours = httpx.get(base + "/static/gt.css", timeout=10)
        assert ours.status_code == 200
        for host in ("evil.example", "127.0.0.1.evil.example", "localhost"):
            other = httpx.get(base + "/static/gt.css", headers={"host": host}, timeout=10)
            assert other.status_code == 400, host
            assert other.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in ours.headers  # base_url is http here


def test_hsts_when_base_url_is_https(settings):
    https = dataclasses.replace(
        settings, web=dataclasses.replace(settings.web, base_url="https://nieuws.gt.example.nl"))
    built = build_app(https)
    try:
        with TestClient(create_web_app(built), base_url="https://nieuws.gt.example.nl") as client:
            for path in ("/", "/static/gt.css", "/u/forged"):
                answer = client.get(path)
                assert answer.headers["strict-transport-security"] == HSTS, path
            refused = client.get("/", headers={"host": "evil.example"})
            assert refused.status_code == 400
    finally:
        built.close()


def test_a_bad_trusted_proxy_setting_is_one_line(run_cli, config_file: Path):
    set_config(config_file, web__trusted_proxies=["nginx.local"])
    result = run_cli("lists", "ls", ok=False)
    assert result.exit_code == 1
    assert "web.trusted_proxies: not an IP address or network: 'nginx.local'" in result.output


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn would read FORWARDED_ALLOW_IPS; the setting must be the only source.
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
