"""PNGs rendered by vl-convert in a child process, so that no plot can take mlci down.

vl-convert is Rust (with V8 and resvg) behind a Python module, and some input makes it abort
the whole process rather than raise: a control character in a label panics "in a function that
cannot unwind" (SIGABRT). So mlci never calls it in its own process. One child renders every
PNG of a check (start-up is paid once), with :data:`TIME_BOUND` seconds for all of them and a
memory bound (:data:`MEMORY_BOUND`, ``RLIMIT_DATA``; ``RLIMIT_AS`` cannot be used: V8 reserves
more than 64 GiB of address space it never touches), no core file, and its own temporary
directory as the working directory. It is started as mlci's other children are (``-P``, or
``-I`` below Python 3.11), so a project's files cannot shadow a module.

The protocol is files: ``jobs.json`` (a list of ``{"kind": "vega-lite" | "svg", "source":
...}``), one ``{i}.png`` per rendered job, and one JSON line per finished job on the child's
stdout (``{"i": 3}`` or ``{"i": 3, "error": "..."}``), flushed as it goes. When the child dies
(a signal, an exit status, the time bound), every job it finished is kept, the job it was on
gets the reason, and a new child renders the rest, :data:`MAX_CHILDREN` children at most.

Run as ``python -P -m mlci.plots.child FOLDER FIRST MEMORY``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

TIME_BOUND = 120.0  # seconds for every PNG of one check, children together
MEMORY_BOUND = 2 * 1024**3  # bytes of data (RLIMIT_DATA) a renderer child may use
MAX_CHILDREN = 3  # a child that dies is replaced for the jobs after the one it died on
MAX_PNG_BYTES = 5 * 1024 * 1024  # a PNG larger than this is not read back (images.py's bound)
_TIMED_OUT = "timed out"


@dataclass(frozen=True)
class Job:
    """One PNG to render: a Vega-Lite specification, or SVG text to rasterise."""

    kind: str  # "vega-lite" | "svg"
    source: Mapping[str, Any] | str


def render(
    jobs: Sequence[Job],
    *,
    time_bound: float = TIME_BOUND,
    memory_bound: int = MEMORY_BOUND,
) -> list[bytes | str]:
    """One PNG per job, in order, or the reason (one line) there is none."""
    if not jobs:
        return []
    results: list[bytes | str | None] = [None] * len(jobs)
    deadline = time.monotonic() + time_bound
    rest = f"not rendered: the renderer died {MAX_CHILDREN} times in this check"
    with tempfile.TemporaryDirectory(prefix="mlci-render-") as tmp:
        folder = Path(tmp)
        payload = [{"kind": j.kind, "source": j.source} for j in jobs]
        (folder / "jobs.json").write_text(json.dumps(payload), encoding="utf-8")
        first = 0
        for _child in range(MAX_CHILDREN):
            why = _one_child(folder, first, len(jobs), deadline, memory_bound, results)
            pending = [i for i in range(first, len(jobs)) if results[i] is None]
            if not pending:
                break
            if why == _TIMED_OUT:
                rest = f"not rendered: the renderer passed its time bound ({time_bound:g} s)"
                break
            results[pending[0]] = why or "not rendered: the renderer ended before this plot"
            first = pending[0] + 1
            if first == len(jobs):
                break
    return [r if r is not None else rest for r in results]


def _one_child(
    folder: Path,
    first: int,
    count: int,
    deadline: float,
    memory_bound: int,
    results: list[bytes | str | None],
) -> str | None:
    """Run one child on jobs ``first``.. and fill ``results`` with what it finished; None when
    it ended well, else why it died (for the job it was on)."""
    from mlci.training.worker import child_env, python_command

    out_path, err_path = folder / f"out-{first}.jsonl", folder / f"err-{first}.txt"
    command = [*python_command(), "-m", "mlci.plots.child", str(folder), str(first)]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [*command, str(memory_bound)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=folder,
            env=child_env(),
        )
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = None
    _collect(folder, out_path, count, results)
    if code == 0:
        return None
    if code is None:
        return _TIMED_OUT
    return f"not rendered: {_death(code, err_path, memory_bound)}"


def _collect(folder: Path, out_path: Path, count: int, results: list[bytes | str | None]) -> None:
    for line in out_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            done = json.loads(line)
            i = int(done["i"])
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash
        if not 0 <= i < count or results[i] is not None:
            continue
        if done.get("error"):
            results[i] = _one_line(str(done["error"]))
            continue
        png = folder / f"{i}.png"
        size = png.stat().st_size if png.is_file() else -1
        if size < 0:
            results[i] = "not rendered: the renderer wrote no PNG"
        elif size > MAX_PNG_BYTES:
            results[i] = f"the PNG is {size:,} bytes (limit {MAX_PNG_BYTES:,})"
        else:
            results[i] = png.read_bytes()


def _death(code: int, err_path: Path, memory_bound: int) -> str:
    """Why the child died, in one line: the signal or status, and what it said last."""
    text = err_path.read_bytes()[-20_000:].decode("utf-8", "replace")
    if any(w in text for w in ("out of memory", "MemoryError", "memory allocation of")):
        return f"the renderer ran out of memory (bound {memory_bound / 2**30:g} GiB)"
    how = f"exit status {code}"
    if code < 0:
        try:
            how = signal.Signals(-code).name
        except ValueError:
            how = f"signal {-code}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    said = next((lines[i + 1] for i, ln in enumerate(lines[:-1]) if "panicked at" in ln), "")
    said = said or next((ln for ln in reversed(lines) if not ln.startswith(("#", "0x"))), "")
    return _one_line(f"the renderer crashed ({how})" + (f": {said}" if said else ""))


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


# ---- the child ----


def _limit(memory: int) -> None:
    """No core file, and at most ``memory`` bytes of data; where the platform allows."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    for which, value in ((resource.RLIMIT_CORE, 0), (resource.RLIMIT_DATA, memory)):
        try:
            _soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _serve(folder: Path, first: int, out: IO[str]) -> None:
    jobs = json.loads((folder / "jobs.json").read_text(encoding="utf-8"))
    try:
        import vl_convert  # type: ignore[import-untyped, unused-ignore]
    except ImportError as exc:
        for i in range(first, len(jobs)):
            out.write(json.dumps({"i": i, "error": f"vl-convert is not installed ({exc})"}) + "\n")
        return
    for i in range(first, len(jobs)):
        answer: dict[str, Any] = {"i": i}
        try:
            job = jobs[i]
            if job["kind"] == "svg":
                data = vl_convert.svg_to_png(job["source"], scale=1.0)
            else:
                data = vl_convert.vegalite_to_png(
                    job["source"],
                    scale=1.0,
                    config={"background": "white"},
                    allowed_base_urls=[],  # no remote data or images: nothing leaves
                )
            (folder / f"{i}.png").write_bytes(bytes(data))
        except Exception as exc:
            first_line = (str(exc).splitlines() or [type(exc).__name__])[0][:150]
            what = "Vega-Lite could not render it"
            if jobs[i]["kind"] == "svg":
                what = "the SVG could not be rasterised"
            answer["error"] = f"{what}: {first_line}"
        out.write(json.dumps(answer) + "\n")
        out.flush()


def main(argv: Sequence[str]) -> int:
    folder, first, memory = Path(argv[0]), int(argv[1]), int(argv[2])
    _limit(memory)
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything else written to stdout goes to stderr: stdout is the protocol
    _serve(folder, first, out)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
