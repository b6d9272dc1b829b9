"""The pre-flight checklist a campaign goes through before approval: the console's campaign page
shows it and `mailer campaigns check ID` prints it (exit 1 when something fails).

Each check is `ok`, `fail`, or `unknown` ("could not check": offline, no DNS, a link we chose not
to open); only `fail` stops `campaigns check`. The checks:

- render: the message renders for a Dutch and an English recipient, each with every optional
  field filled in and with none (no name, organisation, job title, region, attributes), so
  every `{% if %}` branch of the text and template is built once;
- size: the largest of those messages is under 100 KB (Gmail clips at 102 KB);
- unsubscribe: List-Unsubscribe (https and mailto) and List-Unsubscribe-Post are present;
- dkim: signing is on with a key file, or `dkim.relay_signs` says the relay signs;
- audience: the audience is not empty now;
- links: every link in the content is https and answers (HEAD, then GET when HEAD is not
  allowed) within `console.check_timeout_seconds`;
- relay: the relay accepts a connection and answers EHLO (and STARTTLS when configured);
- dns: the sending domain has SPF and DMARC records, and the DKIM selector's key is published.

The link check is not a way to make the server fetch arbitrary addresses: it opens only
http(s) links found in this campaign's own content (our own pages, under web.base_url, are
left out), at most MAX_LINKS of them, one HEAD (or GET) each without following redirects (a
redirect counts as an answer and is shown), and with a short timeout. An address that resolves
to a loopback, private, link-local or otherwise internal network is not opened unless
`console.check_private_links = true` (tests; an intranet newsletter), and the connection goes
to the address that was checked, so a DNS answer cannot change between check and connect.
"""

from __future__ import annotations

import http.client
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mailer.audit import Actor
from mailer.campaigns import queries
from mailer.campaigns import service as campaigns
from mailer.compose import Recipient, sample_recipient
from mailer.database.connect import session_scope
from mailer.settings import Settings
from mailer.usecases.users import require

if TYPE_CHECKING:
    from mailer.app import App

__all__ = ["Check", "run_checks", "failed", "MAX_SIZE", "MAX_LINKS", "CHECKS"]

MAX_SIZE = 100 * 1024
MAX_LINKS = 50
#: The checks in the order they are shown.
CHECKS = ("render", "size", "unsubscribe", "dkim", "audience", "links", "relay", "dns")


@dataclass(frozen=True)
class Check:
    key: str  # one of CHECKS
    status: str  # "ok", "fail" or "unknown" (could not check)
    detail: str  # one line, for people


def failed(checks: Sequence[Check]) -> bool:
    return any(c.status == "fail" for c in checks)


# -- what the campaign renders to (one transaction) -----------------------------------------

@dataclass
class _Built:
    checks: list[Check]
    messages: list[bytes]
    links: list[str]


def _bare(settings: Settings, language: str) -> Recipient:
    """A recipient with only what every subscriber has: the optional fields empty."""
    full = sample_recipient(settings, language=language)
    return Recipient(subscriber_id=0, public_id=full.public_id, email=full.email,
                     language=language, attributes=MappingProxyType({}))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            if href and href not in self.found:
                self.found.append(href.strip())


def _build(app: App, campaign_id: int, actor: Actor) -> _Built:
    settings = app.settings
    with session_scope(app.sessions) as session:
        require(actor, "campaigns.read")
        campaign = campaigns.get_campaign(session, campaign_id)
        count = queries.count_audience(session, campaign.audience)
        checks: list[Check] = []
        messages: list[bytes] = []
        links: list[str] = []
        problems: list[str] = []
        variants = [(lang, kind) for lang in ("nl", "en") for kind in ("full", "bare")]
        try:
            renderer = app.renderer_factory(session, campaign, settings, app.signer)
        except Exception as exc:  # the template itself does not build: nothing else to test
            problems.append(str(exc))
            variants = []
        for lang, kind in variants:
            who = (sample_recipient(settings, language=lang) if kind == "full"
                   else _bare(settings, lang))
            try:
                rendered = renderer.render(who)
                messages.append(renderer.message_bytes(who))
            except Exception as exc:
                fields = "all fields" if kind == "full" else "no optional fields"
                problems.append(f"{lang}, {fields}: {exc}")
                continue
            parser = _Links()
            parser.feed(rendered.html)
            links += [link for link in parser.found if link not in links]
    if problems:
        checks.append(Check("render", "fail", "; ".join(problems)[:500]))
    else:
        checks.append(Check("render", "ok", "Dutch and English, with and without optional "
                                            "fields"))
    checks.append(Check("audience", "ok" if count else "fail", f"{count} recipients now"))
    own = settings.web.base_url.rstrip("/") + "/"
    content_links = [link for link in links
                     if not link.startswith(own) and not link.lower().startswith("mailto:")]
    return _Built(checks, messages, content_links)


