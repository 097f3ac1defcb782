"""The ``mlci:`` settings: defaults < params.yaml / pyproject < ``MLCI_*`` env < flags.

One frozen ``Settings`` object is built once per command. Unknown keys are errors with a
suggestion. Secrets never live here: they come from the environment at the edge that uses them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlci.errors import ConfigError
from mlci.settings.card import CardSettings
from mlci.settings.datachecks import PiiSettings, Thresholds, data_keys
from mlci.settings.gates import Gate, as_bool, parse_gate, suggest
from mlci.settings.insight import CostSettings, ExplainSettings
from mlci.settings.monitor import MonitorSettings
from mlci.settings.plots import PlotSettings
from mlci.settings.release import ReleaseSettings


@dataclass(frozen=True)
class Settings:
    root: Path
    params_file: str = "params.yaml"
    base: str | None = None
    report_name: str = "mlci"
    report_path: str = ".mlci/report.md"
    mlflow_tracking_uri: str | None = None
    experiment: str = "mlci"
    model_name: str = "mlci-model"
    model: str | None = None  # the model file/dir to register (else dvc.yaml's declaration)
    dvc_remote: str | None = None
    github_api_url: str | None = None
    comment: bool = True
    check_run: bool = False
    step_summary: bool = True
    promote_branch: str | None = None
    allow_untrusted: bool = False
    validate: Mapping[str, str] = field(default_factory=dict)
    sensitive_columns: tuple[str, ...] = ()
    data_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    gates: tuple[Gate, ...] = ()
    drift: Thresholds = field(default_factory=Thresholds)
    pii: PiiSettings = field(default_factory=PiiSettings)
    plots: PlotSettings = field(default_factory=PlotSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    release: ReleaseSettings = field(default_factory=ReleaseSettings)
    card: CardSettings = field(default_factory=CardSettings)
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    notes: tuple[str, ...] = ()

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI, defaulting to a SQLite file under ``.mlci/``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.root / '.mlci' / 'mlflow.db').as_posix()}"

    @property
    def report_file(self) -> Path:
        return self.root / self.report_path


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name not in ("root", "notes")}
_STRUCTURED = (
    "validate",
    "sensitive_columns",
    "data_keys",
    "gates",
    "drift",
    "pii",
    "plots",
    "monitor",
    "release",
    "card",
    "explain",
    "cost",
)
_SCALARS = {name: f.type for name, f in _FIELDS.items() if name not in _STRUCTURED}


# The sections typed by their own class (each with ``from_mapping(raw, where)``).
_SECTIONS: dict[str, Any] = {
    "drift": Thresholds,
    "pii": PiiSettings,
    "plots": PlotSettings,
    "monitor": MonitorSettings,
    "release": ReleaseSettings,
    "card": CardSettings,
    "explain": ExplainSettings,
    "cost": CostSettings,
}


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = str(_FIELDS[name].type)
    if kind == "bool":
        return as_bool(value, where)
    if name == "validate":
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping of data file -> schema",
                fix="write e.g. `validate: {data/train.csv: schemas/train.yaml}`",
            )
        return {str(k): str(v) for k, v in value.items()}
    if name == "sensitive_columns":
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list of column names", fix="write a YAML list")
        return tuple(str(v) for v in value)
    if name in _SECTIONS:
        return _SECTIONS[name].from_mapping(value, where)
    if name == "data_keys":
        return data_keys(value, where)
    if name == "gates":
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping of metric -> gate",
                fix="write e.g. `gates: {accuracy: {direction: higher}}`",
            )
        return tuple(parse_gate(str(m), g, where.rsplit(".", 1)[0]) for m, g in value.items())
    if value is None:
        return None
    return str(value)


def _apply(values: dict[str, Any], raw: Mapping[str, Any], where: str) -> None:
    for key, value in raw.items():
        if key not in _FIELDS:
            raise ConfigError(f"{where}: unknown key '{key}'", fix=suggest(str(key), list(_FIELDS)))
        values[key] = _coerce(key, value, f"{where}.{key}")


Reader = Callable[[str], "str | None"]

# Settings that widen what a run may do or choose where a token goes. They come from the
# workflow (environment, action inputs, flags) or the base branch's files, never from files a
# pull request changed.
TRUST_KEYS = (
    "allow_untrusted",
    "github_api_url",
    "mlflow_tracking_uri",
    "plots.branch",  # the branch the token writes images to
    "monitor.branch",  # the branch the token pushes a retraining change to
    "monitor.workflow",  # the workflow the token dispatches
    "release.approval",  # who must approve before a challenger becomes champion
    "release.environment",
)
# Events whose work tree is the repository's own (not a pull request's) files.
_OWN_CODE_EVENTS = frozenset(
    {"push", "schedule", "workflow_dispatch", "workflow_run", "release", "repository_dispatch"}
)


def _worktree(root: Path) -> Reader:
    def read(name: str) -> str | None:
        path = root / name
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}", fix="check the file") from None

    return read


def _parse_yaml(text: str, name: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"{name}{line}: {problem}", fix=f"fix the YAML syntax in {name}"
        ) from None


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", fix="check the path") from None
    return _parse_yaml(text, path.name)


def _file_settings(read: Reader, params_file: str) -> tuple[Mapping[str, Any], str]:
    text = read(params_file)
    if text is not None:
        data = _parse_yaml(text, params_file)
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(
                f"{params_file}: expected a mapping at the top",
                fix="params.yaml holds `key: value` pairs",
            )
        section = (data or {}).get("mlci")
        if section is not None:
            if not isinstance(section, Mapping):
                raise ConfigError(
                    f"{params_file}: `mlci:` must be a mapping", fix="indent its keys"
                )
            return section, f"{params_file}:mlci"
    text = read("pyproject.toml")
    if text is not None:
        import tomllib

        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"pyproject.toml: {exc}", fix="fix the TOML syntax") from None
        section = doc.get("tool", {}).get("mlci")
        if isinstance(section, Mapping):
            return section, "pyproject.toml:[tool.mlci]"
    return {}, "defaults"


def _base_reader(root: Path, base: str) -> Reader | None:
    """Files as they are on the PR's base branch (fetched when a CI clone lacks it)."""
    from mlci import git
    from mlci.errors import MlciError

    try:
        sha = git.resolve_base(root, base)
        prefix = git.prefix(root)
    except MlciError:
        return None

    def read(name: str) -> str | None:
        raw = git.show(root, sha, f"{prefix}{name}")
        return None if raw is None else raw.decode("utf-8", errors="replace")

    return read


