"""Why a message was refused: a fixed taxonomy, decided from codes *and* words; pure, no I/O.

Receiving systems use a handful of codes for everything (5.0.0, 5.7.1, plain 550), so the words
of the diagnostic and of the human-readable notice decide first: each reason has a list of
phrases (the wordings of Postfix, Exim, Sendmail, qmail, Courier, Exchange / Microsoft 365,
Gmail, Yahoo/AOL, Mimecast, Proofpoint, Domino and local delivery agents' quota texts, in English
and Dutch). Message- and sender-level phrases are tried before address-level ones, so a refusal
that blames our mail or our IP never reads as a dead address. Only when no phrase matches do the
enhanced status code (RFC 3463) and then the SMTP reply code decide.

The reason then gives the severity (see `severity`): only address-level reasons are hard.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "REASONS",
    "ADDRESS_HARD",
    "ADDRESS_SOFT",
    "MESSAGE_LEVEL",
    "reason_for",
    "severity",
    "kind_for_reason",
    "is_autoreply_text",
    "is_challenge_text",
]

USER_UNKNOWN: Final = "user-unknown"
HOST_UNKNOWN: Final = "host-unknown"
MAILBOX_DISABLED: Final = "mailbox-disabled"
MAILBOX_FULL: Final = "mailbox-full"
TOO_LARGE: Final = "too-large"
CONTENT: Final = "content-rejected"
BLOCKED: Final = "blocked"
POLICY: Final = "policy"
RATE_LIMITED: Final = "rate-limited"
EXPIRED: Final = "expired"
SYSTEM: Final = "system"
AUTOREPLY: Final = "auto-reply"
CHALLENGE: Final = "challenge-response"
COMPLAINT: Final = "complaint"
UNKNOWN: Final = "unknown"

#: Every reason a bounce record can carry.
REASONS: Final = (
    USER_UNKNOWN, HOST_UNKNOWN, MAILBOX_DISABLED, MAILBOX_FULL, TOO_LARGE, CONTENT, BLOCKED,
    POLICY, RATE_LIMITED, EXPIRED, SYSTEM, AUTOREPLY, CHALLENGE, COMPLAINT, UNKNOWN,
)
#: The address is dead: the subscriber becomes `bounced` at once.
ADDRESS_HARD: Final = frozenset({USER_UNKNOWN, HOST_UNKNOWN, MAILBOX_DISABLED})
#: The address may recover: a point on the soft-bounce score.
ADDRESS_SOFT: Final = frozenset({MAILBOX_FULL, EXPIRED, SYSTEM})
#: The message or the sender was refused, not the address: the campaign's problem.
MESSAGE_LEVEL: Final = frozenset({TOO_LARGE, CONTENT, BLOCKED, POLICY, RATE_LIMITED})


def _words(*phrases: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in phrases), re.IGNORECASE)


# Tried in this order; the first list with a match decides. Message/sender-level first (a spam
# refusal often also says "recipient rejected"), then the quota texts, then dead addresses.
_PHRASES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (RATE_LIMITED, _words(
        r"rate limit", r"ratelimit", r"rate that prevents", r"too many (messages|connections|"
        r"recipients|emails|mails|concurrent|sessions)", r"try (again )?later.{0,40}(rate|volume)",
        r"throttl", r"exceeded .{0,30}(sending|message|connection|hourly|daily) (limit|rate|quota)",
        r"sending (limit|quota)", r"unusual rate", r"volume of mail", r"temporarily deferred",
        r"\bTS0[1-4]\b", r"slow down", r"receiving mail at a rate", r"too fast",
        r"te veel (berichten|verbindingen)",
    )),
    (TOO_LARGE, _words(
        r"message (size|length) exceeds", r"message (is )?too (large|big|long)",
        r"exceeds? (the )?(maximum|fixed|size|message size) (message )?(size|limit)",
        r"message .{0,20}size limit", r"message file too big", r"too large for",
        r"size too (big|large)",
        r"message exceeds (the )?(local|maximum|fixed)", r"maximum message size",
        r"(message|mail|header|attachment) size exceeds", r"maximum (incoming )?message size",
        r"exceeded the maximum .{0,20}size", r"sizelimit", r"message size (is )?larger",
        r"bericht is te groot", r"te groot bericht", r"maximale (bericht)?grootte",
        r"overschrijdt de maximale grootte",
    )),
    (BLOCKED, _words(
        r"spamhaus", r"spamcop", r"barracuda", r"sorbs", r"\bsurbl\b", r"uceprotect", r"\brbl\b",
        r"\bdnsbl\b", r"blacklist", r"black list", r"blocklist", r"block list", r"denylist",
        r"blocked using", r"(?<!not )listed (at|in|on|by)", r"client host .{0,80} blocked",
        r"(ip|address|host|domain|sender|network)( address)? (is |has been )?(temporarily )?"
        r"(blocked|blacklisted|banned|on our block)",
        r"poor reputation", r"bad reputation", r"(ip|sender|domain) reputation",
        r"reputation (of|for)", r"access denied\. ?ip name lookup failed",
        r"part of their network is on our block list", r"\bS3140\b", r"\b[A-Z]{2}-?\d{4}\b ?: ?"
        r"(listed|block)", r"service unavailable.{0,40}client host", r"blocked by (our|the)",
        r"refused by (the )?(anti-?spam|spam) (policy|filter).{0,20}ip", r"\bTSS0\d\b",
        r"mimecast.{0,60}(block|reject)", r"\b(SC|DY|OU|RP|CS|MC)-00\d\b",
        r"dynamically[- ]assigned ip", r"dynamic ip", r"invalid helo",
        r"helo .{0,40}(reject|invalid)",
        r"badmailfrom", r"\bGL01\b", r"envelope blocked", r"ipcheck\.proofpoint",
        r"\(DNS:NR\)", r"banned sending ip", r"sender\.office\.com", r"S3150", r"RBL",
        r"\bpps\.proofpoint\.com\b.{0,80}(block|reject)",
        r"ip .{0,40} (is )?not (allowed|permitted) to send", r"rejected - ip",
        r"your ip", r"sending ip", r"connecting ip", r"hostname does not match",
        r"reverse (dns|lookup)", r"no ptr", r"ptr record",
        r"geblokkeerd", r"zwarte lijst", r"blokkadelijst", r"blokkeerlijst",
    )),
    (POLICY, _words(
        r"\bspf\b", r"\bdkim\b", r"\bdmarc\b", r"sender policy framework",
        r"authentication (failed|required|results)", r"unauthenticated (mail|email|sender)",
        r"not authenticated", r"sender (address )?verification failed",
        r"sender address rejected", r"sender verify failed", r"5\.7\.26", r"5\.7\.515",
        r"relay(ing)? (access )?denied", r"relaying not (allowed|permitted)",
        r"not permitted to relay", r"unable to relay", r"we do not relay",
        r"sender domain .{0,40}(does not exist|not found|must resolve)",
        r"domain of sender address .{0,60} does not (exist|resolve)",
        r"arc validation", r"message rejected by policy", r"policy violation",
        r"anti-spoofing", r"spoof", r"5\.7\.509", r"does not pass dmarc",
        r"rejected by recipient'?s? (domain )?policy", r"not accepted.{0,20}policy",
        r"authenticatie", r"niet geauthenticeerd",
    )),
    (CONTENT, _words(
        r"(as|is|be|likely|considered|classified as|detected as|looks like|identified as|"
        r"suspected( of being)?|probably|contains?) (to be )?spam", r"spam (detected|message|"
        r"content|filter|rejected|score|mail|policy|suspected)", r"(rejected|blocked|refused)"
        r".{0,40}\bspam\b", r"\bspam\b.{0,40}(rejected|blocked|refused)", r"unsolicited",
        r"junk mail", r"bulk mail",
        r"content (was )?(rejected|refused|filter)", r"message content", r"rejected.{0,30}content",
        r"looks like spam", r"likely (unsolicited|spam)", r"suspicious (content|message|link|url)",
        r"phishing", r"virus (found|detected)", r"contains? (a )?virus", r"malware",
        r"infected (with|by)", r"banned attachment", r"attachment.{0,40}(not allowed|blocked)",
        r"forbidden attachment", r"message (was )?(rejected|refused|blocked) (as|because)",
        r"high probability of spam", r"message filtered",
        r"detected as (spam|bulk)", r"not accepted for delivery.{0,40}content", r"\bUBE\b",
        r"considered (spam|junk)", r"spam ?score", r"mailshield",
        r"message rejected due to", r"rejected due to security polic",
        r"ongewenste (e-?mail|berichten)", r"als spam", r"spamfilter", r"inhoud (van het bericht )?"
        r"(geweigerd|afgewezen)",
    )),
    (MAILBOX_FULL, _words(
        r"mailbox (is )?full", r"mailbox (has )?exceeded", r"over ?quota", r"quota (exceeded|full)",
        r"exceed(s|ed)? (the |its |his |her )?(storage|quota|mailbox)", r"disk quota",
        r"storage (allocation|limit|space)", r"insufficient (system )?storage",
        r"(user|recipient|mailbox)'?s? (mailbox|inbox|account)? ?(is )?over",
        r"not enough (disk )?space", r"out of (disk )?space", r"mailfolder is full",
        r"mail ?box size", r"inbox is full", r"inbox (is )?out of storage", r"full mailbox",
        r"quota", r"error writing message: file too large", r"mailbox size limit",
        r"mailbox (size )?(has )?exceeded", r"mailbox size exceeds", r"postvak (is )?vol",
        r"(mailbox|postvak|postbus|brievenbus)\b.{0,40}\bis vol",
        r"\bvol\b.{0,20}(mailbox|postvak)", r"mailbox is vol", r"brievenbus is vol",
        r"postbus (is )?vol", r"opslag(limiet|ruimte)", r"quotum", r"limiet .{0,20}overschreden",
        r"onvoldoende (opslag)?ruimte",
    )),
    (MAILBOX_DISABLED, _words(
        r"(account|mailbox|address|user) (is |has been )?(disabled|deactivated|suspended|"
        r"inactive|locked|closed|expired|blocked by the user|frozen|terminated|discontinued|"
        r"deleted|removed)",
        r"(disabled|inactive|suspended|deactivated|closed) (account|mailbox|user)",
        r"mailbox (is )?(not active|unavailable due to inactivity)", r"no longer (active|valid|"
        r"available|in use|exists?|with)", r"has been disabled", r"account has expired",
        r"this account has been", r"account is not active", r"account inactive",
        r"mailbox disabled", r"user (is )?suspended", r"tried to reach is (disabled|inactive)",
        r"is over its storage limit and disabled",
        r"account (is )?uitgeschakeld", r"account (is )?(opgeheven|gedeactiveerd|geblokkeerd)",
        r"mailbox (is )?(opgeheven|uitgeschakeld)", r"niet meer in gebruik", r"niet langer actief",
    )),
    (USER_UNKNOWN, _words(
        r"user (is )?unknown", r"unknown (user|recipient|local part|mailbox|address|alias)",
        r"no such (user|mailbox|recipient|address|account|local user|person)",
        r"(user|mailbox|recipient|address|account|e-?mail address|email account)( name)? "
        r"(does not|doesn'?t|did not|not) exist",
        r"(user|recipient|mailbox|address|account) not found", r"not a valid (mailbox|user|"
        r"recipient)", r"invalid (recipient|mailbox|user|address)", r"recipient (address )?"
        r"rejected: (user unknown|undeliverable|unknown|not found|no such)",
        r"unrouteable address", r"unroutable address", r"no mailbox here",
        r"address rejected: unknown", r"user not listed", r"not listed in domino directory",
        r"not listed in (the )?public name", r"isn'?t a valid", r"bad destination mailbox",
        r"no such local user", r"sorry, no mailbox here by that name", r"mailbox not found",
        r"recipient unknown", r"addressee unknown", r"unknown or illegal alias",
        r"doesn'?t have an? .{0,30}account", r"address (is )?(invalid|unknown)",
        r"resolver\.adr\.recipnotfound", r"recipientnotfound", r"recipnotfound",
        r"(does not|doesn'?t) have a mailbox", r"no valid recipients",
        r"the email account that you tried to reach does not exist",
        r"account that you tried to reach does not exist", r"AS\(201806281\)",
        r"address you entered couldn'?t be found", r"wasn'?t found at",
        r"recipient.{0,30}(couldn'?t|could not) be found", r"invalid address", r"unknown address",
        r"invalid (final )?delivery userid",
        r"did not (exactly )?match an? (valid )?(user|addressee|entry)", r"user doesn'?t exist",
        r"ungültig",
        r"gebruiker (is )?onbekend", r"onbekende (gebruiker|ontvanger|geadresseerde)",
        r"(adres|e-?mailadres|mailbox|ontvanger|gebruiker|postvak) bestaat niet",
        r"bestaat niet", r"(adres|ontvanger) (is )?onbekend", r"niet gevonden",
        r"ongeldig (e-?mail)?adres", r"geen (geldig|bestaand) (e-?mail)?adres",
    )),
    (HOST_UNKNOWN, _words(
        r"host (or domain name )?(is )?(unknown|not found)", r"unknown (host|domain)",
        r"domain (name )?(not found|does not exist|doesn'?t exist|is not valid)",
        r"no such (host|domain)", r"non-?existent domain", r"nonexistentdomain", r"host not found",
        r"name or service not known",
        r"nxdomain", r"no mx", r"mx record", r"unrouteable mail domain",
        r"domain .{0,40}(isn'?t|is not) (in my list of allowed rcpthosts|accepted)",
        r"not in my list of allowed rcpthosts", r"no route to host",
        r"couldn'?t find any host", r"dns (lookup|error).{0,30}(failed|not found)",
        r"domain (is )?(expired|parked)", r"does not accept mail", r"null mx",
        r"domein bestaat niet", r"onbekend domein", r"domeinnaam .{0,20}niet gevonden",
    )),
    (EXPIRED, _words(
        r"retry time(out)? (not )?(reached|exceeded)", r"message expired",
        r"delivery (time|period) expired", r"could not be delivered within", r"has been delayed "
        r"for", r"gave up", r"giving up", r"too long in (the )?queue",
        r"message timed? ?out", r"expired after", r"cannot send message for \d+ days?",
        r"could not be delivered for \d+ days?", r"undeliverable for \d+ days?",
        r"in the queue too long", r"delivery failed \d+ attempts",
        r"delivery expired", r"maximum time",
        r"kon niet binnen", r"bezorgtermijn verstreken", r"opgegeven na",
    )),
    (SYSTEM, _words(
        r"connection (timed out|refused|reset|lost|dropped)", r"timed out", r"timeout",
        r"network (is )?unreachable", r"temporary (local )?(problem|failure|error)",
        r"local error", r"system (error|failure|not available|config)", r"mail loop",
        r"loops back to myself", r"too many hops", r"routing loop", r"hop count exceeded",
        r"server (is )?(busy|unavailable)", r"service (not available|unavailable)",
        r"internal (server )?error", r"i/o error", r"protocol error", r"\btls\b", r"starttls",
        r"lost connection", r"command died with status",
        r"conversation with .{0,80} timed out", r"resources",
        r"mail system (is )?(full|unavailable)", r"try again later", r"please try again",
        r"verbinding (verbroken|geweigerd|mislukt)", r"tijdelijke? (storing|fout)",
        r"probeer (het )?later",
    )),
)

# Weak address-level phrases: used only when nothing else matched, since receivers also say
# these of policy refusals ("550 mailbox unavailable" for a blocklisted IP).
_WEAK: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    (USER_UNKNOWN, _words(
        r"mailbox unavailable", r"recipient (address )?rejected", r"undeliverable address",
        r"address rejected", r"recipient not (accepted|allowed|permitted)",
        r"permanent(ly)? .{0,30}(fail|error)", r"could not be delivered",
        r"niet (kunnen )?(worden )?bezorgd",
    )),
)

_AUTOREPLY: Final = _words(
    r"out of (the )?office", r"\bOOO\b", r"automatic reply", r"auto(matic)?[- ]?(reply|response"
    r"|responder)", r"i am (currently )?(away|out|on (vacation|holiday|leave))",
    r"i'?m (currently )?(away|out of|on (vacation|holiday|leave))",
    r"i will be (back|out|away)", r"(on|during) (my )?(vacation|holiday|leave|annual leave)",
    r"limited access to (my )?e-?mail", r"will (respond|reply|answer) .{0,40}(return|back)",
    r"thank you for your (e-?mail|message)\.? ?i", r"vacation", r"holiday",
    r"afwezig", r"afwezigheid", r"automatisch antwoord", r"automatisch bericht",
    r"met vakantie", r"vakantie", r"niet aanwezig", r"niet op kantoor", r"ben (weer )?terug op",
    r"vrij (tot|van)", r"dank voor uw (e-?mail|bericht)", r"bedankt voor (je|uw) (e-?mail|bericht)",
    r"abwesen", r"abwesenheit", r"absence", r"absent",
)
_CHALLENGE: Final = _words(
    r"challenge[- ]response", r"boxbe", r"spam ?arrest", r"mailblocks", r"choicemail",
    r"sender verification (request|required)", r"verify (that )?you are (a )?(human|real|person)",
    r"(please|kindly) (confirm|verify) (that )?(you|your (e-?mail|message|address))",
    r"(click|follow) (the|this) link .{0,60}(deliver|verify|confirm|approve)",
    r"(confirm|verify) your (e-?mail|message) (address )?(to|so|before)",
    r"awaiting (your )?(verification|confirmation)", r"approved senders? list",
    r"i use a (spam )?(filter|protection) (that|which) requires",
    r"your message (is|has been) (held|quarantined) (until|pending)",
    r"bevestig (dat|uw|je)", r"verifieer (dat|uw|je)", r"om (je|uw) bericht (af )?te leveren",
)


def _code_reason(status: str, smtp: int | None, action: str) -> str:
    """The reason from codes alone (RFC 3463 subjects and details; then the SMTP reply)."""
    parts = status.split(".") if status else []
    if len(parts) == 3 and parts[0] in ("4", "5"):
        klass, subject, detail = parts
        table = {
            ("1", "1"): USER_UNKNOWN, ("1", "0"): USER_UNKNOWN, ("1", "6"): MAILBOX_DISABLED,
            ("1", "2"): HOST_UNKNOWN, ("1", "10"): HOST_UNKNOWN, ("1", "3"): USER_UNKNOWN,
            ("1", "7"): POLICY, ("1", "8"): POLICY,
            ("2", "1"): MAILBOX_DISABLED, ("2", "2"): MAILBOX_FULL, ("2", "3"): TOO_LARGE,
            ("2", "4"): SYSTEM, ("3", "1"): MAILBOX_FULL, ("3", "4"): TOO_LARGE,
            ("4", "7"): EXPIRED, ("7", "1"): POLICY, ("7", "23"): POLICY, ("7", "24"): POLICY,
            ("7", "25"): BLOCKED, ("7", "26"): POLICY, ("7", "27"): POLICY,
            ("7", "28"): RATE_LIMITED,
            ("7", "0"): POLICY, ("7", "7"): POLICY, ("7", "8"): POLICY, ("7", "9"): POLICY,
            ("4", "4"): HOST_UNKNOWN, ("4", "1"): SYSTEM, ("4", "2"): SYSTEM,
            ("4", "3"): SYSTEM, ("4", "6"): SYSTEM, ("4", "0"): SYSTEM, ("3", "0"): SYSTEM,
            ("3", "2"): SYSTEM, ("3", "5"): SYSTEM, ("5", "3"): RATE_LIMITED,
            ("7", "2"): POLICY, ("6", "0"): CONTENT, ("6", "1"): CONTENT,
        }
        found = table.get((subject, detail)) or (
            SYSTEM if subject in ("3", "4", "5") else POLICY if subject == "7" else "")
        if klass == "4" and action == "failed" and found not in (MAILBOX_FULL, TOO_LARGE):
            return EXPIRED  # a temporary failure that the sending MTA gave up on
        if found:
            return found
        if klass == "4":
            return EXPIRED if action == "failed" else SYSTEM
    if smtp is not None:
        if smtp in (552,):
            return MAILBOX_FULL
        if smtp in (421, 450, 451, 452):
            return EXPIRED if action == "failed" else SYSTEM
        if smtp in (550, 551, 553):
            return USER_UNKNOWN if smtp == 551 else UNKNOWN
    return UNKNOWN


def _phrase(text: str) -> str:
    if _CHALLENGE.search(text):
        return CHALLENGE
    for reason, pattern in _PHRASES:
        if pattern.search(text):
            return reason
    return ""


def reason_for(status: str = "", smtp: int | None = None, text: str = "", action: str = "",
               context: str = "", rest: str = "") -> str:
    """The reason for one refusal: phrases in `text` (the diagnostic), then in `context` (the
    notice's words next to that recipient), then in `rest` (the rest of the notice), each
    message-level before address-level; then the codes; then weak phrases. A temporary failure
    given up on is `expired`. The nearest words win: a notice's footer ("protected from spam
    by ...") must not outweigh what its diagnostic says."""
    action = (action or "").strip().lower()
    gave_up = action == "failed" and status.startswith("4")
    texts = [" ".join(t.split()) for t in (text, context, rest)]
    for words in texts:
        found = _phrase(words) if words else ""
        if found:
            if found == SYSTEM and gave_up:
                return EXPIRED
            return found
    found = _code_reason(status, smtp, action)
    if found == UNKNOWN and not status.startswith("4"):
        # A generic code ("5.0.0", a bare 550): a weak phrase may still tell.
        for words in texts:
            for reason, pattern in _WEAK:
                if words and pattern.search(words):
                    return reason
    return found


def severity(reason: str, status: str = "") -> str:
    """hard, soft or none: what a reason means for the address."""
    if reason in ADDRESS_HARD:
        return "hard"
    if reason in ADDRESS_SOFT:
        return "soft"
    if reason == UNKNOWN:
        # An unexplained failure: a point on the score, never an instant `bounced`.
        return "soft" if status[:1] in ("4", "5") else "none"
    return "none"


def kind_for_reason(reason: str, action: str, status: str = "") -> str:
    """The record kind (see mailer.bounces.models.KINDS) for a per-recipient failure."""
    action = (action or "").strip().lower()
    if reason == AUTOREPLY:
        return "autoreply"
    if reason == CHALLENGE:
        return "challenge"
    if reason == COMPLAINT:
        return "complaint"
    if action == "delayed":
        return "delayed"
    if action in ("delivered", "relayed", "expanded"):
        return "unknown"
    if reason in MESSAGE_LEVEL:
        return "refused"
    level = severity(reason, status or "5")
    return level if level != "none" else "unknown"


def is_autoreply_text(text: str) -> bool:
    """Words of an out-of-office or other automatic reply (English and Dutch)."""
    return bool(_AUTOREPLY.search(text or ""))


def is_challenge_text(text: str) -> bool:
    """Words of a challenge-response system asking the sender to prove they are a person."""
    return bool(_CHALLENGE.search(text or ""))
