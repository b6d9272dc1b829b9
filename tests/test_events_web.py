"""The RSVP page over HTTP, on SQLite and PostgreSQL: a GET answers nothing, the form does,
seats and the waiting list show, the deadline closes it, and the owed mail goes out."""

from __future__ import annotations

import datetime as dt
import warnings

with warnings.catch_warnings():  # Starlette's notice about its future httpx successor
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from web_support import BASE, csrf_token, messages

from mailer.app import App
from mailer.database.connect import session_scope
from mailer.delivery.capture import CaptureServer
from mailer.events import service
from mailer.events.dates import parse_local
from mailer.kernel.links import Links
from subscribers import service as subscribers
from subscribers.service import SubscriberData


def setup(app: App, *, capacity: int | None = 1, deadline: str | None = None
          ) -> tuple[int, dict[str, int]]:
    zone = app.settings.timezone
    with session_scope(app.sessions) as session:
        ids = {}
        for address, language in (("anna@assen.nl", "nl"), ("john@example.org", "en")):
            ids[address] = subscribers.add_subscriber(
                session, SubscriberData(email=address, name=address.split("@")[0].title(),
                                        region="Noord", language=language),
            ).id
        event = service.create_event(session, app.settings, service.EventFields(
            title="GT Connect regio Noord", region="Noord",
            starts_at=parse_local("2099-04-14 13:30", zone),
            ends_at=parse_local("2099-04-14 16:00", zone),
            venue="Provinciehuis", address="Martinikerkhof 12, Groningen", capacity=capacity,
            rsvp_deadline=parse_local(deadline, zone) if deadline else None,
        ))
        return event.id, ids


def url(app: App, subscriber_id: int, event_id: int, answer: str | None = None) -> str:
    return Links(app.settings.web.base_url, app.signer).rsvp(
        subscriber_id, event_id, answer
    ).removeprefix(BASE)


def test_a_get_answers_nothing_and_the_form_does(client: TestClient, app: App,
                                                 capture: CaptureServer) -> None:
    eid, ids = setup(app)
    link = url(app, ids["anna@assen.nl"], eid, "yes")
    page = client.get(link)
    assert page.status_code == 200
    assert "dinsdag 14 april, 13.30–16.00 uur" in page.text
    assert "Nog 1 van de 1 plaatsen vrij." in page.text
    assert "U heeft nog niet geantwoord." in page.text
    with session_scope(app.sessions) as session:
        assert service.event_counts(session, eid).yes == 0  # a link scanner changes nothing

    # Without the form's token nothing is recorded.
    assert client.post(link, data={"answer": "yes"}).status_code == 403

    done = client.post(link, data={"answer": "yes", "csrf": csrf_token(page.text)})
    assert done.status_code == 200  # followed the 303 back to the page
    assert "U bent aangemeld" in done.text
    assert "Uw antwoord: ja, u komt." in done.text
    assert "De bijeenkomst is vol." in done.text
    # The confirmation with the calendar file was sent after the answer.
    (mail,) = messages(capture.folder)
    assert mail["Subject"].startswith("Aangemeld: GT Connect regio Noord")
    assert [p.get_content_type() for p in mail.iter_attachments()] == ["application/ics"]

    # John (English) says yes to a full meeting: waiting list, number 1.
    john_link = url(app, ids["john@example.org"], eid)
    page = client.get(john_link)
    assert "The meeting is full." in page.text
    done = client.post(john_link, data={"answer": "yes", "csrf": csrf_token(page.text)})
    assert "You are on the waiting list (number 1)." in done.text

    # Anna changes her mind: John gets the seat, and both pages say so.
    # One link for the page and its form: a token made a second later is another URL, and the
    # form token is bound to the page's path.
    anna_link = url(app, ids["anna@assen.nl"], eid)
    page = client.get(anna_link)
    done = client.post(anna_link,
                       data={"answer": "no", "csrf": csrf_token(page.text)})
    assert "Uw antwoord: nee" in done.text
    assert "Your answer: yes, you will come. A seat is yours." in client.get(john_link).text
    subjects = sorted(m["Subject"] for m in messages(capture.folder))
    assert any(s.startswith("A seat for you:") for s in subjects)


def test_the_deadline_closes_the_page(client: TestClient, app: App) -> None:
    eid, ids = setup(app, deadline="2099-04-07 17:00")
    link = url(app, ids["anna@assen.nl"], eid)
    page = client.get(link)
    assert "dinsdag 7 april, 17.00 uur" in page.text
    token = csrf_token(page.text)
    with session_scope(app.sessions) as session:
        service.edit_event(session, app.settings, eid,
                           {"rsvp_deadline": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)},
                           announce=False)
    closed = client.get(link)
    assert "Aanmelden is gesloten sinds" in closed.text
    assert 'name="answer"' not in closed.text
    refused = client.post(link, data={"answer": "yes", "csrf": token})
    assert refused.status_code == 409
    assert "aanmelden is gesloten" in refused.text


def test_bad_tokens_get_the_friendly_page(client: TestClient, app: App) -> None:
    eid, ids = setup(app)
    links = Links(app.settings.web.base_url, app.signer)
    other_purpose = links.preferences(ids["anna@assen.nl"]).removeprefix(BASE).replace(
        "/p/", "/r/"
    )
    assert client.get(other_purpose).status_code == 400
    assert client.get(url(app, ids["anna@assen.nl"], 999)).status_code == 400
    anna_link = url(app, ids["anna@assen.nl"], eid)
    page = client.get(anna_link)
    bad = client.post(anna_link,
                      data={"answer": "perhaps", "csrf": csrf_token(page.text)})
    assert bad.status_code == 400
