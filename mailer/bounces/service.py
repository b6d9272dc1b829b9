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

from mailer.bounces import queries, reasons
from mailer.bounces.brake import BrakeRule, decide, domain_of
from mailer.bounces.classify import status_from_text
from mailer.bounces.models import (
    COUNTED_KINDS,
    KINDS,
    Bounce,
    BounceMessage,
    BounceScore,
)
from mailer.bounces.parse import Finding, Report, clean_text, parse_message
from mailer.bounces.policy import Policy, next_soft_score
from mailer.campaigns import queries as campaign_queries
from mailer.campaigns.models import Delivery, DomainPause
from mailer.errors import BounceError, NotFoundError, TokenError
from mailer.kernel.mentions import Needles
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
    "held_for_review",
    "apply_held",
    "stats_by",
    "domain_pauses",
    "resume_domain",
    "reactivate_matching",
]

log = logging.getLogger(__name__)

_COMPLAINT_RATE_ALERT = 0.003
#: Kinds that act on someone, and so need a valid token of ours to act.
_ACTING = (*COUNTED_KINDS, "unsubscribe")
HELD = "no valid token of ours: kept for review (`mailer bounces apply ID` acts on it)"


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
                           unsubscribe_address=settings.sender.unsubscribe_address,
                           reply_prefix=settings.events.reply_prefix, size=size)
    existing = queries.message_by_fingerprint(session, report.fingerprint)
    if existing is not None:
        return IngestResult(message_id=existing.id, duplicate=True)
    keep = settings.bounces.raw_keep_kib * 1024  # parsed whole, stored only this much
    message = BounceMessage(
        received_at=now, source=source, fingerprint=report.fingerprint,
        envelope_from=report.envelope_from, envelope_to=", ".join(report.envelope_to)[:4000],
        from_header=report.from_header, subject=report.subject, size=report.size,
        truncated=report.truncated or len(report.raw) > keep, raw=report.raw[:keep],
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
    queries.trim_raw_total(session, settings.bounces.raw_total_mib * 1024 * 1024, now)
    if any(b.kind == "refused" for b in bounces):
        apply_brake(session, BrakeRule.from_settings(settings.bounces), now)
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


def _mailto_subscriber(report: Report, signer: Signer) -> int | None:
    """The subscriber our signed List-Unsubscribe mailto token names (addressed, or in the
    returned original's headers), or None."""
    for candidate in report.unsubscribe_candidates:
        try:
            return signer.parse_mailto_token(candidate)
        except TokenError:
            continue
    return None


def _link(
    session: Session, report: Report, message: BounceMessage, source: str, signer: Signer,
    now: dt.datetime,
) -> list[Bounce]:
    """Bounce rows for the report's findings. A report acts only through a valid token of ours,
    and only on the one delivery (VERP) or person (mailto token) it names; everything else is
    recorded and held for review, however convincing it looks."""
    delivery_id, token_valid = _verify_token(report, signer)
    delivery = (queries.deliveries_by_ids(session, [delivery_id]).get(delivery_id)
                if delivery_id is not None else None)
    named_id = _mailto_subscriber(report, signer) if delivery is None else None
    named = (subscriber_queries.subscribers_by_ids(session, {named_id}).get(named_id)
             if named_id is not None else None)
    by_address: dict[str, Subscriber] = {}
    if delivery is None and named is None:
        # No token: match addresses for the reviewer's sake only; nothing acts on them.
        wanted = {subscribers.email_key(a) for f in report.findings
                  for a in (f.recipient, *f.alternates) if a}
        by_address = subscriber_queries.subscribers_by_keys(session, wanted)

    # With a valid VERP token, the blocks naming that delivery's address act on it; when none
    # does (a forwarded address bounced further on), the first block does. No other block ever
    # acts: the token names one delivery, whatever else the report lists.
    acting_index: set[int] = set()
    if delivery is not None:
        own = subscribers.email_key(delivery.email)
        acting_index = {i for i, f in enumerate(report.findings)
                        if own in _keys(f) or not _keys(f)}
        if not acting_index and report.findings:
            acting_index = {0}

    bounces = []
    for index, finding in enumerate(report.findings):
        bounce = Bounce(
            received_at=now, source=source, kind=finding.kind, action=finding.action,
            status=finding.status[:16], diagnostic=clean_text(finding.diagnostic, 4000),
            recipient=clean_text(finding.recipient, 320), message_id=message.id,
            reason=finding.reason or reasons.UNKNOWN,
            token_valid=token_valid, matched_by="none", held=False,
            dedupe_key=f"m:{report.fingerprint[:48]}:{index}",
        )
        if report.problem:
            bounce.outcome = "kept for review"
        keys = _keys(finding)
        if delivery is not None:
            if index not in acting_index:
                # A valid token, but this block is about someone else: it acts on no one.
                bounce.outcome = (f"names {bounce.recipient}, not the delivery its token is "
                                  f"for: recorded, no action")
            else:
                bounce.delivery_id = delivery.id
                bounce.campaign_id = delivery.campaign_id
                bounce.subscriber_id = delivery.subscriber_id
                bounce.matched_by = "verp"
                bounce.recipient = bounce.recipient if keys else delivery.email
        elif token_valid is False:
            bounce.outcome = "forged or damaged VERP token: recorded, no action"
        elif named is not None:
            if finding.kind == "unsubscribe" or not keys or \
                    subscribers.email_key(named.email) in keys:
                bounce.subscriber_id = named.id
                bounce.matched_by = "token"
                bounce.recipient = named.email if finding.kind == "unsubscribe" or not keys \
                    else bounce.recipient
            else:
                bounce.outcome = (f"names {bounce.recipient}, not the person its token is "
                                  f"for: recorded, no action")
        else:
            sub = _first_match(finding, by_address)
            if sub is not None:
                bounce.subscriber_id = sub.id
                bounce.matched_by = "recipient"
            if finding.kind in _ACTING and not bounce.outcome:
                bounce.held = True
                bounce.outcome = HELD
        if (bounce.subscriber_id is None and not bounce.outcome
                and bounce.kind in _ACTING):
            bounce.outcome = "no subscriber matched: recorded, no action"
        bounces.append(bounce)
    return bounces


def _keys(finding: Finding) -> set[str]:
    return {subscribers.email_key(a) for a in (finding.recipient, *finding.alternates) if "@" in a}


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
                          if b.delivery_id is not None and b.kind in ("hard", "soft", "refused")
                          and b.source != "send-time" and b.token_valid and not b.held]
    queries.mark_deliveries_bounced(session, bounced_deliveries)
    today = now.date()
    for bounce in bounces:
        if bounce.kind == "refused" and not bounce.outcome:
            bounce.outcome = (f"refused for the message or sender ({bounce.reason}), not the "
                              f"address: the campaign's problem, nothing done to the subscriber")
    for bounce in acting:
        sub = people.get(bounce.subscriber_id or 0)
        if sub is None:
            continue
        detail = (f"bounce #{bounce.id}: {bounce.reason} {bounce.status or bounce.kind} "
                  f"{bounce.diagnostic}")[:500]
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
    brake: BrakeRule | None = None,
    now: dt.datetime | None = None,
) -> list[Bounce]:
    """Send-time failures from the delivery engine, as bounces: (delivery_id, code, message).

    The same rules as for returned mail: the reply's words and codes give a reason, and only
    address-level reasons count against the address (a relay's "554 5.7.1 blocked" is the
    campaign's problem, and feeds the brake); a 4xx that outlived its retry deadline is
    `expired` (soft). Called in the engine's transaction; a failure recorded before is not
    counted again.
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
        status = status_from_text(text) or (f"{code // 100}.0.0" if 400 <= code < 600 else "")
        reason = reasons.reason_for(status, code or None, text, "failed")
        kind = reasons.kind_for_reason(reason, "failed", status)
        bounces.append(Bounce(
            received_at=now, source="send-time", kind=kind, action="failed", status=status,
            reason=reason, held=False,
            diagnostic=clean_text(f"{code} {text}".strip(), 4000), recipient=delivery.email,
            delivery_id=delivery.id, subscriber_id=delivery.subscriber_id,
            campaign_id=delivery.campaign_id, matched_by="delivery", dedupe_key=key,
        ))
    session.add_all(bounces)
    session.flush()
    _apply(session, bounces, policy or Policy(), now)
    if any(b.kind == "refused" for b in bounces):
        apply_brake(session, brake or BrakeRule(), now)
    return bounces


def apply_brake(session: Session, rule: BrakeRule, now: dt.datetime) -> list[DomainPause]:
    """Pause the receiving domains where many recipients were refused for one message- or
    sender-level reason within the window (mailer.bounces.brake decides); the new pauses."""
    since = now - rule.window
    failures: dict[tuple[str, str], int] = {}
    for recipient, reason in queries.refusals_since(session, since):
        key = (domain_of(recipient), reason)
        failures[key] = failures.get(key, 0) + 1
    paused = set(campaign_queries.active_pauses(session))
    candidates = {d for (d, _r), n in failures.items() if n >= rule.recipients and d not in paused}
    attempted = {d: queries.attempts_at(session, d, since) for d in sorted(candidates) if d}
    pauses = [DomainPause(domain=d.domain, reason=d.reason, detail=d.detail, failures=d.failures,
                          attempted=d.attempted, paused_at=now, resumed_by="")
              for d in decide(rule, failures, attempted, paused)]
    if pauses:
        campaign_queries.add_pauses(session, pauses)
        for pause in pauses:
            log.warning("delivery to %s paused: %s", pause.domain, pause.detail)
    return pauses


def domain_pauses(session: Session, campaign_id: int | None = None) -> list[dict[str, Any]]:
    """The paused receiving domains, why, and how many messages (of the campaign) wait."""
    return campaign_queries.waiting_by_paused_domain(session, campaign_id)


def resume_domain(session: Session, domain: str, *, actor: str = "",
                  now: dt.datetime | None = None) -> None:
    """Let delivery to a paused domain go on; the messages that waited are sent next."""
    name = domain.strip().lower().lstrip("@").rstrip(".")
    if not name:
        raise BounceError("a domain is needed, e.g. gmail.com")
    if not campaign_queries.resume_pause(session, name, actor, now or utcnow()):
        raise BounceError(f"delivery to {name} is not paused")


def send_failure_hook(
    settings: BounceSettings,
) -> Callable[[Session, list[tuple[int, int, str]]], list[Bounce]]:
    """record_send_failures bound to the configured policy, for the delivery engine's hook."""
    policy = Policy.from_settings(settings)
    brake = BrakeRule.from_settings(settings)

    def hook(session: Session, failures: list[tuple[int, int, str]]) -> list[Bounce]:
        return record_send_failures(session, failures, policy=policy, brake=brake)

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


