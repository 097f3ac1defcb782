"""The one line of prose per setting that the settings reference needs from a person.

Everything else in the reference (keys, types, accepted values, defaults, environment
variables, trust keys) is read from the code by ``settings_reference.py``. A new setting needs
its meaning here, or ``mkdocs build`` fails and so does ``tests/test_docs.py``; a meaning whose
key is gone fails them too. Write Markdown; links are relative to ``docs/``.
"""

from __future__ import annotations

# The meaning of every key, by its full name (as written under `mlci:`, or from `train.`).
# Types, defaults, environment variables and trust keys come from the code; write them
# nowhere here. A key whose default is "unset" says what unset means in WHEN_UNSET.
MEANINGS: dict[str, str] = {
    # mlci:
    "params_file": "where the `mlci:` section lives. It must name a file that exists: a typo "
    "is exit 2, never a check that silently runs without its gates",
    "base": "revision to compare with; `@champion` (or any alias) compares with the registered "
    "model that alias points at ([against the champion](pr-check.md#against-the-champion))",
    "report_name": "key of the sticky comment (one comment per PR and name)",
    "report_path": "where the report is written (from the file: inside the project only)",
    "mlflow_tracking_uri": "any MLflow tracking URI; also the registry's "
    "([embedded and at team scale](registry.md))",
    "experiment": "MLflow experiment",
    "model_name": "registered model name (no quote, backquote or backslash: MLflow's search "
    "filters cannot hold them)",
    "model": "the model file or directory `mlci promote` registers (from the file: inside the "
    "project only)",
    "dvc_remote": "remote to pull from",
    "github_api_url": "GitHub REST API URL: set it for GitHub Enterprise Server",
    "comment": "post or update the sticky PR comment (and the promotion note)",
    "check_run": "also a check run (conclusion from the verdict, annotations for failures; a "
    "commit status where `checks: write` is missing)",
    "step_summary": "write the report to the job summary",
    "promote_branch": "the only branch `mlci promote` runs on without `--force`; the action's "
    "`promote: auto` uses the same rule",
    "allow_untrusted": "run a fork's code even where secrets are present "
    "(see [the fork guard](security.md))",
    "validate": "data file -> pandera schema (`schemas/x.yaml` or `pkg.module:attr`) "
    "([data checks](data-checks.md))",
    "sensitive_columns": "columns whose values never appear in any output",
    "data_keys": "data file -> the columns that name one row of it (a list, or one column "
    "name): how the PR report matches rows to say which were added, removed and changed "
    "([what changed in the data](pr-math.md#what-changed-in-the-data))",
    "gates": "per metric: which way is better and how much worse is still fine ([gates](gates.md))",
    "drift": "drift thresholds against the base revision ([drift](data-checks.md#drift))",
    "pii": "the personal-data scan ([personal data](data-checks.md#personal-data))",
    "plots": "which plots, and where their images go ([plots](plots.md))",
    "monitor": "the scheduled check of the champion ([monitoring](monitoring.md))",
    # mlci.gates.<metric>
    "gates.<metric>.direction": "which way is better; `metric: higher` alone is short for "
    "`metric: {direction: higher}`",
    "gates.<metric>.abs_tol": "how much worse than the base is still fine, in the metric's units",
    "gates.<metric>.rel_tol": "how much worse is still fine, as a fraction of the base "
    "value's size",
    "gates.<metric>.min": "the PR's value may never be below this",
    "gates.<metric>.max": "the PR's value may never be above this",
    "gates.<metric>.required": "`false`: a gated metric the PR lacks does not fail",
    # mlci.drift
    "drift.psi": "a numeric column drifts when its PSI (ten quantile bins of the base) is above "
    "this",
    "drift.ks": "... or when its Kolmogorov-Smirnov statistic is above this, with p < `ks_pvalue`",
    "drift.ks_pvalue": "the p-value below which the KS statistic counts",
    "drift.tvd": "a category column drifts when its total variation distance is above this (or "
    "a new category appears)",
    "drift.fail": "`true`: drift is exit 3, not a warning",
    "drift.exclude": "columns not compared",
    # mlci.pii
    "pii.block": "`true`: personal data found is exit 3",
    "pii.allow": "columns that may hold such data (not scanned)",
    # mlci.plots
    "plots.show": "plot ids or glob patterns to show",
    "plots.images": "`auto`: publish where the token may, else the artifact; `on`: a refusal is "
    "exit 5; `off`: no PNGs",
    "plots.max_points": "points per Mermaid series (2 to 1,000)",
    "plots.branch": "the images branch",
    "plots.keep_runs": "check runs kept on the images branch",
    # mlci.monitor
    "monitor.snapshot": "a path in the repository: a DVC-tracked file, a CSV or Parquet file, or "
    "a directory of them (`--snapshot` overrides it)",
    "monitor.label": "the label column",
    "monitor.gates": "gates for the snapshot's metrics against those at promotion (written as "
    "[`mlci.gates`](settings.md#mlci-gates))",
    "monitor.latency": "predict-latency limits",
    "monitor.on_breach": "on drift or degradation: the issue only, also a retraining PR, or "
    "also a workflow dispatch (`--on-breach` overrides it)",
    "monitor.workflow": "the workflow file to dispatch (`dispatch` only): a file name in "
    "`.github/workflows/` or a numeric id",
    "monitor.branch": "the retraining branch: git's branch-name rules; never `HEAD`, `refs/...`, "
    "the default, base, promotion or images branch",
    "monitor.history": "runs kept in the trend table",
    # mlci.monitor.latency
    "monitor.latency.p50_ms": "limit on the median predict time per batch, in ms",
    "monitor.latency.p95_ms": "limit on the 95th-percentile predict time per batch, in ms",
    "monitor.latency.batch_rows": "rows per timed batch",
    "monitor.latency.batches": "at most this many batches are timed (after one warm-up)",
    # mlci.release
    "release": "how a merged model reaches users",
    "release.strategy": "`direct`: the merge moves `champion`; `challenger`: the merge points "
    "`challenger` at the new version, and `mlci release` moves `champion` once it passed "
    "probation and was approved",
    "release.probation": "consecutive monitor windows a challenger (or a new champion) must pass",
    "release.approval": "who must approve before a challenger becomes champion: `environment` (a "
    "reviewer of the GitHub environment the release job runs in), `review` (an approving review "
    "of the merged PR by someone other than its author) or `none`",
    "release.environment": "the GitHub environment the release workflow uses",
    # mlci.card
    "card": "what the model card of every promoted version says that no measurement can",
    "card.intended_use": "what the model is for, and for whom (the card's Intended use)",
    "card.limitations": "where it must not be used, known failure modes (the card's Limitations)",
    "card.contact": "who answers for the model",
    # mlci.explain
    "explain": "the rows the PR report times and explains the base and PR models on "
    "([show your math](pr-math.md#the-evaluation-rows))",
    "explain.data": "a CSV or Parquet table in the project (from the file: inside the project "
    "only)",
    "explain.target": "its label column (the other columns are the model's input)",
    "explain.max_rows": "at most this many rows are timed and permuted (a seeded sample)",
    "explain.seconds": "the time budget of the measurements: a third for latency (both models), "
    "a third for each model's permutation importance",
    # mlci.cost
    "cost": "rates that turn a check's training time into money "
    "([what it costs to train](pr-math.md#what-it-costs-to-train))",
    "cost.runner_hour": "what an hour of the runner costs",
    "cost.gpu_hour": "what an hour of one GPU costs, on top of the runner",
    "cost.currency": "the unit of both rates, as the report shows it",
    # train:
    "train.data": "the table (CSV or Parquet)",
    "train.target": "its label column",
    "train.drop": "columns not used as features (ids); other non-numeric columns are one-hot "
    "encoded",
    "train.test_size": "the held-out split (stratified for classification)",
    "train.seed": "the seed for everything",
    "train.task": "what the model predicts",
    "train.backend": "the trainer; each backend owns its own section (`train.torch`), checked "
    "when it loads (unknown keys, wrong types: exit 2 with a suggestion)",
    "train.estimator": "any scikit-learn classifier or regressor (or pipeline class) by import "
    "path (`RandomForestRegressor` for regression); `random_state` is set from `seed` when the "
    "estimator has one. A classifier for `task: regression`, or the reverse, is a "
    "configuration error",
    "train.params": "the estimator's arguments",
    "train.torch": "the torch backend's section",
    "train.model_path": "where the model is written",
    "train.facts_path": "the facts file (the training's run id, device, duration, GPU facts): "
    "`facts_path` when set, else the training stage's one JSON output in `dvc.yaml` that is "
    "neither a metric nor a plot, else this default",
    # train.torch
    "train.torch.hidden": "layer widths of the built-in MLP",
    "train.torch.epochs": "training epochs (at most)",
    "train.torch.lr": "learning rate",
    "train.torch.weight_decay": "weight decay",
    "train.torch.patience": "early stopping: epochs without improvement on a held-out tenth of "
    "the training rows",
    "train.torch.checkpoint": "file for the best weights",
    "train.torch.module": "your own `nn.Module` by import path "
    "([your own network](training.md#your-own-torch-network))",
    "train.torch.module_args": "its arguments",
    "train.torch.deterministic": "`torch.use_deterministic_algorithms(True)` "
    "([bit for bit](training.md#bit-for-bit-on-gpus))",
    "train.torch.standardize_target": "regression: train on the standardised target",
    # evaluate:
    "evaluate.slice_by": "columns whose values get their own metrics, and the gaps between "
    "them under `fairness`",
    "evaluate.metrics_path": "the metrics file",
    "evaluate.plots_dir": "where the plot data goes",
}

