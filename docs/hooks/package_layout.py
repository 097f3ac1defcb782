"""MkDocs hook: where each concern lives, generated from the code at build time.

``<!-- mlci-layers -->`` (on a line of its own) becomes the table of layers as
``[tool.importlinter]`` in pyproject.toml declares them, each package with the first paragraph
of its docstring; ``<!-- mlci-modules -->`` becomes every module of every package with its
own. Nothing is imported (the files are parsed), so the page follows the code as it is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mlci"


def layers() -> list[list[str]]:
    """The layers of the import-linter contract, top first: ``[["mlci.cli"], ...]``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for contract in doc["tool"]["importlinter"]["contracts"]:
        if contract.get("type") == "layers":
            return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]
    raise ValueError("pyproject.toml has no layers contract in [tool.importlinter]")


def _path(module: str) -> Path:
    """``mlci.check`` -> mlci/check/__init__.py; ``mlci.git`` -> mlci/git.py."""
    rel = Path(*module.split("."))
    package = ROOT / rel / "__init__.py"
    return package if package.is_file() else ROOT / rel.with_suffix(".py")


def summary(path: Path) -> str:
    """The first paragraph of a module's docstring, as one line of Markdown."""
    text = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    first = " ".join(text.split("\n\n")[0].split())
    first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first)  # :mod:`x` -> `x`
    return first.replace("``", "`").replace("|", "\\|")


def _label(module: str) -> str:
    path = _path(module)
    shown = path.parent if path.name == "__init__.py" else path
    return f"`{shown.relative_to(ROOT).as_posix()}{'/' if path.name == '__init__.py' else ''}`"


def layers_table() -> str:
    lines = ["| layer | package or module | what it owns |", "|---|---|---|"]
    for number, layer in enumerate(layers(), start=1):
        for module in layer:
            lines.append(f"| {number} | {_label(module)} | {summary(_path(module))} |")
    return "\n".join(lines)


def modules_list() -> str:
    out = []
    for layer in layers():
        for module in layer:
            path = _path(module)
            if path.name != "__init__.py":
                continue
            out.append(f"### {_label(module)}\n")
            for child in sorted(path.parent.glob("*.py")):
                if child.name != "__init__.py":
                    out.append(f"- `{child.name}`: {summary(child)}")
            out.append("")
    return "\n".join(out).rstrip()


_MARKERS = {"mlci-layers": layers_table, "mlci-modules": modules_list}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Each marker on a line of its own becomes what it names (one in a code span stays)."""
    return re.sub(
        r"^<!--\s*(mlci-layers|mlci-modules)\s*-->[ \t]*$",
        lambda m: _MARKERS[m.group(1)](),
        markdown,
        flags=re.MULTILINE,
    )
