"""Load the one frozen, typed settings object: config.toml, then MAILER_* variables, then flags.

Every section of config.toml is a frozen dataclass below; the loader walks the dataclass fields,
so adding a setting is adding a field (and documenting it in config.toml). A wrong value stops
start-up with one line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.errors import ConfigError
from mailer.files import private_folder

__all__ = ["Settings", "OidcSettings", "load_settings", "DEFAULT_CONFIG", "uses_generated_key",
           "CONSOLE_ROLES"]

#: The shortest MAILER_SECRET_KEY accepted (32 characters: 192 bits and more when random).
MIN_SECRET_LENGTH = 32

#: The config.toml beside the package, used when neither --config nor MAILER_CONFIG names one.
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = field(default="sqlite:///var/mailer.db", repr=False)  # may hold a password


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    tls: str = "none"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout_seconds: float = 30.0
    max_connections: int = 4
    rate_per_second: int = 0
    rate_per_minute: int = 0
    rate_per_hour: int = 0
    rate_per_day: int = 0


@dataclass(frozen=True)
class SenderSettings:
    name: str = "GT Gemeentelijke Telecommunicatie"
    address: str = "nieuwsbrief@gt.example.nl"
    reply_to: str = ""
    bounce_domain: str = "bounces.gt.example.nl"
    unsubscribe_address: str = "afmelden@bounces.gt.example.nl"
    list_id_domain: str = "gt.example.nl"


@dataclass(frozen=True)
class WebSettings:
    base_url: str = "http://127.0.0.1:8025"
    host: str = "127.0.0.1"
    port: int = 8025
    subscribe_rate_per_address: int = 3
    subscribe_rate_per_client: int = 20
    subscribe_rate_global: int = 300
    # Proof of work on the sign-up form: hashes a browser tries, max_number/2 on average; 0 off.
    pow_max_number: int = 100000
    confirm_link_hours: int = 72
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks); empty: none.
    trusted_proxies: tuple[str, ...] = ()


#: The console's roles, from least to most allowed (mailer.accounts.models.ROLES; the settings
#: sit below the accounts package, and a test keeps the two equal).
CONSOLE_ROLES = ("viewer", "editor", "approver", "admin")


@dataclass(frozen=True)
class OidcSettings:
    """Optional sign-in to the console with OpenID Connect (Microsoft Entra ID)."""

    enabled: bool = False
    # The issuer, exactly as its discovery document says (Entra ID, one tenant:
    # https://login.microsoftonline.com/<tenant id>/v2.0).
    issuer: str = ""
    client_id: str = ""
    # MAILER_CONSOLE_OIDC_SECRET only; empty: a public client (PKCE alone).
    client_secret: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    # The claim whose values are mapped to roles: "groups" (Entra: group object ids) or "roles".
    groups_claim: str = "groups"
    # {claim value: role}; the highest role of a person's values wins, none: refused.
    roles: dict[str, str] = field(default_factory=dict)
    # Make the account at the first sign-in (with the mapped role); false: an admin adds it.
    create_accounts: bool = True
    # Addresses in these domains count as verified though the token does not say so (Entra ID
    # sends no email_verified; list only domains your tenant has verified).
    verified_email_domains: tuple[str, ...] = ()
    # The identity provider does the second factor; true asks admins for our TOTP code as well.
    require_totp_for_admins: bool = False
    # Keep the password form beside the button; false: sign-in through the provider only.
    password_signin: bool = True
    label: str = "Aanmelden met Microsoft"


@dataclass(frozen=True)
class ConsoleSettings:
    """The staff console: its own listener, accounts, sessions and the four-eyes rule."""

    enabled: bool = False
    base_url: str = "http://127.0.0.1:8026"
    host: str = "127.0.0.1"
    port: int = 8026
    # A session ends after this long without a request, and in any case after session_hours.
    idle_minutes: int = 30
    session_hours: int = 12
    setup_link_hours: int = 72
    # Failed sign-ins in a row before an account is locked, and for how long.
    lockout_after: int = 5
    lockout_minutes: int = 15
    # Sign-in posts per client address per 15 minutes (0: no limit).
    signin_rate_per_client: int = 30
    # A campaign is scheduled or sent only after someone other than its last editor approved it.
    require_approval: bool = True
    oidc: OidcSettings = OidcSettings()
    # Images uploaded in the editor: at most this many bytes each (PNG, JPEG, GIF, WebP).
    image_max_bytes: int = 2_000_000
    # The pre-flight checklist: seconds for each network check (a link, the relay, DNS).
    check_timeout_seconds: float = 5.0
    # Whether the link check may connect to loopback and private addresses. Off, a link to
    # one is reported "not checked", so the checklist cannot probe the internal network.
    check_private_links: bool = False


@dataclass(frozen=True)
class TemplateSettings:
    override_dir: str = ""


@dataclass(frozen=True)
class DeliverySettings:
    batch_size: int = 500
    concurrency: int = 8
    retry_deadline_hours: float = 48
    # First wait before retrying a 4xx; doubles with each attempt, at most an hour.
    retry_base_seconds: float = 60
    max_connection_failures: int = 5
    misfire_grace_minutes: int = 60
    # A claimed delivery whose worker has not answered for this long is handed to another worker.
    lease_seconds: float = 600
    # How often `mailer run` looks for newly scheduled campaigns and other due work.
    poll_seconds: float = 5
    # A campaign paused because the relay is unreachable is resumed by itself after this wait,
    # doubled with each outage pause in a row, at most outage_retry_max_seconds.
    outage_retry_seconds: float = 30
    outage_retry_max_seconds: float = 600
    # Stopping: how long to try recording the last outcomes before giving up (and saying so).
    shutdown_seconds: float = 20
    # Outbox rows that are done (sent or failed) are deleted after this many days by the daily
    # purge; until then they count in the relay budget's windows and show what was sent.
    outbox_retention_days: int = 30


@dataclass(frozen=True)
class DkimSettings:
    enabled: bool = False
    domain: str = ""
    selector: str = "mailer"
    key_file: str = ""
    # The relay signs outgoing mail itself (Exchange Online, a smarthost with OpenDKIM): the
    # pre-flight checklist then accepts DKIM off here.
    relay_signs: bool = False


@dataclass(frozen=True)
class BounceSettings:
    soft_threshold: int = 5
    stale_days: int = 7
    retention_days: int = 90
    hard_rate_alert: float = 0.02
    complaint_rate_alert: float = 0.003
    receiver_host: str = "127.0.0.1"
    receiver_port: int = 0
    receiver_protocol: str = "smtp"
    # Resource caps of the receiver: bigger messages get 552, one session more than this 421.
    receiver_max_bytes: int = 10 * 1024 * 1024
    receiver_max_sessions: int = 8
    # What is kept of the raw text: per message, in total (oldest unmatched mail goes first),
    # and how long mail that matched none of our deliveries is kept.
    raw_keep_kib: int = 256
    raw_total_mib: int = 200
    junk_retention_days: int = 7
    imap_host: str = ""
    imap_port: int = 993
    imap_username: str = ""
    imap_password: str = field(default="", repr=False)
    # "password" (IMAP LOGIN) or "xoauth2" (OAuth 2.0 client credentials: Exchange Online).
    imap_auth: str = "password"
    imap_oauth_token_url: str = ""
    imap_oauth_client_id: str = ""
    imap_oauth_scope: str = "https://outlook.office365.com/.default"
    imap_oauth_client_secret: str = field(default="", repr=False)
    imap_folder: str = "INBOX"
    imap_processed_folder: str = "Processed"
    imap_poll_seconds: int = 300
    # The brake on mass failure: pause a receiving domain when at least brake_recipients of its
    # recipients, and brake_share of those mailed there, were refused for one message- or
    # sender-level reason within brake_window_minutes.
    brake_recipients: int = 20
    brake_share: float = 0.05
    brake_window_minutes: int = 10


@dataclass(frozen=True)
class EventSettings:
    reminder_hours: tuple[int, ...] = (168, 24)
    nudge_hours: int = 0
    # The calendar's ORGANIZER is <reply_prefix>+<signed token>@<reply_domain>, so Accept /
    # Decline in a calendar comes back through the bounce intake; "" = sender.bounce_domain.
    reply_prefix: str = "rsvp"
    reply_domain: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything GT Mailer is configured with; built once at start-up, never changed."""

    config_path: Path
    timezone: str = "Europe/Amsterdam"
    regions: tuple[str, ...] = ("Noord", "Oost", "Zuid", "West", "Midden")
    data_dir: Path = Path("var")
    secret_key: str = field(default="", repr=False)
    database: DatabaseSettings = DatabaseSettings()
    smtp: SmtpSettings = SmtpSettings()
    sender: SenderSettings = SenderSettings()
    web: WebSettings = WebSettings()
    console: ConsoleSettings = ConsoleSettings()
    templates: TemplateSettings = TemplateSettings()
    delivery: DeliverySettings = DeliverySettings()
    dkim: DkimSettings = DkimSettings()
    bounces: BounceSettings = BounceSettings()
    events: EventSettings = EventSettings()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resolve_path(self, value: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value)
        return path if path.is_absolute() else self.config_path.parent / path

    def canonical_region(self, value: str) -> str | None:
        """The configured spelling of a region, matched case-insensitively; None if unknown."""
        wanted = value.strip().casefold()
        return next((r for r in self.regions if r.casefold() == wanted), None)


