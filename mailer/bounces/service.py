"""The bounce pipeline: record what arrived, link it to a delivery or subscriber, apply the policy.

Every intake (file, Maildir, mbox, stdin, SMTP/LMTP receiver, IMAP poller) and the delivery
engine's send-time failures end here, so every source produces the same Bounce rows and one
place decides what they do. Functions take an open Session; the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailer.bounces import queries
from mailer.bounces.classify import kind_for_smtp_code, status_from_text
from mailer.bounces.models import COUNTED_KINDS, KINDS, Bounce, BounceMessage, BounceScore
from mailer.bounces.parse import Finding, Report, clean_text, parse_message
from mailer.bounces.policy import Policy, next_soft_score
from mailer.campaigns.models import Delivery
from mailer.errors import BounceError, NotFoundError, TokenError
from mailer.kernel.tokens import Signer
from mailer.settings import BounceSettings, Settings
from subscribers import queries as subscriber_queries
from subscribers import service as subscribers
from subscribers.models import Subscriber, utcnow

__all__ = [
    "IngestResult",
    "ingest",
    "record_send_failures",
    "send_failure_hook",
    "reactivate",
    "purge",
    "campaign_bounce_summary",
    "bounce_stats",
    "bounce_history",
    "bounce_score",
    "list_bounces",
    "get_bounce",
    "forget_subscriber",
]

log = logging.getLogger(__name__)

_COMPLAINT_RATE_ALERT = 0.003
#: A report without a VERP token acts on a subscriber only if we sent them mail this recently.
RECIPIENT_MATCH_DAYS = 30


@dataclass
class IngestResult:
    """What one arrived message became."""

    message_id: int | None
    duplicate: bool = False
    bounces: list[Bounce] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [b.kind for b in self.bounces]


def ingest(
    session: Session,
    raw: bytes,
    *,
    source: str,
    settings: Settings,
    signer: Signer,
    envelope_from: str = "",
    envelope_to: Sequence[str] = (),
    size: int | None = None,
    now: dt.datetime | None = None,
) -> IngestResult:
    """Record one arrived message and act on it. Never raises on bad input: what cannot be
    understood is stored as `unknown`. A message seen before (same fingerprint) changes nothing.
    """
    now = now or utcnow()
    report = parse_message(raw, envelope_from=envelope_from, envelope_to=envelope_to,
                           unsubscribe_address=settings.sender.unsubscribe_address, size=size)
    existing = queries.message_by_fingerprint(session, report.fingerprint)
    if existing is not None:
        return IngestResult(message_id=existing.id, duplicate=True)
    message = BounceMessage(
        received_at=now, source=source, fingerprint=report.fingerprint,
        envelope_from=report.envelope_from, envelope_to=", ".join(report.envelope_to)[:4000],
        from_header=report.from_header, subject=report.subject, size=report.size,
        truncated=report.truncated, raw=report.raw,
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:  # the same message arrived through another intake a moment ago
        found = queries.message_by_fingerprint(session, report.fingerprint)
        return IngestResult(message_id=found.id if found else None, duplicate=True)

    bounces = _link(session, report, message, source, signer, now)
    session.add_all(bounces)
    session.flush()
    _apply(session, bounces, Policy.from_settings(settings.bounces), now)
    return IngestResult(message_id=message.id, bounces=bounces)


def _verify_token(report: Report, signer: Signer) -> tuple[int | None, bool | None]:
    """(delivery id, token_valid): None/None without a token, None/False for a forged one."""
    if not report.token_candidates:
        return None, None
    for candidate in report.token_candidates:
        try:
            return signer.parse_verp(candidate), True
        except TokenError:
            continue
    log.warning("bounce with a VERP token that fails its signature: %s",
                report.token_candidates[0][:100])
    return None, False


def _link(
    session: Session, report: Report, message: BounceMessage, source: str, signer: Signer,
    now: dt.datetime,
) -> list[Bounce]:
    delivery_id, token_valid = _verify_token(report, signer)
    delivery = (queries.deliveries_by_ids(session, [delivery_id]).get(delivery_id)
                if delivery_id is not None else None)
    by_address: dict[str, Subscriber] = {}
    mailed: set[int] = set()
    if token_valid is None:
        # No token at all: fall back to the addresses the report names.
        wanted = {subscribers.email_key(a) for f in report.findings
                  for a in (f.recipient, *f.alternates) if a}
        by_address = subscriber_queries.subscribers_by_keys(session, wanted)
        # Anyone can send a report without a token; it acts only on people we mailed lately.
        mailed = queries.mailed_since(session, {s.id for s in by_address.values()},
                                      now - dt.timedelta(days=RECIPIENT_MATCH_DAYS))

    bounces = []
    for index, finding in enumerate(report.findings):
        bounce = Bounce(
            received_at=now, source=source, kind=finding.kind, action=finding.action,
            status=finding.status[:16], diagnostic=clean_text(finding.diagnostic, 4000),
            recipient=clean_text(finding.recipient, 320), message_id=message.id,
            token_valid=token_valid, matched_by="none",
            dedupe_key=f"m:{report.fingerprint[:48]}:{index}",
        )
        if report.problem:
            bounce.outcome = "kept for review"
        if delivery is not None:
            bounce.delivery_id = delivery.id
            bounce.campaign_id = delivery.campaign_id
            bounce.subscriber_id = delivery.subscriber_id
            bounce.matched_by = "verp"
            bounce.recipient = bounce.recipient or delivery.email
        elif token_valid is False:
            bounce.outcome = "forged or damaged VERP token: recorded, no action"
        else:
            sub = _first_match(finding, by_address)
            if sub is not None:
                bounce.subscriber_id = sub.id
                bounce.matched_by = "recipient"
                if sub.id not in mailed and finding.kind in COUNTED_KINDS:
                    bounce.outcome = (f"no token, and not mailed in the last "
                                      f"{RECIPIENT_MATCH_DAYS} days: recorded, no action")
        if (bounce.subscriber_id is None and not bounce.outcome
                and bounce.kind in (*COUNTED_KINDS, "unsubscribe")):
            bounce.outcome = "no subscriber matched: recorded, no action"
        bounces.append(bounce)
    return bounces


def _first_match(finding: Finding, by_address: dict[str, Subscriber]) -> Subscriber | None:
    for address in (finding.recipient, *finding.alternates):
        if address and subscribers.email_key(address) in by_address:
            return by_address[subscribers.email_key(address)]
    return None


def _set_status(session: Session, sub: Subscriber, status: str, source: str, detail: str,
                now: dt.datetime) -> None:
    # The subscriber was loaded with the whole batch; the subscribers package changes its row.
    subscribers.set_statuses(session, [sub], status, source=source, detail=detail, at=now)


def _apply(session: Session, bounces: Sequence[Bounce], policy: Policy, now: dt.datetime) -> None:
    """The policy (see mailer.bounces.policy) for a batch of new bounce rows."""
    acting = [b for b in bounces if b.subscriber_id is not None and not b.outcome
              and b.kind in (*COUNTED_KINDS, "unsubscribe")]
    ids = {b.subscriber_id for b in acting if b.subscriber_id is not None}
    people = subscriber_queries.subscribers_by_ids(session, ids)
    scores = queries.scores_by_subscriber(
        session, {b.subscriber_id for b in acting if b.kind == "soft" and b.subscriber_id})
    bounced_deliveries = [b.delivery_id for b in bounces
                          if b.delivery_id is not None and b.kind in ("hard", "soft")
                          and b.source != "send-time" and b.token_valid]
    queries.mark_deliveries_bounced(session, bounced_deliveries)
    today = now.date()
    for bounce in acting:
        sub = people.get(bounce.subscriber_id or 0)
        if sub is None:
            continue
        detail = f"bounce #{bounce.id}: {bounce.status or bounce.kind} {bounce.diagnostic}"[:500]
        if bounce.kind == "hard":
            if sub.status == "active":
                _set_status(session, sub, "bounced", "bounce", detail, now)
                bounce.outcome = "hard bounce: subscriber is now bounced"
            else:
                bounce.outcome = f"hard bounce: subscriber was already {sub.status}"
        elif bounce.kind == "soft":
            state = scores.get(sub.id)
            if state is None:
                state = scores[sub.id] = BounceScore(subscriber_id=sub.id, score=0)
                session.add(state)
            step = next_soft_score(policy, state.score, state.last_point_on, today)
            state.score, state.last_point_on, state.updated_at = step.score, step.last_point_on, now
            bounce.outcome = (f"soft bounce: score {step.score}/{policy.soft_threshold}"
                              + ("" if step.counted else " (already counted today)"))
            if step.reached and sub.status == "active":
                _set_status(session, sub, "bounced", "bounce", detail, now)
                bounce.outcome += ": subscriber is now bounced"
        elif bounce.kind == "complaint":
            # Rare (one per report): the subscribers service does the unsubscribing itself.
            subscribers.unsubscribe(session, sub.email, source="complaint")
            subscribers.suppress(session, sub.email, "complained", note=f"bounce #{bounce.id}")
            if sub.status != "complained":
                _set_status(session, sub, "complained", "complaint", detail, now)
            bounce.outcome = "complaint: unsubscribed from every list and suppressed"
        elif bounce.kind == "unsubscribe":
            subscribers.unsubscribe(session, sub.email, source="mailto", actor=sub.email)
            bounce.outcome = "unsubscribed from every list (mail to the unsubscribe address)"
    session.flush()


def record_send_failures(
    session: Session,
    failures: Iterable[tuple[int, int, str]],
    *,
    policy: Policy | None = None,
    now: dt.datetime | None = None,
) -> list[Bounce]:
    """Send-time failures from the delivery engine, as bounces: (delivery_id, code, message).

    A 5xx is hard (552, a full mailbox, soft); a 4xx that outlived its retry deadline is soft.
    Called in the engine's transaction; a failure recorded before is not counted again.
    """
    now = now or utcnow()
    items = [(int(d), int(c or 0), str(m or "")) for d, c, m in failures]
    deliveries = queries.deliveries_by_ids(session, {d for d, _c, _m in items})
    keys = {f"send:{d}" for d, _c, _m in items}
    seen = queries.existing_dedupe_keys(session, keys)
    bounces = []
    for delivery_id, code, text in items:
        key = f"send:{delivery_id}"
        delivery: Delivery | None = deliveries.get(delivery_id)
        if key in seen or delivery is None:
            continue
        seen.add(key)
        kind = kind_for_smtp_code(code)
        status = status_from_text(text) or (f"{code // 100}.0.0" if kind != "unknown" else "")
        bounces.append(Bounce(
            received_at=now, source="send-time", kind=kind, action="failed", status=status,
            diagnostic=clean_text(f"{code} {text}".strip(), 4000), recipient=delivery.email,
            delivery_id=delivery.id, subscriber_id=delivery.subscriber_id,
            campaign_id=delivery.campaign_id, matched_by="delivery", dedupe_key=key,
        ))
    session.add_all(bounces)
    session.flush()
    _apply(session, bounces, policy or Policy(), now)
    return bounces


def send_failure_hook(
    settings: BounceSettings,
) -> Callable[[Session, list[tuple[int, int, str]]], list[Bounce]]:
    """record_send_failures bound to the configured policy, for the delivery engine's hook."""
    policy = Policy.from_settings(settings)

    def hook(session: Session, failures: list[tuple[int, int, str]]) -> list[Bounce]:
        return record_send_failures(session, failures, policy=policy)

    return hook


