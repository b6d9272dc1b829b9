"""What each role may do: one table of permissions, used by the console's routes and use cases.

viewer reads everything but personal data exports; editor drafts campaigns and meetings, sends
tests, exports personal data and records an answer given by phone; approver approves, schedules,
sends and pauses, and invites to meetings; admin also manages users, lists, subscriber data
(edit, block, erase, import), bounces, and reads the audit trail.
"""

from __future__ import annotations

__all__ = ["PERMISSIONS", "PUBLIC", "SIGNED_IN", "allowed"]

#: Needs no sign-in (sign-in, set-up, static files).
PUBLIC = "public"
#: Any signed-in person, whatever the role (dashboard, own account, sign out).
SIGNED_IN = "signed-in"

_VIEWER = {"campaigns.read", "subscribers.read", "lists.read", "events.read", "bounces.read"}
_EDITOR = _VIEWER | {"campaigns.edit", "campaigns.test", "subscribers.export", "events.edit",
                     "events.rsvp"}
_APPROVER = _EDITOR | {"campaigns.approve", "campaigns.schedule", "events.invite"}
_ADMIN = _APPROVER | {"users.manage", "audit.read", "subscribers.manage", "lists.manage",
                      "bounces.manage"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEWER),
    "editor": frozenset(_EDITOR),
    "approver": frozenset(_APPROVER),
    "admin": frozenset(_ADMIN),
}

#: Every permission a route may name.
ALL = frozenset({PUBLIC, SIGNED_IN}.union(*PERMISSIONS.values()))


def allowed(role: str | None, permission: str) -> bool:
    """Whether a person with `role` (None: not signed in) has `permission`."""
    if permission == PUBLIC:
        return True
    if role is None:
        return False
    if permission == SIGNED_IN:
        return role in PERMISSIONS
    return permission in PERMISSIONS.get(role, frozenset())