# Environment variables that override a key: (section or None, key). Secrets are env-only.
ENV_OVERRIDES: dict[str, tuple[str | None, str]] = {
    "MAILER_DATABASE_URL": ("database", "url"),
    "MAILER_SMTP_HOST": ("smtp", "host"),
    "MAILER_SMTP_PORT": ("smtp", "port"),
    "MAILER_SMTP_TLS": ("smtp", "tls"),
    "MAILER_SMTP_USERNAME": ("smtp", "username"),
    "MAILER_SMTP_PASSWORD": ("smtp", "password"),
    "MAILER_SECRET_KEY": (None, "secret_key"),
    "MAILER_BASE_URL": ("web", "base_url"),
    "MAILER_CONSOLE_URL": ("console", "base_url"),
    "MAILER_TIMEZONE": (None, "timezone"),
    "MAILER_DATA_DIR": (None, "data_dir"),
    "MAILER_IMAP_PASSWORD": ("bounces", "imap_password"),
    "MAILER_IMAP_OAUTH_CLIENT_SECRET": ("bounces", "imap_oauth_client_secret"),
    "MAILER_CONSOLE_OIDC_SECRET": ("console.oidc", "client_secret"),
}
# (section, key); a section may be nested ("console.oidc").
SECRET_KEYS = {
    ("smtp", "password"),
    (None, "secret_key"),
    ("bounces", "imap_password"),
    ("bounces", "imap_oauth_client_secret"),
    ("console.oidc", "client_secret"),
}

