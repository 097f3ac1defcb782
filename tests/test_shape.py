"""The house rules that import-linter's layers contract does not check by itself: no import
circle between any two modules (imports inside functions and under ``TYPE_CHECKING``
included), no private name imported from another module, no module over 400 lines, and at
most about a dozen modules directly in ``mlci/``. The layers themselves are
``[tool.importlinter]`` in pyproject.toml, checked by ``lint-imports`` in CI (and below)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mlci"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[tuple[str, str]]]:
    """Per module: (imported module, imported name or "") for every mlci import it makes."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlci"):
                assert node.level == 0, f"{name}: relative import"
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges[name].add((sub, "") if sub in modules else (node.module, alias.name))
            elif isinstance(node, ast.Import):
                edges[name].update((a.name, "") for a in node.names if a.name.startswith("mlci"))
    return edges


def _circles(modules: dict[str, Path], edges: dict[str, set[tuple[str, str]]]) -> list[list[str]]:
    graph = {
        m: {t for t, _ in edges[m] if t in modules and t != m and modules[t].name != "__init__.py"}
        for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circle_and_no_private_name_across_modules() -> None:
    modules = _modules()
    edges = _imports(modules)
    assert _circles(modules, edges) == []
    private = sorted(
        f"{m} imports {t}.{n}"
        for m, targets in edges.items()
        for t, n in targets
        if n.startswith("_") and not n.startswith("__")
    )
    assert private == []


def test_modules_are_small_and_the_top_level_is_a_kernel() -> None:
    modules = _modules()
    long = {n: len(p.read_text().splitlines()) for n, p in modules.items()}
    assert {n: lines for n, lines in long.items() if lines > 400} == {}
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


def test_the_layers_contract_holds() -> None:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool, "import-linter is a test dependency (pip install -e '.[test]')"
    proc = subprocess.run([tool], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "KEPT" in proc.stdout and "BROKEN" not in proc.stdout


def test_a_broken_layer_is_found(tmp_path: Path) -> None:
    """The contract can fail: a settings module that imports the CLI is reported."""
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "mlci", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    bad = copy / "mlci" / "settings" / "config.py"
    bad.write_text(bad.read_text() + "\nfrom mlci.cli import common  # noqa\n")
    proc = subprocess.run(
        [tool], cwd=copy, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert proc.returncode != 0 and "mlci.settings.config -> mlci.cli.common" in proc.stdout
