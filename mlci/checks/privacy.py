"""Scan text-like columns for personal data: e-mail addresses, phone numbers, payment-card
numbers (Luhn-checked) and national-ID-like patterns. Findings carry column and count, never
a value."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "phone": re.compile(
        r"(?<![\w-])\+?\d{1,3}[\s.-]?\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]?\d{3,4}(?![\w-])"
    ),
    "card": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "national_id": re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)|\b[A-CEGHJ-PR-TW-Z]{2}\d{6}[A-D]\b"),
}


@dataclass(frozen=True)
class Finding:
    path: str
    column: str
    kind: str
    count: int


@dataclass(frozen=True)
class PiiReport:
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    block: bool = False

    @property
    def found(self) -> bool:
        return bool(self.findings)


def luhn(digits: str) -> bool:
    nums = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(nums) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _count(values: Any, kind: str) -> int:
    pattern = PATTERNS[kind]
    if kind == "phone":
        # A card number's digit groups look like a phone number: take card-like runs out first.
        values = values.str.replace(PATTERNS["card"], " ", regex=True)
    if kind != "card":
        return int(values.str.contains(pattern, regex=True).sum())
    hits = values.str.findall(pattern)
    return int(sum(any(luhn(m) for m in found) for found in hits))


def scan_frame(path: str, frame: Any, allow: Sequence[str] = ()) -> tuple[Finding, ...]:
    """Findings per column and kind in the text-like columns of ``frame``."""
    findings = []
    for column in frame.columns:
        if column in allow or (
            frame[column].dtype.kind not in "OSU"
            and str(frame[column].dtype) not in ("string", "str", "category")
        ):
            continue
        values = frame[column].dropna().astype(str)
        if values.empty:
            continue
        for kind in PATTERNS:
            count = _count(values, kind)
            if count:
                findings.append(Finding(path, str(column), kind, count))
    return tuple(findings)