_TLS_MODES = ("none", "starttls", "tls")


def load_settings(
    config_path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[tuple[str | None, str], Any] | None = None,
) -> Settings:
    """Read the config file, apply environment variables and flag overrides, validate."""
    env = os.environ if environ is None else environ
    path = Path(config_path or env.get("MAILER_CONFIG") or DEFAULT_CONFIG).resolve()
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None

    for section, key in SECRET_KEYS:
        table = _table(raw, section, create=False)
        if isinstance(table, dict) and key in table:
            name = key if section is None else f"{section}.{key}"
            raise ConfigError(f"{path}: {name}: secrets are read only from the environment")

    layered: list[tuple[str, Mapping[tuple[str | None, str], Any]]] = [
        ("environment", {tgt: env[name] for name, tgt in ENV_OVERRIDES.items() if name in env}),
        ("command line", overrides or {}),
    ]
    for _origin, values in layered:
        for (section, key), value in values.items():
            table = _table(raw, section, create=True)
            if isinstance(table, dict):
                table[key] = value

    settings = _build(Settings, raw, path, prefix="", extra={"config_path": path})
    return _finish(settings, path)


def _table(raw: dict[str, Any], section: str | None, *, create: bool) -> Any:
    """The table `section` ("console.oidc": nested) of the raw file; None if absent."""
    table: Any = raw
    for part in section.split(".") if section else ():
        if not isinstance(table, dict):
            return None
        table = table.setdefault(part, {}) if create else table.get(part)
    return table


# Settings that were removed, and what replaces them (an upgrade should say what to do).
_GONE = {
    "web.public_lists": "no longer a setting: mark each list for the sign-up form with "
                        "`mailer lists edit SLUG --public`, then remove this line",
}


def _build(
    cls: type, raw: Any, path: Path, prefix: str, extra: dict[str, Any] | None = None
) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {prefix.rstrip('.')}: must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            if f"{prefix}{key}" in _GONE:
                raise ConfigError(f"{path}: {prefix}{key}: {_GONE[prefix + key]}")
            raise ConfigError(f"{path}: {prefix}{key}: unknown setting")
    values: dict[str, Any] = dict(extra or {})
    for f in dataclasses.fields(cls):
        if f.name in values or f.name not in raw:
            continue
        hint = hints[f.name]
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(typing.cast(type, hint), raw[f.name], path, f"{name}.")
        else:
            values[f.name] = _coerce(hint, raw[f.name], path, name)
    return cls(**values)


