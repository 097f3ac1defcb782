"""MkDocs hook: the settings reference, generated from the settings code at build time.

A page marks where a table goes with ``<!-- mlci-settings: SECTION -->`` on a line of its own
(``SECTION`` is a
section id such as ``plots`` or ``train.torch``); ``<!-- mlci-settings: all -->`` (the settings
page) writes every section with its heading. Keys, types, defaults, environment variables and
trust keys are read from the frozen dataclasses in ``mlci.settings`` (and, for ``train:`` and
``evaluate:``, ``mlci.training.settings``); ``<!-- mlci-settings: trust -->`` lists the trust
keys. Only the meaning of each key is written by hand, in ``settings_meanings.py``: a key
without a meaning, or a meaning whose key is gone, fails the build, so the reference cannot
drift from the code (``tests/test_docs.py`` checks the same).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Fields of the dataclasses that are not settings a user writes.
NOT_SETTINGS = {
    "Settings": {"root", "notes"},  # the project root, and the warnings the loader collects
    "Gate": {"metric"},  # the key of the mapping `gates: {metric: gate}`
    "TrainParams": {"facts_path_set"},  # derived: whether params.yaml names `facts_path`
}

TRUST = (
    "**Trust key**: on a pull request, only from the workflow or the base branch "
    "([why](security.md#trust-keys))."
)


def _prose() -> tuple[dict[str, str], dict[str, str]]:
    """MEANINGS and WHEN_UNSET from ``settings_meanings.py`` beside this file, read afresh on
    every load (so ``mkdocs serve`` sees an edit)."""
    import importlib.util

    path = Path(__file__).resolve().parent / "settings_meanings.py"
    spec = importlib.util.spec_from_file_location("mlci_docs_settings_meanings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MEANINGS, module.WHEN_UNSET


# The one line of prose per key, and what an unset key means.
MEANINGS, WHEN_UNSET = _prose()


@dataclass(frozen=True)
class Row:
    key: str  # full name: `plots.branch`, `gates.<metric>.direction`, `train.seed`
    kind: str  # what a user writes: text, number, true/false, list of text, ...
    default: str  # Markdown
    env: str  # the MLCI_* variable, or ""
    trust: bool


@dataclass(frozen=True)
class Section:
    id: str  # `mlci`, `plots`, `monitor.latency`, `train.torch`, ...
    title: str  # the YAML path a user writes it under
    rows: tuple[Row, ...]


def _import_settings() -> tuple[Any, Any, Any]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from mlci.settings import config
    from mlci.settings.gates import Gate
    from mlci.training import settings as training

    return config, Gate, training


def choices() -> dict[str, list[str]]:
    """The values a key accepts, where the code lists them: shown as its type."""
    from mlci.settings.gates import DIRECTIONS
    from mlci.settings.monitor import ON_BREACH
    from mlci.settings.plots import IMAGE_MODES
    from mlci.training.backends import BACKENDS
    from mlci.training.settings import TASKS

    backends = [
        f"`{b.name}`" + "".join(f" (or `{a}`)" for a in b.aliases) for b in BACKENDS.values()
    ]
    found = {
        "gates.<metric>.direction": [f"`{d}`" for d in DIRECTIONS],
        "plots.images": [f"`{m}`" for m in IMAGE_MODES],
        "monitor.on_breach": [f"`{m}`" for m in ON_BREACH],
        "train.task": [f"`{t}`" for t in TASKS],
        "train.backend": backends,
    }
    try:
        from mlci.settings import release
    except ImportError:
        return found
    for key, name in (("release.strategy", "STRATEGIES"), ("release.approval", "APPROVALS")):
        if hasattr(release, name):
            found[key] = [f"`{v}`" for v in getattr(release, name)]
    return found


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _kind(tp: Any) -> str:
    tp, _ = _unwrap(tp)
    simple = {bool: "true/false", int: "whole number", float: "number", str: "text"}
    if tp in simple:
        return simple[tp]
    if dataclasses.is_dataclass(tp):
        return "section"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and args and dataclasses.is_dataclass(args[0]):
        return "mapping: metric -> gate"
    if origin is tuple and args:
        inner = _kind(args[0])
        return "list of " + {"text": "text", "whole number": "whole numbers"}.get(inner, inner)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if args and args[0] is str and args[1] is str:
            return "mapping: text -> text"
        return "mapping"
    return str(tp)


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(str(v) for v in value) + "]`" if value else "`[]`"
    if isinstance(value, Mapping):
        return "`{}`" if not value else f"`{dict(value)}`"
    return f"`{value}`"


def _fields(cls: type) -> list[dataclasses.Field[Any]]:
    skip = NOT_SETTINGS.get(cls.__name__, set())
    return [f for f in dataclasses.fields(cls) if f.name not in skip]


def sections() -> list[Section]:
    """Every settings section, in the order of the reference page."""
    config, gate_cls, training = _import_settings()
    env_vars = set(config.known_env_vars())
    one_of = choices()
    trust = set(config.TRUST_KEYS)
    out: list[Section] = []

    def _env(name: str, sid: str) -> str:
        var = f"MLCI_{name.upper()}"
        return var if sid == "mlci" and var in env_vars else ""

    found: dict[str, tuple[str, type]] = {}  # section id -> (title, class), discovery order

    def walk(sid: str, title: str, cls: type, prefix: str) -> None:
        if sid in found:
            return
        found[sid] = (title, cls)
        hints = typing.get_type_hints(cls)
        for f in _fields(cls):
            tp, _ = _unwrap(hints[f.name])
            if dataclasses.is_dataclass(tp) and isinstance(tp, type):
                walk(prefix + f.name, f"mlci.{prefix}{f.name}", tp, f"{prefix}{f.name}.")
            args = typing.get_args(tp)
            if typing.get_origin(tp) is tuple and args and args[0] is gate_cls:
                walk("gates", "mlci.gates.<metric>", gate_cls, "gates.<metric>.")

    walk("mlci", "mlci", config.Settings, "")
    roots = {"mlci": ""}
    found["train"] = ("train", training.TrainParams)
    found["train.torch"] = ("train.torch", training.TorchParams)
    found["evaluate"] = ("evaluate", training.EvalParams)
    roots.update({"train": "train.", "train.torch": "train.torch.", "evaluate": "evaluate."})

    for sid, (title, cls) in found.items():
        prefix = roots.get(sid, "gates.<metric>." if cls is gate_cls else sid + ".")
        hints = typing.get_type_hints(cls)
        rows = []
        for f in _fields(cls):
            key = prefix + f.name
            tp, _ = _unwrap(hints[f.name])
            kind = "one of " + ", ".join(one_of[key]) if key in one_of else _kind(tp)
            rows.append(
                Row(key, kind, _default(f, key, sid, found), _env(f.name, sid), key in trust)
            )
        out.append(Section(sid, title, tuple(rows)))
    return out


def _default(f: dataclasses.Field[Any], key: str, sid: str, found: Mapping[str, Any]) -> str:
    """The default as the code has it; "unset" explained by WHEN_UNSET; sections linked."""
    if f.default is not dataclasses.MISSING:
        made = f.default
    elif f.default_factory is not dataclasses.MISSING:
        made = f.default_factory()
    else:
        return "required"
    if key in WHEN_UNSET and made in (None, (), {}):
        return f"unset: {WHEN_UNSET[key]}"
    if key != sid and (key in found or dataclasses.is_dataclass(made)):
        title = found[key][0] if key in found else key
        return f"see [`{title}`](settings.md#{_anchor(key)})"
    return _value(made)


def _anchor(sid: str) -> str:
    if sid == "mlci":
        return "mlci"
    return (sid if sid.startswith(("train", "evaluate")) else "mlci-" + sid).replace(".", "-")


def all_keys() -> list[str]:
    return [row.key for s in sections() for row in s.rows]


def problems() -> list[str]:
    """Keys without a meaning, and meanings or unset texts for keys that do not exist."""
    keys = all_keys()
    found = [f"settings key `{k}` has no meaning in MEANINGS" for k in keys if k not in MEANINGS]
    found += [f"MEANINGS names `{k}`, which is no setting" for k in MEANINGS if k not in keys]
    found += [f"WHEN_UNSET names `{k}`, which is no setting" for k in WHEN_UNSET if k not in keys]
    return found


def table(section: Section) -> str:
    with_env = any(r.env for r in section.rows)
    head = ["key", "type", "default"] + (["env"] if with_env else []) + ["meaning"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in section.rows:
        meaning = MEANINGS.get(r.key, "")
        if r.trust:
            meaning += ". " + TRUST
        cells = [f"`{r.key}`", r.kind, r.default]
        cells += [f"`{r.env}`" if r.env else ""] if with_env else []
        cells.append(meaning)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _heading(section: Section) -> str:
    return f"## `{section.title}:` {{ #{_anchor(section.id)} }}"


_MARKER = re.compile(r"^<!--\s*mlci-settings:\s*([\w.<>-]+)\s*-->[ \t]*$", re.MULTILINE)


def trust_list() -> str:
    """The trust keys, in the order of ``TRUST_KEYS``, each with its meaning."""
    config, _, _ = _import_settings()
    return "\n".join(f"- `{k}`: {MEANINGS.get(k, '')}" for k in config.TRUST_KEYS)


def render(marker: str) -> str:
    if marker == "trust":
        return trust_list()
    known = sections()
    if marker == "all":
        return "\n\n".join(f"{_heading(s)}\n\n{table(s)}" for s in known)
    for s in known:
        if s.id == marker:
            return table(s)
    raise ValueError(f"no settings section '{marker}'; known: {', '.join(s.id for s in known)}")


def on_pre_build(config: Any) -> None:
    from mkdocs.exceptions import PluginError

    found = problems()
    if found:
        raise PluginError(
            "the settings reference is out of date: "
            + "; ".join(found)
            + " (fix: edit docs/hooks/settings_meanings.py)"
        )


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    try:
        return _MARKER.sub(lambda m: render(m.group(1)), markdown)
    except ValueError as exc:
        raise PluginError(f"{page.file.src_uri}: {exc}") from None