def purge(session: Session, retention_days: int, *, junk_retention_days: int | None = None,
          total_bytes: int | None = None, now: dt.datetime | None = None) -> int:
    """Forget the raw text of messages older than the retention period, of unmatched mail
    older than its shorter one, and beyond the total cap (oldest unmatched first); how many."""
    now = now or utcnow()
    count = queries.purge_raw(session, now - dt.timedelta(days=retention_days), now)
    if junk_retention_days is not None:
        count += queries.purge_junk_raw(session, now - dt.timedelta(days=junk_retention_days),
                                        now)
    if total_bytes is not None:
        count += queries.trim_raw_total(session, total_bytes, now)
    return count


def purge_with_settings(session: Session, settings: Settings) -> int:
    """`purge` with the retention periods and total cap of settings.bounces."""
    b = settings.bounces
    return purge(session, b.retention_days, junk_retention_days=b.junk_retention_days,
                 total_bytes=b.raw_total_mib * 1024 * 1024)


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    sent = row["sent"]
    row["bounce_rate"] = round((row["hard"] + row["soft"]) / sent, 4) if sent else 0.0
    row["hard_rate"] = round(row["hard"] / sent, 4) if sent else 0.0
    row["complaint_rate"] = round(row["complaints"] / sent, 4) if sent else 0.0
    return row


