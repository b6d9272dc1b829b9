"""Finding 4: the sign-up form cannot make GT's address carry a stranger's words, or be used
to flood, and shows only the lists marked public.

Replayed over real HTTP against the running pages and through the CLI: a phishing text in the
name field reaches no mail; `+tag` and case variants share one per-address limit; the per-client
and the global hourly caps answer 429; a list is on the form only after `lists edit --public`.
"""

from __future__ import annotations

from live_support import live, live_factory  # noqa: F401  (fixtures)
from web_support import csrf_token, link_in, pow_solution, setup_people

from mailer.database.connect import session_scope
from subscribers import service

PHISH = "Your account is locked, log in at http://gt-mailer.evil.example"


def _texts(live) -> str:
    return "\n".join(m.as_string() for m in live.all_mail())


def test_typed_text_reaches_no_mail_to_an_unconfirmed_address(live):
    setup_people(live.app)
    for slug, address in (("regio-noord", "victim1@gemeente.example.nl"),   # double opt-in
                          ("nieuwsbrief", "victim2@gemeente.example.nl"),   # single: welcome
                          ("nieuwsbrief", "anna@gemeente.example.nl")):     # already subscribed
        assert live.sign_up(slug, address, name=PHISH, organisation=PHISH).status_code == 200
        live.mails_to(address)
    assert "evil" not in _texts(live)


def test_rate_limits_count_normalised_addresses(live_factory):
    live = live_factory(subscribe_rate_per_address=2)
    setup_people(live.app)
    answers = [live.sign_up("nieuwsbrief", address).status_code
               for address in ("Victim@Gemeente.example.nl", "victim+1@gemeente.example.nl",
                               "VICTIM+abc@GEMEENTE.example.nl")]
    assert answers == [200, 200, 429]


def test_per_client_and_global_caps(live_factory):
    live = live_factory(subscribe_rate_per_client=3)
    setup_people(live.app)
    answers = [live.sign_up("nieuwsbrief", f"p{n}@gemeente.example.nl").status_code
               for n in range(4)]
    assert answers == [200, 200, 200, 429]


def test_global_cap(live_factory):
    live = live_factory(subscribe_rate_global=2)
    setup_people(live.app)
    answers = [live.sign_up("nieuwsbrief", f"q{n}@gemeente.example.nl").status_code
               for n in range(3)]
    assert answers == [200, 200, 429]


def test_only_public_lists_are_offered(live, run_cli):
    run_cli("lists", "create", "intern", "--title", "Alleen intern")
    assert live.http.get("/subscribe/intern").status_code == 404
    assert "public:      False" in run_cli("lists", "show", "intern").output
    run_cli("lists", "edit", "intern", "--public")
    assert live.http.get("/subscribe/intern").status_code == 200
    run_cli("lists", "edit", "intern", "--no-public", "--title", "Intern")
    assert live.http.get("/subscribe/intern").status_code == 404
    with session_scope(live.app.sessions) as session:
        hidden = service.get_list(session, "intern")
        assert (hidden.public, hidden.title) == (False, "Intern")
    bad = run_cli("lists", "edit", "nergens", "--public", ok=False)
    assert bad.exit_code != 0 and "nergens" in bad.output


def test_the_form_wants_a_fresh_proof_of_work(live):
    setup_people(live.app)
    form = live.http.get("/subscribe/nieuwsbrief")
    data = {"csrf": csrf_token(form.text), "email": "bot@example.org", "language": "nl"}
    assert live.http.post("/subscribe/nieuwsbrief", data=data).status_code == 400
    assert live.http.post("/subscribe/nieuwsbrief",
                          data={**data, "altcha": "e30="}).status_code == 400  # "{}"
    solved = pow_solution(form.text)
    assert live.http.post("/subscribe/nieuwsbrief",
                          data={**data, "altcha": solved}).status_code == 200
    replay = {**data, "email": "bot2@example.org", "altcha": solved}
    assert live.http.post("/subscribe/nieuwsbrief", data=replay).status_code == 429
    with session_scope(live.app.sessions) as session:
        assert service.queries.subscriber_by_key(session, "bot2@example.org") is None
    # The page loads its solver from our own origin only; the CSP allows nothing else.
    assert '<script src="/static/pow.js"' in form.text
    assert "script-src 'self';" in form.headers["content-security-policy"]
    script = live.http.get("/static/pow.js")
    assert script.status_code == 200 and "crypto.subtle.digest" in script.text


def test_a_new_address_stores_no_typed_text_until_it_confirms(live):
    """Single opt-in subscribes at once, but the typed name waits for the address's own click;
    on a double opt-in list it waits for the confirmation likewise. Until then nothing typed
    is on the person, so no later newsletter ("Beste {{ name }}") can carry it."""
    setup_people(live.app)
    victims = {"nieuwsbrief": "victim3@gemeente.example.nl",   # single opt-in
               "regio-noord": "victim4@gemeente.example.nl"}   # double opt-in
    for slug, address in victims.items():
        assert live.sign_up(slug, address, name=PHISH, organisation="Evil BV").status_code == 200
    for address in victims.values():
        with session_scope(live.app.sessions) as session:
            person = service.get_subscriber(session, address)
            assert (person.name, person.organisation) == ("", "")
            held = service.signup_requests(session, person.id)
            assert [(r["name"], r["organisation"]) for r in held] == [(PHISH, "Evil BV")]
    welcome = live.mails_to(victims["nieuwsbrief"])[0]
    assert "evil" not in welcome.as_string().lower()
    with session_scope(live.app.sessions) as session:
        assert service.get_subscriber(session, victims["nieuwsbrief"]).status == "active"

    # The person's own click (a GET confirms nothing: link scanners) applies what they typed.
    for address in victims.values():
        link = live.path(link_in(live.mails_to(address)[0], f"{live.base}/c/"))
        assert live.http.get(link).status_code == 200
        with session_scope(live.app.sessions) as session:
            assert service.get_subscriber(session, address).name == ""
        assert live.http.post(link, data={"csrf": live.csrf(link)}).status_code == 200
        with session_scope(live.app.sessions) as session:
            person = service.get_subscriber(session, address)
            assert (person.name, person.organisation) == (PHISH, "Evil BV")
            assert service.signup_requests(session, person.id) == []


def test_a_sign_up_without_typed_text_holds_nothing(live):
    setup_people(live.app)
    live.sign_up("nieuwsbrief", "plain@gemeente.example.nl")
    (welcome,) = live.mails_to("plain@gemeente.example.nl")
    assert f"{live.base}/c/" not in welcome.as_string()  # nothing to confirm
    with session_scope(live.app.sessions) as session:
        person = service.get_subscriber(session, "plain@gemeente.example.nl")
        assert service.signup_requests(session, person.id) == []
