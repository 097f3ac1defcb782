"""The project's own dependencies, installed by the workflows ``mlci init`` writes.

The stages run the project's code (``dvc repro``), so a runner needs what the project
declares, not only mlci. Looked for in the DVC project's directory and, when it differs, the
repository's top level; each file found is one line of the init summary:

- ``requirements.txt``, and ``requirements-<x>.txt`` / ``requirements_<x>.txt`` unless ``<x>``
  names a development need (``dev``, ``test``, ``docs``, ``lint``, ...): ``-r FILE``;
- ``pyproject.toml`` with a ``[project]`` (or ``[build-system]``) table, or ``setup.py``: the
  project itself, editable, with its extras that do not name a development need
  (``-e '.[train]'``); a ``pyproject.toml`` of tool settings only installs nothing;
- ``environment.yml``: runners set up by actions/setup-python have no conda, so only its
  ``pip:`` entries are installed (copied into the step: rerun ``mlci init --force`` when they
  change); its conda packages are named in the summary for the user to check.

The step runs ``python3 -P -m pip install`` in each directory (pip reads relative paths in a
requirements file from the working directory), from the checkout the job already made: the
same code its stages run. Where secrets are present and the code may be a fork's
(``pull_request_target`` from a fork, ``issue_comment``, ``workflow_run``, ...) it installs
nothing unless the workflow sets ``MLCI_ALLOW_UNTRUSTED``: mlci's fork guard decides next.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError

# Words in a requirements file's or an extra's name that mark it for development, not running.
DEV_WORDS = frozenset(
    re.split(
        r"\s+",
        "dev develop development test tests testing doc docs lint linting typing types mypy "
        "style format fmt bench benchmark benchmarks all",
    )
)
ENVIRONMENTS = ("environment.yml", "environment.yaml")
_REQUIREMENTS = re.compile(r"requirements(?:[-_.](?P<tag>[A-Za-z0-9_.-]+))?\.txt")
_EXTRA = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE = re.compile(r"\$\{\{|[\x00-\x1f\x7f]")  # an expression, or a break in the YAML
SHOWN = 12
STEP = "Install the project's dependencies"


@dataclass(frozen=True)
class Source:
    """One dependency file: where it is, what pip is given for it (relative to its directory;
    empty when nothing of it is installed) and its line in the init summary."""

    directory: str  # relative to the repository's top level, "/"-separated; "." for the top
    name: str
    args: tuple[str, ...]
    summary: str

    @property
    def path(self) -> str:
        return self.name if self.directory == "." else f"{self.directory}/{self.name}"


def find(root: Path, top: Path) -> tuple[Source, ...]:
    """The dependency files of the project at ``root`` and of the repository at ``top``."""
    places = [top] if root.resolve() == top.resolve() else [top, root]
    out: list[Source] = []
    for place in places:
        rel = place.resolve().relative_to(top.resolve()).as_posix() or "."
        if _UNSAFE.search(rel):
            raise ConfigError(
                f"{rel!r}: mlci init cannot write this directory's name into a workflow",
                fix="rename the directory: no `${{` and no control characters",
            )
        out += _requirements(place, rel)
        out += _project(place, rel)
        out += _environment(place, rel)
    return tuple(out)


def summary(sources: tuple[Source, ...]) -> tuple[str, ...]:
    """One line per file for the init summary (or one line saying none was found)."""
    if not sources:
        return (
            "no requirements*.txt, pyproject.toml, setup.py or environment.yml: the workflows "
            "install only mlci; add an install step if the stages import more",
        )
    return tuple(f"{s.path}: {s.summary}" for s in sources)


def installed(sources: tuple[Source, ...]) -> tuple[Source, ...]:
    return tuple(s for s in sources if s.args)


def step(sources: tuple[Source, ...], indent: str) -> str:
    """The workflow step that installs ``sources`` (YAML text at ``indent``), or ""."""
    wanted = installed(sources)
    if not wanted:
        return ""
    by_dir: dict[str, list[str]] = {}
    for s in wanted:
        by_dir.setdefault(s.directory, []).extend(s.args)
    pip = "python3 -P -m pip install --disable-pip-version-check"
    commands = [
        f"{pip} {_quoted(args)}" if d == "." else f"(cd {shlex.quote(d)} && {pip} {_quoted(args)})"
        for d, args in by_dir.items()
    ]
    about = (
        f"The project's own dependencies ({', '.join(s.path for s in wanted)}; written by "
        "`mlci init`), from this checkout: the code the stages run. Where secrets are present "
        "and the code may be a fork's, nothing is installed: mlci's fork guard decides next."
    )
    lines = [
        *(f"# {line}" for line in textwrap.wrap(about, 90, break_on_hyphens=False)),
        f"- name: {STEP}",
        "  shell: bash",
        "  env:",
        "    HEAD_REPOSITORY: ${{ github.event.pull_request.head.repo.full_name }}",
        "  run: |",
        "    trusted=false",
        '    case "$GITHUB_EVENT_NAME" in',
        "      pull_request|push|merge_group|schedule|workflow_dispatch|release) trusted=true ;;",
        "      pull_request_target)",
        '        [ "$HEAD_REPOSITORY" = "$GITHUB_REPOSITORY" ] && trusted=true ;;',
        "    esac",
        '    case "${MLCI_ALLOW_UNTRUSTED:-}" in true|True|TRUE|1|yes) trusted=true ;; esac',
        '    if [ "$trusted" != true ]; then',
        "      echo \"::warning title=mlci::not installing the project's dependencies on"
        " $GITHUB_EVENT_NAME: the code may be a fork's and secrets are present\"",
        "      exit 0",
        "    fi",
        *(f"    {c}" for c in commands),
    ]
    return "".join(f"{indent}{line}".rstrip() + "\n" for line in lines) + "\n"


def _quoted(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def _requirements(place: Path, rel: str) -> list[Source]:
    names = [p.name for p in place.glob("requirements*.txt") if p.is_file()]
    files = sorted(names, key=lambda n: (n != "requirements.txt", n))  # the main one first
    out = []
    for name in files:
        m = _REQUIREMENTS.fullmatch(name)
        if not m:
            continue
        tag = m.group("tag") or ""
        if set(re.split(r"[-_.]", tag.lower())) & DEV_WORDS:
            out.append(Source(rel, name, (), "not installed (development only, by its name)"))
        else:
            out.append(Source(rel, name, ("-r", name), f"installed (pip install -r {name})"))
    return out


def _project(place: Path, rel: str) -> list[Source]:
    """The project itself, from pyproject.toml (or setup.py), with its extras for running."""
    pyproject = place / "pyproject.toml"
    if pyproject.is_file():
        doc = _toml(pyproject, rel)
        table = doc.get("project")
        if isinstance(table, dict) or isinstance(doc.get("build-system"), dict):
            return [_installable("pyproject.toml", rel, table if isinstance(table, dict) else {})]
        if not (place / "setup.py").is_file():
            what = "tool settings only (no [project] or [build-system]): nothing to install"
            return [Source(rel, "pyproject.toml", (), what)]
    if (place / "setup.py").is_file():
        return [_installable("setup.py", rel, {})]
    return []


def _installable(name: str, rel: str, table: dict[str, Any]) -> Source:
    optional = table.get("optional-dependencies")
    extras = [str(e) for e in optional] if isinstance(optional, dict) else []
    wanted = [e for e in extras if _EXTRA.fullmatch(e) and not _dev(e)]
    left = [e for e in extras if e not in wanted]
    target = f".[{','.join(wanted)}]" if wanted else "."
    what = f"the project, installed (pip install -e {shlex.quote(target)})"
    if wanted:
        what += f" with its extras {', '.join(wanted)}"
    if left:
        what += f"; not its extras {', '.join(left)}"
    if "optional-dependencies" in (table.get("dynamic") or ()):
        what += "; its extras are dynamic: none chosen"
    return Source(rel, name, ("-e", target), what)


def _dev(extra: str) -> bool:
    return bool(set(re.split(r"[-_.]", extra.lower())) & DEV_WORDS)


def _toml(path: Path, rel: str) -> dict[str, Any]:
    import tomllib

    shown = "pyproject.toml" if rel == "." else f"{rel}/pyproject.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: {exc}", fix="fix the TOML syntax") from None


def _environment(place: Path, rel: str) -> list[Source]:
    """A conda environment file: its pip entries installed, its conda packages named."""
    path = next((place / n for n in ENVIRONMENTS if (place / n).is_file()), None)
    if path is None:
        return []
    conda, pip = _conda_deps(path, rel)
    args = [a for entry in pip for a in _pip_args(entry)]
    unsafe = [a for a in args if _UNSAFE.search(a)]
    if unsafe:
        args = []
    parts = []
    if args:
        parts.append(f"its pip: entries installed (pip install {_short(pip)})")
    elif unsafe:
        parts.append("its pip: entries not installed (an entry holds `${{` or a control character)")
    conda = [c for c in conda if c not in ("python", "pip")]
    if conda:
        parts.append(
            f"not its conda packages, as the runner has no conda: {_short(conda)}; install "
            "them in a step before mlci (or list them in requirements.txt)"
        )
    return [Source(rel, path.name, tuple(args), "; ".join(parts) or "nothing to install")]


def _conda_deps(path: Path, rel: str) -> tuple[list[str], list[str]]:
    import yaml

    shown = path.name if rel == "." else f"{rel}/{path.name}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: not YAML ({exc})", fix="fix the environment file") from None
    deps = doc.get("dependencies") if isinstance(doc, dict) else None
    conda, pip = [], []
    for dep in deps if isinstance(deps, list) else []:
        if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            pip += [str(p).strip() for p in dep["pip"] if str(p).strip()]
        elif isinstance(dep, str | int | float):
            name = re.split(r"[=<>!~ \[]", str(dep).split("::")[-1].strip(), maxsplit=1)[0]
            conda += [name] if name else []
    return conda, pip


def _pip_args(entry: str) -> list[str]:
    """A pip: entry as pip arguments: an option line (``-r x``, ``--index-url u``) is split
    like a shell word list; a requirement (``numpy >= 1.2; python_version < "3.12"``) is one."""
    if entry.startswith("-"):
        try:
            return shlex.split(entry)
        except ValueError:
            return [entry]
    return [entry]


def _short(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return " ".join(items[:SHOWN]) + more
