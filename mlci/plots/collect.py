"""Every plot ``dvc.yaml`` declares, read at the base revision and in the work tree.

The data comes from DVC's own plots machinery, the same calls ``dvc plots diff <base> --json``
makes (``Repo.plots.diff`` -> ``match_defs_renderers`` -> ``to_json``), so each plot's filled
Vega-Lite specification is exactly what that command prints. Nothing here re-implements a
template: a :class:`Plot` keeps DVC's datapoints and properties, and renderers read those.

Every declared plot ends up in the :class:`PlotSet`, either with data or with the reason it
cannot be shown (a file missing at one revision, a definition DVC could not read, a filter).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import RepoError
from mlci.settings.plots import PlotSettings

WORKSPACE = "workspace"  # DVC's name for the work tree revision
# DVC's bundled templates (dvc_render.vega_templates.TEMPLATES), by name.
BUILTIN_TEMPLATES = (
    "linear",
    "simple",
    "smooth",
    "scatter",
    "scatter_jitter",
    "confusion",
    "confusion_normalized",
    "bar_horizontal",
    "bar_horizontal_sorted",
)


@dataclass(frozen=True)
class Series:
    """One line of a chart: one revision's points of one data source."""

    rev: str  # "base" or "pr"
    source: str  # "" for a single-source plot, else "file::field"
    points: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Plot:
    """One plot as DVC renders it, base against PR.

    ``json`` is exactly this plot's entry of ``dvc plots diff <base> --json`` (``data[id]``).
    """

    id: str
    kind: str  # "vega" | "image"
    template: str = "linear"
    title: str = ""
    x: str = ""
    y: str = ""
    x_label: str = ""
    y_label: str = ""
    datapoints: tuple[Mapping[str, Any], ...] = ()
    spec: Mapping[str, Any] | None = None  # the filled Vega-Lite specification
    images: Mapping[str, Path] = field(default_factory=dict)  # "base"/"pr" -> image file
    json: Sequence[Mapping[str, Any]] = ()
    notes: tuple[str, ...] = ()  # what is partial (a file missing at one revision ...)
    problem: str | None = None  # why it is not shown at all

    @property
    def builtin(self) -> bool:
        return self.template in BUILTIN_TEMPLATES

    def revs(self) -> tuple[str, ...]:
        found = {str(d.get("rev")) for d in self.datapoints} | set(self.images)
        return tuple(r for r in ("base", "pr") if r in found)

    def series(self) -> list[Series]:
        """The datapoints split by revision (base first) and data source."""
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for d in self.datapoints:
            source = "::".join(str(d[k]) for k in ("filename", "field") if k in d)
            groups.setdefault((str(d.get("rev")), source), []).append(d)
        order = {"base": 0, "pr": 1}
        keys = sorted(groups, key=lambda k: (k[1], order.get(k[0], 2)))
        return [Series(rev, source, tuple(groups[(rev, source)])) for rev, source in keys]


@dataclass(frozen=True)
class PlotSet:
    base: str  # the base revision as given
    plots: tuple[Plot, ...]
    hidden: tuple[str, ...] = ()  # ids left out by ``plots.show``
    errors: tuple[str, ...] = ()  # definitions DVC could not read, per revision
    out_dir: Path | None = None  # where DVC wrote image plots' files
    base_name: str = ""  # what the base is called (its branch), "" when it has no name
    head_sha: str = ""  # the PR's commit, "" when unknown
    read: tuple[Path, ...] = ()  # the work-tree files and folders it came from

    def shown(self) -> tuple[Plot, ...]:
        return tuple(p for p in self.plots if p.problem is None)

    def revisions(self) -> dict[str, str]:
        """DVC's name of each revision (in its specifications) -> "base" or "pr"."""
        return revisions(self.base)


def revisions(base_sha: str) -> dict[str, str]:
    """DVC's names of the two revisions compared at ``base_sha`` -> "base" or "pr"."""
    return {base_sha: "base", WORKSPACE: "pr"}


