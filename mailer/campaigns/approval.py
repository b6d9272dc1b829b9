"""Four-eyes: a campaign is scheduled or sent only after someone other than its last editor
approved that exact version. Shared by the CLI and the console through mailer.usecases.

Versions are whole numbers raised by every edit; an approval names the version it approved, so
an edit after approval withdraws it without anyone having to remember to.
"""

from __future__ import annotations

import datetime as dt

from mailer.campaigns.models import Campaign
from mailer.errors import CampaignError

__all__ = ["ApprovalError", "created", "edited", "approve", "require_approved", "is_approved",
           "last_editor"]

APPROVABLE = ("draft", "missed", "paused")


class ApprovalError(CampaignError):
    """The four-eyes rule refuses this (no approval, or approving one's own work)."""


def last_editor(campaign: Campaign) -> str:
    return campaign.edited_by or campaign.created_by


def created(campaign: Campaign, by: str) -> None:
    campaign.version = 1
    campaign.created_by = by
    campaign.edited_by = by
    campaign.approved_by = ""
    campaign.approved_version = None
    campaign.approved_at = None


def edited(campaign: Campaign, by: str) -> None:
    """A change to content, subject or audience: a new version, and no approval."""
    campaign.version = (campaign.version or 1) + 1
    campaign.edited_by = by
    campaign.approved_by = ""
    campaign.approved_version = None
    campaign.approved_at = None


def is_approved(campaign: Campaign) -> bool:
    return campaign.approved_version is not None and campaign.approved_version == campaign.version


def approve(campaign: Campaign, by: str, *, version: int | None, now: dt.datetime) -> None:
    """Approve the version the approver saw (`version`; None: the current one)."""
    if campaign.status not in APPROVABLE:
        raise ApprovalError(f"campaign {campaign.id} is {campaign.status}; only a draft can be "
                            "approved")
    if version is not None and version != campaign.version:
        raise ApprovalError(f"campaign {campaign.id} changed since you looked at it (version "
                            f"{version}, now {campaign.version}); look again before approving")
    editor = last_editor(campaign)
    if editor and by == editor:
        raise ApprovalError(f"campaign {campaign.id} was last edited by {editor}; someone else "
                            "must approve it")
    campaign.approved_by = by
    campaign.approved_version = campaign.version
    campaign.approved_at = now


def require_approved(campaign: Campaign) -> None:
    """ApprovalError unless the current version is approved by someone other than its editor."""
    if not is_approved(campaign):
        raise ApprovalError(
            f"campaign {campaign.id} (version {campaign.version}, last edited by "
            f"{last_editor(campaign) or 'unknown'}) needs approval by someone else first: "
            f"mailer campaigns approve {campaign.id}")
