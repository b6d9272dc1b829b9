"""Sign-in with OpenID Connect against a real provider on loopback, on both databases.

The provider (oidc-provider-mock) signs real ID tokens with its own key and serves discovery
and JWKS; the console is served by uvicorn on loopback and driven with httpx step by step:
the button, the provider's form (a chosen sub, address and groups), the callback.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_support import PASSWORD, csrf_token, make_account
from oidc_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    GROUPS,
    UNMAPPED,
    authorize,
    browser_client,
    console_with_oidc,
    provider_served,
    set_user,
    sign_in,
    start,
)
from sqlalchemy import select

from mailer.accounts import service as accounts
from mailer.accounts.models import ConsoleSession, ConsoleUser, OidcFlow
from mailer.app import App
from mailer.audit.models import AuditEntry
from mailer.database.connect import session_scope
from mailer.errors import ConfigError
from mailer.settings import CONSOLE_ROLES, Settings, load_settings
from mailer.usecases import users


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with provider_served() as url:
        yield url


@pytest.fixture
def console(settings: Settings, issuer: str) -> Iterator[tuple[App, str]]:
    with console_with_oidc(settings, issuer) as served:
        yield served


def person(issuer: str, *groups: str, email: str = "", verified: bool = True,
           name: str = "Anna de Vries") -> tuple[str, str]:
    """A new subject at the provider with these groups; (sub, email)."""
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    email = email or f"{sub}@gt.example.nl"
    set_user(issuer, sub, email=email, email_verified=verified, name=name, groups=list(groups))
    return sub, email


def audit_rows(app: App, action: str | None = None) -> list[AuditEntry]:
    with session_scope(app.sessions) as session:
        query = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def account(app: App, email: str) -> ConsoleUser | None:
    with session_scope(app.sessions) as session:
        user = session.scalar(select(ConsoleUser).where(ConsoleUser.email == email))
        if user is not None:
            session.expunge(user)
        return user


def signed_in_as(browser: httpx.Client, url: str) -> str:
    """The e-mail address the dashboard greets (or "" when it sends us to sign in)."""
    page = browser.get(f"{url}/account")
    if page.status_code != 200:
        return ""
    return page.text


def continued(response: httpx.Response, onward: str = "/") -> None:
    """The callback's own page, which goes on to the console (the Strict cookie's way in)."""
    assert response.status_code == 200, response.text
    assert f'<meta http-equiv="refresh" content="0;url={onward}">' in response.text
    assert "gt_console=" in response.headers.get("set-cookie", "")


# -- the happy path --------------------------------------------------------------------------

@pytest.mark.parametrize("role", CONSOLE_ROLES)
def test_a_person_in_a_mapped_group_signs_in_with_that_role(console, issuer: str, role: str):
    app, url = console
    sub, email = person(issuer, GROUPS[role], UNMAPPED)
    with browser_client() as browser:
        continued(sign_in(browser, url, sub))
        assert email in signed_in_as(browser, url)
    user = account(app, email)
    assert user is not None and user.role == role and user.status == "active"
    assert user.oidc_subject == f"{issuer}|{sub}"
    assert user.password_hash == "" and user.totp_secret == ""
    added, signin = audit_rows(app, "user.add")[0], audit_rows(app, "signin")[0]
    assert added.after and added.after["via"] == "oidc" and added.after["role"] == role
    assert signin.actor == email and signin.after == {"method": "oidc"}
    assert signin.origin.startswith("console 127.0.0.1")
    # The flow was used up.
    with session_scope(app.sessions) as session:
        assert session.scalars(select(OidcFlow)).all() == []


def test_the_request_carries_state_nonce_and_an_s256_challenge_of_the_stored_verifier(
        console, issuer: str):
    import base64
    import hashlib

    app, url = console
    with browser_client() as browser:
        trip = start(browser, url)
        cookie = browser.cookies.get("gt_console_oidc")
    with browser_client() as other:
        header = other.get(f"{url}/signin/oidc").headers["set-cookie"].lower()
    # Lax: the callback is a cross-site top-level GET; short-lived; never for scripts.
    for part in ("gt_console_oidc=", "httponly", "samesite=lax", "path=/signin/oidc",
                 "max-age=600"):
        assert part in header, header
    params = trip.params
    assert trip.authorize.startswith(f"{issuer}/oauth2/authorize?")
    assert params["response_type"] == "code" and params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == f"{url}/signin/oidc/callback"
    assert set(params["scope"].split()) == {"openid", "profile", "email"}
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 20 and len(params["nonce"]) >= 20
    with session_scope(app.sessions) as session:
        flow = session.get(OidcFlow, accounts.session_id(params["state"]))
        assert flow is not None
        # Only hashes of what travels: the state in the URL, the browser's binding cookie.
        assert flow.id == accounts.session_id(params["state"])
        assert cookie and flow.binding == accounts.session_id(cookie)
        assert flow.nonce == params["nonce"]
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(flow.code_verifier.encode()).digest()).rstrip(b"=").decode()
    assert params["code_challenge"] == challenge
    assert flow.code_verifier not in trip.authorize


def test_the_highest_mapped_role_wins(console, issuer: str):
    app, url = console
    sub, email = person(issuer, GROUPS["viewer"], GROUPS["approver"], GROUPS["editor"])
    with browser_client() as browser:
        continued(sign_in(browser, url, sub))
    user = account(app, email)
    assert user is not None and user.role == "approver"


def test_how_the_provider_authenticated_is_written_in_the_audit_row(console, issuer: str):
    app, url = console
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    set_user(issuer, sub, email=f"{sub}@gt.example.nl", email_verified=True,
             groups=[GROUPS["admin"]], amr=["pwd", "mfa"], acr="1")
    with browser_client() as browser:
        # No TOTP of ours for an admin by default: the provider did the second factor.
        continued(sign_in(browser, url, sub))
    assert audit_rows(app, "signin")[0].after == {"method": "oidc", "amr": ["pwd", "mfa"],
                                                  "acr": "1"}


def test_a_groups_overage_is_refused_with_its_own_reason(console, issuer: str):
    app, url = console
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    # Entra ID leaves `groups` out for someone in too many, and points to Graph instead.
    set_user(issuer, sub, email=f"{sub}@gt.example.nl", email_verified=True,
             _claim_names={"groups": "src1"},
             _claim_sources={"src1": {"endpoint": "https://graph.microsoft.com/v1.0/x"}})
    with browser_client() as browser:
        response = sign_in(browser, url, sub)
        assert response.status_code == 403 and "zoveel groepen" in response.text
    assert audit_rows(app, "signin.failed")[0].after == {"method": "oidc", "reason": "overage"}


def test_app_roles_can_be_the_claim(settings: Settings, issuer: str):
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    set_user(issuer, sub, email=f"{sub}@gt.example.nl", email_verified=True,
             roles=["Mailer.Editor"], groups=[GROUPS["admin"]])
    with console_with_oidc(settings, issuer, groups_claim="roles",
                           roles={"Mailer.Editor": "editor"}) as (app, url), \
            browser_client() as browser:
        continued(sign_in(browser, url, sub))
        user = account(app, f"{sub}@gt.example.nl")
        assert user is not None and user.role == "editor"


# -- refused ---------------------------------------------------------------------------------

def test_a_person_in_no_mapped_group_is_refused_with_a_clear_page(console, issuer: str):
    app, url = console
    sub, email = person(issuer, UNMAPPED)
    with browser_client() as browser:
        response = sign_in(browser, url, sub)
        assert response.status_code == 403
        assert "geen groep die toegang geeft" in response.text
        assert "gt_console=" not in response.headers.get("set-cookie", "")
        assert signed_in_as(browser, url) == ""
    assert account(app, email) is None
    failed = audit_rows(app, "signin.failed")
    assert [r.after for r in failed] == [{"method": "oidc", "reason": "norole"}]
    assert failed[0].actor == email


def test_a_wrong_state_is_refused(console, issuer: str):
    app, url = console
    sub, email = person(issuer, GROUPS["editor"])
    with browser_client() as browser:
        trip = authorize(browser, start(browser, url), sub)
        forged = trip.callback.replace(trip.returned["state"], "not-the-state")
        response = browser.get(forged)
        assert response.status_code == 400 and "verlopen, al gebruikt" in response.text
        assert signed_in_as(browser, url) == ""
    assert account(app, email) is None
    assert [r.after for r in audit_rows(app, "signin.failed")] == [
        {"method": "oidc", "reason": "state"}]


def test_a_callback_works_once_and_only_in_the_browser_that_started(console, issuer: str):
    app, url = console
    sub, _email = person(issuer, GROUPS["editor"])
    with browser_client() as browser, browser_client() as stranger:
        trip = authorize(browser, start(browser, url), sub)
        # Someone else with the URL (sent to them, or from a log): no binding cookie.
        assert stranger.get(trip.callback).status_code == 400
        continued(browser.get(trip.callback))
        # Replayed by the same browser: the flow is used up.
        again = browser.get(trip.callback)
        assert again.status_code == 400 and "verlopen, al gebruikt" in again.text
    reasons = [r.after["reason"] for r in audit_rows(app, "signin.failed") if r.after]
    assert reasons == ["state", "state"]
    assert len(audit_rows(app, "signin")) == 1


def test_an_id_token_for_another_nonce_is_refused(console, issuer: str):
    """The code of one sign-in brought to another's callback: the ID token's nonce is not
    the one this sign-in sent, so Authlib refuses it."""
    app, url = console
    sub, email = person(issuer, GROUPS["admin"])
    with browser_client() as browser:
        mine = start(browser, url)
        binding = browser.cookies.get("gt_console_oidc")
        theirs = authorize(browser, start(browser, url), sub)
        assert mine.params["nonce"] != theirs.params["nonce"]
        # Back to the first sign-in's binding cookie, with the second's code.
        browser.cookies.set("gt_console_oidc", binding or "", domain="127.0.0.1",
                            path="/signin/oidc")
        response = browser.get(f"{url}/signin/oidc/callback", params={
            "code": theirs.returned["code"], "state": mine.params["state"]})
        assert response.status_code == 400
        assert "kon niet worden gecontroleerd" in response.text
    assert account(app, email) is None
    failed = audit_rows(app, "signin.failed")
    assert failed[0].after and failed[0].after["reason"] == "token"
    assert "nonce" in failed[0].after["detail"]
    assert CLIENT_SECRET not in str(failed[0].after)


def test_the_provider_saying_no_is_refused(console, issuer: str):
    app, url = console
    with browser_client() as browser:
        trip = start(browser, url)
        browser.get(trip.authorize)
        denied = browser.post(trip.authorize, data={"action": "deny"})
        assert denied.status_code == 302
        back = httpx.URL(denied.headers["location"])
        assert back.params["error"] == "access_denied"
        # The mock leaves the state out of its error redirect; Entra ID sends it back.
        response = browser.get(back.copy_merge_params({"state": trip.params["state"]}))
        assert response.status_code == 400 and "aanmelddienst" in response.text
    failed = audit_rows(app, "signin.failed")
    assert failed[0].after and failed[0].after["reason"] == "provider"
    assert "access_denied" in failed[0].after["detail"]


def test_a_disabled_account_is_refused(console, issuer: str):
    app, url = console
    sub, email = person(issuer, GROUPS["editor"])
    with browser_client() as browser:
        continued(sign_in(browser, url, sub))
    with session_scope(app.sessions) as session:
        users.disable_user(session, users.Actor(name="os:tests", origin="cli"), email)
    with browser_client() as browser:
        response = sign_in(browser, url, sub)
        assert response.status_code == 403 and "uitgeschakeld" in response.text
        assert signed_in_as(browser, url) == ""
    assert audit_rows(app, "signin.failed")[-1].after == {"method": "oidc", "reason": "disabled"}


def test_the_role_follows_the_groups_at_each_sign_in_and_is_audited(console, issuer: str):
    app, url = console
    sub, email = person(issuer, GROUPS["editor"])
    with browser_client() as browser:
        continued(sign_in(browser, url, sub))
    set_user(issuer, sub, email=email, email_verified=True, groups=[GROUPS["approver"]])
    with browser_client() as browser:
        continued(sign_in(browser, url, sub))
    user = account(app, email)
    assert user is not None and user.role == "approver"
    changes = audit_rows(app, "user.role")
    assert [(r.before, r.after) for r in changes] == [
        ({"role": "editor"}, {"role": "approver", "via": "oidc"})]
    assert changes[0].actor == email
    # Out of every mapped group: refused, and the account keeps its last role until then.
    set_user(issuer, sub, email=email, email_verified=True, groups=[UNMAPPED])
    with browser_client() as browser:
        assert sign_in(browser, url, sub).status_code == 403


# -- accounts --------------------------------------------------------------------------------

def test_an_existing_password_account_is_linked_by_its_verified_address(console, issuer: str):
    app, url = console
    existing = make_account(app, f"bea-{uuid.uuid4().hex[:6]}@gt.example.nl", "editor",
                            totp=False)
    sub, _ = person(issuer, GROUPS["editor"], email=existing.email.upper())
    with browser_client() as browser:
        continued(sign_in(browser, url, sub))
    user = account(app, existing.email)
    assert user is not None and user.oidc_subject == f"{issuer}|{sub}"
    assert user.password_hash  # the password still works beside it
    links = audit_rows(app, "user.link")
    assert links[0].after == {"oidc_subject": f"{issuer}|{sub}"}
    # Another identity with the same address later does not take the account over.
    other, _ = person(issuer, GROUPS["admin"], email=existing.email)
    with browser_client() as browser:
        response = sign_in(browser, url, other)
        assert response.status_code == 403 and "andere identiteit" in response.text
    user = account(app, existing.email)
    assert user is not None and user.role == "editor"
    # An admin's reset forgets the link; the next sign-in links whoever has the address now.
    with session_scope(app.sessions) as session:
        users.reset_user(session, app.settings, users.Actor(name="os:tests"), existing.email)
    with browser_client() as browser:
        continued(sign_in(browser, url, other))
    user = account(app, existing.email)
    assert user is not None and user.oidc_subject == f"{issuer}|{other}"
    assert user.role == "admin"


def test_an_unverified_address_links_and_makes_nothing(console, issuer: str):
    app, url = console
    existing = make_account(app, f"cas-{uuid.uuid4().hex[:6]}@gt.example.nl", "viewer",
                            totp=False)
    sub, _ = person(issuer, GROUPS["admin"], email=existing.email, verified=False)
    with browser_client() as browser:
        response = sign_in(browser, url, sub)
        assert response.status_code == 403 and "bevestigd e-mailadres" in response.text
    user = account(app, existing.email)
    assert user is not None and user.oidc_subject == "" and user.role == "viewer"


def test_verified_email_domains_vouch_for_addresses_entra_sends_unverified(
        settings: Settings, issuer: str):
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    # Entra ID sends an address without email_verified.
    set_user(issuer, sub, email=f"{sub}@Gemeente.example.nl", groups=[GROUPS["viewer"]])
    with console_with_oidc(settings, issuer, verified_email_domains=("gemeente.example.nl",)
                           ) as (app, url), browser_client() as browser:
        continued(sign_in(browser, url, sub))
        assert account(app, f"{sub}@gemeente.example.nl") is not None


def test_without_create_accounts_only_known_people_get_in(settings: Settings, issuer: str):
    with console_with_oidc(settings, issuer, create_accounts=False) as (app, url):
        sub, email = person(issuer, GROUPS["editor"])
        with browser_client() as browser:
            response = sign_in(browser, url, sub)
            assert response.status_code == 403 and "geen account" in response.text
        assert account(app, email) is None
        with session_scope(app.sessions) as session:
            users.add_user(session, app.settings, users.Actor(name="os:tests"), email, "viewer")
        with browser_client() as browser:
            continued(sign_in(browser, url, sub))
        user = account(app, email)
        assert user is not None and user.role == "editor"  # the groups decide


# -- sessions, limits, second factor, password form ------------------------------------------

def test_the_sign_in_rotates_the_session_the_browser_had(console, issuer: str):
    """A half session (password right, code owed) or any cookie the browser brought ends when
    the provider's sign-in starts a new one: no session fixation."""
    app, url = console
    known = make_account(app, f"eva-{uuid.uuid4().hex[:6]}@gt.example.nl", "editor")
    sub, _ = person(issuer, GROUPS["editor"], email=known.email)
    with browser_client() as browser:
        page = browser.get(f"{url}/signin")
        half = browser.post(f"{url}/signin", data={
            "csrf": csrf_token(page.text), "email": known.email, "password": known.password})
        assert half.headers["location"] == "/signin/code"
        first = browser.cookies.get("gt_console")
        continued(sign_in(browser, url, sub))
        second = browser.cookies.get("gt_console")
        assert first and second and first != second
        assert known.email in signed_in_as(browser, url)
    with session_scope(app.sessions) as session:
        live = {s.id for s in session.scalars(select(ConsoleSession))}
    assert accounts.session_id(first) not in live
    assert accounts.session_id(second) in live


