"""The report's runtime line (mlci/report/runtime.py): one line when the PR's training ran on
another stack than the base's, with the differences folded below it; none on the same stack;
every value inert. Rendered by GitHub's own renderer (``cmark``), and end to end through
``mlci report`` on the template repository, whose base commit records its training's runtime
in ``reports/train.json``."""

from __future__ import annotations

import json
from pathlib import Path

from mlci.report.render import ReportInput, render
from mlci.report.runtime import differences, stack_change
from mlci.training.facts import BASE_RUNTIME, runtime
from mlci.training.gpu import GpuFacts
from mlci.verdict.outcome import Outcome, Verdict

import cmark
from conftest import Workspace, git

STACK = {
    "python": "3.11.7",
    "platform": "Linux-6.1.0-x86_64-with-glibc2.36",
    "numpy": "2.4.6",
    "scikit-learn": "1.9.1",
    "mlci": "0.1.0",
}
LINE = "ran on another stack than the base's"


def _report(base: dict[str, str] | None, head: dict[str, str] | None) -> str:
    facts: dict[str, object] = {}
    if head is not None:
        facts["environment"] = head
    if base is not None:
        facts[BASE_RUNTIME] = base
    return render(ReportInput(name="mlci", verdict=Verdict(Outcome.PASSED, "ok"), facts=facts))


def test_a_library_version_that_differs_is_one_line_under_the_verdict_with_a_folded_diff() -> None:
    base = {**STACK, "scikit-learn": "1.5.0"}
    report = _report(base, STACK)
    lines = report.splitlines()
    (at,) = [i for i, line in enumerate(lines) if LINE in line]
    assert "`scikit-learn`" in lines[at]
    assert at < next(i for i, line in enumerate(lines) if line.startswith("<details>"))
    html = cmark.render(report)
    assert "<details><summary>Runtime: base and this PR</summary>" in html
    assert "<td><code>1.5.0</code></td>" in html and "<td><code>1.9.1</code></td>" in html
    assert "numpy" not in stack_change({"environment": STACK, BASE_RUNTIME: base})


def test_the_same_stack_shows_no_line() -> None:
    assert LINE not in _report(dict(STACK), dict(STACK))
    assert stack_change({"environment": STACK, BASE_RUNTIME: dict(STACK)}) == ""


def test_a_runtime_recorded_on_one_side_only_shows_no_line() -> None:
    assert stack_change({"environment": STACK}) == ""
    assert stack_change({BASE_RUNTIME: STACK}) == ""
    assert stack_change({"environment": STACK, BASE_RUNTIME: {}}) == ""


def test_a_new_kernel_alone_is_not_a_stack_change_but_is_shown_with_one() -> None:
    kernel = {**STACK, "platform": "Linux-6.8.0-x86_64-with-glibc2.36"}
    assert stack_change({"environment": kernel, BASE_RUNTIME: STACK}) == ""
    image = {**kernel, "image": "ghcr.io/octo/mlci-runner:0.2.0"}
    shown = stack_change({"environment": image, BASE_RUNTIME: STACK})
    assert "`image`" in shown and "`platform`" in shown and "not recorded" in shown
    assert [d.name for d in differences(STACK, image)] == ["image", "platform"]


def test_many_differences_name_a_few_and_count_the_rest() -> None:
    head = {f"lib{i}": "2" for i in range(9)}
    shown = stack_change({"environment": head, BASE_RUNTIME: {k: "1" for k in head}})
    (line,) = [ln for ln in shown.splitlines() if LINE in ln]
    assert "and 5 more" in line and line.count("`lib") == 4
    assert shown.count("\n| `lib") == 9


def test_values_from_data_stay_inert() -> None:
    evil = {
        "python": "3.11 <img src=x onerror=alert(1)> @octocat #1 `x` | y",
        "<script>alert(1)</script>": "[link](https://evil.example) <!-- mlci-report:mlci -->",
    }
    report = _report({**STACK, **{k: "1" for k in evil}}, {**STACK, **evil})
    html = cmark.render(report)
    for tag in ("<img", "<a ", "<script", "<iframe"):
        assert tag not in html.lower(), (tag, html)
    assert report.count("<!-- mlci-report:") == 0
    alone = cmark.render(stack_change({"environment": {**STACK, **evil}, BASE_RUNTIME: STACK}))
    assert alone.count("<details>") == 1 and alone.count("<tr>") == 3  # header and two rows


def test_the_runtime_names_python_the_libraries_the_gpu_driver_and_the_image() -> None:
    gpu = GpuFacts(True, None, ({"name": "NVIDIA H100", "driver": "550.54.15"},))
    env = {"MLCI_IMAGE": "ghcr.io/octo/mlci-runner:0.1.0", "MLCI_IMAGE_DIGEST": "sha256:ab"}
    found = runtime(gpu, {**env, "CUDA_VERSION": "12.4.1"})
    assert found["python"] and found["scikit-learn"] and found["mlci"]
    assert found["gpu"] == "NVIDIA H100" and found["driver"] == "550.54.15"
    assert found["image"] == env["MLCI_IMAGE"] and found["image digest"] == "sha256:ab"
    assert found["cuda image"] == "12.4.1"
    bare = runtime(GpuFacts(reason="no GPU"), {})
    assert not {"gpu", "driver", "image", "image digest", "cuda image"} & set(bare)


def _stack_of(path: Path, **changed: str) -> None:
    facts = json.loads(path.read_text(encoding="utf-8"))
    facts["environment"].update(changed)
    path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")


def test_mlci_report_shows_the_line_when_the_base_was_trained_on_another_stack(
    workspace: Workspace,
) -> None:
    """The base commit's ``reports/train.json`` records scikit-learn 1.5.0; the PR's training
    recorded this venv's version: the report says so, and says nothing when they agree."""
    p = workspace.project
    ci = workspace.clone(name="ci-same")
    same = workspace.mlci(ci, "report", "--base", "main")
    assert same.returncode == 0, same.stdout + same.stderr
    assert LINE not in (ci / ".mlci" / "report.md").read_text(encoding="utf-8")

    _stack_of(p / "reports" / "train.json", **{"scikit-learn": "1.5.0"})
    git(p, "commit", "-q", "-am", "Baseline trained on an older scikit-learn")
    ci = workspace.clone(name="ci-other")
    other = workspace.mlci(ci, "report", "--base", "main")
    assert other.returncode == 0, other.stdout + other.stderr
    report = (ci / ".mlci" / "report.md").read_text(encoding="utf-8")
    (line,) = [ln for ln in report.splitlines() if LINE in ln]
    assert "`scikit-learn`" in line
    assert "<td><code>1.5.0</code></td>" in cmark.render(report)
