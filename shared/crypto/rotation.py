"""Key rotation: new key, re-encrypt every stored refresh token, retire old keys.

The app keeps running throughout: old keys stay in the store (so every
ciphertext still decrypts) until no row references them. Other processes keep
encrypting with the key they read as current for up to SECRET_CACHE_SECONDS,
so retiring waits that long and re-checks every row before deleting a key.
A row rewritten by a token refresh during the pass is detected (the stored
ciphertext changed under us) and checked again instead of being overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.crypto.cipher import TokenCipher, TokenDecryptError, key_id_of

if TYPE_CHECKING:
    from shared.storage.base import Repository

Progress = Callable[[int, int], None]


@dataclass
class RotationReport:
    key_id: str
    total: int = 0
    reencrypted: int = 0
    already_current: int = 0
    without_token: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    old_keys: list[str] = field(default_factory=list)       # not current, no longer referenced
    referenced_old: dict[str, int] = field(default_factory=dict)  # old key id -> rows still using it
    retired: list[str] = field(default_factory=list)


def _reencrypt_one(repo: Repository, cipher: TokenCipher, user_id: str, target: str) -> str:
    """'done', 'current', 'empty' — or raises TokenDecryptError."""
    for _ in range(5):
        row = repo.get_user(user_id)
        stored = row.encrypted_refresh_token if row else None
        if not stored:
            return "empty"
        if key_id_of(stored) == target:
            return "current"
        fresh = cipher.encrypt(cipher.decrypt(stored, user_id), user_id)
        again = repo.get_user(user_id)
        if again is None or again.encrypted_refresh_token != stored:
            continue  # a refresh stored a newer token meanwhile: look at that one
        repo.set_refresh_token(user_id, fresh)
        return "done"
    return "current"


def reencrypt_all(repo: Repository, cipher: TokenCipher, report: RotationReport,
                  progress: Progress | None = None) -> None:
    """Bring every row to the current key; collect what could not be read."""
    target = cipher.current_key_id()
    users = [u.microsoft_user_id for u in repo.list_users() if u.microsoft_user_id]  # the key: always set
    report.total = len(users)
    for index, user_id in enumerate(users, 1):
        try:
            outcome = _reencrypt_one(repo, cipher, user_id, target)
        except TokenDecryptError as exc:
            report.failed.append((user_id, str(exc)))
        else:
            if outcome == "done":
                report.reencrypted += 1
            elif outcome == "current":
                report.already_current += 1
            else:
                report.without_token += 1
        if progress:
            progress(index, len(users))


def _survey_keys(repo: Repository, cipher: TokenCipher, report: RotationReport) -> None:
    current = cipher.current_key_id()
    counts: dict[str, int] = {}
    for row in repo.list_users():
        if row.encrypted_refresh_token:
            try:
                kid = key_id_of(row.encrypted_refresh_token)
            except TokenDecryptError:
                continue
            counts[kid] = counts.get(kid, 0) + 1
    old = [k for k in cipher.key_ids() if k != current]
    report.referenced_old = {k: counts[k] for k in old if counts.get(k)}
    report.old_keys = [k for k in old if not counts.get(k)]


def rotate_key(repo: Repository, cipher: TokenCipher, *, progress: Progress | None = None) -> RotationReport:
    """Make a new key current and re-encrypt every stored token with it."""
    report = RotationReport(key_id=cipher.create_key(make_current=True))
    reencrypt_all(repo, cipher, report, progress)
    _survey_keys(repo, cipher, report)
    return report


def retire_old_keys(repo: Repository, cipher: TokenCipher, report: RotationReport, *, wait_seconds: float = 0,
                    progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
    """After other processes can no longer hold an old key as current, re-check every
    row and delete each old key that no row references."""
    if wait_seconds > 0:
        sleep(wait_seconds)
    again = RotationReport(key_id=report.key_id)
    reencrypt_all(repo, cipher, again, progress)
    report.reencrypted += again.reencrypted
    report.failed = again.failed
    _survey_keys(repo, cipher, report)
    for key_id in report.old_keys:
        cipher.delete_key(key_id)
        report.retired.append(key_id)
    report.old_keys = []