def _trusted_section(
    root: Path, params_file: str, section: Mapping[str, Any], where: str, env: Mapping[str, str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The trust keys of the files' settings that may be honoured, and notes on the rest.

    On the repository's own code (a push, a schedule, a local run) the files are trusted. On a
    pull request they are the PR's: trust keys are taken from the base branch's files instead.
    On any other event that may carry a PR's files (``issue_comment``, ``merge_group``...) they
    are ignored. Fail closed: a base that cannot be read counts as one without the keys.
    """
    given = _pick(section, TRUST_KEYS)
    event = env.get("GITHUB_EVENT_NAME") or None
    if event is None or event in _OWN_CODE_EVENTS:
        return given, ()
    base = env.get("GITHUB_BASE_REF") if event.startswith("pull_request") else None
    read = _base_reader(root, base) if base else None
    kept = _pick(_file_settings(read, params_file)[0], TRUST_KEYS) if read is not None else {}
    notes = tuple(
        f"{where}.{k} is ignored: on a {event} event it may only come from the workflow "
        + (f"or the base branch '{base}'" if base else "(environment or action input)")
        for k in given
        if k not in kept or given[k] != kept[k]
    )
    return kept, notes


def _pick(section: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The values of dotted ``keys`` (``plots.branch``) that ``section`` has."""
    out: dict[str, Any] = {}
    for key in keys:
        value: Any = section
        for part in key.split("."):
            if not isinstance(value, Mapping) or part not in value:
                break
            value = value[part]
        else:
            out[key] = value
    return out


def _merged(section: Mapping[str, Any], trusted: Mapping[str, Any]) -> dict[str, Any]:
    """``section`` without any trust key, with the ``trusted`` values put in their place."""
    out: dict[str, Any] = {}
    for key, value in section.items():
        out[key] = dict(value) if isinstance(value, Mapping) else value
    for key in TRUST_KEYS:
        head, _, rest = key.partition(".")
        if rest and isinstance(out.get(head), dict):
            out[head].pop(rest, None)
        elif not rest:
            out.pop(head, None)
    for key, value in trusted.items():
        head, _, rest = key.partition(".")
        if rest:
            nested = out.get(head)
            out[head] = {**(nested if isinstance(nested, dict) else {}), rest: value}
        else:
            out[head] = value
    return out


def _inside(path: str | None, where: str) -> None:
    """A path from the settings file stays inside the project: the file may be a PR's."""
    if path is not None and (Path(path).is_absolute() or ".." in Path(path).parts):
        raise ConfigError(
            f"{where}: {path!r} points outside the project",
            fix="use a path relative to the project, without '..' (flags and MLCI_* may "
            "point elsewhere)",
        )


def load(
    root: Path, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings for the repository at ``root``."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    chosen = flags.get("params_file") or env.get("MLCI_PARAMS_FILE")
    params_file = str(chosen or "params.yaml")
    if chosen and not (root / params_file).is_file():
        source = "--params-file" if flags.get("params_file") else "MLCI_PARAMS_FILE"
        raise ConfigError(
            f"{source} names {params_file}, which does not exist in {root}",
            fix="give the path of the params file relative to the project, or leave it unset "
            "for params.yaml",
        )
    values: dict[str, Any] = {"params_file": params_file}
    section, where = _file_settings(_worktree(root), params_file)
    trusted, notes = _trusted_section(root, params_file, section, where, env)
    for key in ("report_path", "model"):
        _inside(section.get(key), f"{where}.{key}")
    _apply(values, _merged(section, trusted), where)
    for name in [*_SCALARS, "sensitive_columns"]:
        var = f"MLCI_{name.upper()}"
        if env.get(var) not in (None, ""):
            values[name] = _coerce(name, env[var], var)
    if "github_api_url" not in values and env.get("GITHUB_API_URL"):
        values["github_api_url"] = env["GITHUB_API_URL"]
    _apply(values, flags, "flag")
    _plain_name(str(values.get("model_name", "mlci-model")))
    return Settings(root=root, notes=notes, **values)


def _plain_name(name: str) -> None:
    """A model name MLflow's search filters can quote: no quote, backquote or backslash."""
    bad = sorted({c for c in name if c in "'\"`\\" or not c.isprintable()})
    if bad or not name.strip():
        raise ConfigError(
            f"mlci.model_name {name!r} cannot be looked up in the MLflow registry "
            f"({'empty' if not bad else 'it holds ' + ' '.join(map(repr, bad))})",
            fix="name the model with letters, digits, spaces and - _ . / (e.g. `churn-model`)",
        )


def known_env_vars() -> list[str]:
    return [f"MLCI_{n.upper()}" for n in [*_SCALARS, "sensitive_columns"]]
