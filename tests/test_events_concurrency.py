"""The last seat, asked for by many people at the same moment, is given exactly once.

Real concurrent transactions: each thread has its own session and connection, and all start
their answer together (a barrier). On PostgreSQL the event's row lock (SELECT ... FOR UPDATE)
makes them queue; on SQLite BEGIN IMMEDIATE does.
"""

from __future__ import annotations

import threading

from mailer.app import App
from mailer.database.connect import session_scope
from mailer.events import service
from mailer.events.dates import parse_local
from mailer.settings import Settings
from subscribers.service import SubscriberData, add_subscriber

RACERS = 8


def test_last_seat_is_given_once(app: App, settings: Settings) -> None:
    with session_scope(app.sessions) as session:
        people = [
            add_subscriber(session, SubscriberData(email=f"racer{i}@gemeente.nl")).id
            for i in range(RACERS + 1)
        ]
        event = service.create_event(
            session,
            settings,
            service.EventFields(
                title="GT Connect Oost",
                region="Oost",
                starts_at=parse_local("2099-04-15 13:30", settings.timezone),
                ends_at=parse_local("2099-04-15 16:00", settings.timezone),
                capacity=2,
            ),
        )
        eid = event.id
        # One seat is taken already: RACERS people race for the other.
        service.rsvp(session, settings, eid, people[-1], "yes")

    barrier = threading.Barrier(RACERS)
    outcomes: list[service.Answer] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def race(person: int) -> None:
        try:
            with app.sessions() as session, session.begin():
                barrier.wait(timeout=30)
                outcome = service.rsvp(session, settings, eid, person, "yes")
            with lock:
                outcomes.append(outcome)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=race, args=(p,)) for p in people[:RACERS]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(outcomes) == RACERS
    assert sum(1 for o in outcomes if not o.waiting) == 1
    assert sorted(o.position for o in outcomes if o.waiting) == list(range(1, RACERS))

    with session_scope(app.sessions) as session:
        counts = service.event_counts(session, eid)
    assert (counts.yes, counts.waiting) == (2, RACERS - 1)
