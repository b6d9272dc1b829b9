"""The right to erasure across every table GT Mailer keeps: one call removes a person.

Each part of the mailer that stores an address or a name outside the subscribers package clears
its own rows here (deliveries now; bounces and RSVPs add theirs), then the subscribers package
deletes the person and keeps only the suppression hash. All of it happens in the caller's
transaction, so an erasure is complete or not done at all.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from mailer.bounces import service as bounces
from mailer.campaigns.models import Delivery
from subscribers import service

__all__ = ["erase_person"]


def erase_person(session: Session, email: str, actor: str = "") -> str:
    """Erase everything held on the person with this address; returns the suppression hash.

    SubscriberNotFoundError if there is no such subscriber (nothing is changed then).
    """
    subscriber = service.get_subscriber(session, email)
    # Delivery rows stay for the campaign's statistics but lose the address; subscriber_id is
    # nulled by the foreign key (ON DELETE SET NULL) when the person is deleted below.
    session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id)
        .values(email="")
        .execution_options(synchronize_session=False)
    )
    # Other parts clear their rows for `subscriber.id` / the address here, before the delete.
    bounces.forget_subscriber(session, subscriber.id, subscriber.email)
    return service.erase(session, subscriber.email, actor=actor)
