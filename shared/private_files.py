"""Files only the app's user may read: the SQLite database and the embedded queue.

They hold replicated calendars (and, for the database, encrypted refresh tokens);
the process umask usually makes new files 0644. The file is created 0600 before
SQLite opens it (SQLite gives its -wal/-shm files the database file's mode),
directories the app creates are 0700, and files left world-readable by an older
version are tightened.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_COMPANIONS = ("", "-wal", "-shm", "-journal")


def prepare_private_file(path: str | os.PathLike[str]) -> None:
    """Create `path` (and its missing directories) readable by the owner only."""
    target = Path(path)
    missing = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in _COMPANIONS:
        companion = Path(f"{target}{suffix}")
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if companion.stat().st_mode & 0o077:
                os.chmod(companion, 0o600)
