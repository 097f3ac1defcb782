"""The only place that writes to the terminal.

On GitHub Actions it speaks workflow commands (``::group::``, ``::error::``, ``::add-mask::``);
elsewhere it prints plain lines, with colour on a TTY. Every line passes through ``redact`` so
a secret registered with ``mask`` never reaches a log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

_secrets: set[str] = set()


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _colour(text: str, code: str, stream: object) -> str:
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty() or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{code}m{text}\033[0m"


def escape_data(text: str) -> str:
    """Escape a workflow-command message (GitHub's documented rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow-command property value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def mask(secret: str | None) -> None:
    """Never print ``secret``; on GitHub also ask the runner to mask it in the log."""
    if not secret or len(secret) < 4:
        return
    _secrets.add(secret)
    if on_github():
        sys.stdout.write(f"::add-mask::{escape_data(secret)}\n")
        sys.stdout.flush()


def _write(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(redact(text) + "\n")
    stream.flush()


def out(text: str) -> None:
    """Plain output: a report, a table, a value."""
    _write(text)


def info(text: str) -> None:
    _write(text)


def step(text: str) -> None:
    """A progress line for long work."""
    _write(_colour(f"» {text}", "1", sys.stdout))


def success(text: str) -> None:
    _write(_colour(text, "32", sys.stdout))


def annotate(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    title: str | None = None,
) -> None:
    """A GitHub annotation (``error``, ``warning``, ``notice``); a plain line elsewhere."""
    if on_github():
        props = []
        if file:
            props.append(f"file={escape_property(file)}")
        if line:
            props.append(f"line={line}")
        if title:
            props.append(f"title={escape_property(title)}")
        head = f"::{level} {','.join(props)}::" if props else f"::{level}::"
        _write(head + escape_data(redact(message)), err=level == "error")
        return
    where = f"{file}{':' + str(line) if line else ''}: " if file else ""
    label = {"error": "error", "warning": "warning"}.get(level, "note")
    colour = {"error": "31", "warning": "33"}.get(level, "36")
    stream = sys.stderr if level == "error" else sys.stdout
    prefix = f"{title}: " if title else ""
    _write(f"{_colour(label + ':', colour, stream)} {where}{prefix}{message}", err=level == "error")


def warn(message: str, **kwargs: object) -> None:
    annotate("warning", message, **kwargs)  # type: ignore[arg-type]


def error(message: str, **kwargs: object) -> None:
    annotate("error", message, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """A foldable group on GitHub; a heading line with its duration elsewhere."""
    start = time.monotonic()
    if on_github():
        _write(f"::group::{escape_data(title)}")
    else:
        step(title)
    try:
        yield
    finally:
        if on_github():
            _write("::endgroup::")
        else:
            _write(_colour(f"  done in {time.monotonic() - start:.1f}s", "2", sys.stdout))
