"""The newsletter parts of the console beyond draft-to-scheduled: images, job-title and
attribute filters, the audience sample, saved segments (and the CLI's --segment), duplicate,
"ask for approval", and the pre-flight checklist (and `mailer campaigns check`). TestClient and
CLI, on SQLite and PostgreSQL, real loopback servers (SMTP capture, HTTPS, DNS-less)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from console_support import console_client, csrf_token, make_account, sign_in
from delivery_support import make_audience
from PIL import Image
from sqlalchemy import select
from starlette.testclient import TestClient
from web_support import messages

from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.usecases import preflight
from mailer.usecases.media import media_folder
from mailer.web.app import create_web_app
from subscribers import service as subscribers

BODY = "Beste {{ subscriber.name }},\n\nHet **nieuws** van deze maand.\n"


def _form(page: str, **fields: object) -> dict[str, object]:
    return {"csrf": csrf_token(page), "subject": "Nieuws van GT", "preheader": "Kort",
            "body": BODY, "lists": "nieuwsbrief", **fields}


def _png(**info: str) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    meta = PngInfo()
    for key, value in info.items():
        meta.add_text(key, value)
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(out, format="PNG", pnginfo=meta)
    return out.getvalue()


def _jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (30, 30), (0, 90, 200))
    exif = Image.Exif()
    exif[0x010F] = "GeheimeCamera"  # Make
    exif[0x0131] = "Editor 1.0"  # Software
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def _audit(app: App, action: str) -> list[AuditEntry]:
    with session_scope(app.sessions) as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.id)))
        session.expunge_all()
    return rows


def _upload(client: TestClient, data: bytes, name: str, *, json_answer: bool = True,
            alt: str = "Logo") -> object:
    page = client.get("/campaigns/new").text
    headers = {"accept": "application/json"} if json_answer else {}
    return client.post("/campaigns/images", data={"csrf": csrf_token(page), "alt": alt},
                       files={"image": (name, data, "application/octet-stream")},
                       headers=headers)


# -- images ------------------------------------------------------------------------------------

def test_an_uploaded_image_is_cleaned_stored_privately_and_served_by_the_pages(app: App):
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    client = console_client(app)
    sign_in(client, editor)
    answer = _upload(client, _png(Comment="<script>alert(1)</script>", Author="Anna"),
                     "../../etc/passwd.png")
    assert answer.status_code == 200, answer.text
    found = answer.json()
    base = app.settings.web.base_url.rstrip("/")
    assert found["url"].startswith(f"{base}/media/") and found["url"].endswith(".png")
    assert found["markdown"] == f"![Logo]({found['url']})"
    name = found["url"].rsplit("/", 1)[1]
    assert "passwd" not in name and len(name) == 36
    stored = media_folder(app.settings) / name
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    data = stored.read_bytes()
    assert b"script" not in data and b"Anna" not in data  # the text chunks are gone
    assert Image.open(io.BytesIO(data)).size == (40, 20)
    (row,) = _audit(app, "image.upload")
    assert row.actor == editor.email and row.object_id == name

    pages = TestClient(create_web_app(app), base_url=base)
    served = pages.get(f"/media/{name}")
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert "sandbox" in served.headers["content-security-policy"]
    for bad in ("../mailer.db", name.upper(), name[:-3] + "svg", "secret.key", "x.png"):
        assert pages.get(f"/media/{bad}").status_code == 404, bad


def test_exif_is_stripped_and_the_type_comes_from_the_content(app: App):
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    client = console_client(app)
    sign_in(client, editor)
    answer = _upload(client, _jpeg_with_exif(), "foto.png")  # a JPEG renamed .png
    assert answer.status_code == 200, answer.text
    name = answer.json()["url"].rsplit("/", 1)[1]
    assert name.endswith(".jpg")
    data = (media_folder(app.settings) / name).read_bytes()
    assert b"GeheimeCamera" not in data and b"Exif" not in data


@pytest.mark.parametrize("kind", ["svg", "svg-as-png", "html-polyglot", "gif-script",
                                  "truncated", "text", "oversized", "empty", "bomb"])
def test_what_is_no_image_we_serve_is_refused(app: App, kind: str):
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    client = console_client(app)
    sign_in(client, editor)
    png = _png()
    svg = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
           b'<script>alert(1)</script></svg>')
    samples = {
        "svg": (svg, "logo.svg"),
        "svg-as-png": (svg, "logo.png"),
        # HTML first, PNG bytes after: a browser sniffing it would see a page.
        "html-polyglot": (b"<html><script>alert(1)</script></html>" + png, "x.png"),
        # "GIF89a" followed by script: valid JavaScript, no decodable GIF.
        "gif-script": (b"GIF89a=1;alert(document.domain)//" + b"\x00" * 40, "x.gif"),
        "truncated": (png[: len(png) // 2], "half.png"),
        "text": (b"just some text, renamed", "notes.png"),
        "oversized": (png + b"\x00" * (app.settings.console.image_max_bytes + 1), "big.png"),
        "empty": (b"", "empty.png"),
        "bomb": (_bomb(), "bomb.png"),
    }
    data, name = samples[kind]
    answer = _upload(client, data, name)
    assert answer.status_code == 400, (kind, answer.text)
    assert answer.json()["error"]
    assert not media_folder(app.settings).exists() or not any(media_folder(app.settings).iterdir())
    # Without the script: the same refusal on a page.
    page = _upload(client, data, name, json_answer=False)
    assert page.status_code == 400 and 'role="alert"' in page.text


def _bomb() -> bytes:
    """A small PNG claiming a huge canvas (decompression bomb)."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_a_polyglot_that_is_a_real_image_is_stored_without_its_passenger(app: App):
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    client = console_client(app)
    sign_in(client, editor)
    answer = _upload(client, _png() + b"<html><script>alert(1)</script></html>", "x.png")
    assert answer.status_code == 200
    name = answer.json()["url"].rsplit("/", 1)[1]
    assert b"script" not in (media_folder(app.settings) / name).read_bytes()


