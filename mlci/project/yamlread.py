"""YAML read fast: each text DVC parses is parsed once per process, and the files mlci reads
itself (``dvc.lock``, ``.dvc`` files) go through libyaml when PyYAML has it.

DVC parses the same few files again and again in one check: every ``Repo.index`` it builds
(after each locked command it drops the one it had) reads each ``dvc.yaml``, ``dvc.lock`` and
params file anew with ruamel (~20 ms a file), 22 parses of 3 texts for a no-op check.
:func:`install` puts a memo in front of DVC's ``parse_yaml``, keyed by the text: a text seen
before is answered with a deep copy of its first result (DVC may change what it is given). A
changed file is a new text, so nothing stale is ever answered. Only the plain ("safe") load is
kept; the round-trip load DVC uses to rewrite a file is left alone. Where DVC no longer binds
``parse_yaml`` as expected, the memo is not installed and DVC parses as before.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from typing import Any

import yaml

# where DVC 3 binds ``parse_yaml`` (module, name): its own module (``load_yaml`` and
# ``parse_yaml_for_update`` look it up there), the package that re-exports it (``PARSERS``),
# and ``strictyaml``, which imported it by name (``dvc.yaml``, ``dvc.lock``, ``.dvc`` files)
_BINDINGS = (
    ("dvc.utils.serialize._yaml", "parse_yaml"),
    ("dvc.utils.serialize", "parse_yaml"),
    ("dvc.utils.strictyaml", "parse_yaml"),
)
_KEPT = 64  # texts remembered (a project's dvc.yaml, dvc.lock and params files, at two revisions)
_MEMO: OrderedDict[tuple[str, str], Any] = OrderedDict()
_installed = False

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load`` with libyaml's loader when PyYAML was built with it (4x faster)."""
    return yaml.load(text, Loader=SafeLoader)


def install() -> bool:
    """Put the memo in front of DVC's ``parse_yaml``, once per process; False when DVC's
    modules are not shaped as expected (then nothing is changed)."""
    global _installed
    if _installed:
        return True
    import importlib

    try:
        bound = [(importlib.import_module(name), attr) for name, attr in _BINDINGS]
    except ImportError:
        return False
    original = getattr(bound[0][0], "parse_yaml", None)
    if original is None or not _shaped(original):
        return False
    if any(getattr(module, attr, None) is not original for module, attr in bound):
        return False  # bound otherwise, or wrapped by someone else: leave it to them

    def parse_yaml(text: Any, path: Any, typ: str = "safe") -> Any:
        if typ != "safe" or not isinstance(text, str):
            return original(text, path, typ)
        key = (typ, text)
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _copy(_MEMO[key])
        data = original(text, path, typ)  # a syntax error is raised, never remembered
        _MEMO[key] = _copy(data)
        if len(_MEMO) > _KEPT:
            _MEMO.popitem(last=False)
        return data

    parse_yaml.__wrapped__ = original  # type: ignore[attr-defined]
    for module, attr in bound:
        setattr(module, attr, parse_yaml)
    _installed = True
    return True


def _shaped(fn: Any) -> bool:
    """Whether ``fn`` is DVC 3's ``parse_yaml(text, path, typ="safe")``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return [p.name for p in params] == ["text", "path", "typ"] and params[2].default == "safe"


def _copy(data: Any) -> Any:
    """A deep copy of what the safe loader makes (dicts, lists and scalars), fast."""
    if type(data) is dict:
        return {k: _copy(v) for k, v in data.items()}
    if type(data) is list:
        return [_copy(v) for v in data]
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    return copy.deepcopy(data)  # a date, a set: rare
