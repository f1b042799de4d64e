"""Secrets as files: one file per secret, mode 0600 in a 0700 folder.

For a developer machine and the embedded setup. Writes go to a temporary file
that is renamed over the target, so a reader never sees half a secret; `pop`
renames the file away first, so two processes can never both take one item.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from shared.secrets import SecretStore, check_name


class LocalSecretStore(SecretStore):
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _dir(self) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (self.directory.stat().st_mode & 0o077) != 0:
            os.chmod(self.directory, 0o700)
        return self.directory

    def get(self, name: str) -> str | None:
        path = self.directory / check_name(name)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set(self, name: str, value: str) -> None:
        target = self._dir() / check_name(name)
        tmp = target.with_name(f".{name}.{secrets.token_hex(6)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.directory / check_name(name)).unlink()

    def pop(self, name: str) -> str | None:
        source = self.directory / check_name(name)
        taken = source.with_name(f".{name}.{secrets.token_hex(6)}.taken")
        try:
            os.rename(source, taken)  # atomic: exactly one caller wins
        except FileNotFoundError:
            return None
        try:
            return taken.read_text(encoding="utf-8")
        finally:
            with contextlib.suppress(FileNotFoundError):
                taken.unlink()

    def names(self, prefix: str = "") -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name for p in self.directory.iterdir()
            if not p.name.startswith(".") and p.name.startswith(prefix) and p.is_file()
        )
