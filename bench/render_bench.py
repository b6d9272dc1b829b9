"""Measure how fast composition builds personalised messages (message_bytes), without sending.

Run by hand (not part of the test suite):

    .venv/bin/python bench/render_bench.py [--recipients 10000] [--content FILE.md]

It renders the sample Dutch newsletter (templates/content/voorbeeld-nieuwsbrief.md) for N made-up
recipients (mixed names, organisations, regions, nl/en, attributes, a few with accents and
characters that need escaping) and reports messages per second and microseconds per message for:

- spliced:       the renderer as the engine uses it (segments rendered once, values spliced in);
- spliced+DKIM:  the same with DKIM signing (2048-bit RSA key made for the run);
- per-recipient: a template that uses personal values in a filter, so every message is rendered
                 by Jinja and its CSS inlined per recipient (the renderer's fallback);
- naive:         Jinja render + css-inline + email.message.EmailMessage + as_bytes() per
                 recipient, the straightforward build, for comparison.

Single process, one core. Rates are from CPU time (time.process_time), which a busy shared
machine disturbs less than wall time; the wall-clock rate is printed beside it. The figures go
into the README (Benchmarks).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mailer.compose import CampaignRenderer, Recipient, load_content  # noqa: E402
from mailer.kernel.tokens import Signer  # noqa: E402
from mailer.settings import Settings, load_settings  # noqa: E402

FIRST = ("Anna", "Jan", "Eva", "Pieter", "Sanne", "Daan", "Fleur", "Jeroen", "Zoë", "Kees")
LAST = ("de Vries", "Jansen", "Bakker", "Visser", "O'Brien & Zn", "Meijer", "Ağaoğlu", "Bos")
REGIONS = ("Noord", "Oost", "Zuid", "West", "Midden")


def recipients(count: int) -> list[Recipient]:
    people = []
    for i in range(count):
        people.append(Recipient(
            subscriber_id=i + 1,
            email=f"medewerker{i}@gemeente{i % 340}.example.nl",
            name="" if i % 17 == 0 else f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}",
            organisation="" if i % 5 == 0 else f"Gemeente Voorbeeld {i % 340}",
            job_title="Adviseur ICT",
            region=REGIONS[i % len(REGIONS)],
            language="en" if i % 9 == 0 else "nl",
            attributes=MappingProxyType({"functie": "inkoper" if i % 2 else "<b>beheer</b>"}),
            delivery_id=100_000 + i,
        ))
    return people


def campaign_from(path: Path, **changes: Any) -> SimpleNamespace:
    content = load_content(path)
    values: dict[str, Any] = {
        "id": 1, "kind": "newsletter", "subject": content.subject, "preheader": content.preheader,
        "template": "newsletter", "content": content.body, "content_format": content.format,
        "meta": dict(content.meta), "audience": {"lists": ["nieuwsbrief"]}, "event_id": None,
    }
    values.update(changes)
    return SimpleNamespace(**values)


def timed(label: str, build: Any, people: list[Recipient]) -> float:
    for person in people[:50]:
        build(person)  # warm up: first-use shapes, caches
    started, cpu_started = time.perf_counter(), time.process_time()
    size = 0
    for person in people:
        size += len(build(person))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    rate = len(people) / cpu
    print(f"{label:<14} {rate:>8,.0f} msg/s {cpu / len(people) * 1e6:>7,.0f} µs/msg CPU"
          f"   (wall {len(people) / elapsed:>7,.0f} msg/s)   {size / len(people) / 1024:,.1f} KiB"
          f"   n={len(people):,}")
    return rate


def naive(renderer: CampaignRenderer, settings: Settings) -> Any:
    def build(recipient: Recipient) -> bytes:
        rendered = renderer.render_slow(renderer.person(recipient))
        message = EmailMessage(policy=SMTP)
        message["From"] = f"{settings.sender.name} <{settings.sender.address}>"
        message["To"] = (
            f"{recipient.name} <{recipient.email}>" if recipient.name else recipient.email
        )
        message["Subject"] = rendered.subject
        message["List-Unsubscribe"] = f"<{renderer.person(recipient).link('unsubscribe')}>"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message.as_bytes()

    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--content", type=Path,
                        default=ROOT / "templates/content/voorbeeld-nieuwsbrief.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "dkim.pem"
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        settings = load_settings(
            ROOT / "config.toml",
            environ={"MAILER_SECRET_KEY": "bench-secret-key-0123456789abcdef",
                     "MAILER_DATA_DIR": tmp},
        )
        signed = dataclasses.replace(settings, dkim=dataclasses.replace(
            settings.dkim, enabled=True, domain="gt.example.nl", key_file=str(key_file)))
        signer = Signer(settings.secret_key)
        people = recipients(args.recipients)
        print(f"{args.recipients:,} recipients, {args.content.name}, Python "
              f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, one process")

        started = time.perf_counter()
        spliced = CampaignRenderer(campaign_from(args.content), settings, signer)
        print(f"renderer built in {(time.perf_counter() - started) * 1000:.0f} ms: "
              f"{spliced.splice_report()}")
        timed("spliced", spliced.message_bytes, people)
        timed("spliced+DKIM", CampaignRenderer(campaign_from(args.content), signed,
                                                signer).message_bytes, people)
        slow_campaign = campaign_from(args.content, subject="{{ subscriber.name|upper }} nieuws")
        slow = CampaignRenderer(slow_campaign, settings, signer)
        assert slow.splice_report()["nl"] != "spliced"
        timed("per-recipient", slow.message_bytes, people[: max(1, args.recipients // 5)])
        timed("naive", naive(spliced, settings), people[: max(1, args.recipients // 5)])


if __name__ == "__main__":
    main()
