"""Newsletters in the console, draft to scheduled, through the use cases the CLI uses."""

from __future__ import annotations

import datetime as dt

from console_support import console_client, csrf_token, make_account, sign_in
from delivery_support import make_audience
from sqlalchemy import select

from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.campaigns.models import Campaign
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer

BODY = "Beste {{ subscriber.name }},\n\nHet **nieuws** van deze maand.\n"


def _form(page: str, **fields: object) -> dict[str, object]:
    return {"csrf": csrf_token(page), "subject": "Nieuws van GT", "preheader": "Kort",
            "body": BODY, "lists": "nieuwsbrief", "regions": ["Noord", "Oost"], **fields}


def test_draft_preview_test_approve_schedule(capture: CaptureServer, app: App):
    people = make_audience(app.sessions, 10)  # regions round-robin: 2 in Noord, 2 in Oost
    editor = make_account(app, "redactie@gt.example.nl", "editor")
    approver = make_account(app, "eindredactie@gt.example.nl", "approver")
    ed, ap = console_client(app), console_client(app)
    sign_in(ed, editor)
    sign_in(ap, approver)

    page = ed.get("/campaigns/new").text
    count = ed.post("/campaigns/count", data=_form(page))
    assert count.text.strip() == "4"
    # The preview is the real renderer's output, for a Dutch and an English sample recipient.
    nl = ed.post("/campaigns/preview", data=_form(page, lang="nl"))
    assert "Voorbeeld Ontvanger" in nl.text and "<strong>nieuws</strong>" in nl.text
    assert "script-src" not in nl.headers["content-security-policy"]
    en = ed.post("/campaigns/preview", data=_form(page, lang="en"))
    assert "Sample Recipient" in en.text
    # A template error is refused with its line.
    broken = ed.post("/campaigns/new", data=_form(page, body="Hallo\n\n{{ subscriber.nmae }"))
    assert broken.status_code == 400 and "line" in broken.text
    created = ed.post("/campaigns/new", data=_form(page))
    assert created.status_code == 303
    url = created.headers["location"]
    campaign_id = int(url.rsplit("/", 1)[1])

    page = ed.get(url).text
    sent = ed.post(f"{url}/test", data={"csrf": csrf_token(page),
                                        "to": f"{people[0]}, {people[1]}"})
    assert sent.status_code == 200, sent.text[sent.text.find("alert"):][:300]
    assert capture.count == 2  # a copy per address
    # The editor can neither approve nor schedule (role), and the approver cannot schedule
    # before approving (four-eyes).
    assert ed.post(f"{url}/approve", data={"csrf": csrf_token(page)}).status_code == 403
    page = ap.get(url).text
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).strftime("%Y-%m-%dT09:00")
    refused = ap.post(f"{url}/schedule", data={"csrf": csrf_token(page), "at": at})
    assert refused.status_code == 400 and "needs approval" in refused.text
    assert ap.post(f"{url}/approve", data={"csrf": csrf_token(page), "version": "1"}
                   ).status_code == 303
    # An edit withdraws the approval.
    page = ed.get(f"{url}/edit").text
    assert ed.post(f"{url}/edit", data=_form(page, subject="Nieuws van GT (bijgewerkt)")
                   ).status_code == 303
    page = ap.get(url).text
    assert ap.post(f"{url}/schedule", data={"csrf": csrf_token(page), "at": at}
                   ).status_code == 400
    # Approving the version one saw before the edit is refused; the new one is fine.
    stale = ap.post(f"{url}/approve", data={"csrf": csrf_token(page), "version": "1"})
    assert stale.status_code == 400 and "changed since" in stale.text
    assert ap.post(f"{url}/approve", data={"csrf": csrf_token(page), "version": "2"}
                   ).status_code == 303
    # The spring-forward gap does not exist, so it cannot be chosen.
    gap = ap.post(f"{url}/schedule", data={"csrf": csrf_token(page), "at": "2099-03-29T02:30"})
    assert gap.status_code == 400 and "does not exist" in gap.text
    assert ap.post(f"{url}/schedule", data={"csrf": csrf_token(page), "at": at}
                   ).status_code == 303
    with session_scope(app.sessions) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "scheduled"
        assert campaign.created_by == "redactie@gt.example.nl"
        assert campaign.approved_by == "eindredactie@gt.example.nl"
        trail = [(e.actor, e.action) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.object_type == "campaign")
            .order_by(AuditEntry.id))]
    assert trail == [
        ("redactie@gt.example.nl", "campaign.create"),
        ("redactie@gt.example.nl", "campaign.test"),
        ("eindredactie@gt.example.nl", "campaign.approve"),
        ("redactie@gt.example.nl", "campaign.edit"),
        ("eindredactie@gt.example.nl", "campaign.approve"),
        ("eindredactie@gt.example.nl", "campaign.schedule"),
    ]
    listing = ap.get("/campaigns").text
    assert "redactie@gt.example.nl" in listing and "eindredactie@gt.example.nl" in listing


def test_an_approver_cannot_approve_their_own_edit(app: App):
    make_audience(app.sessions, 2)
    approver = make_account(app, "a@gt.example.nl", "approver")
    client = console_client(app)
    sign_in(client, approver)
    page = client.get("/campaigns/new").text
    url = client.post("/campaigns/new", data=_form(page)).headers["location"]
    page = client.get(url).text
    own = client.post(f"{url}/approve", data={"csrf": csrf_token(page)})
    assert own.status_code == 400 and "someone else must approve" in own.text
    assert client.post(f"{url}/send", data={"csrf": csrf_token(page)}).status_code == 400