def test_the_sign_in_rate_limit_counts_the_button_too(settings: Settings, issuer: str):
    with console_with_oidc(settings, issuer, signin_rate_per_client=2) as (_app, url), \
            browser_client() as browser:
        start(browser, url)
        start(browser, url)
        response = browser.get(f"{url}/signin/oidc")
        assert response.status_code == 429 and "Te veel pogingen" in response.text
        page = browser.get(f"{url}/signin")
        refused = browser.post(f"{url}/signin", data={
            "csrf": csrf_token(page.text), "email": "x@gt.example.nl", "password": "x" * 12})
        assert refused.status_code == 429


def test_refused_callbacks_count_against_the_limit_and_stop_filling_the_audit_trail(
        settings: Settings, issuer: str):
    with console_with_oidc(settings, issuer, signin_rate_per_client=3) as (app, url), \
            browser_client() as browser:
        answers = [browser.get(f"{url}/signin/oidc/callback",
                               params={"state": f"guess-{n}", "code": "x"}).status_code
                   for n in range(5)]
        assert answers == [400, 400, 400, 429, 429]
        assert len(audit_rows(app, "signin.failed")) == 3


def test_admins_are_asked_for_totp_only_when_configured(settings: Settings, issuer: str):
    with console_with_oidc(settings, issuer, require_totp_for_admins=True) as (app, url):
        sub, _email = person(issuer, GROUPS["admin"])
        with browser_client() as browser:
            response = sign_in(browser, url, sub)
            assert response.status_code == 403 and "authenticator-app" in response.text
        # An admin with a second factor set up gets a half session that owes the code.
        admin = make_account(app, f"root-{uuid.uuid4().hex[:6]}@gt.example.nl", "admin")
        sub, _ = person(issuer, GROUPS["admin"], email=admin.email)
        with browser_client() as browser:
            continued(sign_in(browser, url, sub), onward="/signin/code")
            assert browser.get(f"{url}/").status_code == 303
            page = browser.get(f"{url}/signin/code")
            done = browser.post(f"{url}/signin/code", data={
                "csrf": csrf_token(page.text), "code": admin.code()})
            assert done.status_code == 303 and done.headers["location"] == "/"
            assert admin.email in signed_in_as(browser, url)
        # The half session remembered the provider: the row after the code says both steps.
        assert [r.after for r in audit_rows(app, "signin")] == [{"method": "oidc", "totp": True}]


