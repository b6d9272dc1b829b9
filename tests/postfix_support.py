"""A private Postfix instance on loopback, started by a test in its own folders, to produce real
bounces: an unknown local user (5.1.1), a full mailbox (5.2.2), and a relay that answers 452 so
the message is first delayed (a delay warning) and then returned (4.2.2, retry time expired).

Needs Debian's postfix package and root (Postfix's daemons change user). Bounces for the VERP
domain are relayed to `bounce_port`, where the test runs GT Mailer's own receiver.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
NOBODY = 65534
# Domains this Postfix handles itself (names that pass address validation, never resolved).
LOCAL_DOMAIN = "intern.gemeente-test.nl"  # local(8): unknown users bounce
FULL_DOMAIN = "vol.gemeente-test.nl"  # virtual(8): `full@` has a mailbox at its size limit
SLOW_DOMAIN = "traag.gemeente-test.nl"  # relayed to a server answering 452

_MASTER_CF = """\
{smtpd_addr} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def usable() -> str | None:
    """Why a private Postfix cannot run here, or None if it can."""
    if not Path(POSTFIX).exists():
        return "postfix is not installed (apt-get install postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    return None


class PrivatePostfix:
    """Postfix with config, queue and mailboxes in a temporary folder, on `smtp_port`."""

    def __init__(self, *, bounce_domain: str, bounce_port: int, slow_port: int,
                 lmtp: bool = False) -> None:
        # Not under pytest's tmp_path: Postfix's own user must reach it, and that is 0700.
        root = self.root = Path(tempfile.mkdtemp(prefix="gt-mailer-postfix-"))
        self.conf = root / "conf"
        self.smtp_port = free_port()
        self.maillog = root / "maillog"
        for sub in ("conf", "queue", "data", "spool", f"vmail/{FULL_DOMAIN}"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        shutil.chown(root / "data", "postfix", "postfix")
        # A mailbox that is full: its mbox file is at the size limit already.
        mbox = root / "vmail" / FULL_DOMAIN / "full"
        mbox.write_bytes(b"From old@example.test  Mon Nov 23 00:00:00 2026\n\n" + b"x" * 60_000)
        for path in (root / "vmail", root / f"vmail/{FULL_DOMAIN}", mbox):
            os.chown(path, NOBODY, NOBODY)
        (self.conf / "vmailbox").write_text(f"full@{FULL_DOMAIN} {FULL_DOMAIN}/full\n")
        (self.conf / "transport").write_text(
            f"{SLOW_DOMAIN} smtp:[127.0.0.1]:{slow_port}\n"
            f"{bounce_domain} {'lmtp:inet' if lmtp else 'smtp'}:[127.0.0.1]:{bounce_port}\n"
        )
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": root / "queue",
            "data_directory": root / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": root,
            "myhostname": "mx.gt-test.example",
            "mydomain": "gt-test.example",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "mydestination": LOCAL_DOMAIN,
            # Accept any local name at SMTP time, so local(8) returns a real DSN for unknown ones.
            "local_recipient_maps": "",
            "alias_maps": "",
            # Should a real account's name be used by mistake, its mail stays in our folder.
            "mail_spool_directory": root / "spool",
            "allow_mail_to_commands": "",
            "allow_mail_to_files": "",
            "alias_database": "",
            "virtual_mailbox_domains": FULL_DOMAIN,
            "virtual_mailbox_base": root / "vmail",
            "virtual_mailbox_maps": f"texthash:{self.conf / 'vmailbox'}",
            "virtual_uid_maps": f"static:{NOBODY}",
            "virtual_gid_maps": f"static:{NOBODY}",
            "virtual_mailbox_limit": "51200",
            "message_size_limit": "51200",
            "relay_domains": f"{SLOW_DOMAIN}, {bounce_domain}",
            "transport_maps": f"texthash:{self.conf / 'transport'}",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "lmtp_tls_security_level": "none",
            # Try the slow relay every second; warn after 1s; give up (return it) after 8s. The
            # gap leaves room for a retry (and so the warning) on a busy machine, where retries
            # can come seconds apart; with a gap of 3s the message now and then expired first.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "1s",
            "delay_warning_time": "1s",
            "maximal_queue_lifetime": "8s",
            "bounce_queue_lifetime": "8s",
            "smtp_connect_timeout": "5s",
            "biff": "no",
            "append_dot_mydomain": "no",
            "smtputf8_enable": "no",
            "notify_classes": "",
        }
        (self.conf / "main.cf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        (self.conf / "master.cf").write_text(
            _MASTER_CF.format(smtpd_addr=f"127.0.0.1:{self.smtp_port}")
        )

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.conf), *args], capture_output=True,
                              text=True, timeout=60)

    def start(self) -> None:
        result = self._postfix("start")
        if result.returncode != 0:
            raise RuntimeError(f"postfix start failed: {result.stderr.strip()}\n{self.log()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"postfix did not listen on {self.smtp_port}\n{self.log()}")

    def flush(self) -> None:
        """Ask the queue manager to try deferred mail now (`postfix flush`). A busy machine has
        been seen to leave a deferred message unscanned for over a minute after its last try."""
        self._postfix("flush")

    def stop(self) -> None:
        self._postfix("stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""

    def __enter__(self) -> PrivatePostfix:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