# What an unset key means, for keys whose code default is None or empty.
WHEN_UNSET: dict[str, str] = {
    "base": "the PR's base branch, else `main`",
    "mlflow_tracking_uri": "`sqlite:///<project>/.mlci/mlflow.db`",
    "model": "the `artifacts:` entry of `type: model` in `dvc.yaml`, else the single cached "
    "output of the training stage",
    "dvc_remote": "the repository's default remote",
    "github_api_url": "`GITHUB_API_URL`, else api.github.com",
    "promote_branch": "the repository's default branch (from the event), else `main`",
    "validate": "no data validated",
    "sensitive_columns": "none",
    "data_keys": "the first column the file's YAML schema marks `unique: true`, else whole rows "
    "(added and removed only)",
    "gates": "none: metrics are reported, not judged ([without gates](gates.md#without-gates))",
    "plots.show": "every plot",
    "monitor.snapshot": "required by `mlci monitor` (or `--snapshot`)",
    "monitor.label": "`train.target` for mlci's trainer; else the one column of the training "
    "data the model does not take (a model fit on named columns)",
    "monitor.gates": "`mlci.gates`",
    "monitor.workflow": "none",
    "monitor.latency.p50_ms": "no limit",
    "monitor.latency.p95_ms": "no limit",
    "train.torch.checkpoint": "none",
    "train.torch.module": "the built-in MLP",
    "evaluate.slice_by": "no slices",
    "explain.data": "mlci's own model: its held-out split; a project's own model: not measured",
    "explain.target": "required with `explain.data`",
    "cost.runner_hour": "no money shown, only time",
    "cost.gpu_hour": "no money shown for GPU time",
}