def _message_checks(settings: Settings, messages: list[bytes]) -> list[Check]:
    if not messages:
        return [Check(key, "unknown", "the message did not render")
                for key in ("size", "unsubscribe")] + [_dkim(settings, None)]
    largest = max(len(m) for m in messages)
    size = Check("size", "ok" if largest < MAX_SIZE else "fail",
                 f"{largest / 1024:.1f} KB (at most {MAX_SIZE // 1024} KB)")
    headers = BytesParser(policy=policy.default).parsebytes(messages[0], headersonly=True)
    unsubscribe = str(headers.get("List-Unsubscribe", ""))
    post = str(headers.get("List-Unsubscribe-Post", ""))
    missing = [name for name, ok in (
        ("List-Unsubscribe", bool(unsubscribe)),
        ("List-Unsubscribe-Post: List-Unsubscribe=One-Click",
         post.strip() == "List-Unsubscribe=One-Click")) if not ok]
    if unsubscribe and "<https://" not in unsubscribe and "<mailto:" not in unsubscribe:
        missing.append("an https or mailto address in List-Unsubscribe")
    unsub = Check("unsubscribe", "fail" if missing else "ok",
                  f"missing: {', '.join(missing)}" if missing
                  else "List-Unsubscribe and List-Unsubscribe-Post (one click)")
    return [size, unsub, _dkim(settings, headers)]


def _dkim(settings: Settings, headers: Any) -> Check:
    dkim = settings.dkim
    if dkim.enabled:
        if headers is not None and headers.get("DKIM-Signature") is None:
            return Check("dkim", "fail", "dkim.enabled, but the message carries no signature")
        return Check("dkim", "ok", f"signed for {dkim.domain} (selector {dkim.selector})")
    if dkim.relay_signs:
        return Check("dkim", "ok", "the relay signs (dkim.relay_signs)")
    return Check("dkim", "fail", "not signed: set [dkim] enabled = true with a key, or "
                                 "relay_signs = true when the relay signs")


# -- links ---------------------------------------------------------------------------------

