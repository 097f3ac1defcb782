"""The DVC project as DVC itself resolves it: the one reader of ``dvc.yaml``.

Everything comes from DVC's own index (``Repo.index``), so ``${}`` templating, ``vars:``
(params.yaml and other files), ``foreach``/``matrix`` stages, ``params:`` from several files and
the ``dvc.yaml`` files of sub-directories resolve exactly as ``dvc repro`` resolves them:
stages (command, working directory, outputs with their ``cache``/``persist``/metric/plot flags
and ``type``, dependencies, params by file and key), the top-level ``metrics:``, ``plots:`` and
``params:``, ``artifacts:``, and the ``.dvc`` files' data sources; every path relative to the
project root. No other module parses ``dvc.yaml``: they ask :func:`read`. A declaration DVC
rejects is a :class:`ConfigError` (exit 2) with DVC's own message and the file.

Revisions: only the work tree's declarations are resolved. Hashes are read from ``dvc.lock``
and ``.dvc`` files as files (:mod:`mlci.project.locks`; at a commit with git in
:func:`mlci.project.data.base_md5`): DVC writes them already resolved, each stage under its own
name (``featurize@train``) in the ``dvc.lock`` beside its ``dvc.yaml``, paths relative to its
``wdir``. The base's metrics and params files are read at the paths the work
tree declares, and plots at the base through DVC's own brancher (:mod:`mlci.plots.collect`), so
nothing needs ``dvc.yaml`` resolved at another revision.

Cheap: the index is built once per process for one state of the files it was resolved from
(every ``dvc.yaml`` and ``.dvc`` file, the ``vars`` and params files), from the caller's open
``Repo`` when it has one; DVC is imported only when a project is first read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlci.errors import ConfigError, RepoError, first_line


@dataclass(frozen=True)
class Out:
    """One output of a stage (or a ``.dvc`` file), as DVC resolved it."""

    path: str  # relative to the project root, POSIX separators
    cache: bool = True
    persist: bool = False
    metric: bool = False
    plot: bool = False
    type: str | None = None  # the output's ``type:`` annotation, when it has one


@dataclass(frozen=True)
class Params:
    """One params file a stage depends on, and the keys it uses (none: the whole file)."""

    file: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stage:
    """One resolved stage: a ``foreach``/``matrix`` entry is a stage of its own."""

    name: str  # DVC's address: ``train``, ``featurize@train``, ``sub/dvc.yaml:train``
    cmd: str
    wdir: str = "."  # relative to the project root
    dvcfile: str = "dvc.yaml"  # the file that declares it, relative to the project root
    lock_name: str = ""  # its key in that file's ``dvc.lock``
    outs: tuple[Out, ...] = ()
    deps: tuple[str, ...] = ()  # file dependencies (params files are in ``params``)
    params: tuple[Params, ...] = ()

    @property
    def declared(self) -> str:
        """Its name as ``dvc.yaml`` writes it: ``featurize`` for ``featurize@train``."""
        return self.lock_name.split("@", 1)[0] or self.name

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outs)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outs if o.metric)

    @property
    def plots(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outs if o.plot)

    @property
    def cached_outs(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outs if o.cache)

    @property
    def lock_file(self) -> str:
        return posix(os.path.join(os.path.dirname(self.dvcfile), "dvc.lock"))

    def rel(self, path: str) -> str:
        """A path as ``dvc.lock`` writes it (relative to the stage's ``wdir``), made relative to
        the project root."""
        return posix(os.path.join(self.wdir, path))


@dataclass(frozen=True)
class Source:
    """A ``.dvc`` file (``dvc add``, ``dvc import``) and the outputs it tracks."""

    dvcfile: str
    outs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Artifact:
    """An ``artifacts:`` entry of a ``dvc.yaml``."""

    name: str
    path: str
    type: str = ""


@dataclass(frozen=True)
class Project:
    """What the project declares, resolved by DVC; paths relative to the project root."""

    stages: tuple[Stage, ...] = ()
    sources: tuple[Source, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    top_metrics: tuple[str, ...] = ()
    top_plots: tuple[str, ...] = ()  # the data files of top-level plots
    top_params: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default=(), compare=False)  # what it was resolved from

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metrics file: stages' ``metrics:`` then the top-level ones."""
        return _unique(p for s in self.stages for p in s.metrics) + tuple(
            p for p in self.top_metrics if p not in {m for s in self.stages for m in s.metrics}
        )

    @property
    def plots(self) -> tuple[str, ...]:
        return _unique([*(p for s in self.stages for p in s.plots), *self.top_plots])

    @property
    def params(self) -> tuple[str, ...]:
        """Every params file a stage depends on, then the top-level ``params:`` files."""
        return _unique([*(p.file for s in self.stages for p in s.params), *self.top_params])

    @property
    def uncached(self) -> frozenset[str]:
        """Outputs declared with ``cache: false`` (git, not DVC, keeps them)."""
        return frozenset(o.path for s in self.stages for o in s.outs if not o.cache)

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    def producer(self, path: str) -> Stage | None:
        """The stage whose output is ``path`` or a directory holding it."""
        for stage in self.stages:
            if any(within(path, out) for out in stage.paths):
                return stage
        return None

    def models(self) -> list[str]:
        """The paths of ``artifacts:`` entries of ``type: model``."""
        return [a.path for a in self.artifacts if a.type == "model"]

    def upstream(self, paths: Any, added: Any) -> tuple[str, ...]:
        """The files ``paths`` come from, followed up through the stages that make them, to
        those ``added(path)`` says are ``dvc add``ed (or tracked where no stage makes them)."""
        found: list[str] = []
        todo, seen = list(paths), set()
        while todo:
            path = todo.pop(0)
            if path in seen:
                continue
            seen.add(path)
            stage = self.producer(path)
            if added(path) or stage is None:
                found.append(path)
            else:
                todo.extend(d for d in stage.deps if not d.endswith(tuple(CODE_LIKE)))
        return _unique(found)


# dependencies that are code, never the data a retraining repoints
CODE_LIKE = (".py", ".ipynb", ".sh", ".r", ".jl")


def posix(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def within(path: str, out: str) -> bool:
    """Whether ``path`` is ``out`` or inside the directory ``out``."""
    p, o = PurePosixPath(posix(path)), PurePosixPath(posix(out))
    return p == o or o in p.parents


def _unique(items: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# ---- reading it -----------------------------------------------------------------------------

# root -> (the files it was resolved from with their state, the project)
_READ: dict[str, tuple[tuple[Any, ...], Project]] = {}


def read(root: Path, repo: Any | None = None) -> Project:
    """The project at ``root`` as DVC resolves it (empty when it has no ``dvc.yaml``).

    Pass an open ``Repo`` to have its index used (DVC keeps it for the calls after). Raises
    :class:`ConfigError` with DVC's message when DVC rejects a declaration.
    """
    key = str(root.resolve())
    known = _READ.get(key)
    if known is not None and known[0] == _state(root, known[1].files):
        return known[1]
    if repo is not None:
        project = _from_repo(root, repo)
    else:
        with _reading(root) as own:
            project = _from_repo(root, own)
    _READ[key] = (_state(root, project.files), project)
    return project


def require(root: Path, repo: Any | None = None) -> Project:
    """:func:`read`, for a command that needs a ``dvc.yaml`` at the project root."""
    if not (root / "dvc.yaml").is_file():
        raise RepoError(
            f"no dvc.yaml in {root}",
            fix="run mlci in a DVC project's directory or below it (mlci uses the nearest "
            "directory holding dvc.yaml or .dvc/), or create one (`dvc init`, then add stages)",
        )
    return read(root, repo)


def _state(root: Path, files: tuple[str, ...]) -> tuple[Any, ...]:
    """Each file's modification time and size (None when absent): a changed, added or removed
    declaration, vars or params file makes a new state."""
    out: list[Any] = []
    for name in dict.fromkeys(("dvc.yaml", "params.yaml", *files)):
        try:
            st = (root / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, None))
    return tuple(out)


def _reading(root: Path) -> Any:
    """A ``Repo`` for reading only: no lock is taken or cleared (a stage's command may read the
    project while ``dvc repro`` holds it). ``uninitialized``: a ``dvc.yaml`` without ``.dvc/``
    still resolves, as ``dvc`` itself reads it."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.repo import Repo

    from mlci.project import yamlread

    yamlread.install()
    try:
        return Repo(str(root), uninitialized=True)
    except Exception as exc:  # a broken .dvc/config, a bare git repository
        raise RepoError(
            f"{root}: DVC cannot open it: {first_line(exc)}", fix="run `dvc doctor` there"
        ) from None


def _from_repo(root: Path, repo: Any) -> Project:
    """Read ``repo.index``; DVC's rejection of a file becomes one :class:`ConfigError`."""
    from dvc.exceptions import DvcException

    failed: list[tuple[str, Exception]] = []

    def onerror(path: str, exc: Exception) -> None:
        failed.append((path, exc))
        raise exc

    saved = repo.stage_collection_error_handler
    repo.stage_collection_error_handler = onerror
    try:
        index = repo.index
        return _project(root, index)
    except DvcException as exc:
        where = failed[0][0] if failed else "dvc.yaml"
        raise rejected(root, where, exc) from None
    finally:
        repo.stage_collection_error_handler = saved


def rejected(root: Path, where: str, exc: Exception) -> ConfigError:
    """DVC's own words about a declaration it rejects, naming the file."""
    shown = posix(os.path.relpath(os.path.abspath(where), root))
    said = first_line(exc)
    cause = exc.__cause__
    if cause is not None and first_line(cause) not in said:
        said = f"{said}: {first_line(cause)}"
    return ConfigError(
        f"{shown}: DVC rejects it: {said}",
        fix=f"correct {shown} as DVC says (`dvc status` shows the same error)",
    )


def _rel(root: Path, path: str) -> str:
    return posix(os.path.relpath(path, root) if os.path.isabs(path) else path)


def _project(root: Path, index: Any) -> Project:
    from dvc.dependency import ParamsDependency
    from dvc.repo.plots import infer_data_sources

    stages: list[Stage] = []
    sources: list[Source] = []
    files: dict[str, None] = {}
    resolved: set[str] = set()
    for st in index.stages:
        dvcfile = _rel(root, str(st.dvcfile.path))
        files[dvcfile] = None
        outs = tuple(_out(root, o) for o in st.outs)
        if not getattr(st, "cmd", None):  # a .dvc file: `dvc add`, `dvc import`
            sources.append(Source(dvcfile, tuple(o.path for o in outs)))
            continue
        params = tuple(
            Params(_rel(root, d.fs_path), tuple(map(str, d.params or ())))
            for d in st.deps
            if isinstance(d, ParamsDependency)
        )
        deps = tuple(_rel(root, d.fs_path) for d in st.deps if not isinstance(d, ParamsDependency))
        files.update((p.file, None) for p in params)
        if dvcfile not in resolved:  # the vars files its templating read
            resolved.add(dvcfile)
            files.update((v, None) for v in _vars_files(root, st.dvcfile))
        cmd = st.cmd
        stages.append(
            Stage(
                # DVC's address as `dvc repro` (run in the project root) names it
                str(st.name) if dvcfile == "dvc.yaml" else f"{dvcfile}:{st.name}",
                " && ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd or ""),
                _rel(root, st.wdir),
                dvcfile,
                str(st.name),
                outs,
                deps,
                params,
            )
        )
    top_metrics = [_joined(root, f, m) for f, ms in index._metrics.items() for m in ms]
    top_params = [_joined(root, f, p) for f, ps in index._params.items() for p in ps]
    top_plots: list[str] = []
    for f, items in index._plots.items():
        for item in items:
            defs = item.items() if isinstance(item, dict) else [(item, None)]
            for plot_id, config in defs:
                found = infer_data_sources(str(plot_id), config if isinstance(config, dict) else {})
                top_plots += [_joined(root, f, s) for s in found]
    artifacts = [
        Artifact(
            str(name) if _rel(root, f) == "dvc.yaml" else f"{_rel(root, f)}:{name}",
            _joined(root, f, str(a["path"])),
            str(a.get("type") or ""),
        )
        for f, arts in index._artifacts.items()
        for name, a in (arts or {}).items()
        if isinstance(a, dict) and a.get("path")
    ]
    for f in (*index._metrics, *index._params, *index._plots, *index._artifacts):
        files[_rel(root, f)] = None
    return Project(
        tuple(stages),
        tuple(sources),
        tuple(artifacts),
        _unique(top_metrics),
        _unique(top_plots),
        _unique(top_params),
        tuple(files),
    )


def _out(root: Path, o: Any) -> Out:
    annot = getattr(o, "annot", None)
    return Out(
        _rel(root, o.fs_path),
        bool(o.use_cache),
        bool(o.persist),
        bool(o.metric),
        bool(o.plot),
        getattr(annot, "type", None) or None,
    )


def _joined(root: Path, dvcfile: str, path: str) -> str:
    """A path a ``dvc.yaml`` names at its top level: relative to that file's directory."""
    return _rel(root, os.path.join(os.path.dirname(dvcfile), path))


def _vars_files(root: Path, dvcfile: Any) -> list[str]:
    """The files DVC's templating loaded for ``dvcfile`` (``vars:``, the default params.yaml),
    as DVC names them: relative to the current directory."""
    resolver = getattr(dvcfile, "resolver", None)
    imports = getattr(getattr(resolver, "context", None), "imports", None) or {}
    return [_rel(root, os.path.abspath(str(p).split(":", 1)[0])) for p in imports]
