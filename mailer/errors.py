"""The mailer package's exceptions: one hierarchy, turned into one-line messages by the CLI."""

from __future__ import annotations

__all__ = [
    "MailerError",
    "ConfigError",
    "SchemaError",
    "NotFoundError",
    "TemplateError",
    "MediaError",
    "CampaignError",
    "DeliveryError",
    "TokenError",
    "BounceError",
    "EventError",
    "AccountError",
    "PermissionDenied",
]


class MailerError(Exception):
    """Base of every error GT Mailer reports to a person; str(exc) is the one-line message."""


class ConfigError(MailerError, ValueError):
    """A setting is missing or wrong; the message names the file and the key."""


class SchemaError(MailerError):
    """The database schema is missing or behind; `mailer db upgrade` fixes it."""


class NotFoundError(MailerError, LookupError):
    """A campaign, event, bounce or other record named by the user does not exist."""


class TemplateError(MailerError):
    """A template or content file cannot be rendered; the message names the file and line."""


class CampaignError(MailerError):
    """A campaign operation is not allowed in the campaign's current state."""


class DeliveryError(MailerError):
    """The relay cannot be reached or refused us in a way that stops sending.

    `code` is the SMTP reply code when the relay answered (None when it could not be reached).
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TokenError(MailerError):
    """A signed link or VERP token is malformed, forged, expired or for another purpose."""


class BounceError(MailerError):
    """A bounce operation is not possible (e.g. reactivating someone who is not bounced)."""


class EventError(MailerError):
    """A meeting operation is not possible: answers closed, meeting cancelled, bad times."""


class MediaError(MailerError, ValueError):
    """An uploaded image is refused: too large, not an image, or a kind we do not serve."""


class AccountError(MailerError):
    """A staff account operation is not possible: unknown user, bad role, weak password."""


class PermissionDenied(MailerError, PermissionError):
    """The acting person may not do this (role, or the four-eyes rule)."""
