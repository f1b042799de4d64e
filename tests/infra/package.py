"""The Function App's deployment package file list, as `azd deploy` and Core
Tools build it: every file under the project folder except those `.funcignore`
excludes (gitignore semantics).

`pathspec` (GitIgnoreSpec) is used when installed; otherwise `IgnoreRules`, a
small matcher of the gitignore rules `.funcignore` needs:
- blank lines and `#` comments are skipped; `!pattern` re-includes;
- a trailing `/` matches directories only;
- a pattern with a `/` at its start or middle is anchored at the root,
  otherwise it matches at any depth;
- `*` and `?` do not cross `/`, `**` does, `[...]` is a character class;
- a file inside an excluded directory is excluded and cannot be re-included.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
from collections.abc import Iterable


def _translate(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class IgnoreRules:
    """Gitignore-style rules (the subset documented in the module docstring)."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.rules: list[tuple[re.Pattern[str], bool, bool]] = []
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            line = line.lstrip("/")
            regex = _translate(line)
            if not anchored:
                regex = "(?:.*/)?" + regex
            self.rules.append((re.compile(regex + r"\Z"), negate, dir_only))

    def _matches(self, path: str, is_dir: bool) -> bool:
        ignored = False
        for regex, negate, dir_only in self.rules:
            if dir_only and not is_dir:
                continue
            if regex.match(path):
                ignored = not negate
        return ignored

    def match_file(self, path: str) -> bool:
        """True when `path` (a file, relative, '/'-separated) is excluded."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if self._matches("/".join(parts[:depth]), is_dir=True):
                return True
        return self._matches(path, is_dir=False)


def load_rules(funcignore: pathlib.Path, *, prefer_pathspec: bool = True):
    lines = funcignore.read_text(encoding="utf-8").splitlines()
    if prefer_pathspec:
        try:
            import pathspec
        except ImportError:
            pass
        else:
            return pathspec.GitIgnoreSpec.from_lines(lines)
    return IgnoreRules(lines)


def project_files(root: pathlib.Path) -> list[str]:
    """Files a fresh checkout plus local work has: tracked and untracked-but-not-gitignored.

    Gitignored local state (.venv, .data, node_modules, local.settings.json) is
    not listed here; the tests add such paths explicitly.
    """
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root, check=True, capture_output=True, timeout=60,
        ).stdout.decode()
        files = [path for path in listed.split("\0") if path]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in {".git", ".venv", "node_modules"} and not d.startswith(".venv")]
            files += [os.path.relpath(os.path.join(folder, n), root).replace(os.sep, "/") for n in names]
    return sorted(path for path in files if (root / path).is_file())


def package_files(root: pathlib.Path, candidates: Iterable[str], rules) -> list[str]:
    return sorted(path for path in candidates if not rules.match_file(path))