def bounce_stats(session: Session, campaign_id: int | None = None, *,
                 sent_known: int | None = None) -> list[dict[str, Any]]:
    """Per campaign: sent, hard, soft, complaints, and the bounce, hard and complaint rates."""
    return [_rates(row) for row in queries.campaign_counts(session, campaign_id,
                                                           sent_known=sent_known)]


def campaign_bounce_summary(
    session: Session, campaign_id: int, *, settings: BounceSettings | None = None,
    sent_known: int | None = None,
) -> dict[str, Any]:
    """One campaign's bounce figures plus `flags`: a line per alert threshold it passed.
    `sent_known`: its deliveries that went out (sent, bounced, failed), when the caller has
    counted them already (the console's status), so they are not counted twice."""
    rows = bounce_stats(session, campaign_id, sent_known=sent_known)
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
    # Message- and sender-level refusals never count against an address: they are alerts here.
    refused: dict[str, int] = {}
    for reason, kind, count in queries.counts_by_reason(session, campaign_id):
        if kind == "refused":
            refused[reason] = refused.get(reason, 0) + count
    for reason, count in sorted(refused.items(), key=lambda kv: -kv[1]):
        flags.append(f"{count} recipient(s) refused for the message or sender: {reason}")
    pauses = campaign_queries.waiting_by_paused_domain(session, campaign_id)
    for pause in pauses:
        flags.append(f"delivery to {pause['domain']} paused ({pause['reason']}): "
                     f"{pause['waiting']} message(s) wait; "
                     f"`mailer bounces resume-domain {pause['domain']}`")
    row["refused_by_reason"] = refused
    row["paused_domains"] = pauses
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
    reason: str | None = None, limit: int = 200,
) -> list[dict[str, Any]]:
    if kind is not None and kind not in KINDS:
        raise BounceError(f"unknown bounce kind {kind!r}; use one of {', '.join(KINDS)}")
    if reason is not None and reason not in reasons.REASONS:
        raise BounceError(f"unknown reason {reason!r}; use one of {', '.join(reasons.REASONS)}")
    return [_as_dict(b) for b in queries.list_bounces(session, campaign_id=campaign_id,
                                                      kind=kind, reason=reason, limit=limit)]