def reactivate(session: Session, email: str, reason: str, *, actor: str = "") -> Subscriber:
    """Make a bounced (or complained) subscriber active again, clearing the soft score; the
    reason is kept in the consent history. Lists left after a complaint stay left."""
    if not reason.strip():
        raise BounceError("a reason is needed to reactivate a subscriber")
    sub = subscribers.get_subscriber(session, email)
    cleared = queries.delete_score(session, sub.id)
    if sub.status not in ("bounced", "complained", "active"):
        raise BounceError(f"{sub.email} is {sub.status}, not bounced; nothing to reactivate")
    if sub.status == "active" and not cleared:
        raise BounceError(f"{sub.email} is active and has no bounce score; nothing to reactivate")
    if sub.status == "complained" and subscribers.is_suppressed(session, sub.email):
        subscribers.unsuppress(session, sub.email)
    subscribers.set_status(session, sub.email, "active", source="reactivate", actor=actor,
                           detail=reason.strip()[:500])
    if sub.status == "active" and cleared:
        subscribers.record_consent(session, sub, "bounce-score-cleared", "reactivate", actor,
                                   detail=reason.strip()[:500])
    session.flush()
    return sub


def purge(session: Session, retention_days: int, *, now: dt.datetime | None = None) -> int:
    """Forget the raw text of messages older than the retention period; returns how many."""
    now = now or utcnow()
    return queries.purge_raw(session, now - dt.timedelta(days=retention_days), now)


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    sent = row["sent"]
    row["bounce_rate"] = round((row["hard"] + row["soft"]) / sent, 4) if sent else 0.0
    row["hard_rate"] = round(row["hard"] / sent, 4) if sent else 0.0
    row["complaint_rate"] = round(row["complaints"] / sent, 4) if sent else 0.0
    return row


