"""``mlci init``: adopt mlci in a DVC project with one command and one commit.

It reads what ``dvc.yaml`` declares as DVC resolves it (:mod:`mlci.project.pipeline`: metrics
files, params files, the tables stages depend on) and writes:

- the ``mlci:`` section of ``params.yaml``: ``validate`` (one schema per data table) and
  ``gates`` (one per metric whose name says which way is better, see ``directions``);
- ``schemas/<name>.yaml``: each table's types, nullability and categories, never bounded by
  today's values (:mod:`mlci.adopt.schemas`);
- ``.github/workflows/mlci-pr.yml``, ``mlci-publish.yml`` and ``mlci-promote.yml`` (at the git
  top level) from the copies shipped in ``mlci/templates``, which are this repository's own;
  the two that run stages also install the project's own dependencies (:mod:`mlci.adopt.deps`).

Nothing is overwritten without ``force``: every target is checked before anything is written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlci import __version__
from mlci.adopt import deps
from mlci.errors import ConfigError, RepoError
from mlci.verdict.directions import direction_of, gates_yaml, is_counter

WORKFLOWS = ("mlci-pr.yml", "mlci-publish.yml", "mlci-promote.yml", "mlci-release.yml")
STAGE_WORKFLOWS = ("mlci-pr.yml", "mlci-promote.yml")  # run stages: install the project's deps
TEMPLATES = Path(__file__).parent.parent / "templates"  # mlci/templates
TABLES = (".csv", ".parquet", ".pq")
PLACEHOLDER = f"<owner>/mlci@<40-hex commit SHA> # v{__version__}"
_SELF_USES = re.compile(r"^(\s*)uses: \./ #.*$", re.MULTILINE)
_ACTION = re.compile(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@[\w.-]+")
# The mlci step (and the comment above it): the install step goes before it.
_MLCI_STEP = re.compile(
    r"^(?P<indent> *)(?:# In your repository:.*\n(?P=indent))?"
    r"- name: mlci.*\n(?P=indent)  id: mlci$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Project:
    """What ``dvc.yaml`` declares, relative to the project root."""

    metrics: tuple[str, ...]
    params: tuple[str, ...]
    data: tuple[str, ...]  # tables (CSV, Parquet) the stages depend on


@dataclass(frozen=True)
class InitResult:
    project: Project
    written: tuple[Path, ...]
    gates: dict[str, str]
    unclassified: tuple[str, ...]
    schemas: dict[str, str]
    missing: tuple[str, ...] = ()  # declared files not in the work tree (pull or repro first)
    placeholder: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    installs: tuple[str, ...] = ()  # one line per dependency file: what the workflows install


def inspect(root: Path) -> Project:
    """Metrics files, params files and data tables of the project, as DVC resolves them."""
    from mlci.project import pipeline

    declared = pipeline.require(root)
    data = [d for s in declared.stages for d in s.deps if d.endswith(TABLES)]
    return Project(declared.metrics, declared.params, tuple(dict.fromkeys(data)))


def init(root: Path, top: Path, *, action: str | None = None, force: bool = False) -> InitResult:
    """Write the settings, schemas and workflows; refuse to overwrite without ``force``."""
    if action is not None and not _ACTION.fullmatch(action):
        raise ConfigError(
            f"--action {action!r} is not an action reference",
            fix="give OWNER/REPO@REF, e.g. acme/mlci@<40-hex commit SHA>",
        )
    project = inspect(root)
    names, missing = _metric_names(root, project)
    gates = {n: d for n in names if (d := direction_of(n)) and not n.startswith("slices.")}
    unclassified = tuple(n for n in names if n not in gates and not is_counter(n))
    schemas = _schema_paths(project.data)
    sources = deps.find(root, top)
    params = root / "params.yaml"
    files: dict[Path, str] = {}
    for data_path, schema in schemas.items():
        files[root / schema] = _infer(root / data_path, data_path)
    for name in WORKFLOWS:
        text = _adapt((TEMPLATES / name).read_text(encoding="utf-8"), root, top, action, sources)
        if name in STAGE_WORKFLOWS:
            text = with_install_step(text, sources)
        files[top / ".github" / "workflows" / name] = text
    section = _section(schemas, gates, unclassified)
    old = params.read_text(encoding="utf-8") if params.is_file() else ""
    clash = [p for p in files if p.exists()] + ([params] if _has_section(old) else [])
    if clash and not force:
        shown = ", ".join(os.path.relpath(p, top) for p in clash)
        raise ConfigError(
            f"mlci init would overwrite {shown}",
            fix="rerun with --force to replace them, or move them aside",
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    params.write_text(_with_section(old, section), encoding="utf-8")
    notes: tuple[str, ...] = ()
    if action is not None and not re.search(r"@[0-9a-f]{40}$", action):
        notes = (f"{action} is not pinned to a commit SHA: pin it, as every action should be",)
    return InitResult(
        project,
        (params, *files),
        gates,
        unclassified,
        schemas,
        missing,
        action is None,
        notes,
        deps.summary(sources),
    )


def _metric_names(root: Path, project: Project) -> tuple[list[str], tuple[str, ...]]:
    """Numeric metric names found in the work tree, and the declared files that are not there."""
    from mlci.verdict.metrics import is_number, load_files, read_worktree

    found = load_files(project.metrics, read_worktree(root)) or {}
    missing = tuple(m for m in project.metrics if not (root / m).is_file())
    return [n for n, v in found.items() if is_number(v)], missing


def _schema_paths(data: tuple[str, ...]) -> dict[str, str]:
    """``schemas/<stem>.yaml`` per table; the whole path where two tables share a stem."""
    stems = [Path(d).stem for d in data]
    out = {}
    for d, stem in zip(data, stems, strict=True):
        name = stem if stems.count(stem) == 1 else str(Path(d).with_suffix("")).replace("/", "-")
        out[d] = f"schemas/{name}.yaml"
    return out


def _infer(path: Path, shown: str) -> str:
    """The schema of the table at ``path``, as YAML (see :mod:`mlci.adopt.schemas`)."""
    from mlci.adopt import schemas
    from mlci.checks.frames import read_table

    if not path.is_file():
        raise RepoError(
            f"{shown}: a stage depends on it but it is not in the work tree",
            fix="run `dvc pull` (or `dvc repro`) first, so mlci init can read the data",
        )
    return schemas.infer(read_table(path, shown), shown)


def with_install_step(text: str, sources: tuple[deps.Source, ...]) -> str:
    """A workflow with the step that installs the project's dependencies before mlci's."""
    found = _MLCI_STEP.search(text)
    if found is None:
        raise RepoError(
            "a workflow template has no `mlci` step to install the dependencies before",
            fix="report it: the templates in mlci/templates must keep their `id: mlci` step",
        )
    install = deps.step(sources, found.group("indent"))
    return text[: found.start()] + install + text[found.start() :]


def _adapt(
    text: str,
    root: Path,
    top: Path,
    action: str | None,
    sources: tuple[deps.Source, ...] = (),
) -> str:
    """A template made this repository's: the action reference, the project's directory, and
    the pip cache keyed on the files its install step installs (or a file the repository has)."""
    text = _SELF_USES.sub(lambda m: f"{m.group(1)}uses: {action or PLACEHOLDER}", text)
    sub = os.path.relpath(root, top).replace(os.sep, "/")
    if sub != ".":
        text = re.sub(
            r"^(\s*)command: (.*)$",
            rf"\1command: \2\n\1working-directory: {sub}",
            text,
            flags=re.MULTILINE,
        )
        text = text.replace("path: .dvc/cache", f"path: {sub}/.dvc/cache")
        text = text.replace("hashFiles('dvc.lock')", f"hashFiles('{sub}/dvc.lock')")
        text = text.replace("path: mlci-report/", f"path: {sub}/mlci-report/")
    keys = [s.path for s in deps.installed(sources)]
    if keys:
        return _cache_keys(text, keys)
    if not (top / "pyproject.toml").is_file():
        dep = next((n for n in ("requirements.txt", "setup.py") if (top / n).is_file()), None)
        if dep:
            text = text.replace(
                "cache-dependency-path: pyproject.toml", f"cache-dependency-path: {dep}"
            )
        else:
            text = re.sub(
                r"^\s*cache: pip\n\s*cache-dependency-path: pyproject.toml\n",
                "",
                text,
                flags=re.MULTILINE,
            )
    return text


def _cache_keys(text: str, keys: list[str]) -> str:
    """``cache-dependency-path`` set to ``keys`` (a block when there are several)."""

    def keyed(m: re.Match[str]) -> str:
        if len(keys) == 1:
            return f"{m.group(1)}cache-dependency-path: {keys[0]}"
        block = "".join(f"\n{m.group(1)}  {k}" for k in keys)
        return f"{m.group(1)}cache-dependency-path: |{block}"

    return re.sub(r"^( *)cache-dependency-path: pyproject.toml$", keyed, text, flags=re.M)


def _section(schemas: dict[str, str], gates: dict[str, str], unclassified: tuple[str, ...]) -> str:
    lines = ["# Written by `mlci init`: see docs/settings.md and docs/gates.md.", "mlci:"]
    if schemas:
        lines.append("  validate:")
        lines += [f"    {_key(d)}: {_key(s)}" for d, s in schemas.items()]
    lines += gates_yaml(gates, limit=len(gates)) if gates else ["  gates: {}"]
    if unclassified:
        lines.append("  # not classified by name (add a gate by hand where it matters):")
        lines += [f"  #   {n}" for n in unclassified[:20]]
    lines += [
        "  # the model card of every promoted version (`mlci card`): fill these in",
        "  card:",
        '    intended_use: ""',
        '    limitations: ""',
    ]
    return "\n".join(lines) + "\n"


def _key(text: str) -> str:
    import json

    return text if re.fullmatch(r"[\w./-]+", text) else json.dumps(text)


_TOP_SECTION = re.compile(
    r"^(?:# Written by `mlci init`.*\n)?mlci:.*\n(?:(?:[ \t#].*|)\n)*", re.MULTILINE
)


def _has_section(text: str) -> bool:
    return bool(re.search(r"^mlci:", text, re.MULTILINE))


def _with_section(text: str, section: str) -> str:
    """``text`` with its top-level ``mlci:`` block replaced by ``section`` (or appended)."""
    if _has_section(text):
        return _TOP_SECTION.sub(lambda _: section, text, count=1)
    sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    return text + sep + section