def test_password_sign_in_can_be_turned_off(settings: Settings, issuer: str):
    with console_with_oidc(settings, issuer, password_signin=False) as (app, url), \
            browser_client() as browser:
        known = make_account(app, f"dirk-{uuid.uuid4().hex[:6]}@gt.example.nl", "editor",
                             totp=False)
        page = browser.get(f"{url}/signin")
        assert 'href="/signin/oidc"' in page.text and 'name="password"' not in page.text
        # The page has no form to take a token from: make the one it would have carried.
        from mailer.console.base import Console

        token = Console(app).csrf_token(browser.cookies["gt_console_pre"])
        refused = browser.post(f"{url}/signin", data={
            "csrf": token, "email": known.email, "password": PASSWORD})
        assert refused.status_code == 404
        assert "gt_console=" not in refused.headers.get("set-cookie", "")


def test_the_sign_in_page_shows_the_button_with_its_label(settings: Settings, issuer: str):
    with console_with_oidc(settings, issuer, label="Inloggen met Gemeente-ID") as (_app, url), \
            browser_client() as browser:
        page = browser.get(f"{url}/signin")
        assert "Inloggen met Gemeente-ID" in page.text and 'name="password"' in page.text


def test_without_oidc_the_routes_are_not_found_and_the_page_has_no_button(console_app_plain):
    page = console_app_plain.get("/signin")
    assert "/signin/oidc" not in page.text
    assert console_app_plain.get("/signin/oidc").status_code == 404
    assert console_app_plain.get("/signin/oidc/callback?state=x&code=y").status_code == 404


