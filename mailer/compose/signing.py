"""DKIM signing of finished messages (dkimpy), with the key read once per renderer.

The signature covers the headers receivers judge us on, the List-* headers among them, so a
forwarder cannot strip or change the one-click unsubscribe without breaking the signature.
Signing costs one RSA private-key operation per message; see docs/composition.md for figures.
"""

from __future__ import annotations

from pathlib import Path

import dkim

from mailer.errors import ConfigError

__all__ = ["DkimSigner", "SIGNED_HEADERS"]

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
    b"mime-version", b"content-type", b"feedback-id",
)


class DkimSigner:
    """Signs messages for one domain and selector with one private key."""

    def __init__(self, domain: str, selector: str, key_file: Path) -> None:
        if not domain or not selector:
            raise ConfigError("dkim.domain and dkim.selector are needed when dkim.enabled is true")
        try:
            self.key = key_file.read_bytes()
            dkim.parse_pem_private_key(self.key)
        except OSError as exc:
            raise ConfigError(f"dkim.key_file: cannot read {key_file}: {exc.strerror}") from None
        except dkim.KeyFormatError:
            raise ConfigError(f"dkim.key_file: {key_file} is not a PEM RSA private key") from None
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        signature = dkim.sign(
            message,
            self.selector,
            self.domain,
            self.key,
            canonicalize=(b"relaxed", b"simple"),
            include_headers=list(SIGNED_HEADERS),
        )
        return signature + message


def signer_from_settings(settings: object) -> DkimSigner | None:
    """The configured signer, or None when DKIM is off."""
    conf = settings.dkim  # type: ignore[attr-defined]
    if not conf.enabled:
        return None
    if not conf.key_file:
        raise ConfigError("dkim.key_file: needed when dkim.enabled is true")
    path = settings.resolve_path(conf.key_file)  # type: ignore[attr-defined]
    return DkimSigner(conf.domain, conf.selector, path)
