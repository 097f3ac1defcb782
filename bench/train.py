"""`mlci train` against a plain training script, side by side, on the bundled example.

The plain script is what a team writes without mlci: import pandas and scikit-learn, read the
table, one-hot encode, split, fit the example's RandomForest and pickle it. `mlci train` does
the same and records every fact (facts file, MLflow run on SQLite with params, tags and the
model). It runs three ways: alone with the warm recorder an earlier command left (as `dvc
repro` on a laptop runs it), alone without one (`MLCI_WARM_RECORDER=0`, as in CI: MLflow loads
in a worker process beside the fit), and as `mlci run` runs it (the check's recorder, started
before the pull, already has MLflow open). `mlci evaluate` is measured both ways too. Runs alternate
(plain, mlci, plain, ...) so load from other work hits all alike.
Target (issue 17): `mlci train` within 1.5x of the plain script.

    python bench/train.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import PY, machine_facts, table

from mlci.training import recorder

MLCI = str(Path(PY).parent / "mlci")
PLAIN_ROW = "plain script (baseline)"
ALONE = "`mlci train` alone (a warm recorder an earlier command left)"
COLD = "`mlci train` alone, no warm recorder (MLflow in a worker)"
UNDER_RUN = "`mlci train` under `mlci run` (recorder)"

PLAIN = """
import pickle
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

frame = pd.read_csv("data/diabetes.csv")
y = frame["high_progression"]
x = pd.get_dummies(frame.drop(columns=["high_progression", "patient_id"]), dtype=float)
x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=42, stratify=y)
model = RandomForestClassifier(
    n_estimators=200, max_depth=3, min_samples_leaf=5, random_state=42
).fit(x_tr, y_tr)
with open("models/plain.pkl", "wb") as f:
    pickle.dump(model, f)
"""


def project(root: Path) -> None:
    from mlci.example import copy_files, write_data

    copy_files(root)
    write_data(root / "data" / "diabetes.csv")
    (root / "models").mkdir(exist_ok=True)
    (root / "plain.py").write_text(PLAIN, encoding="utf-8")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.com",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.com",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def once(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat
    print(machine_facts())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        project(root)
        env = dict(
            os.environ,
            DVC_NO_ANALYTICS="1",
            MLFLOW_DISABLE_TELEMETRY="true",
            MLCI_MLFLOW_TRACKING_URI=f"sqlite:///{(Path(tmp) / 'mlflow.db').as_posix()}",
        )
        with recorder.serving(env["MLCI_MLFLOW_TRACKING_URI"], "mlci", root) as socket:
            checked = dict(env, MLCI_RECORDER=socket)
            # wait until it has made the new store's schema (two processes making it race)
            recorder.request(
                "log_metrics",
                env["MLCI_MLFLOW_TRACKING_URI"],
                via=socket,
                run_id="0" * 32,
                metrics={},
            )
            runtime = Path(tmp) / "run"  # where the warm recorder's socket goes, ended below
            runtime.mkdir(mode=0o700)
            warm = dict(env, MLCI_WARM_RECORDER="600", XDG_RUNTIME_DIR=str(runtime))
            warm.pop("CI", None)  # as on a laptop (CI turns it off)
            cold = dict(env, MLCI_WARM_RECORDER="0")
            commands = {
                PLAIN_ROW: ([PY, "plain.py"], env),
                ALONE: ([MLCI, "train"], warm),
                COLD: ([MLCI, "train"], cold),
                UNDER_RUN: ([MLCI, "train"], checked),
                "`mlci evaluate` alone (warm recorder)": ([MLCI, "evaluate"], warm),
                "`mlci evaluate` alone, no warm recorder": ([MLCI, "evaluate"], cold),
                "`mlci evaluate` under `mlci run`": ([MLCI, "evaluate"], checked),
            }
            first = {}
            for name, (cmd, cmd_env) in commands.items():  # warm-up: file cache, SQLite schema
                first[name] = once(cmd, root, cmd_env)
            runs: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(repeat):
                for name, (cmd, cmd_env) in commands.items():
                    runs[name].append(once(cmd, root, cmd_env))
            for pid in runtime.glob("*/*.pid"):
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid.read_text()), signal.SIGTERM)
    medians = {name: statistics.median(times) for name, times in runs.items()}
    floor = medians[PLAIN_ROW]
    table([(n, s, s / floor) for n, s in medians.items()], "plain script")
    print(
        f"\nthe first `mlci train` alone, which started the warm recorder: {first[ALONE]:.2f} s "
        f"(plain script's first run: {first[PLAIN_ROW]:.2f} s)\n"
    )
    for name in (UNDER_RUN, ALONE, COLD):
        pairs = zip(runs[name], runs[PLAIN_ROW], strict=True)
        ratios = sorted(m / p for m, p in pairs)
        ratio = medians[name] / floor
        print(
            f"{name} is {ratio:.2f}x the plain script (pairwise ratios {ratios[0]:.2f}-"
            f"{ratios[-1]:.2f}; target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
