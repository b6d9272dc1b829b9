"""Private files and folders: what GT Mailer creates on disk is for its own user only.

The data folder, the SQLite database (and so its WAL and shared-memory files, which SQLite
creates with the database's mode), captured mail and key files hold addresses and secrets; other
local users on the server must not read them, whatever the umask. Folders are made 0700, files
0600. Existing ones are left as they are: an administrator may have chosen otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_folder", "private_file", "write_private"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """`path` and any missing parents, each created 0700 (the umask cannot widen it)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # another process made it a moment ago
            continue
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is masked by the umask; chmod is not
    return path


def private_file(path: Path) -> Path:
    """An empty `path` made 0600 if it does not exist yet (an existing one is left alone)."""
    private_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.fchmod(fd, FILE_MODE)
    os.close(fd)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new or replaced `path` that only our user can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), FILE_MODE)
        out.write(data)
