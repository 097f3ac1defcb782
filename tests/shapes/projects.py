"""The three project shapes the lifecycle walks, each built as its team has it before adopting
mlci (main trained, its outputs pushed to a local DVC remote), with the changes its people make
along the loop and the data snapshots production sends back.

- ``example``: the bundled example (``mlci demo``'s project: mlci's own trainer, its own
  ``mlci:`` section, which ``mlci init`` refuses to overwrite without ``--force``).
- ``templated``: its own scripts, ``dvc.yaml`` templated (``vars:`` from params.yaml and a
  paths file, ``${...}``, a ``foreach`` stage; ``tests/test_templated.py``'s project), params in
  a second file, a ``requirements.txt``, the data added with ``dvc add``.
- ``dvclive``: its own SGD training written the way DVCLive writes: metrics and step plots
  inside the cached output directory ``dvclive/``, declared by the top-level ``metrics:`` and
  ``plots:`` of ``dvc.yaml``, the model declared by ``artifacts:`` (``log_artifact``), and its
  own ``train:`` params section (not mlci's trainer's).

Every training of the own-script shapes appends a line to ``$TRAIN_LOG``; the example's are
counted as the MLflow runs its trainer logged (see ``walk.Walk.trainings``).
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lifecycle as lc
import test_templated as templated


@dataclass(frozen=True)
class Edit:
    """A change a person commits: text replaced in files (each ``old`` must be there)."""

    message: str
    changes: tuple[tuple[str, str, str], ...]  # (file, old, new)

    def apply(self, root: Path) -> None:
        for name, old, new in self.changes:
            path = root / name
            text = path.read_text(encoding="utf-8")
            if old not in text:
                raise AssertionError(f"{name} has no {old!r} to change (the shape changed?)")
            path.write_text(text.replace(old, new, 1), encoding="utf-8")


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    build: Callable[[Path, Path], None]  # (origin, remote): main trained, pushed, committed
    init_args: tuple[str, ...]  # `mlci init` as this team runs it
    gates: dict[str, str]  # the gates `mlci init` writes (metric -> direction)
    label: str  # the label column production data carries
    retrained: str  # the file the retraining PR changes
    worse: Edit  # a PR that makes the model worse
    better: Edit  # a PR that makes it better
    snapshots: Callable[[Path], dict[str, str]]  # CSV text: same, drifted, degraded
    counted_by: str = "log"  # "log" ($TRAIN_LOG) or "mlflow" (the trainer's runs)
    # pushed straight to main at the end: worse than the champion (walked on one shape only:
    # each such push is a training more, and the suite's time is counted)
    regress: Edit | None = None
    review: tuple[tuple[str, str], ...] = ()  # init's gate lines a person corrects
    init_refused: bool = False  # plain `mlci init` refuses: the project has settings
    # the monitor tells the label itself (the one training column the model does not take)
    label_inferred: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _git_commit(root: Path, message: str) -> str:
    lc.git(root, "add", "-A")
    lc.git(root, "commit", "-q", "-m", message)
    return lc.git(root, "rev-parse", "HEAD").strip()


# ---- (a) the bundled example -------------------------------------------------------------


def build_example(origin: Path, remote: Path, template: Path | None = None) -> None:
    """The example as ``mlci demo`` builds it (``template``: a copy of the test session's)."""
    if template is not None:
        shutil.copytree(template / "project", origin, symlinks=True)
        shutil.copytree(template / "dvc-remote", remote, symlinks=True)
        # the demo's remote is relative to .dvc/: a clone beside `origin` finds `remote` too
        lc.dvc(origin, "remote", "modify", "local", "url", str(remote))
        lc.git(origin, "checkout", "-q", "main")
        lc.git(origin, "branch", "-q", "-D", "pr/tune-model")
        lc.git(origin, "commit", "-q", "-am", "The DVC remote by its path")
    else:
        from mlci.adopt.demo import build_project

        build_project(origin, remote)
        lc.dvc(origin, "remote", "modify", "local", "url", str(remote))
        lc.git(origin, "commit", "-q", "-am", "The DVC remote by its path")
    lc.git(origin, "config", "receive.denyCurrentBranch", "ignore")


def example_snapshots(origin: Path) -> dict[str, str]:
    """The training data itself; its numbers moved by a monotone map (a forest trained on it
    scores as before, the champion does not); that with every label flipped."""
    import pandas as pd

    train = pd.read_csv(origin / "data" / "diabetes.csv")
    drifted = train.copy()
    for col in ("age", "bmi", "bp", "s5"):
        drifted[col] = drifted[col] * 1.8 + drifted[col].std()
    degraded = drifted.copy()
    degraded["high_progression"] = 1 - degraded["high_progression"]
    return {name: f.to_csv(index=False) for name, f in
            (("same", train), ("drifted", drifted), ("degraded", degraded))}  # fmt: skip


def _params(*pairs: tuple[str, str]) -> tuple[tuple[str, str, str], ...]:
    return tuple(("params.yaml", old, new) for old, new in pairs)


EXAMPLE_WORSE = _params(("    n_estimators: 200\n", "    n_estimators: 3\n"),
                        ("    max_depth: 3\n", "    max_depth: 1\n"))  # fmt: skip


EXAMPLE_GATES = {
    "accuracy": "higher",
    "f1": "higher",
    "fairness.sex.accuracy_gap": "lower",
    "log_loss": "lower",
    "precision": "higher",
    "recall": "higher",
    "roc_auc": "higher",
}
# The team's review of init's gates: a tolerance for a forest's last-digit noise (as the
# example's own settings had).
EXAMPLE_REVIEW = tuple(
    (f"    {name}: {way}\n", f"    {name}: {{direction: {way}, abs_tol: 0.01}}\n")
    for name, way in EXAMPLE_GATES.items()
)


def example(template: Path | None = None) -> Shape:
    return Shape(
        key="example",
        title="the bundled example",
        build=lambda o, r: build_example(o, r, template),
        init_args=("--force",),
        init_refused=True,
        gates=EXAMPLE_GATES,
        review=EXAMPLE_REVIEW,
        label="high_progression",
        retrained="params.yaml",
        worse=Edit("Fewer, shallower trees", EXAMPLE_WORSE),
        better=Edit(
            "Bigger leaves", _params(("    min_samples_leaf: 5\n", "    min_samples_leaf: 10\n"))
        ),
        snapshots=example_snapshots,
        counted_by="mlflow",
    )


# ---- (b) a templated dvc.yaml with its own scripts -----------------------------------------

TEMPLATED_TRAIN = templated.TRAIN + (
    'if os.environ.get("TRAIN_LOG"):\n'
    '    open(os.environ["TRAIN_LOG"], "a").write(f"C={m[\'C\']}\\n")\n'
)
REQUIREMENTS = "scikit-learn>=1.3\npandas>=2\npyyaml>=6\njoblib>=1.3\n"


def churn_drifted(rows: int = 240, *, flip: bool = False) -> str:
    """Newer customers paying more: churn follows the same signs, less noisily."""
    rng = random.Random(11)
    lines = ["tenure,charges,calls,churned"]
    for _ in range(rows):
        tenure, charges, calls = rng.randint(1, 36), rng.uniform(60, 160), rng.randint(0, 9)
        risk = -tenure / 24 + charges / 60 + calls / 4 + rng.gauss(0, 0.2)
        churned = int(risk > 2.6)
        lines.append(f"{tenure},{charges:.2f},{calls},{1 - churned if flip else churned}")
    return "\n".join(lines) + "\n"


def build_templated(origin: Path, remote: Path) -> None:
    """``tests/test_templated.py``'s project without an ``mlci:`` section, its training
    counted, a ``requirements.txt``, and a weak baseline (``model.C = 0.01``)."""
    for d in (origin / "src", origin / "conf", origin / "data", remote):
        d.mkdir(parents=True)
    lc.git(origin, "init", "-q", "-b", "main")
    lc.git(origin, "config", "receive.denyCurrentBranch", "ignore")
    scripts = (("featurize.py", templated.FEATURIZE), ("train.py", TEMPLATED_TRAIN),
               ("evaluate.py", templated.EVALUATE))  # fmt: skip
    for name, text in scripts:
        (origin / "src" / name).write_text(text)
    (origin / "dvc.yaml").write_text(templated.DVC_YAML)
    (origin / "params.yaml").write_text(templated.PARAMS.split("mlci:")[0])
    (origin / "conf" / "paths.yaml").write_text(templated.PATHS)
    (origin / "conf" / "model.yaml").write_text("model:\n  C: 0.01\n  max_iter: 200\n")
    (origin / "data" / "churn.csv").write_text(templated.churn_csv())
    (origin / "requirements.txt").write_text(REQUIREMENTS)
    (origin / ".gitignore").write_text(".mlci/\n")
    _dvc_init(origin, remote)
    lc.dvc(origin, "add", "-q", "data/churn.csv")
    lc.dvc(origin, "repro", "-q")
    lc.dvc(origin, "push", "-q")
    _git_commit(origin, "Baseline: churn model")


def _dvc_init(origin: Path, remote: Path) -> None:
    lc.dvc(origin, "init", "-q")
    lc.dvc(origin, "remote", "add", "-d", "store", str(remote))
    lc.dvc(origin, "config", "core.analytics", "false")


def templated_snapshots(origin: Path) -> dict[str, str]:
    return {
        "same": templated.churn_csv(),
        "drifted": churn_drifted(),
        "degraded": churn_drifted(flip=True),
    }


def _model(c: str) -> tuple[tuple[str, str, str], ...]:
    return (("conf/model.yaml", "  C: ", f"  C: {c}  # was: "),)


def templated_shape() -> Shape:
    return Shape(
        key="templated",
        title="an own-script project with a templated dvc.yaml",
        build=build_templated,
        init_args=("--action", "acme/mlci@" + "0123456789abcdef" * 2 + "01234567"),
        gates={"accuracy": "higher"},
        label="churned",
        retrained="data/churn.csv.dvc",
        worse=Edit("Stronger regularization", _model("0.001")),
        better=Edit("Weaker regularization", _model("1.0")),
        regress=Edit("Much stronger regularization, pushed to main", _model("0.0001")),
        snapshots=templated_snapshots,
    )


# ---- (c) DVCLive's layout -------------------------------------------------------------------

DVCLIVE_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data/raw.csv]
    outs: [data/prepared.csv]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/prepared.csv]
    params: [train]
    outs:
      - models/model.pkl
      - dvclive