@pytest.fixture
def console_app_plain(app: App):  # type: ignore[no-untyped-def]
    from console_support import console_client

    return console_client(app)


# -- the ID token checks, on tokens the provider really issued ----------------------------

def _token_for(issuer: str, client_id: str, nonce: str, sub: str) -> dict[str, object]:
    """A token response of the provider for `client_id`, got by the code flow directly."""
    redirect = "http://127.0.0.1:9/callback"
    with httpx.Client(timeout=20) as client:
        query = {"client_id": client_id, "redirect_uri": redirect, "response_type": "code",
                 "scope": "openid email", "state": "s", "nonce": nonce}
        form = client.get(f"{issuer}/oauth2/authorize", params=query)
        assert form.status_code == 200, form.text
        back = client.post(f"{issuer}/oauth2/authorize", params=query, data={"sub": sub})
        code = httpx.URL(back.headers["location"]).params["code"]
        token = client.post(f"{issuer}/oauth2/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
            auth=(client_id, "x"))
        assert token.status_code == 200, token.text
        return dict(token.json())


def _provider(settings: Settings, issuer: str):  # type: ignore[no-untyped-def]
    from oidc_support import oidc_settings

    from mailer.console.oidc import Provider

    return Provider(oidc_settings(settings, issuer, "http://127.0.0.1:1").console.oidc)