def _coerce(hint: Any, value: Any, path: Path, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name}: must be a table")
        return {_coerce(key_type, k, path, name): _coerce(value_type, v, path, f"{name}.{k}")
                for k, v in value.items()}
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v for v in (part.strip() for part in value.split(",")) if v]
        if not isinstance(value, list):
            raise ConfigError(f"{path}: {name}: must be a list")
        return tuple(_coerce(item_type, v, path, name) for v in value)
    if origin in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        return _scalar(hint, value)
    except ValueError:
        pass
    kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(hint, "text")
    raise ConfigError(f"{path}: {name}: must be {kind}, got {value!r}")


def _scalar(hint: Any, value: Any) -> Any:
    """One value of a scalar setting type; ValueError if it is not one."""
    if hint is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if not isinstance(value, bool):
            raise ValueError
        return value
    if hint is int:
        if isinstance(value, bool | float):
            raise ValueError
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    if hint is Path:
        return Path(str(value))
    if hint is str:
        if not isinstance(value, str):
            raise ValueError
        return value
    raise TypeError(f"unsupported setting type {hint!r}")  # pragma: no cover


def _finish(settings: Settings, path: Path) -> Settings:
    """Cross-field checks, path resolution and the generated secret key."""
    _check(settings, path)
    _check_bounces(settings.bounces, path)
    _check_console(settings, path)
    data_dir = settings.resolve_path(settings.data_dir)
    url = settings.database.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///").split("?", 1)
        if relative[0] and relative[0] != ":memory:":
            absolute = settings.resolve_path(relative[0])
            url = "sqlite:///" + str(absolute) + (f"?{relative[1]}" if len(relative) > 1 else "")
    secret = _secret(settings, data_dir)
    return dataclasses.replace(
        settings,
        data_dir=data_dir,
        secret_key=secret,
        database=dataclasses.replace(settings.database, url=url),
    )


def _failer(path: Path) -> Callable[[str, str], typing.NoReturn]:
    def fail(key: str, why: str) -> typing.NoReturn:
        raise ConfigError(f"{path}: {key}: {why}")

    return fail


def _check(settings: Settings, path: Path) -> None:
    """The checks across fields a type cannot express; the first problem is the error."""
    fail = _failer(path)

    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail("timezone", f"unknown time zone {settings.timezone!r}")
    if not settings.regions:
        fail("regions", "at least one region is needed")
    smtp = settings.smtp
    if smtp.tls not in _TLS_MODES:
        fail("smtp.tls", f"must be one of {', '.join(_TLS_MODES)}, got {smtp.tls!r}")
    if not 0 < smtp.port < 65536:
        fail("smtp.port", f"must be between 1 and 65535, got {smtp.port}")
    if smtp.max_connections < 1:
        fail("smtp.max_connections", "must be at least 1")
    for key in ("rate_per_second", "rate_per_minute", "rate_per_hour", "rate_per_day"):
        if getattr(smtp, key) < 0:
            fail(f"smtp.{key}", "must be 0 (unlimited) or more")
    if not settings.web.base_url.startswith(("http://", "https://")):
        fail("web.base_url", "must start with http:// or https://")
    for proxy in settings.web.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            fail("web.trusted_proxies", f"not an IP address or network: {proxy!r}")
    if settings.delivery.batch_size < 1 or settings.delivery.concurrency < 1:
        fail("delivery", "batch_size and concurrency must be at least 1")
    if settings.delivery.outbox_retention_days < 2:
        # The relay budget's longest window is a day: a row must outlive it to be counted.
        fail("delivery.outbox_retention_days", "must be at least 2")
    if "@" not in settings.sender.address:
        fail("sender.address", f"not an e-mail address: {settings.sender.address!r}")


def _check_console(settings: Settings, path: Path) -> None:
    fail = _failer(path)
    console = settings.console
    if not console.base_url.startswith(("http://", "https://")):
        fail("console.base_url", "must start with http:// or https://")
    if not 0 <= console.port < 65536:
        fail("console.port", f"must be between 0 and 65535, got {console.port}")
    if console.port and console.port == settings.web.port and console.host == settings.web.host:
        fail("console.port", "the console needs its own listener, not the subscriber pages' one")
    for key in ("idle_minutes", "session_hours", "setup_link_hours", "lockout_after",
                "lockout_minutes"):
        if getattr(console, key) < 1:
            fail(f"console.{key}", "must be at least 1")
    _check_oidc(console.oidc, fail)