def bounce_stats(session: Session, campaign_id: int | None = None) -> list[dict[str, Any]]:
    """Per campaign: sent, hard, soft, complaints, and the bounce, hard and complaint rates."""
    return [_rates(row) for row in queries.campaign_counts(session, campaign_id)]


def campaign_bounce_summary(
    session: Session, campaign_id: int, *, settings: BounceSettings | None = None
) -> dict[str, Any]:
    """One campaign's bounce figures plus `flags`: a line per alert threshold it passed."""
    rows = bounce_stats(session, campaign_id)
    if not rows:
        raise NotFoundError(f"no campaign {campaign_id}")
    row = rows[0]
    limits = settings or BounceSettings()
    flags = []
    if row["sent"] and row["hard_rate"] > limits.hard_rate_alert:
        flags.append(f"hard-bounce rate {row['hard_rate']:.1%} is above "
                     f"{limits.hard_rate_alert:.1%}")
    complaint_limit = min(limits.complaint_rate_alert, _COMPLAINT_RATE_ALERT)
    if row["sent"] and row["complaint_rate"] > complaint_limit:
        flags.append(f"complaint rate {row['complaint_rate']:.2%} is above {complaint_limit:.1%}")
    row["flags"] = flags
    return row


def bounce_history(session: Session, subscriber_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """A subscriber's bounces, newest first, for `subscribers show`."""
    return [_as_dict(b) for b in queries.bounces_of_subscriber(session, subscriber_id, limit)]


def bounce_score(session: Session, subscriber_id: int) -> int:
    """The subscriber's current soft-bounce score (0 when none)."""
    state = queries.scores_by_subscriber(session, [subscriber_id]).get(subscriber_id)
    return state.score if state is not None else 0


def list_bounces(
    session: Session, *, campaign_id: int | None = None, kind: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    if kind is not None and kind not in KINDS:
        raise BounceError(f"unknown bounce kind {kind!r}; use one of {', '.join(KINDS)}")
    return [_as_dict(b) for b in queries.list_bounces(session, campaign_id=campaign_id,
                                                      kind=kind, limit=limit)]


def get_bounce(session: Session, bounce_id: int) -> dict[str, Any]:
    """One bounce with its message (raw text included, unless purged)."""
    try:
        bounce, message = queries.bounce_with_message(session, bounce_id)
    except LookupError:
        raise NotFoundError(f"no bounce {bounce_id}") from None
    record = _as_dict(bounce)
    record["message"] = None if message is None else {
        "id": message.id, "source": message.source, "received_at": message.received_at,
        "envelope_from": message.envelope_from, "envelope_to": message.envelope_to,
        "from": message.from_header, "subject": message.subject, "size": message.size,
        "truncated": message.truncated, "purged_at": message.purged_at,
        "raw": None if message.raw is None else message.raw.decode("utf-8", "replace"),
    }
    return record


def forget_subscriber(session: Session, subscriber_id: int, email: str) -> None:
    """For erasure (usecases.privacy): remove addresses and raw mail of a person's bounces."""
    queries.forget_subscriber(session, subscriber_id, subscribers.email_key(email))


def _as_dict(b: Bounce) -> dict[str, Any]:
    return {
        "id": b.id, "received_at": b.received_at, "source": b.source, "kind": b.kind,
        "action": b.action, "status": b.status, "diagnostic": b.diagnostic,
        "recipient": b.recipient, "delivery_id": b.delivery_id,
        "subscriber_id": b.subscriber_id, "campaign_id": b.campaign_id,
        "matched_by": b.matched_by, "token_valid": b.token_valid, "outcome": b.outcome,
    }