def test_only_editors_and_up_upload(app: App):
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    client = console_client(app)
    sign_in(client, viewer)
    page = client.get("/campaigns").text
    refused = client.post("/campaigns/images", data={"csrf": csrf_token(page)},
                          files={"image": ("x.png", _png(), "image/png")})
    assert refused.status_code == 403


# -- audience: job titles, attributes, sample, segments ---------------------------------------

def _people(app: App) -> None:
    from subscribers.service import SubscriberData

    with session_scope(app.sessions) as session:
        subscribers.create_list(session, "nieuwsbrief", "Nieuwsbrief")
        for n, (job, sector, region) in enumerate([
                ("Adviseur ICT", "ICT", "Noord"), ("adviseur ict", "Zorg", "Oost"),
                ("Inkoper", "ICT", "Noord"), ("Adviseur ICT", "ICT", "Zuid")]):
            subscribers.add_subscriber(session, SubscriberData(
                email=f"p{n}@gemeente.example.nl", name=f"Persoon {n}",
                organisation=f"Gemeente {n}", job_title=job, region=region,
                attributes={"sector": sector}), lists=["nieuwsbrief"])


def test_job_titles_attributes_sample_and_a_segment_the_cli_uses(app: App, run_cli,
                                                                 tmp_path: Path):
    _people(app)
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    ed, vw = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(vw, viewer)
    page = ed.get("/campaigns/new").text
    audience = {"regions": ["Noord", "Oost"], "job_titles": "Adviseur ICT",
                "attributes": "sector=ICT\nsector=Zorg"}
    # Job titles match case-insensitively; two values of one attribute are alternatives.
    assert ed.post("/campaigns/count", data=_form(page, **audience)).text.strip() == "2"
    narrower = {**audience, "attributes": "sector=ICT"}
    assert ed.post("/campaigns/count", data=_form(page, **narrower)).text.strip() == "1"
    bad = ed.post("/campaigns/count", data=_form(page, attributes="sector"))
    assert "KEY=VALUE" in bad.text
    sample = ed.post("/campaigns/sample", data=_form(page, **audience))
    assert "Persoon 0 · Gemeente 0" in sample.text and "Persoon 1" in sample.text
    assert "Persoon 2" not in sample.text
    # Names are personal data: a viewer sees the count, not the sample.
    vpage = vw.get("/campaigns").text
    assert vw.post("/campaigns/sample", data=_form(vpage, **audience)).status_code == 403

    saved = ed.post("/campaigns/segments", data=_form(page, segment_name="ICT Noord en Oost",
                                                      **audience))
    assert saved.status_code == 200 and "opgeslagen" in saved.text
    assert 'value="Nieuws van GT"' in saved.text  # the draft being written is kept
    (row,) = _audit(app, "segment.save")
    assert row.actor == editor.email
    # The editor offers it; starting from it fills the builder.
    assert "ICT Noord en Oost" in ed.get("/campaigns/new").text
    filled = ed.get("/campaigns/new", params={"segment": "ict noord en oost"}).text
    assert 'value="Adviseur ICT"' in filled and "sector=Zorg" in filled
    assert ed.get("/campaigns/new", params={"segment": "nope"}).status_code == 404

    listed = json.loads(run_cli("campaigns", "segments", "ls", "--json").output)
    assert [(s["name"], s["count"]) for s in listed] == [("ICT Noord en Oost", 2)]
    assert "--job-title Adviseur ICT" in run_cli("campaigns", "segments", "ls").output
    content = tmp_path / "april.md"
    content.write_text("---\nsubject: April\n---\nHallo {{ subscriber.name }}\n",
                       encoding="utf-8")
    made = run_cli("campaigns", "create", "--content", str(content), "--segment",
                   "ICT Noord en Oost")
    campaign_id = int(made.output.split()[0])
    with session_scope(app.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert campaign.audience["job_titles"] == ["Adviseur ICT"]
        assert campaign.audience["attributes"] == {"sector": ["ICT", "Zorg"]}
    assert "2 recipients" in made.stderr
    both = run_cli("campaigns", "create", "--content", str(content), "--segment", "x",
                   "--list", "nieuwsbrief", ok=False)
    assert both.exit_code == 1 and "--segment is the whole audience" in both.output
    unknown = run_cli("campaigns", "create", "--content", str(content), "--segment", "x",
                      ok=False)
    assert unknown.exit_code == 1 and "no segment" in unknown.output
    gone = run_cli("campaigns", "segments", "rm", "ICT Noord en Oost")
    assert "Deleted segment" in gone.output
    assert json.loads(run_cli("campaigns", "segments", "ls", "--json").output) == []
    assert [r.actor.startswith("os:") for r in _audit(app, "segment.delete")] == [True]
    with session_scope(app.sessions) as session:  # the campaign keeps its audience
        kept = session.get(Campaign, campaign_id)
        assert kept is not None and kept.audience["job_titles"] == ["Adviseur ICT"]
    # The CLI's own filters, as the console's.
    flags = run_cli("campaigns", "create", "--content", str(content), "--list", "nieuwsbrief",
                    "--job-title", "inkoper", "--attr", "sector=ICT")
    assert "1 recipients" in flags.stderr


# -- duplicate and ask for approval ------------------------------------------------------------

def test_duplicate_makes_a_new_unapproved_draft(app: App):
    make_audience(app.sessions, 4)
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    ed, ap = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(ap, approver)
    page = ed.get("/campaigns/new").text
    url = ed.post("/campaigns/new", data=_form(page, regions=["Noord"])).headers["location"]
    page = ap.get(url).text
    assert ap.post(f"{url}/approve", data={"csrf": csrf_token(page), "version": "1"}
                   ).status_code == 303
    page = ed.get(url).text
    copied = ed.post(f"{url}/duplicate", data={"csrf": csrf_token(page)})
    assert copied.status_code == 303 and copied.headers["location"].endswith("/edit")
    new_id = int(copied.headers["location"].split("/")[2])
    with session_scope(app.sessions) as session:
        old = session.get(Campaign, int(url.rsplit("/", 1)[1]))
        new = session.get(Campaign, new_id)
        assert old is not None and new is not None
        assert (new.subject, new.content, new.audience) == (old.subject, old.content,
                                                           old.audience)
        assert new.status == "draft" and new.version == 1
        assert new.approved_version is None and new.created_by == editor.email
        old_id = old.id
    (row,) = _audit(app, "campaign.duplicate")
    assert row.actor == editor.email and row.after["copied_from"] == old_id
    # A viewer may not.
    viewer = make_account(app, "lezer@gt.example.nl", "viewer")
    vw = console_client(app)
    sign_in(vw, viewer)
    assert vw.post(f"{url}/duplicate", data={"csrf": csrf_token(vw.get(url).text)}
                   ).status_code == 403


def test_asking_for_approval_is_recorded_shown_and_mailed_to_approvers(
        capture: CaptureServer, app: App):
    make_audience(app.sessions, 4)
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    make_account(app, "beheer@gt.example.nl", "admin")
    make_account(app, "lezer@gt.example.nl", "viewer")
    ed, ap = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(ap, approver)
    page = ed.get("/campaigns/new").text
    url = ed.post("/campaigns/new", data=_form(page)).headers["location"]
    page = ed.get(url).text
    assert "Goedkeuring vragen voor versie 1" in page
    asked = ed.post(f"{url}/ask", data={"csrf": csrf_token(page)})
    assert asked.status_code == 303
    page = ed.get(url).text
    assert f"gevraagd door {editor.email} (versie 1)" in page
    assert "Goedkeuring vragen" not in page  # asked once
    assert "goedkeuring gevraagd" in ed.get("/campaigns").text
    (row,) = _audit(app, "campaign.request_approval")
    assert row.actor == editor.email
    assert sorted(row.after["notified"]) == ["beheer@gt.example.nl", approver.email]
    mails = messages(capture.folder)
    assert sorted(m["To"] for m in mails) == ["beheer@gt.example.nl", approver.email]
    assert url in mails[0].get_body().get_content()
    # Four-eyes is unchanged: asking approves nothing, and an edit makes the request stale.
    assert ap.post(f"{url}/schedule", data={
        "csrf": csrf_token(ap.get(url).text),
        "at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT09:00"),
    }).status_code == 400
    page = ed.get(f"{url}/edit").text
    ed.post(f"{url}/edit", data=_form(page, subject="Nieuws, bijgewerkt"))
    assert "gevraagd door" not in ed.get(url).text
    assert "goedkeuring gevraagd" not in ed.get("/campaigns").text