def _check_oidc(oidc: OidcSettings, fail: Callable[[str, str], typing.NoReturn]) -> None:
    if not oidc.password_signin and not oidc.enabled:
        fail("console.oidc.password_signin", "false needs console.oidc.enabled = true "
             "(nobody could sign in)")
    for value, role in oidc.roles.items():
        if role not in CONSOLE_ROLES:
            fail(f"console.oidc.roles.{value}",
                 f"unknown role {role!r}; use one of {', '.join(CONSOLE_ROLES)}")
    if not oidc.enabled:
        return
    parts = urlsplit(oidc.issuer)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1")
    if not (parts.scheme == "https" and parts.hostname) and not loopback:
        fail("console.oidc.issuer", "must be an https:// URL (http:// only for 127.0.0.1 and "
             f"::1, in tests), got {oidc.issuer!r}")
    if not oidc.client_id.strip():
        fail("console.oidc.client_id", "is needed when console.oidc.enabled = true")
    if "openid" not in oidc.scopes:
        fail("console.oidc.scopes", "must include openid")
    if not oidc.groups_claim.strip():
        fail("console.oidc.groups_claim", "must name a claim, such as groups or roles")
    if not oidc.roles:
        fail("console.oidc.roles", "map at least one group or app role to a role, or nobody "
             "can sign in with it")


def _check_bounces(bounces: BounceSettings, path: Path) -> None:
    fail = _failer(path)
    if bounces.receiver_protocol not in ("smtp", "lmtp"):
        fail("bounces.receiver_protocol", "must be smtp or lmtp")
    if bounces.imap_auth not in ("password", "xoauth2"):
        fail("bounces.imap_auth", f"must be password or xoauth2, got {bounces.imap_auth!r}")
    if bounces.imap_auth == "xoauth2" and not (
        bounces.imap_oauth_token_url and bounces.imap_oauth_client_id
    ):
        fail("bounces.imap_auth", "xoauth2 needs imap_oauth_token_url and imap_oauth_client_id")
    for key in ("soft_threshold", "stale_days", "retention_days", "brake_recipients",
                "brake_window_minutes", "receiver_max_bytes", "receiver_max_sessions",
                "raw_keep_kib", "raw_total_mib", "junk_retention_days"):
        if getattr(bounces, key) < 1:
            fail(f"bounces.{key}", "must be at least 1")
    if not 0 < bounces.brake_share <= 1:
        fail("bounces.brake_share", "must be a fraction above 0 and at most 1")
    if not 0 <= bounces.receiver_port < 65536 or not 0 < bounces.imap_port < 65536:
        fail("bounces", "receiver_port must be 0 (off) to 65535 and imap_port 1 to 65535")


def _secret(settings: Settings, data_dir: Path) -> str:
    """MAILER_SECRET_KEY, if long enough, else the key generated into the data folder."""
    if settings.secret_key and len(settings.secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"MAILER_SECRET_KEY: too short ({len(settings.secret_key)} characters, at least "
            f"{MIN_SECRET_LENGTH} are needed); make one with: python3 -c "
            "'import secrets; print(secrets.token_urlsafe(48))'"
        )
    secret = settings.secret_key or _generated_secret(data_dir)
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{data_dir / 'secret.key'}: the key in it is too short (at least "
            f"{MIN_SECRET_LENGTH} characters); delete the file to have a new one made"
        )
    return secret


def uses_generated_key(settings: Settings) -> bool:
    """Whether these settings run on the key generated into data_dir (no MAILER_SECRET_KEY)."""
    try:
        stored = (settings.data_dir / "secret.key").read_text(encoding="ascii").strip()
    except OSError:
        return False
    return stored == settings.secret_key


def _generated_secret(data_dir: Path) -> str:
    """A random key kept in the data folder, so a demo works without setting MAILER_SECRET_KEY.

    Production sets MAILER_SECRET_KEY; the file is the embedded default, like the SQLite file.
    """
    key_file = data_dir / "secret.key"
    try:
        return key_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    private_folder(data_dir)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago: use theirs
        return key_file.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key
