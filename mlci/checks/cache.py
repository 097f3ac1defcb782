"""One small cache for answers that content hashes decide (a file validated, a file scanned):
a JSON file under ``.mlci/``, keyed by fingerprints. A broken or unreadable file is an empty
cache; nothing here is ever a source of truth.

Every cache's name carries a tag made from a secret kept in the clone's git directory
(:func:`private`). A pull request can commit files under ``.mlci/`` (``git add -f`` passes any
``.gitignore``), and a fingerprint is public arithmetic: a committed ``validated.json`` whose
entry says its own invalid data passed would otherwise be believed. Nothing can be committed
into ``.git/``, so a committed cache never has the name this clone reads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

from mlci import git
from mlci.errors import RepoError

_SECRET = "mlci-cache-key"  # in the git directory: 32 random bytes, hex
_secrets: dict[str, bytes] = {}


def private(root: Path, name: str) -> Path | None:
    """``root/.mlci/<name>`` as this clone's own (``validated.json`` ->
    ``validated-<tag>.json``; a directory's name gets the tag too); None where there is no git
    directory to keep the secret in (then nothing is cached)."""
    key = secret(root)
    if key is None:
        return None
    tag = hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:16]
    stem, dot, suffix = name.partition(".")
    return root / ".mlci" / f"{stem}-{tag}{dot}{suffix}"


def secret(root: Path) -> bytes | None:
    """The clone's cache secret, made on first use (mode 0600); None without a git directory."""
    try:
        where = git.git_dir(root) / _SECRET
    except RepoError:
        return None
    if str(where) in _secrets:
        return _secrets[str(where)]
    try:
        fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    except OSError:
        return None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(os.urandom(32).hex())
    try:
        text = where.read_text(encoding="ascii").strip()
        value = bytes.fromhex(text)
    except (OSError, ValueError):
        return None
    if len(value) < 16:
        return None
    _secrets[str(where)] = value
    return value


class JsonCache:
    def __init__(self, path: Path | None, *, enabled: bool = True) -> None:
        self.path = path or Path(os.devnull)
        self.enabled = enabled and path is not None
        self.data: dict[str, Any] = {}
        self.dirty = False
        if self.enabled and self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                loaded = {}
            self.data = loaded if isinstance(loaded, dict) else {}

    def get(self, key: str | None) -> Any:
        return self.data.get(key) if self.enabled and key else None

    def put(self, key: str | None, value: Any) -> None:
        if self.enabled and key:
            self.data[key] = value
            self.dirty = True

    def save(self) -> None:
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, sort_keys=True), encoding="utf-8")
            self.dirty = False
