from __future__ import annotations

import json
from pathlib import Path

from mlci.checks.validation import Failure, FileResult, ValidationReport
from mlci.limits import COMMENT_LIMIT
from mlci.report.render import ReportInput, Verdict, render
from mlci.settings.gates import Gate
from mlci.verdict.metrics import compare


def _inp(**kw: object) -> ReportInput:
    c = compare(
        {"acc": 0.9, "loss": 0.5},
        {"acc": 0.8, "loss": 0.4},
        [Gate("acc", "higher"), Gate("loss", "lower")],
        base_rev="main",
        base_sha="a" * 40,
        base_params={"train.depth": 3},
        head_params={"train.depth": 5},
    )
    defaults: dict[str, object] = {
        "name": "mlci",
        "verdict": Verdict("failed", "1 gate(s) failed: acc", 4),
        "comparison": c,
        "head_sha": "b" * 40,
    }
    defaults.update(kw)
    return ReportInput(**defaults)  # type: ignore[arg-type]


def test_verdict_first_then_table_with_numbers() -> None:
    md = render(_inp(), marker="<!-- mlci-report:mlci -->")
    lines = md.splitlines()
    assert lines[0] == "<!-- mlci-report:mlci -->"
    assert lines[1].startswith("## ❌ mlci: failed")
    assert "| `acc` | 0.9000 | 0.8000 | -0.1000 | -11.11% | 🔴 ↓ | ❌ fail |" in md
    assert "| `loss` | 0.5000 | 0.4000 | -0.1000 | -20.00% | 🟢 ↓ | ✅ pass |" in md
    assert "| `train.depth` | 3 | 5 |" in md
    assert md.index("Metrics") < md.index("Params")
    assert "`aaaaaaa`" in md and "`bbbbbbb`" in md


def test_validation_section_hides_nothing_but_sensitive() -> None:
    v = ValidationReport(
        (
            FileResult(
                "d.csv",
                "s.yaml",
                10,
                (
                    Failure("age", "in_range(0, 120)", 2, ("150", "-1")),
                    Failure("email", "str_matches", 3, ()),
                ),
            ),
        )
    )
    md = render(_inp(validation=v))
    assert "| `age` | `in_range(0, 120)` | 2 | `150`, `-1` |" in md
    assert "| `email` | `str_matches` | 3 | _hidden_ |" in md


def test_huge_report_is_cut_under_the_limit_with_pointer() -> None:
    head = {f"slices.group.{i}.accuracy": i / 10000 for i in range(6000)}
    head.update({f"metric_{i:05d}": float(i) for i in range(6000)})
    c = compare({}, head, [])
    full = render(_inp(comparison=c), marker="<!-- m -->")
    md = render(_inp(comparison=c), marker="<!-- m -->", limit=COMMENT_LIMIT)
    assert len(head) == 12000
    assert full.count("| `metric_") == 6000 and full.count("| `group.") == 6000
    assert len(md) <= COMMENT_LIMIT
    assert "shortened to fit GitHub's limit (65,536 characters)" in md
    assert md.startswith("<!-- m -->\n## ")
    assert md.count("<details") == md.count("</details>")
    # both big tables keep rows, and say how many they left out
    assert "| `metric_00000` |" in md and "| `group.0.accuracy` |" in md
    assert md.count("more in the full report") == 2


def _ungated() -> ReportInput:
    from mlci.verdict import outcome

    c = compare(
        {"val/dice": 0.81, "val_loss": 0.04, "step": 9, "lr_scale": 1.0},
        {"val/dice": 0.68, "val_loss": 0.30, "step": 9, "lr_scale": 2.0},
        [],
        base_rev="main",
    )
    return _inp(comparison=c, verdict=outcome.of_comparison(c))


def test_no_gates_is_a_neutral_verdict_with_coloured_arrows() -> None:
    md = render(_ungated(), marker="<!-- mlci-report:mlci -->")
    lines = md.splitlines()
    assert lines[1] == "## ⚪ mlci: reported"
    assert "✅" not in lines[1] and "passed" not in md.split("### Metrics")[0]
    assert "**reported, not judged: no gates are configured; 2 of 2 metrics" in md
    # arrows coloured by the direction the name says; an unknown name stays uncoloured
    assert "| `val/dice` | 0.8100 | 0.6800 | -0.1300 | -16.05% | 🔴 ↓ |  |" in md
    assert "| `val_loss` | 0.0400 | 0.3000 | +0.2600 | +650.00% | 🔴 ↑ |  |" in md
    assert "| `lr_scale` | 1.0000 | 2.0000 | +1.0000 | +100.00% | ↑ |  |" in md


