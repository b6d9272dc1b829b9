"""DKIM: our signatures verify with dkimpy against the public key, and break when tampered."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from compose_support import SECRET, campaign, compose_settings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailer.compose import CampaignRenderer, Recipient, build_transactional
from mailer.compose.signing import dns_record
from mailer.errors import ConfigError
from mailer.kernel.tokens import Signer
from mailer.settings import Settings


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def dkim_settings(config_file: Path, tmp_path: Path, key_pem: bytes) -> Settings:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(key_pem)
    return compose_settings(
        config_file,
        **{"dkim.enabled": True, "dkim.domain": "gt.example.nl", "dkim.selector": "mailer",
           "dkim.key_file": str(key_file)},
    )


def _dns(settings: Settings) -> object:
    record = dns_record(settings.resolve_path(settings.dkim.key_file)).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"mailer._domainkey.gt.example.nl." else None

    return dnsfunc


def test_campaign_messages_verify(dkim_settings: Settings) -> None:
    renderer = CampaignRenderer(campaign(), dkim_settings, Signer(SECRET))
    data = renderer.message_bytes(
        Recipient(subscriber_id=3, email="a@example.org", name="Zoë Ağaoğlu", delivery_id=9)
    )
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gt.example.nl")
    assert dkim.verify(data, dnsfunc=_dns(dkim_settings))
    signed = data.split(b"; h=", 1)[1].split(b";", 1)[0].split(b":")
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                 b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type"):
        assert name in signed
    # Changing the one-click header, or adding a second From, breaks the signature.
    one_click = b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    assert not dkim.verify(
        data.replace(one_click, b"List-Unsubscribe-Post: x"), dnsfunc=_dns(dkim_settings)
    )
    head, body = data.split(b"\r\n\r\n", 1)
    assert not dkim.verify(head + b"\r\nFrom: evil@example.org\r\n\r\n" + body,
                           dnsfunc=_dns(dkim_settings))
    assert not dkim.verify(data.replace(b"Beste Zo", b"Beste Xo"), dnsfunc=_dns(dkim_settings))


def test_transactional_messages_verify(dkim_settings: Settings) -> None:
    _envelope, data = build_transactional(
        "confirm-subscription", to="a@example.org", language="nl",
        context={"name": "Eva", "confirm_url": "https://x.example/c/1",
                 "list_names": ["Nieuwsbrief"], "valid_hours": 72},
        settings=dkim_settings, signer=Signer(SECRET),
    )
    assert dkim.verify(data, dnsfunc=_dns(dkim_settings))


def test_dns_record_holds_the_public_key(dkim_settings: Settings, key_pem: bytes) -> None:
    record = dns_record(dkim_settings.resolve_path(dkim_settings.dkim.key_file))
    assert record.startswith("v=DKIM1; k=rsa; p=")
    public = serialization.load_pem_private_key(key_pem, None).public_key()
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert record.endswith(base64.b64encode(der).decode())


def test_a_bad_key_file_is_a_config_error(config_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key", encoding="utf-8")
    cases = ((bad, "not an unencrypted PEM key"), (tmp_path / "none.pem", "cannot read"))
    for key_file, why in cases:
        settings = compose_settings(config_file, **{"dkim.enabled": True,
                                                    "dkim.key_file": str(key_file)})
        with pytest.raises(ConfigError, match=why):
            CampaignRenderer(campaign(), settings, Signer(SECRET))


def test_dkim_commands(config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from mailer.cli import cli

    monkeypatch.setenv("MAILER_CONFIG", str(config_file))
    monkeypatch.setenv("MAILER_SECRET_KEY", SECRET)
    key_file = tmp_path / "new.pem"
    runner = CliRunner()
    made = runner.invoke(cli, ["dkim", "keygen", str(key_file)])
    assert made.exit_code == 0, made.output
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert "mailer._domainkey.gt.example.nl" in made.output
    assert dns_record(key_file) in made.output
    again = runner.invoke(cli, ["dkim", "keygen", str(key_file)])
    assert again.exit_code == 1 and "exists; not overwritten" in again.output
    shown = runner.invoke(cli, ["dkim", "record", "--key", str(key_file)])
    assert shown.exit_code == 0 and dns_record(key_file) in shown.output
    unset = runner.invoke(cli, ["dkim", "record"])
    assert unset.exit_code == 1 and "dkim.key_file: not set" in unset.output


def test_a_relay_that_touches_whitespace_keeps_the_signature(dkim_settings: Settings) -> None:
    """relaxed/relaxed: trailing spaces added, runs of spaces collapsed, folding changed and
    empty lines appended at the end, as some relays and list servers do, still verify."""
    renderer = CampaignRenderer(campaign(), dkim_settings, Signer(SECRET))
    data = renderer.message_bytes(Recipient(subscriber_id=3, email="a@example.org", name="Zoë"))
    head, _, body = data.partition(b"\r\n\r\n")
    touched_body = body.replace(b"\r\n", b"  \r\n").replace(b" ", b"\t ") + b"\r\n\r\n"
    touched_head = head.replace(b"Subject: ", b"Subject:   ")
    touched = touched_head + b"\r\n\r\n" + touched_body
    assert dkim.verify(touched, dnsfunc=_dns(dkim_settings))
    # A changed word still breaks it.
    assert not dkim.verify(data.replace(b"Beste", b"Beste!"), dnsfunc=_dns(dkim_settings))
