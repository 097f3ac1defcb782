"""One small cache for answers that content hashes decide (a file validated, a file scanned):
a JSON file under ``.mlci/``, keyed by fingerprints. A broken or unreadable file is an empty
cache; nothing here is ever a source of truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonCache:
    def __init__(self, path: Path, *, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled
        self.data: dict[str, Any] = {}
        self.dirty = False
        if enabled and path.is_file():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
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
