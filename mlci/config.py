"""The ``mlci:`` settings: defaults < params.yaml / pyproject < ``MLCI_*`` env < flags.

One frozen ``Settings`` object is built once per command. Unknown keys are errors with a
suggestion. Secrets never live here: they come from the environment at the edge that uses them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlci.errors import ConfigError

DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Gate:
    """One gated metric: which way is better and how much worse is still fine."""

    metric: str
    direction: str = "higher"
    abs_tol: float | None = None
    rel_tol: float | None = None
    min: float | None = None
    max: float | None = None
    required: bool = True


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
    dvc_remote: str | None = None
    github_api_url: str | None = None
    comment: bool = True
    check_run: bool = False
    step_summary: bool = True
    promote_branch: str = "main"
    allow_untrusted: bool = False
    validate: Mapping[str, str] = field(default_factory=dict)
    sensitive_columns: tuple[str, ...] = ()
    gates: tuple[Gate, ...] = ()
    drift: Mapping[str, Any] = field(default_factory=dict)
    pii: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI, defaulting to a SQLite file under ``.mlci/``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.root / '.mlci' / 'mlflow.db').as_posix()}"

    @property
    def report_file(self) -> Path:
        return self.root / self.report_path


_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "root"}
_STRUCTURED = ("validate", "sensitive_columns", "gates", "drift", "pii")
_SCALARS = {name: f.type for name, f in _FIELDS.items() if name not in _STRUCTURED}
_PII_KEYS = ("block", "allow")
_GATE_KEYS = [f.name for f in dataclasses.fields(Gate) if f.name != "metric"]


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}", fix="use true or false")


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}", fix="give a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: expected a number, got {value!r}", fix="give a number"
        ) from None


def parse_gate(metric: str, raw: Any, where: str) -> Gate:
    if isinstance(raw, str) and raw in DIRECTIONS:
        raw = {"direction": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}.gates.{metric}: expected a mapping",
            fix="write e.g. `accuracy: {direction: higher, abs_tol: 0.01}`",
        )
    unknown = [k for k in raw if k not in _GATE_KEYS]
    if unknown:
        raise ConfigError(
            f"{where}.gates.{metric}: unknown key '{unknown[0]}'",
            fix=_suggest(str(unknown[0]), _GATE_KEYS),
        )
    direction = str(raw.get("direction", "higher"))
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"{where}.gates.{metric}.direction: '{direction}' is not a direction",
            fix="use 'higher' (higher is better) or 'lower' (lower is better)",
        )
    nums = {
        k: _float(raw[k], f"{where}.gates.{metric}.{k}")
        for k in ("abs_tol", "rel_tol", "min", "max")
        if raw.get(k) is not None
    }
    for k in ("abs_tol", "rel_tol"):
        if nums.get(k, 0.0) < 0:
            raise ConfigError(f"{where}.gates.{metric}.{k} is negative", fix="use a value >= 0")
    required = _bool(raw.get("required", True), f"{where}.gates.{metric}.required")
    return Gate(metric=metric, direction=direction, required=required, **nums)


def _coerce(name: str, value: Any, where: str) -> Any:
    kind = str(_FIELDS[name].type)
    if kind == "bool":
        return _bool(value, where)
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
    if name in ("drift", "pii"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping", fix=f"see the README, '{name}'")
        if name == "pii":
            for key in value:
                if key not in _PII_KEYS:
                    raise ConfigError(
                        f"{where}: unknown key '{key}'", fix=_suggest(str(key), list(_PII_KEYS))
                    )
        return dict(value)
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
            raise ConfigError(
                f"{where}: unknown key '{key}'", fix=_suggest(str(key), list(_FIELDS))
            )
        values[key] = _coerce(key, value, f"{where}.{key}")


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", fix="check the path") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"{path.name}{line}: {problem}", fix=f"fix the YAML syntax in {path}"
        ) from None


def _file_settings(root: Path, params_file: str) -> tuple[Mapping[str, Any], str]:
    params = root / params_file
    if params.exists():
        data = load_yaml(params)
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
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        import tomllib

        try:
            doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"pyproject.toml: {exc}", fix="fix the TOML syntax") from None
        section = doc.get("tool", {}).get("mlci")
        if isinstance(section, Mapping):
            return section, "pyproject.toml:[tool.mlci]"
    return {}, "defaults"


def load(
    root: Path, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings for the repository at ``root``."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    params_file = str(flags.get("params_file") or env.get("MLCI_PARAMS_FILE") or "params.yaml")
    values: dict[str, Any] = {"params_file": params_file}
    section, where = _file_settings(root, params_file)
    _apply(values, section, where)
    for name in [*_SCALARS, "sensitive_columns"]:
        var = f"MLCI_{name.upper()}"
        if env.get(var) not in (None, ""):
            values[name] = _coerce(name, env[var], var)
    if "github_api_url" not in values and env.get("GITHUB_API_URL"):
        values["github_api_url"] = env["GITHUB_API_URL"]
    _apply(values, flags, "flag")
    return Settings(root=root, **values)


def known_env_vars() -> list[str]:
    return [f"MLCI_{n.upper()}" for n in [*_SCALARS, "sensitive_columns"]]
