"""The runner's own files: the job summary (``$GITHUB_STEP_SUMMARY``, at most 1 MiB per step) and
step outputs (``$GITHUB_OUTPUT``, multi-line values with a random delimiter)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path

from mlci.limits import SUMMARY_LIMIT


def write_step_summary(path: str | Path, markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY``, keeping the file within GitHub's 1 MiB."""
    target = Path(path)
    used = target.stat().st_size if target.exists() else 0
    budget = SUMMARY_LIMIT - used
    data = markdown.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    if len(data) > budget:
        from mlci.markdown import fit, utf8_size

        where = "the report file on the runner"
        data = fit(markdown, max(budget - 1, 0), where, size=utf8_size).encode("utf-8") + b"\n"
        data = data[: max(budget, 0)]
    if data:
        with target.open("ab") as fh:
            fh.write(data)


def write_outputs(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` (multi-line values with a random delimiter)."""
    lines = []
    for name, value in outputs.items():
        if not name or re.search(r"[\s=<]", name):
            raise ValueError(f"invalid step output name {name!r}")
        if "\n" in value or "\r" in value:
            delim = f"ghadelimiter_{uuid.uuid4()}"
            while delim in value:
                delim = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{name}<<{delim}\n{value}\n{delim}\n")
        else:
            lines.append(f"{name}={value}\n")
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write("".join(lines))