# -- the pre-flight checklist ------------------------------------------------------------------

@pytest.fixture
def https_site(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    """An HTTPS server on loopback with its own certificate: /ok 200, /gone 404, /moved 301,
    /nohead 405 on HEAD; and a client context trusting that certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, head: bool) -> None:
            code = {"/ok": 200, "/gone": 404, "/moved": 301, "/nohead": 405 if head else 200
                    }.get(self.path, 404)
            self.send_response(code)
            if code == 301:
                self.send_header("Location", "https://localhost/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self) -> None:
            self._answer(True)

        def do_GET(self) -> None:
            self._answer(False)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_context = ssl.create_default_context(cafile=str(cert_file))
    try:
        yield f"https://localhost:{server.server_address[1]}", client_context
    finally:
        server.shutdown()
        server.server_close()


def _checks_app(app: App, *, private: bool = True, relay_signs: bool = True) -> App:
    settings = app.settings
    return app.reconfigured(dataclasses.replace(
        settings,
        console=dataclasses.replace(settings.console, check_private_links=private,
                                    check_timeout_seconds=3.0),
        dkim=dataclasses.replace(settings.dkim, relay_signs=relay_signs)))


def _draft(app: App, body: str) -> int:
    from mailer.usecases import campaigns as usecases
    from mailer.usecases.campaigns import as_actor

    with session_scope(app.sessions) as session:
        from mailer.campaigns.service import AudienceSpec

        return usecases.create_draft(session, app.settings, app.signer, as_actor("tests"),
                                     subject="Check", preheader="", body=body,
                                     audience=AudienceSpec(["nieuwsbrief"])).id


def _dns(records: dict[str, list[str]]) -> preflight.Resolve:
    return lambda name: records.get(name, [])


GOOD_DNS = {"gt.example.nl": ["v=spf1 include:spf.protection.outlook.com -all"],
            "_dmarc.gt.example.nl": ["v=DMARC1; p=quarantine"]}


def test_every_check_passes_for_a_good_campaign(capture: CaptureServer, app: App,
                                                https_site: tuple[str, ssl.SSLContext]):
    site, context = https_site
    make_audience(app.sessions, 3)
    checked = _checks_app(app)
    body = (f"{BODY}\n[Meer]({site}/ok) en [elders]({site}/moved) en [oud]({site}/nohead)\n"
            "{% if subscriber.organisation %}Voor {{ subscriber.organisation }}.{% endif %}\n")
    campaign_id = _draft(checked, body)
    found = preflight.run_checks(checked, campaign_id, actor=_tests(),
                                 ssl_context=context, txt=_dns(GOOD_DNS))
    assert [c.key for c in found] == list(preflight.CHECKS)
    assert {c.key: c.status for c in found} == {key: "ok" for key in preflight.CHECKS}, found
    links = next(c for c in found if c.key == "links")
    assert "3 links" in links.detail


def _tests():
    from mailer.usecases.campaigns import as_actor

    return as_actor("tests")


def test_what_the_checks_catch(app: App, https_site: tuple[str, ssl.SSLContext], tmp_path):
    site, context = https_site
    checked = _checks_app(app, relay_signs=False)  # and no subscribers: an empty audience
    with session_scope(app.sessions) as session:
        subscribers.create_list(session, "nieuwsbrief", "Nieuwsbrief")
    body = (f"Hallo\n\n[weg]({site}/gone) [plat](http://example.org/) [ok]({site}/ok)\n"
            "{% if not subscriber.organisation %}{{ subscriber.attributes.missing.deeper }}"
            "{% endif %}\n" + "x" * 120_000)
    campaign_id = _draft_unchecked(checked, body)
    found = {c.key: c for c in preflight.run_checks(
        checked, campaign_id, actor=_tests(), ssl_context=context,
        txt=_dns({"gt.example.nl": ["v=spf1 -all"]}))}
    assert found["size"].status == "fail"
    assert found["dkim"].status == "fail"
    assert found["audience"].status == "fail" and "0 recipients" in found["audience"].detail
    assert found["links"].status == "fail"
    assert "/gone: 404" in found["links"].detail and "not https" in found["links"].detail
    assert found["relay"].status == "fail"  # nothing listens on the configured port
    assert found["dns"].status == "fail" and "DMARC" in found["dns"].detail
    assert found["unsubscribe"].status == "ok"
    assert found["render"].status == "fail", found["render"]
    assert "no optional fields" in found["render"].detail


def _draft_unchecked(app: App, body: str) -> int:
    """A draft whose full-field branch fails only at send time (the trial render is as a
    sample recipient with attributes empty, which takes the other branch)."""
    return _draft(app, body)


def test_offline_and_internal_links_are_could_not_check_not_failures(
        app: App, https_site: tuple[str, ssl.SSLContext]):
    site, context = https_site
    make_audience(app.sessions, 2)
    closed = _checks_app(app, private=False)  # the production default
    campaign_id = _draft(closed, f"{BODY}\n[intern]({site}/ok) [nergens](https://nx.invalid/)\n")

    def offline(name: str) -> list[str]:
        raise OSError("no network")

    found = {c.key: c for c in preflight.run_checks(closed, campaign_id, actor=_tests(),
                                                    ssl_context=context, txt=offline)}
    assert found["links"].status == "unknown"
    assert "internal address" in found["links"].detail
    assert "could not look up nx.invalid" in found["links"].detail
    assert found["dns"].status == "unknown" and "could not check" in found["dns"].detail
    assert not preflight.failed([found["links"], found["dns"]])


def test_only_web_links_of_the_content_are_opened(app: App):
    settings = _checks_app(app, private=False).settings
    assert preflight.check_link("file:///etc/passwd", settings)[0] == "fail"
    assert preflight.check_link("gopher://127.0.0.1:25/", settings)[0] == "fail"
    status, detail = preflight.check_link("https://127.0.0.1:5432/", settings)
    assert status == "unknown" and "internal" in detail
    status, detail = preflight.check_link("https://[::1]:8026/users", settings)
    assert status == "unknown" and "internal" in detail


def test_the_console_shows_the_checklist_and_the_cli_exits_1_on_a_failure(
        capture: CaptureServer, app: App, run_cli):
    make_audience(app.sessions, 2)
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    client = console_client(app)
    sign_in(client, editor)
    page = client.get("/campaigns/new").text
    url = client.post("/campaigns/new", data=_form(page)).headers["location"]
    assert 'hx-get="/campaigns/' in client.get(url).text
    fragment = client.get(f"{url}/checks", headers={"hx-request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'id="check-dkim"' in fragment.text and "Probleem:" in fragment.text
    full = client.get(f"{url}/checks").text
    assert "<html" in full and "Controles voor verzending" in full
    campaign_id = url.rsplit("/", 1)[1]
    result = run_cli("campaigns", "check", campaign_id, ok=False)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split()[1] for line in lines] == list(preflight.CHECKS)
    assert any(line.startswith("FAIL dkim") for line in lines)
    assert any(line.startswith("ok   relay") for line in lines)  # the capture server
    as_json = json.loads(run_cli("campaigns", "check", campaign_id, "--json", ok=False).output)
    assert {c["check"]: c["status"] for c in as_json}["audience"] == "ok"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
    os.environ.pop("no_proxy", None)


@pytest.fixture
def dns_server() -> Iterator[tuple[str, int]]:
    """A DNS server on loopback (UDP) answering TXT questions from a small zone."""
    import dns.message
    import dns.rcode
    import dns.rrset

    zone = {"gt.example.nl.": ['"v=spf1 -all"'],
            "_dmarc.gt.example.nl.": ['"v=DMARC1; p=reject"']}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            answer = dns.message.make_response(query)
            name = str(query.question[0].name).lower()
            if name in zone:
                answer.answer.append(dns.rrset.from_text(name, 60, "IN", "TXT", *zone[name]))
            else:
                answer.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(answer.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield "127.0.0.1", sock.getsockname()[1]
    stop.set()
    thread.join(5)
    sock.close()


def test_dns_records_are_looked_up_with_dnspython(app: App, dns_server: tuple[str, int]):
    settings = _checks_app(app).settings
    found = preflight.check_dns(settings, preflight.dns_txt(settings, dns_server))
    assert found.status == "ok" and "SPF, DMARC" in found.detail
    signing = dataclasses.replace(settings, dkim=dataclasses.replace(
        settings.dkim, enabled=True, domain="gt.example.nl", selector="mailer"))
    missing = preflight.check_dns(signing, preflight.dns_txt(signing, dns_server))
    assert missing.status == "fail" and "mailer._domainkey.gt.example.nl" in missing.detail