def test_id_tokens_for_another_audience_or_tampered_are_refused(settings: Settings,
                                                                 issuer: str):
    import asyncio

    from mailer.console.oidc import ProviderError

    sub, _ = person(issuer, GROUPS["editor"])
    provider = _provider(settings, issuer)
    good = _token_for(issuer, CLIENT_ID, "n-1", sub)
    claims = asyncio.run(provider.verify(good, "n-1"))
    assert claims["sub"] == sub and CLIENT_ID in claims["aud"]
    with pytest.raises(ProviderError, match="nonce"):
        asyncio.run(_provider(settings, issuer).verify(good, "n-2"))
    other = _token_for(issuer, "another-app", "n-1", sub)
    with pytest.raises(ProviderError, match=r"aud|azp"):
        asyncio.run(_provider(settings, issuer).verify(other, "n-1"))
    head, body, signature = str(good["id_token"]).split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(ProviderError, match="ID token refused"):
        asyncio.run(_provider(settings, issuer).verify(
            {**good, "id_token": f"{head}.{body}.{flipped}"}, "n-1"))


def test_an_unreachable_provider_gives_a_page_not_a_crash(settings: Settings):
    with console_with_oidc(settings, "http://127.0.0.1:9") as (_app, url), \
            browser_client() as browser:
        response = browser.get(f"{url}/signin/oidc")
        assert response.status_code == 502 and "geen (geldig) antwoord" in response.text


