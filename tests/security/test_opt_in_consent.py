"""Finding 3: nobody is signed back up without the person's own confirmation.

Replayed over real HTTP against the running pages: after a one-click unsubscribe, a stranger's
sign-up (single opt-in list too) or an old forwarded preferences link puts no one back; only
the link mailed to the address does. A sign-up for a known address changes none of its data
until then. A bounced person coming back also goes through the mail.
"""

from __future__ import annotations

from live_support import live, live_factory  # noqa: F401  (fixtures)
from web_support import link_in, setup_people, subscription_states

from mailer.database.connect import session_scope
from mailer.kernel.links import Links
from subscribers import service

ANNA = "anna@gemeente.example.nl"


def _state(live, address: str = ANNA):
    return subscription_states(live.app, address)


def _confirm(live, mail) -> None:
    link = live.path(link_in(mail, f"{live.base}/c/"))
    assert live.http.get(link).status_code == 200  # a link scanner's GET confirms nothing
    assert _state(live)[1].get("nieuwsbrief") != "active" or _state(live)[0] != "active"
    answer = live.http.post(link, data={"csrf": live.csrf(link)})
    assert answer.status_code == 200


def test_one_click_out_then_a_strangers_sign_up_needs_her_confirmation(live):
    people = setup_people(live.app)
    links = Links(live.base, live.app.signer)
    out = live.http.post(live.path(links.unsubscribe(people["anna"], people["campaign"])),
                         data={"List-Unsubscribe": "One-Click"})
    assert out.status_code == 200
    assert _state(live)[1]["nieuwsbrief"] == "unsubscribed"

    # nieuwsbrief is a single opt-in list: still no way back without her.
    answer = live.sign_up("nieuwsbrief", ANNA.upper(), name="Mallory", organisation="Evil BV",
                          language="en")
    assert answer.status_code == 200
    assert _state(live)[1]["nieuwsbrief"] == "unsubscribed"
    with session_scope(live.app.sessions) as session:
        person = service.get_subscriber(session, ANNA)
        assert (person.name, person.organisation, person.language) == ("Anna de Vries", "", "nl")
    (mail,) = live.mails_to(ANNA)
    assert "Mallory" not in mail.as_string() and "Evil" not in mail.as_string()

    _confirm(live, mail)
    assert _state(live)[1]["nieuwsbrief"] == "active"
    with session_scope(live.app.sessions) as session:  # her confirmation applies the request
        person = service.get_subscriber(session, ANNA)
        assert (person.name, person.organisation) == ("Mallory", "Evil BV")


def test_an_old_forwarded_preferences_link_cannot_sign_her_back_up(live):
    people = setup_people(live.app)
    prefs = live.path(Links(live.base, live.app.signer).preferences(people["anna"]))
    left = live.http.post(prefs, data={"csrf": live.csrf(prefs), "action": "leave"})
    assert left.status_code == 200
    assert _state(live)[0] == "unsubscribed"

    with session_scope(live.app.sessions) as session:
        ids = [ml.id for ml in service.get_lists(session, ["nieuwsbrief", "regio-noord"])]
    saved = live.http.post(prefs, data={"csrf": live.csrf(prefs), "action": "save",
                                        "list": [str(i) for i in ids], "language": "nl"})
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=confirm")
    assert _state(live) == ("unsubscribed",
                            {"nieuwsbrief": "unsubscribed", "regio-noord": "unsubscribed"})
    (mail,) = live.mails_to(ANNA)
    _confirm(live, mail)
    assert _state(live) == ("active", {"nieuwsbrief": "active", "regio-noord": "active"})


def test_a_bounced_address_comes_back_only_through_the_mail(live):
    setup_people(live.app)
    with session_scope(live.app.sessions) as session:
        service.set_status(session, ANNA, "bounced", source="bounce")
    live.sign_up("nieuwsbrief", ANNA)
    assert _state(live)[0] == "bounced"
    (mail,) = live.mails_to(ANNA)
    _confirm(live, mail)
    assert _state(live)[0] == "active"


def test_a_known_active_address_on_a_new_list_waits_for_confirmation_too(live):
    setup_people(live.app)
    live.sign_up("nieuwsbrief", "john@example.org", name="Not John")  # already on it
    (already,) = live.mails_to("john@example.org")
    assert "Not John" not in already.as_string()
    with session_scope(live.app.sessions) as session:
        service.create_list(session, "extra", "Extra", public=True)
    live.sign_up("extra", "john@example.org", name="Not John")
    assert "extra" not in subscription_states(live.app, "john@example.org")[1]
    with session_scope(live.app.sessions) as session:
        assert service.get_subscriber(session, "john@example.org").name == "John Smith"
