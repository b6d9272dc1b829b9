"""The subscribers package's exceptions: one hierarchy, each a one-line message for a person."""

from __future__ import annotations

__all__ = [
    "SubscriberError",
    "InvalidEmailError",
    "InvalidValueError",
    "SubscriberNotFoundError",
    "ListNotFoundError",
    "DuplicateError",
    "SuppressedError",
    "ImportFileError",
]


class SubscriberError(Exception):
    """Base of every error the subscribers package reports; str(exc) is the message."""


class InvalidEmailError(SubscriberError, ValueError):
    """An address that is not a valid e-mail address."""


class InvalidValueError(SubscriberError, ValueError):
    """A field value that is not allowed (unknown region, language or status)."""


class SubscriberNotFoundError(SubscriberError, LookupError):
    """No subscriber with that address."""


class ListNotFoundError(SubscriberError, LookupError):
    """No list with that slug."""


class DuplicateError(SubscriberError):
    """The thing to create exists already (a list slug, a subscriber address)."""


class SuppressedError(SubscriberError):
    """The address is on the suppression list and must not be added or mailed."""


class ImportFileError(SubscriberError):
    """An import file cannot be read at all (encoding, no e-mail column); nothing was imported."""