# -- settings --------------------------------------------------------------------------------

def _load(config: Path, section: str, env: dict[str, str] | None = None) -> Settings:
    text_ = config.read_text(encoding="utf-8")
    start_ = text_.index("[console.oidc]\n")
    end = text_.index("[templates]")
    config.write_text(text_[:start_] + section + "\n" + text_[end:], encoding="utf-8")
    return load_settings(config, environ={"MAILER_SECRET_KEY": "k" * 40, **(env or {})})


GOOD = """[console.oidc]
enabled = true
issuer = "https://login.microsoftonline.com/3f0e7c1a-0000-4000-8000-000000000000/v2.0"
client_id = "9a8b7c6d-0000-4000-8000-000000000000"

[console.oidc.roles]
"6f1c2a9e-0000-4000-8000-000000000001" = "editor"
"Mailer.Admin" = "admin"
"""


def test_settings_read_the_section_and_the_secret_from_the_environment(config_file: Path):
    loaded = _load(config_file, GOOD, {"MAILER_CONSOLE_OIDC_SECRET": "s3cr3t-value"})
    oidc = loaded.console.oidc
    assert oidc.enabled and oidc.client_secret == "s3cr3t-value"
    assert oidc.roles == {"6f1c2a9e-0000-4000-8000-000000000001": "editor",
                          "Mailer.Admin": "admin"}
    assert oidc.groups_claim == "groups" and oidc.create_accounts and oidc.password_signin
    assert not oidc.require_totp_for_admins and oidc.label == "Aanmelden met Microsoft"
    assert "s3cr3t-value" not in repr(loaded)