def held_for_review(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Reports that would act on someone but carried no valid token: `bounces review`."""
    return [_as_dict(b) for b in queries.held_bounces(session, limit)]


def apply_held(session: Session, bounce_id: int, *, settings: BounceSettings,
               actor: str = "", now: dt.datetime | None = None) -> Bounce:
    """An admin's decision: act on a held report as if it had carried our token, on the
    subscriber its recipient names."""
    now = now or utcnow()
    bounce = queries.bounce_by_id(session, bounce_id)
    if bounce is None:
        raise NotFoundError(f"no bounce {bounce_id}")
    if not bounce.held:
        raise BounceError(f"bounce {bounce_id} is not held for review ({bounce.kind}: "
                          f"{bounce.outcome or 'nothing to apply'})")
    if bounce.subscriber_id is None and "@" in bounce.recipient:
        found = subscriber_queries.subscribers_by_keys(
            session, {subscribers.email_key(bounce.recipient)})
        sub = next(iter(found.values()), None)
        bounce.subscriber_id = sub.id if sub is not None else None
    if bounce.subscriber_id is None:
        named = bounce.recipient or "no address"
        raise BounceError(f"bounce {bounce_id} names no subscriber ({named}); nothing to apply")
    bounce.held = False
    bounce.outcome = ""
    _apply(session, [bounce], Policy.from_settings(settings), now)
    bounce.outcome = f"applied by {actor or 'an admin'}: {bounce.outcome}"[:4000]
    session.flush()
    return bounce


def stats_by(session: Session, by: str, *, campaign_id: int | None = None,
             since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Records counted by reason (with their kinds) or by receiving domain (with reasons)."""
    if by == "reason":
        rows: dict[str, dict[str, Any]] = {}
        for reason, kind, count in queries.counts_by_reason(session, campaign_id, since):
            row = rows.setdefault(reason, {"reason": reason, "records": 0,
                                           "severity": reasons.severity(reason, "5"),
                                           "kinds": {}})
            row["records"] += count
            row["kinds"][kind] = row["kinds"].get(kind, 0) + count
        return sorted(rows.values(), key=lambda r: (-r["records"], r["reason"]))
    if by == "domain":
        domains: dict[str, dict[str, Any]] = {}
        for recipient, reason, kind in queries.recipients_by_reason(session, campaign_id, since):
            name = domain_of(recipient) or "(none)"
            row = domains.setdefault(name, {"domain": name, "records": 0, "hard": 0,
                                            "soft": 0, "refused": 0, "reasons": {}})
            row["records"] += 1
            if kind in ("hard", "soft", "refused"):
                row[kind] += 1
            row["reasons"][reason] = row["reasons"].get(reason, 0) + 1
        return sorted(domains.values(), key=lambda r: (-r["records"], r["domain"]))
    raise BounceError(f"unknown grouping {by!r}; use reason or domain")


def reactivate_matching(
    session: Session, *, reasons_: Sequence[str] = (), since: dt.datetime | None = None,
    domain: str | None = None, note: str, actor: str = "", dry_run: bool = False,
) -> list[str]:
    """Undo a mass event: every subscriber now `bounced` with a bounce record matching the
    filter (reason, received since, recipient domain) becomes active again, scores cleared.
    The addresses (that would be) reactivated."""
    unknown = [r for r in reasons_ if r not in reasons.REASONS]
    if unknown:
        raise BounceError(f"unknown reason {unknown[0]!r}; use one of "
                          f"{', '.join(reasons.REASONS)}")
    if not (reasons_ or since or domain):
        raise BounceError("give at least one of --reason, --since, --domain")
    if not dry_run and not note.strip():
        raise BounceError("a reason is needed to reactivate subscribers (--note)")
    rows = queries.bounced_by_reason(session, reasons=reasons_ or None, since=since,
                                     domain=(domain or "").strip().lower().lstrip("@") or None)
    people = subscriber_queries.subscribers_by_ids(session, {sid for sid, _r in rows})
    chosen = sorted((p for p in people.values() if p.status == "bounced"), key=lambda p: p.id)
    if dry_run:
        return [p.email for p in chosen]
    queries.delete_scores(session, [p.id for p in chosen])
    if chosen:
        subscribers.set_statuses(session, chosen, "active", source="reactivate", actor=actor,
                                 detail=note.strip()[:500], at=utcnow())
    session.flush()
    return [p.email for p in chosen]


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


def messages_mentioning(session: Session, email: str, needles: Needles | None = None
                        ) -> list[dict[str, Any]]:
    """For access requests (usecases.privacy): the kept raw messages that mention the person
    (`needles`: address, name, phone; else the address alone)."""
    return [
        {"message_id": m.id, "received_at": m.received_at, "source": m.source,
         "from": m.from_header, "subject": m.subject, "size": m.size,
         "raw_kept": m.raw is not None}
        for m in queries.messages_mentioning(
            session, needles or Needles.of(subscribers.email_key(email)))
    ]


def forget_subscriber(session: Session, subscriber_id: int, email: str,
                      needles: Needles | None = None) -> None:
    """For erasure (usecases.privacy): remove addresses and raw mail of a person's bounces,
    and every kept message that mentions them (`needles`)."""
    queries.forget_subscriber(session, subscriber_id, subscribers.email_key(email), needles)


def _as_dict(b: Bounce) -> dict[str, Any]:
    return {
        "id": b.id, "received_at": b.received_at, "source": b.source, "kind": b.kind,
        "action": b.action, "status": b.status, "diagnostic": b.diagnostic,
        "recipient": b.recipient, "delivery_id": b.delivery_id,
        "subscriber_id": b.subscriber_id, "campaign_id": b.campaign_id,
        "matched_by": b.matched_by, "token_valid": b.token_valid, "outcome": b.outcome,
        "reason": b.reason, "held": b.held,
    }
