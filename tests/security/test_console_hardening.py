"""The staff console as an attacker sees it, against the console served on a loopback port.

Found open in review and closed: another Host (DNS rebinding from a staff member's browser) was
served; a NUL in a form or URL was a 500 on PostgreSQL; the preview of staff-written content
was a same-origin document (an editor's content could navigate an approver's frame with a meta
refresh); HSTS was missing on an https console. Checked and already closed (tested here or in
tests/test_console_accounts.py): session fixation (a cookie from before sign-in is never
kept), CSRF on htmx posts (the header token, cross-site and foreign-origin posts refused),
clickjacking (frame-ancestors 'self'), redirects only to our own paths (no `next`).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import httpx

from console_support import console_served, csrf_token, make_account
from delivery_support import make_audience

from mailer.app import build_app
from mailer.settings import load_settings


def _signed_in(base: str, account) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=20, follow_redirects=False)
    page = client.get("/signin")
    answer = client.post("/signin", data={"csrf": csrf_token(page.text), "email": account.email,
                                          "password": account.password})
    assert answer.status_code == 303
    if answer.headers["location"] == "/signin/code":
        page = client.get("/signin/code")
        answer = client.post("/signin/code", data={"csrf": csrf_token(page.text),
                                                   "code": account.code()})
    assert answer.headers["location"] == "/"
    return client


def test_only_the_console_host_is_served_and_nul_is_a_400(app):
    with console_served(app) as base, httpx.Client(base_url=base, timeout=20) as http:
        assert http.get("/signin").status_code == 200
        rebound = http.get("/signin", headers={"host": "evil.example"})
        assert rebound.status_code == 400
        assert http.get("/signin?email=%00").status_code == 400
        assert http.get("/sign%00in").status_code == 400
        page = http.get("/signin")
        posted = http.post("/signin", data={"csrf": csrf_token(page.text),
                                            "email": "a\x00@gt.example.nl", "password": "x"})
        assert posted.status_code == 400
        framed = http.get("/signin")
        assert "frame-ancestors 'self'" in framed.headers["content-security-policy"]
        assert "strict-transport-security" not in framed.headers  # http: no HSTS


def test_the_preview_is_sandboxed_and_htmx_posts_need_the_token(app):
    make_audience(app.sessions, 2)
    editor = make_account(app, "red@gt.example.nl", "editor")
    with console_served(app) as base:
        client = _signed_in(base, editor)
        page = client.get("/campaigns/new").text
        form = {"csrf": csrf_token(page), "subject": "Nieuws", "preheader": "",
                "lists": "nieuwsbrief", "lang": "nl",
                "body": 'Hallo <meta http-equiv="refresh" content="0;url=https://evil.example/">'}
        preview = client.post("/campaigns/preview", data=form)
        assert preview.status_code == 200
        policy = [p.strip() for p in preview.headers["content-security-policy"].split(";")]
        assert "sandbox" in policy and not any(p.startswith("script-src") for p in policy)

        # htmx sends the token as a header; without it, or from another site, nothing runs.
        data = {k: v for k, v in form.items() if k != "csrf"}
        token = {"x-csrf-token": form["csrf"], "hx-request": "true"}
        assert client.post("/campaigns/count", data=data, headers=token).status_code == 200
        assert client.post("/campaigns/count", data=data,
                           headers={"hx-request": "true"}).status_code == 403
        assert client.post("/campaigns/count", data=data,
                           headers={**token, "sec-fetch-site": "cross-site"}).status_code == 403
        assert client.post("/campaigns/count", data=data,
                           headers={**token, "origin": "https://evil.example"}).status_code == 403
        client.close()


def test_an_https_console_sends_hsts(env, config_file, monkeypatch):
    monkeypatch.setenv("MAILER_CONSOLE_URL", "https://console.gt.example.nl")
    app = build_app(load_settings())
    try:
        with console_served(app) as base, httpx.Client(base_url=base, timeout=20) as http:
            answer = http.get("/signin", headers={"host": "console.gt.example.nl"})
            assert answer.headers["strict-transport-security"] == "max-age=31536000"
            assert http.get("/signin").status_code == 400  # 127.0.0.1 is not its host
    finally:
        app.close()