def _internal(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return not ip.is_global or ip.is_multicast


def check_link(url: str, settings: Settings, *, ssl_context: ssl.SSLContext | None = None
               ) -> tuple[str, str]:
    """(status, detail) of one link: https and answering with a 2xx or 3xx."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return "fail", f"{url[:200]}: not a web link"
    if scheme != "https":
        return "fail", f"{url[:200]}: not https"
    host = parts.hostname or ""
    try:
        port = parts.port or 443
    except ValueError:
        return "fail", f"{url[:200]}: bad port"
    timeout = settings.console.check_timeout_seconds
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return "unknown", f"{url[:200]}: could not look up {host}"
    address = str(infos[0][4][0])
    if not settings.console.check_private_links and any(
            _internal(str(info[4][0])) for info in infos):
        return "unknown", f"{url[:200]}: not checked (an internal address)"
    context = ssl_context or ssl.create_default_context()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for method in ("HEAD", "GET"):
        try:
            raw = socket.create_connection((address, port), timeout=timeout)
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
            conn.sock = context.wrap_socket(raw, server_hostname=host)
            conn.request(method, path, headers={"User-Agent": "GT-Mailer-linkcheck",
                                                "Accept": "*/*"})
            answer = conn.getresponse()
            code = answer.status
            location = answer.getheader("location", "")
            conn.close()
        except ssl.SSLError as exc:
            return "fail", f"{url[:200]}: TLS failed ({exc.reason or exc})"
        except (OSError, http.client.HTTPException) as exc:
            return "unknown", f"{url[:200]}: no answer ({type(exc).__name__})"
        if method == "HEAD" and code in (405, 501):
            continue  # a server that does not do HEAD; GET once (the body is not read)
        if 200 <= code < 300:
            return "ok", f"{url[:200]}: {code}"
        if 300 <= code < 400:
            return "ok", f"{url[:200]}: {code}, to {location[:200]}"
        return "fail", f"{url[:200]}: {code}"
    return "fail", f"{url[:200]}: {code}"


def _links(settings: Settings, links: list[str], ssl_context: ssl.SSLContext | None,
           pool: ThreadPoolExecutor) -> Check:
    if not links:
        return Check("links", "ok", "no links in the text")
    chosen = links[:MAX_LINKS]
    results = list(pool.map(lambda u: check_link(u, settings, ssl_context=ssl_context), chosen))
    bad = [d for s, d in results if s == "fail"]
    unknown = [d for s, d in results if s == "unknown"]
    more = f" (the first {MAX_LINKS} of {len(links)})" if len(links) > MAX_LINKS else ""
    if bad:
        return Check("links", "fail", "; ".join(bad + unknown)[:1000])
    if unknown:
        return Check("links", "unknown", "could not check: " + "; ".join(unknown)[:1000])
    return Check("links", "ok", f"{len(chosen)} links are https and answer{more}")


# -- relay and DNS ---------------------------------------------------------------------------

def check_relay(settings: Settings) -> Check:
    smtp = settings.smtp
    timeout = settings.console.check_timeout_seconds
    where = f"{smtp.host}:{smtp.port}"
    try:
        client: smtplib.SMTP
        if smtp.tls == "tls":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            code, _answer = client.ehlo()
            if code != 250:
                return Check("relay", "fail", f"{where} answered EHLO with {code}")
            if smtp.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
    except (OSError, smtplib.SMTPException) as exc:
        return Check("relay", "fail", f"{where} cannot be reached: {exc}"[:300])
    return Check("relay", "ok", f"{where} answers EHLO")


Resolve = Callable[[str], list[str]]


def dns_txt(settings: Settings, nameserver: tuple[str, int] | None = None) -> Resolve:
    """TXT records of a name (dnspython), with the checklist's timeout."""
    import dns.resolver

    if nameserver is not None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [nameserver[0]]
        resolver.port = nameserver[1]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = settings.console.check_timeout_seconds

    def txt(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]

    return txt


def check_dns(settings: Settings, txt: Resolve | None = None) -> Check:
    domain = settings.sender.address.rpartition("@")[2].lower()
    try:
        lookup = txt or dns_txt(settings)
        spf = [r for r in lookup(domain) if r.lower().startswith("v=spf1")]
        dmarc = [r for r in lookup(f"_dmarc.{domain}") if r.lower().startswith("v=dmarc1")]
        dkim_name = ""
        dkim_ok = True
        if settings.dkim.enabled:
            dkim_name = f"{settings.dkim.selector}._domainkey.{settings.dkim.domain or domain}"
            dkim_ok = any("p=" in r for r in lookup(dkim_name))
    except Exception as exc:  # no resolver, timeout, no network: offline is not a failure
        return Check("dns", "unknown", f"could not check {domain} ({type(exc).__name__})")
    missing = [what for what, ok in (("SPF", bool(spf)), ("DMARC", bool(dmarc)),
                                     (f"DKIM key at {dkim_name}", dkim_ok)) if not ok]
    if missing:
        return Check("dns", "fail", f"{domain}: no {', '.join(missing)} record")
    found = "SPF, DMARC" + (", DKIM" if settings.dkim.enabled else "")
    note = "" if settings.dkim.enabled else " (DKIM key not looked up: the selector is the relay's)"
    return Check("dns", "ok", f"{domain}: {found}{note}")


# -- all of it -------------------------------------------------------------------------------

def run_checks(app: App, campaign_id: int, *, actor: Actor,
               ssl_context: ssl.SSLContext | None = None, txt: Resolve | None = None
               ) -> list[Check]:
    """Every check, in CHECKS order; the network checks run side by side, each bounded by
    console.check_timeout_seconds. `ssl_context` and `txt` are for tests (a loopback
    HTTPS server with its own certificate, a loopback DNS server)."""
    settings = app.settings
    built = _build(app, campaign_id, actor)
    found = {c.key: c for c in built.checks}
    found.update({c.key: c for c in _message_checks(settings, built.messages)})
    with ThreadPoolExecutor(max_workers=8) as pool:
        relay = pool.submit(check_relay, settings)
        dns = pool.submit(check_dns, settings, txt)
        found["links"] = _links(settings, built.links, ssl_context, pool)
        found["relay"] = relay.result()
        found["dns"] = dns.result()
    return [found[key] for key in CHECKS]