def collect(
    root: Path,
    base_sha: str,
    settings: PlotSettings,
    *,
    out_dir: Path | None = None,
    base_name: str = "",
    head_sha: str | None = None,
) -> PlotSet:
    """Every plot the project declares, at ``base_sha`` and in the work tree of ``root``.

    Image plots' files are written by DVC into ``out_dir`` (a new temporary directory when
    None). ``base_name`` (the base's branch) and ``head_sha`` (the PR's commit; HEAD of
    ``root`` when None) name the revisions in the images' legends. Raises :class:`RepoError`
    when ``root`` is not a DVC project.
    """
    from dvc.exceptions import NotDvcRepoError
    from dvc.render.match import match_defs_renderers
    from dvc.repo import Repo

    from mlci.project import yamlread

    yamlread.install()  # the texts the check parsed already are not parsed again
    out = out_dir or Path(tempfile.mkdtemp(prefix="mlci-plots-"))
    try:
        repo = Repo(str(root))
    except NotDvcRepoError as exc:
        raise RepoError(
            f"{root} is not a DVC project, so it has no plots", fix="run `dvc init` there"
        ) from exc
    with repo:
        repo_root = Path(repo.root_dir)
        data = repo.plots.diff(revs=[base_sha])
        found = match_defs_renderers(
            data=data, out=str(out), templates_dir=repo.plots.templates_dir
        )
    names = revisions(base_sha)
    plots, hidden = [], []
    for item in found:
        plot = _plot(item, names)
        if settings.shows(plot.id):
            plots.append(plot)
        else:
            hidden.append(plot.id)
    errors = tuple(
        f"{names.get(rev, rev)}: {_reason(content['definitions']['error'])}"
        for rev, content in data.items()
        if isinstance(content.get("definitions", {}).get("error"), Exception)
    )
    head = head_sha if head_sha is not None else head_of(root)
    read = workspace_paths(repo_root, data)
    return PlotSet(base_sha, tuple(plots), tuple(hidden), errors, out, base_name, head, read)


def workspace_paths(repo_root: Path, data: Mapping[str, Any]) -> tuple[Path, ...]:
    """The work-tree files DVC's plots data says it read or was told to read (its sources and
    declared paths; DVC lists a declared folder's files), and the folders holding them."""
    workspace = data.get(WORKSPACE) or {}
    names = set((workspace.get("sources") or {}).get("data") or {})
    for file, config in ((workspace.get("definitions") or {}).get("data") or {}).items():
        here = os.path.dirname(str(file))  # a dvc.yaml's paths are relative to its folder
        for plot_id, props in ((config or {}).get("data") or {}).items():
            y = (props or {}).get("y") if isinstance(props, Mapping) else None
            for name in (str(plot_id), *(str(k) for k in (y if isinstance(y, Mapping) else {}))):
                names.update({name, os.path.join(here, name)})
    files = {repo_root / n for n in names}
    return tuple(sorted(files | {f.parent for f in files}))


def head_of(root: Path) -> str:
    """HEAD's commit of ``root``, "" when it has none yet."""
    from mlci import git

    try:
        return git.head_sha(root)
    except RepoError:  # no commit yet
        return ""


def _plot(item: Any, names: Mapping[str, str]) -> Plot:
    from dvc.render.convert import to_json

    renderer = item.renderer
    notes = [
        f"{source} at the {_WORDS[names.get(rev, '')]}: {_reason(exc)}"
        for rev, per_source in item.source_errors.items()
        for source, exc in per_source.items()
    ] + [
        f"at the {_WORDS[names.get(rev, '')]}: {_reason(exc)}"
        for rev, exc in item.definition_errors.items()
    ]
    errored = {names.get(r, "") for r in (*item.source_errors, *item.definition_errors)}
    if renderer.TYPE == "image":
        images = {names.get(str(d["rev"]), "?"): Path(d["src"]) for d in renderer.datapoints}
        return Plot(
            renderer.name,
            "image",
            template="",
            title=renderer.name,
            images=images,
            json=to_json(renderer),
            notes=tuple(notes + _absent(set(images) | errored)),
            problem=None if images else "no image at either revision",
        )
    props = renderer.properties
    template = str(props.get("template") or "linear")
    datapoints = tuple({**d, "rev": names.get(str(d.get("rev")), "?")} for d in renderer.datapoints)
    try:
        entries = to_json(renderer)
    except Exception as exc:  # e.g. a custom template DVC cannot fill
        failed = f"DVC could not fill template {template}: {_reason(exc)}"
        return Plot(renderer.name, "vega", template, notes=tuple(notes), problem=failed)
    problem = None
    if not entries:
        problem = "no data at either revision" + (f" ({notes[0]})" if notes else "")
    else:
        notes += _absent({str(d["rev"]) for d in datapoints} | errored)
    return Plot(
        id=renderer.name,
        kind="vega",
        template=template,
        title=str(props.get("title") or renderer.name),
        x=str(props.get("x") or ""),
        y=str(props.get("y") or ""),
        x_label=str(props.get("x_label") or props.get("x") or ""),
        y_label=str(props.get("y_label") or props.get("y") or ""),
        datapoints=datapoints,
        spec=entries[0]["content"] if entries else None,
        json=entries,
        notes=tuple(notes),
        problem=problem,
    )


_WORDS = {"base": "base revision", "pr": "PR", "": "other revision"}


def _absent(present: set[str]) -> list[str]:
    return [f"no data at the {_WORDS[rev]}" for rev in ("base", "pr") if rev not in present]


def _reason(exc: Exception) -> str:
    """A short reason for a DVC error: a missing file is said plainly."""
    if isinstance(exc, FileNotFoundError) or type(exc).__name__ in (
        "FileNotFoundError",
        "PathMissingError",
    ):
        return "file missing"
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
