"""A local capture SMTP server: every message it accepts is written as an .eml file.

Used by `mailer demo`, `mailer capture` and tests in place of a real relay. It listens on
loopback only; each accepted message becomes `<folder>/<counter>-<recipient>.eml`, written to a
temporary name first so a reader never sees half a file.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["CaptureServer", "free_port", "port_is_free"]

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self._lock = threading.Lock()
        self._names = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        header = f"X-Envelope-From: {envelope.mail_from}\r\n".encode()
        for rcpt in envelope.rcpt_tos:
            with self._lock:
                number = next(self._names)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = f"{stamp}-{os.getpid()}-{number:06d}-{_UNSAFE.sub('_', rcpt)[:80]}.eml"
            tmp = self.folder / f".{name}.tmp"
            tmp.write_bytes(header + data)
            tmp.replace(self.folder / name)
            with self._lock:
                self.count += 1
        return "250 OK: captured"


class CaptureServer:
    """An aiosmtpd server on a loopback port writing .eml files; runs on its own thread.

        with CaptureServer(folder, port=2525) as server:
            ...  # send to 127.0.0.1:server.port
    """

    def __init__(self, folder: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the capture server listens on loopback only")
        self.folder = Path(folder)
        self.host = host
        self.port = port or free_port(host)
        self.handler = _Handler(self.folder)
        self._controller: Any = None

    @property
    def count(self) -> int:
        return self.handler.count

    def start(self) -> CaptureServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(
            self.handler, hostname=self.host, port=self.port, data_size_limit=50 * 1024 * 1024,
            decode_data=False, enable_SMTPUTF8=True,  # addresses with accents (RFC 6531)
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
