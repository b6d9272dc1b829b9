"""A private Dovecot IMAP server on loopback (implicit TLS), configured by a test in a temporary
folder with a passwd-file user, so the IMAP poller is tested against a real server.

Needs Debian's dovecot-imapd (installed by .ci/run) and root (Dovecot drops privileges).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
NOBODY = 65534
USER = "bounces@gt.example.nl"
PASSWORD = "imap-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def usable() -> str | None:
    if not Path(DOVECOT).exists():
        return "dovecot is not installed (apt-get install dovecot-imapd)"
    if shutil.which("openssl") is None:
        return "openssl is needed to make the test certificate"
    if os.geteuid() != 0:
        return "a private Dovecot instance needs root"
    return None


class PrivateDovecot:
    """Dovecot with one user (USER / PASSWORD), a Maildir, and a self-signed certificate."""

    def __init__(self, *, introspection_url: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gt-mailer-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.cert = self.root / "cert.pem"
        key = self.root / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(self.cert)],
            check=True, capture_output=True, timeout=60,
        )
        home = self.root / "home"
        home.mkdir()
        os.chown(home, NOBODY, NOBODY)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        self.log = self.root / "dovecot.log"
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{key}
ssl_dh = </usr/share/dovecot/dh.pem
auth_mechanisms = plain login{" xoauth2" if introspection_url else ""}
disable_plaintext_auth = yes
first_valid_uid = 1
mail_location = maildir:{home}/%u
mail_uid = {NOBODY}
mail_gid = {NOBODY}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
{self._oauth_passdb(introspection_url)}userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
        self.process: subprocess.Popen[bytes] | None = None

    def _oauth_passdb(self, introspection_url: str) -> str:
        """A second passdb that checks bearer tokens with an OAuth introspection endpoint."""
        if not introspection_url:
            return ""
        conf = self.root / "oauth2.conf.ext"
        conf.write_text(f"introspection_url = {introspection_url}\n"
                        "introspection_mode = post\n"
                        "username_attribute = username\n"
                        "active_attribute = active\n"
                        "active_value = true\n")
        return f"passdb {{\n  driver = oauth2\n  args = {conf}\n}}\n"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def start(self) -> None:
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.process.stderr.read()!r}\n"
                                   f"{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not listen on {self.port}\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateDovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OAuthServer:
    """A token endpoint (client credentials) and an introspection endpoint, on loopback HTTP."""

    TOKEN = "gt-test-access-token"

    def __init__(self, client_id: str, client_secret: str) -> None:
        import json
        import threading
        import urllib.parse
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        expected = {"grant_type": "client_credentials", "client_id": client_id,
                    "client_secret": client_secret}
        token = self.TOKEN
        self.token_requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if self.path == "/token":
                    outer.token_requests += 1
                    ok = all(form.get(k) == v for k, v in expected.items())
                    body = {"access_token": token, "expires_in": 3600} if ok else {
                        "error": "invalid_client"}
                    status = 200 if ok else 401
                else:  # introspection (RFC 7662)
                    status = 200
                    body = ({"active": "true", "username": USER}
                            if form.get("token") == token else {"active": "false"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/introspect"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
