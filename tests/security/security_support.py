"""Helpers shared by the attack tests: running `mailer` as a subprocess and reading its output."""

from __future__ import annotations

import subprocess
import sys
import threading

MAILER = [sys.executable, "-m", "mailer"]


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    """The lines `proc` printed up to and including the first holding `needle`.

    AssertionError (with what it printed) if the process ends or `timeout` passes first.
    """
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if needle in line:
                found.set()
                return
        found.set()

    threading.Thread(target=read, daemon=True).start()
    found.wait(timeout)
    if not any(needle in line for line in lines):
        raise AssertionError(f"{needle!r} not printed; got:\n{''.join(lines)}")
    return lines
