"""DKIM keys as use cases: make a signing key, and the DNS record that publishes it.

No database: both work from Settings (`[dkim]` domain, selector and key_file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailer.compose.signing import dns_record, generate_key
from mailer.errors import ConfigError
from mailer.settings import Settings

__all__ = ["DkimRecord", "make_key", "key_record"]


@dataclass(frozen=True)
class DkimRecord:
    """The TXT record to publish: `name` (<selector>._domainkey.<domain>) and its `value`."""

    name: str
    value: str


def make_key(settings: Settings, key_file: Path, bits: int = 2048) -> DkimRecord:
    """Write a new RSA key to `key_file` (mode 600, never over an existing file); its record."""
    try:
        generate_key(key_file, bits)
    except FileExistsError:
        raise ConfigError(f"{key_file}: exists; not overwritten") from None
    except OSError as exc:
        raise ConfigError(f"{key_file}: {exc.strerror}") from None
    return _record(settings, key_file)


def key_record(settings: Settings, key_file: Path | None = None) -> DkimRecord:
    """The record for `key_file`, or for the configured dkim.key_file."""
    if key_file is None:
        if not settings.dkim.key_file:
            raise ConfigError(f"{settings.config_path}: dkim.key_file: not set (or use --key)")
        key_file = settings.resolve_path(settings.dkim.key_file)
    return _record(settings, key_file)


def _record(settings: Settings, key_file: Path) -> DkimRecord:
    name = f"{settings.dkim.selector}._domainkey.{settings.dkim.domain or '<domain>'}"
    return DkimRecord(name, dns_record(key_file))