def test_constant_counters_are_hidden_and_gates_are_suggested() -> None:
    md = render(_ungated())
    assert "| `step` |" not in md
    assert "Unchanged counters not shown: `step`." in md
    block = md.split("```yaml\n")[1].split("\n```")[0]
    assert block == "mlci:\n  gates:\n    val/dice: higher\n    val_loss: lower"
    import yaml

    from mlci.settings.gates import parse_gate  # the block is valid settings

    gates = yaml.safe_load(block)["mlci"]["gates"]
    parsed = [parse_gate(m, g, "params.yaml:mlci") for m, g in gates.items()]
    assert [(g.metric, g.direction) for g in parsed] == [
        ("val/dice", "higher"),
        ("val_loss", "lower"),
    ]


def test_with_gates_nothing_is_suggested_and_a_changed_counter_is_shown() -> None:
    c = compare({"acc": 0.9, "epoch": 10}, {"acc": 0.91, "epoch": 20}, [Gate("acc")])
    md = render(_inp(comparison=c))
    assert "```yaml" not in md
    assert "| `epoch` | 10 | 20 |" in md


def _promoted(base: dict[str, float], head: dict[str, float], gates: list[Gate], **kw: object):  # type: ignore[no-untyped-def]
    from mlci.promotion.note import PromotionFacts

    facts = dict(champion_before="1", version="2", champion="2", previous="1", created=True)
    facts.update(kw)  # type: ignore[arg-type]
    comparison = compare(base, head, gates, base_rev="champion v1")
    return PromotionFacts("m", "c" * 40, "r" * 32, comparison, **facts)  # type: ignore[arg-type]


def test_a_promotion_says_what_no_gate_judged() -> None:
    """No gate covers a metric that got worse than the champion: the model is promoted (the
    team chose no gate), and the note says so in a warning, naming the metrics."""
    from mlci.promotion.note import not_judged, promotion_note

    worse = ({"accuracy": 0.9, "log_loss": 0.2, "n_rows": 10}, {"accuracy": 0.8, "log_loss": 0.3})
    ungated = _promoted(*worse, [])
    said = not_judged(ungated)
    assert said == (
        "Not judged: 2 metric(s) got worse than the champion and no gates are configured: "
        "accuracy, log_loss. Gate them under `mlci.gates` to keep such a model from becoming "
        "champion."
    )
    note = promotion_note("mlci", ungated)
    assert "## ✅ mlci promotion: promoted" in note and f"> [!WARNING]\n> {said}" in note

    one_gate = _promoted(*worse, [Gate("accuracy", abs_tol=0.2)])  # accuracy held its gate
    assert "no gate covers them: log_loss." in str(not_judged(one_gate))
    both = _promoted(*worse, [Gate("accuracy", abs_tol=0.2), Gate("log_loss", "lower", 0.2)])
    assert not_judged(both) is None and "[!WARNING]" not in promotion_note("mlci", both)
    better = _promoted({"accuracy": 0.8}, {"accuracy": 0.9}, [])
    assert not_judged(better) is None
    assert not_judged(_promoted(*worse, [], champion_before=None)) is None  # the first one
    assert not_judged(_promoted(*worse, [], refused=True, version=None)) is None


def test_every_report_is_delivered_one_way(tmp_path: Path) -> None:
    """``report.deliver``: the file whole, the summary only where wanted and fitted to the room
    left, the outputs; the PR check, the promotion note and the monitor all use it."""
    import dataclasses

    from mlci.ci import CIContext
    from mlci.limits import SUMMARY_LIMIT
    from mlci.report import deliver, publish
    from mlci.settings.config import Settings

    summary, output = tmp_path / "summary.md", tmp_path / "output"
    ctx = CIContext(step_summary=str(summary), output=str(output))
    settings = Settings(root=tmp_path)
    quiet = dataclasses.replace(settings, step_summary=False)

    note = publish.publish_promotion(quiet, ctx, "a" * 40, "# promoted\n")
    assert note.report_path.read_text(encoding="utf-8") == "# promoted\n"
    assert not note.summary_written and not summary.exists()

    summary.write_text("x" * (SUMMARY_LIMIT - 5_000), encoding="utf-8")
    big = "# report\n\n" + "".join(f"- line {i}\n" for i in range(2_000))
    rec = deliver.record(settings, ctx, tmp_path / "r.md", big, {"status": "pass"})
    assert rec.summary_written and not rec.whole_in_summary
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == big
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == {"status": "pass"}
    assert summary.stat().st_size <= SUMMARY_LIMIT
    assert "r.md" in summary.read_text(encoding="utf-8")[SUMMARY_LIMIT - 5_000 :]

    deliver.outputs(ctx, {"verdict": "pass"})
    assert "verdict" in output.read_text(encoding="utf-8")