metrics:
  - dvclive/metrics.json
plots:
  - dvclive/plots/metrics:
      x: step
artifacts:
  sgd-classifier:
    path: models/model.pkl
    type: model
"""

PREPARE = """\
import pandas as pd
pd.read_csv("data/raw.csv").dropna().to_csv("data/prepared.csv", index=False)
"""

# What `dvclive.Live` leaves: metrics.json (last step), plots/metrics/<name>.tsv per step,
# params.yaml; the model logged as an artifact of type model (declared in dvc.yaml above).
DVCLIVE_TRAIN = """\
import json, os, pathlib, pickle, yaml
import pandas as pd
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss
p = yaml.safe_load(open("params.yaml"))["train"]
frame = pd.read_csv("data/prepared.csv")
held = frame.index % 5 == 0
x, y = frame[["x1", "x2", "x3"]], frame["label"]
model = SGDClassifier(loss="log_loss", alpha=p["alpha"], random_state=p["seed"],
                      learning_rate="constant", eta0=0.01)
history = {"train/loss": [], "eval/loss": [], "eval/accuracy": []}
for step in range(p["epochs"]):
    model.partial_fit(x[~held], y[~held], classes=[0, 1])
    now = {"train/loss": log_loss(y[~held], model.predict_proba(x[~held])),
           "eval/loss": log_loss(y[held], model.predict_proba(x[held])),
           "eval/accuracy": model.score(x[held], y[held])}
    for name, value in now.items():
        history[name].append((step, round(float(value), 6)))