@pytest.mark.parametrize(("change", "message"), [
    ('issuer = "http://login.example.nl/v2.0"', "console.oidc.issuer: must be an https:// URL"),
    ('issuer = "login.microsoftonline.com"', "console.oidc.issuer: must be an https:// URL"),
    ('client_id = ""', "console.oidc.client_id: is needed"),
    ('scopes = ["email"]', "console.oidc.scopes: must include openid"),
    ('client_secret = "x"', "console.oidc.client_secret: secrets are read only from the "
                            "environment"),
])
def test_settings_refuse_a_wrong_provider_in_one_line(config_file: Path, change: str,
                                                      message: str):
    key = change.split(" ", 1)[0]
    section = "\n".join(line for line in GOOD.splitlines()
                        if not line.startswith(f"{key} ")).replace(
        "[console.oidc]\n", f"[console.oidc]\n{change}\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        _load(config_file, section)
    assert "\n" not in str(caught.value)
    assert '"x"' not in str(caught.value)


def test_settings_allow_http_only_on_loopback_and_check_roles(config_file: Path):
    for host in ("127.0.0.1:5556", "[::1]:5556"):
        loaded = _load(config_file, GOOD.replace(
            "https://login.microsoftonline.com/3f0e7c1a-0000-4000-8000-000000000000/v2.0",
            f"http://{host}"))
        assert loaded.console.oidc.issuer == f"http://{host}"
    with pytest.raises(ConfigError, match=r"console.oidc.roles.Mailer.Admin: unknown role "
                                          r"'root'"):
        _load(config_file, GOOD.replace('"Mailer.Admin" = "admin"', '"Mailer.Admin" = "root"'))
    with pytest.raises(ConfigError, match=r"console\.oidc\.roles: map at least one"):
        _load(config_file, GOOD.split("[console.oidc.roles]")[0])
    with pytest.raises(ConfigError, match=r"console\.oidc\.password_signin: false needs"):
        _load(config_file, "[console.oidc]\npassword_signin = false\n")


def test_the_settings_know_the_roles_the_accounts_have():
    from mailer.accounts.models import ROLES

    assert CONSOLE_ROLES == ROLES


# -- schema ----------------------------------------------------------------------------------

def test_models_and_migration_agree_and_one_identity_is_one_account(app: App):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.exc import IntegrityError

    import mailer.database.tables  # noqa: F401  (every table on Base.metadata)
    from subscribers.models import Base

    with app.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata)
                if "oidc" in repr(d) or "console_users" in repr(d)]
    assert diff == []
    with session_scope(app.sessions) as session:
        for n in range(3):  # many accounts without an identity
            accounts.add_user(session, f"p{n}@gt.example.nl", "viewer")
        accounts.add_oidc_user(session, "q@gt.example.nl", "viewer", "iss|1")
    with pytest.raises(IntegrityError), session_scope(app.sessions) as session:
        accounts.add_oidc_user(session, "r@gt.example.nl", "viewer", "iss|1")


