"""What a step of a walk left: the registry (versions, their tags and runs, aliases), the
loopback GitHub (issues, pull requests, comments, check runs, contract violations) and the
trainings so far, read in the walk's own thread when the step finished, so that a test asserts
on the step's state however far the walk has gone since."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

SEEDED_PULLS = (7, 8)  # FakeGitHub's own two pull requests: not the walk's


@dataclass(frozen=True)
class State:
    """The registry, GitHub and the trainings as a step left them."""

    trainings: int
    versions: dict[str, dict[str, str]]  # version -> its tags
    run_ids: dict[str, str]  # version -> its run
    runs: dict[str, dict[str, str]]  # run -> its tags (the versions' runs)
    aliases: dict[str, str | None]  # champion, previous
    model_tags: dict[str, str]
    tag_names: set[str]  # every tag name on the versions and the experiment's runs
    issues: list[dict[str, Any]]
    pulls: list[dict[str, Any]]  # the walk's own pull requests, as GitHub answers them
    comments: dict[int, list[dict[str, Any]]]
    check_runs: list[dict[str, Any]]
    violations: list[str]

    def on(self, number: int, marker: str = "") -> list[dict[str, Any]]:
        """The comments on issue or pull request ``number`` that carry ``marker``."""
        return [c for c in self.comments.get(number, []) if marker in c["body"]]

    def checks(self, sha: str, name: str = "mlci: mlci") -> list[dict[str, Any]]:
        found = [r for r in self.check_runs if r["head_sha"] == sha and r["name"] == name]
        return sorted(found, key=lambda r: r["id"])


def read_state(client: Any, model: str, gh: Any, trainings: int) -> State:
    """The state of registered model ``model`` (through an ``MlflowClient``) and of the
    ``FakeGitHub`` ``gh``, with ``trainings`` so far."""
    from mlflow.exceptions import MlflowException

    found = client.search_model_versions(f"name = '{model}'")
    versions = {str(v.version): dict(v.tags) for v in found}
    run_ids = {str(v.version): str(v.run_id) for v in found}
    runs = {r: dict(client.get_run(r).data.tags) for r in set(run_ids.values())}
    aliases: dict[str, str | None] = {}
    for alias in ("champion", "previous"):
        try:
            aliases[alias] = str(client.get_model_version_by_alias(model, alias).version)
        except MlflowException:
            aliases[alias] = None
    names = {k for tags in [*versions.values(), *runs.values()] for k in tags}
    exp = client.get_experiment_by_name(model)
    if exp is not None:
        names |= {k for r in client.search_runs([exp.experiment_id]) for k in r.data.tags}
    model_tags = dict(client.get_registered_model(model).tags) if found else {}
    with gh.lock:
        pulls = [
            gh._pull_json(gh.pulls[n]) | {"merged_as": gh.pulls[n].get("merged_as")}
            for n in sorted(gh.pulls)
            if n not in SEEDED_PULLS
        ]
        return State(
            trainings=trainings,
            versions=versions,
            run_ids=run_ids,
            runs=runs,
            aliases=aliases,
            model_tags=model_tags,
            tag_names=names,
            issues=[copy.deepcopy(gh.issues[n]) for n in sorted(gh.issues)],
            pulls=pulls,
            comments=copy.deepcopy(gh.comments),
            check_runs=[copy.deepcopy(r["json"]) for r in gh.check_runs.values()],
            violations=list(gh.violations),
        )
