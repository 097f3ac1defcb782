"""The saved report of a fork-safe check: the PR job writes it (``--save DIR``), a
``workflow_run`` job that runs no PR code reads it back as untrusted input: regular files only,
inside the directory, bounded in size and depth, every report marker stripped."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci.errors import MlciError
from mlci.verdict.outcome import VALUES, Outcome, Verdict

if TYPE_CHECKING:
    pass


ARTIFACT_REPORT = "report.md"  # what `publish --from` posts: within GitHub's comment limit
ARTIFACT_FULL_REPORT = "report-full.md"  # the whole report, however long
ARTIFACT_META = "meta.json"
VERDICTS = VALUES  # mlci.outcome: every verdict a saved report may carry


@dataclass(frozen=True)
class Artifact:
    markdown: str
    pr_number: int
    head_sha: str
    verdict: Verdict
    report_name: str


def untrusted(message: str) -> MlciError:
    from mlci.errors import ConfigError

    return ConfigError(
        f"report artifact rejected: {message}",
        fix="publish only artifacts made by `mlci report --save` in the PR job",
    )


ARTIFACT_META_LIMIT = 64 * 1024  # bytes; what `save_artifact` writes is well under 1 KiB
ARTIFACT_META_DEPTH = 8  # nesting levels of meta.json; `save_artifact` writes one


def load_artifact(directory: Path) -> Artifact:
    """Read a saved report as untrusted input: sizes, types and markup are checked.

    Only regular files inside ``directory`` are read (no symlinks, FIFOs or devices), each
    bounded in size; meta.json also in depth. Every report marker is stripped, so the report
    can only ever be posted under the marker ``publish_artifact`` gives it.
    """
    import re

    from mlci.limits import COMMENT_LIMIT

    raw = read_artifact_file(directory, ARTIFACT_REPORT, 4 * COMMENT_LIMIT)
    meta = _parse_meta(read_artifact_file(directory, ARTIFACT_META, ARTIFACT_META_LIMIT))
    try:
        markdown = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise untrusted(f"{ARTIFACT_REPORT} is not UTF-8") from None
    if len(markdown) > COMMENT_LIMIT:
        raise untrusted(
            f"{ARTIFACT_REPORT} has {len(markdown):,} characters (limit {COMMENT_LIMIT:,})"
        )
    number, sha = meta.get("pr_number"), meta.get("head_sha")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise untrusted(f"pr_number {_shown(number)} is not a PR number")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise untrusted(f"head_sha {_shown(sha)} is not a commit SHA")
    status = meta.get("verdict")
    if status not in VERDICTS:
        raise untrusted(f"verdict {_shown(status)} is not one of {', '.join(VERDICTS)}")
    name = meta.get("report_name") or "mlci"
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]{1,64}", name):
        raise untrusted(f"report_name {_shown(name)} is not a plain name")
    summary = meta.get("summary", "")
    exit_code = meta.get("exit_code", 0)
    verdict = Verdict(
        Outcome(status),
        (summary if isinstance(summary, str) else "")[:500],
        exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else 1,
    )
    return Artifact(_strip_markers(markdown), number, sha, verdict, name)


def read_artifact_file(directory: Path, name: str, limit: int) -> bytes:
    """The bytes of ``directory/name``, a regular file of at most ``limit`` bytes.

    Checked before opening (lstat: no symlink, FIFO or device is opened) and on the open file
    (O_NOFOLLOW, fstat: the same regular file), then read no further than ``limit`` + 1.
    """
    import os
    import stat

    path = directory / name
    try:
        before = os.lstat(path)
    except OSError as exc:
        raise untrusted(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(before.st_mode):
        raise untrusted(f"{path} is {_file_kind(before.st_mode)}, not a regular file")
    if before.st_nlink > 1:
        raise untrusted(f"{path} has {before.st_nlink} hard links; a saved report has one")
    if before.st_size > limit:
        raise untrusted(f"{path} is {before.st_size:,} bytes (limit {limit:,})")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise untrusted(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(
            opened.st_mode
        ):
            raise untrusted(f"{path} was replaced while it was being read")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise untrusted(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise untrusted(f"{path} is over {limit:,} bytes")
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    import stat

    kinds = [
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ]
    return next((what for test, what in kinds if test(mode)), "not a plain file")


def _parse_meta(raw: bytes) -> dict[str, Any]:
    """meta.json as a flat-enough JSON object; anything else is a clean rejection."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise untrusted(f"{ARTIFACT_META} nests too deeply to parse") from None
    except ValueError as exc:  # not UTF-8, not JSON, or an integer too long to convert
        raise untrusted(f"{ARTIFACT_META} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise untrusted(f"{ARTIFACT_META} holds a JSON {type(meta).__name__}, not an object")
    if _depth_exceeds(meta, ARTIFACT_META_DEPTH):
        raise untrusted(f"{ARTIFACT_META} nests deeper than {ARTIFACT_META_DEPTH} levels")
    return meta


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays/objects in ``value`` nest deeper than ``limit`` (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return False


def _shown(value: Any) -> str:
    """A short, one-line form of an untrusted value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_markers(markdown: str) -> str:
    """``markdown`` with no report marker left, however markers were nested or split.

    Whole marker comments go first; then every leftover marker prefix, repeatedly, since
    removing one can join the text around it into another. At the end no ``MARKER_PREFIX``
    remains, so no marker of any report can be in the text.
    """
    import re

    from mlci.report.render import MARKER_PREFIX

    # Marker names hold no `<`, `>` or newline, so each match stops at the next `<`: linear.
    whole = re.compile(re.escape(MARKER_PREFIX) + r"[^<>\n]*-->")
    text = whole.sub("", markdown)
    while MARKER_PREFIX in text:
        text = whole.sub("", text).replace(MARKER_PREFIX, "")
    return text