def test_a_late_flow_is_refused_and_old_ones_are_pruned(app: App):
    import datetime as dt

    from subscribers.models import utcnow

    long_ago = utcnow() - accounts.OIDC_FLOW_MAX_AGE - dt.timedelta(seconds=1)
    with session_scope(app.sessions) as session:
        accounts.start_oidc_flow(session, state="late", nonce="n", code_verifier="v",
                                 binding="b", now=long_ago)
    with session_scope(app.sessions) as session:
        assert accounts.take_oidc_flow(session, "late", "b") is None
        accounts.start_oidc_flow(session, state="old", nonce="n", code_verifier="v",
                                 binding="b", now=long_ago)
        accounts.start_oidc_flow(session, state="new", nonce="n", code_verifier="v",
                                 binding="b")
        # Starting a sign-in forgets those that never came back.
        assert len(session.scalars(select(OidcFlow)).all()) == 1
    with session_scope(app.sessions) as session:
        assert accounts.take_oidc_flow(session, "new", "wrong") is None
        assert accounts.take_oidc_flow(session, "new", "b") is not None
        assert session.scalars(select(OidcFlow)).all() == []


def test_the_migration_goes_down_and_up_again(db_url: str):
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from mailer.database.connect import _alembic_config, make_engine, upgrade_schema

    engine = make_engine(db_url)
    config = _alembic_config(engine)
    # The revision before ours, whatever it is once the migrations are chained.
    before = ScriptDirectory.from_config(config).get_revision("0013").down_revision
    try:
        command.downgrade(config, str(before))
        with engine.connect() as conn:
            assert "console_oidc_flows" not in inspect(conn).get_table_names()
            indexes = {i["name"] for i in inspect(conn).get_indexes("console_users")}
            assert "uq_console_users_oidc_subject" not in indexes
        upgrade_schema(engine)
        with engine.connect() as conn:
            assert "console_oidc_flows" in inspect(conn).get_table_names()
    finally:
        engine.dispose()


def test_every_refusal_reason_has_its_text_in_both_languages():
    from mailer.console.texts import LANGUAGES, TEXTS
    from mailer.usecases.oidc import REASONS

    for lang in LANGUAGES:
        assert [r for r in REASONS if f"oidc.refused.{r}" not in TEXTS[lang]] == [], lang
