"""Mail names no row ids: the VERP envelope sender and the List-Unsubscribe mailto token carry
a sealed value (kernel.tokens), as the links carry public ids.

Replayed against the running parts: a newsletter sent with the CLI through the relay; its
envelope sender and mailto token show neither the delivery's nor the subscriber's row id (in
decimal or base36); a bounce to that VERP address and an unsubscribe mail to that mailto,
through the bounce receiver on a loopback port, still find their delivery and person; a sealed
token changed by one letter finds no one; a token of the earlier shape, in mail sent before
the upgrade, still works (the transition the README's upgrade note describes).
"""

from __future__ import annotations

from bounces_support import sample
from delivery_support import content_file
from live_support import Receiver, live, live_factory  # noqa: F401  (fixtures)
from sqlalchemy import text

from mailer.database.connect import session_scope
from mailer.kernel.tokens import _base36
from subscribers import service

ANNA = "anna.devries@gemeente-a.nl"  # as in the sample bounce
OTHERS = [f"lid{n}@gemeente-b.nl" for n in range(40)]


def _legacy_mailto(app, subscriber_id: int) -> str:
    """A mailto token as made before this change: `<base36 id>-<mac>`."""
    return f"{_base36(subscriber_id)}-{app.signer._mailto_mac(subscriber_id)}"


def test_verp_and_mailto_show_no_row_ids_and_still_work(live_factory, run_cli, tmp_path,
                                                         monkeypatch):
    live = live_factory()
    app = live.app
    run_cli("lists", "create", "nieuwsbrief", "--title", "GT Nieuwsbrief")
    people = tmp_path / "mensen.csv"
    people.write_text("email;naam\n" + "".join(f"{a};Lid\n" for a in OTHERS)
                      + f"{ANNA};Anna de Vries\n", encoding="utf-8")
    run_cli("subscribers", "import", str(people), "--list", "nieuwsbrief")
    run_cli("campaigns", "create", "--content", str(content_file(tmp_path)), "--list",
            "nieuwsbrief")
    monkeypatch.setenv("LOGNAME", "eindredacteur")  # four-eyes: someone else approves
    run_cli("campaigns", "approve", "1")
    run_cli("campaigns", "send", "1", "--wait")
    (mail,) = live.mails_to(ANNA)
    with session_scope(app.sessions) as session:
        subscriber_id = service.get_subscriber(session, ANNA).id
        delivery_id = session.execute(text("SELECT id FROM deliveries WHERE email = :a"),
                                      {"a": ANNA}).scalar_one()
    verp = str(mail["X-Envelope-From"])
    mailto = next(part.strip(" <>") for part in str(mail["List-Unsubscribe"]).split(",")
                  if "mailto:" in part)
    verp_token = verp.split("+", 1)[1].split("@")[0]
    mailto_token = mailto.split("+", 1)[1].split("@")[0]
    for token, row_id in ((verp_token, delivery_id), (mailto_token, subscriber_id)):
        assert len(token) == 26 and "-" not in token
        assert not token.startswith((_base36(row_id), str(row_id)))
    # Opaque: consecutive rows get unrelated tokens (no shared prefix as base36 ids had).
    other = app.signer.verp_address(delivery_id + 1, app.settings.sender.bounce_domain)
    assert other.split("+")[1][:4] != verp_token[:4]

    unsubscribe = sample("handmade_unsubscribe_mail.eml")
    forged = verp_token[:-2] + ("aa" if verp_token[-2:] != "aa" else "bb")
    receiver = Receiver(app)
    try:
        # The mailto token names its person whatever the From says.
        receiver.send(OTHERS[0], mailto.removeprefix("mailto:").split("?")[0],
                      unsubscribe.replace(ANNA.encode(), OTHERS[0].encode()))
        assert _status(app, ANNA) == "unsubscribed"
        assert _status(app, OTHERS[0]) == "active"

        receiver.send("", verp.replace(verp_token, forged),
                      sample("handmade_hard_511.eml", verp.replace(verp_token, forged)))
        assert _matched(app) == []  # a changed letter names no delivery
        receiver.send("", verp, sample("handmade_hard_511.eml", verp))
        assert _matched(app) == [(delivery_id, "verp")]

        # Mail sent before the upgrade carries the old shape: still accepted, for now.
        with session_scope(app.sessions) as session:
            old_id = service.get_subscriber(session, OTHERS[1]).id
        old = f"afmelden+{_legacy_mailto(app, old_id)}@{app.settings.sender.bounce_domain}"
        receiver.send(OTHERS[2], old, unsubscribe.replace(ANNA.encode(), OTHERS[2].encode())
                      .replace(b"unsub-1", b"unsub-legacy"))
        assert _status(app, OTHERS[1]) == "unsubscribed"
        assert _status(app, OTHERS[2]) == "active"
    finally:
        receiver.close()


def _status(app, address: str) -> str:
    with session_scope(app.sessions) as session:
        return service.get_subscriber(session, address).status


def _matched(app) -> list[tuple[int, str]]:
    with session_scope(app.sessions) as session:
        return [tuple(r) for r in session.execute(text(
            "SELECT delivery_id, matched_by FROM bounces WHERE delivery_id IS NOT NULL"))]