live = pathlib.Path("dvclive")
for name, points in history.items():
    path = live / "plots" / "metrics" / f"{name}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{s}\\t{v}\\n" for s, v in points)
    path.write_text(f"step\\t{name.split('/')[-1]}\\n" + rows)
last = {name: points[-1][1] for name, points in history.items()}
json.dump({"step": p["epochs"] - 1, "train": {"loss": last["train/loss"]},
           "eval": {"loss": last["eval/loss"], "accuracy": last["eval/accuracy"]}},
          open(live / "metrics.json", "w"), indent=4)
(live / "params.yaml").write_text(yaml.safe_dump(p))
pathlib.Path("models").mkdir(exist_ok=True)
pickle.dump(model, open("models/model.pkl", "wb"))
if os.environ.get("TRAIN_LOG"):
    open(os.environ["TRAIN_LOG"], "a").write(f"epochs={p['epochs']} alpha={p['alpha']}\\n")
"""


def points(rows: int = 300, *, seed: int = 5, shift: float = 0.0, noise: float = 0.8,
           flip: bool = False) -> str:  # fmt: skip
    rng = random.Random(seed)
    lines = ["x1,x2,x3,label"]
    for _ in range(rows):
        x1, x2, x3 = rng.gauss(shift, 1), rng.gauss(0, 1), rng.gauss(0, 1)
        label = int(x1 - shift + 0.5 * x2 - 0.3 * x3 + rng.gauss(0, noise) > 0)
        lines.append(f"{x1:.4f},{x2:.4f},{x3:.4f},{1 - label if flip else label}")
    return "\n".join(lines) + "\n"


def build_dvclive(origin: Path, remote: Path) -> None:
    for d in (origin / "src", origin / "data", remote):
        d.mkdir(parents=True)
    lc.git(origin, "init", "-q", "-b", "main")
    lc.git(origin, "config", "receive.denyCurrentBranch", "ignore")
    (origin / "src" / "prepare.py").write_text(PREPARE)
    (origin / "src" / "train.py").write_text(DVCLIVE_TRAIN)
    (origin / "dvc.yaml").write_text(DVCLIVE_YAML)
    (origin / "params.yaml").write_text("train:\n  epochs: 2\n  alpha: 0.0001\n  seed: 0\n")
    (origin / "data" / "raw.csv").write_text(points())
    (origin / ".gitignore").write_text(".mlci/\n")
    _dvc_init(origin, remote)
    lc.dvc(origin, "add", "-q", "data/raw.csv")
    lc.dvc(origin, "repro", "-q")
    lc.dvc(origin, "push", "-q")
    _git_commit(origin, "Baseline: SGD with DVCLive")


def dvclive_snapshots(origin: Path) -> dict[str, str]:
    return {
        "same": points(),
        "drifted": points(seed=9, shift=1.0, noise=0.1),
        "degraded": points(seed=9, shift=1.0, noise=0.1, flip=True),
    }


def dvclive_shape() -> Shape:
    return Shape(
        key="dvclive",
        title="a DVCLive-style project (metrics inside a DVC-tracked output directory)",
        build=build_dvclive,
        init_args=(),
        gates={"eval.accuracy": "higher", "eval.loss": "lower", "train.loss": "lower"},
        label="label",
        retrained="data/raw.csv.dvc",
        worse=Edit("Much stronger regularization", _params(("  alpha: 0.0001", "  alpha: 5.0"))),
        better=Edit("Five epochs", _params(("  epochs: 2", "  epochs: 5"))),
        snapshots=dvclive_snapshots,
        label_inferred=True,
    )


def all_shapes(template: Path | None = None) -> list[Shape]:
    return [example(template), templated_shape(), dvclive_shape()]
