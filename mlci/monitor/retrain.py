"""The retraining pull request of ``mlci monitor``: one branch, one open PR at most.

On a breach the training data moves to the snapshot on a fixed branch (default
``mlci/retrain``), built from the checked-out commit in a temporary git worktree (the job's own
checkout is never touched):

- the training data has its own ``.dvc`` pointer: the pointer now names the snapshot's data
  (same hash, so the object is the one already in the remote);
- else (the training data is a pipeline output, as in the bundled example): ``train.data`` in
  the params file names the snapshot.

The snapshot's data is pushed to the DVC remote, the commit is force-pushed to the branch, and
the pull request is opened or updated. The normal PR check trains and gates it; a person merges.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from mlci import ci
from mlci.errors import ConfigError, DvcRemoteError, ExternalError, RepoError, first_line
from mlci.markdown import code, inert, plain_title
from mlci.project import repository
from mlci.settings.config import Settings
from mlci.settings.monitor import MonitorSettings

if TYPE_CHECKING:
    from mlci.github.client import PullResult
    from mlci.monitor.result import MonitorResult

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


def _git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        from mlci.git import git_reason

        raise RepoError(
            f"git {args[0]} failed in {cwd}: {git_reason(proc.stderr)}",
            fix="check the repository state and the remote",
        )
    return proc


def _push_env(root: Path) -> dict[str, str]:
    """git's environment for the push: over HTTPS the token goes in a header set through the
    environment (never on a command line, in a URL or in .git/config)."""
    import base64

    env = dict(os.environ)
    url = _git(root, "remote", "get-url", "origin", check=False).stdout.strip()
    token = ci.token()
    if token and url.startswith("https://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
        count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
        parts = urlsplit(url)
        env[f"GIT_CONFIG_KEY_{count}"] = f"http.{parts.scheme}://{parts.hostname}/.extraheader"
        env[f"GIT_CONFIG_VALUE_{count}"] = f"AUTHORIZATION: basic {basic}"
        env["GIT_CONFIG_COUNT"] = str(count + 1)
    return env


def _tracked(root: Path, path: str) -> bool:
    """Whether the PR's check can get ``path``: git or DVC (a .dvc file or dvc.lock) has it."""
    from mlci.project import data

    if (root / f"{path}.dvc").is_file() or data.base_md5(root, "HEAD", path) is not None:
        return True
    return _git(root, "ls-files", "--error-unmatch", path, check=False).returncode == 0


def _set_train_data(params: Path, value: str) -> None:
    """``train.data: value`` in the params file, keeping its comments and layout."""
    text = params.read_text(encoding="utf-8")
    block = re.search(r"(?m)^train:\s*\n((?:[ \t]+.*\n|\s*\n)*)", text)
    line = re.compile(r"(?m)^([ \t]+)data:[ \t]*[^#\n]*")
    if block and line.search(block.group(1)):
        inner = line.sub(lambda m: f"{m.group(1)}data: {value}", block.group(1), count=1)
        text = text[: block.start(1)] + inner + text[block.end(1) :]
    else:
        doc = yaml.safe_load(text) or {}
        doc.setdefault("train", {})["data"] = value
        text = yaml.safe_dump(doc, sort_keys=False)
    params.write_text(text, encoding="utf-8")


def _repoint(tree: Path, data_path: str, snapshot: str) -> str:
    """Move the training data to the snapshot in ``tree``; returns what changed."""
    pointer = tree / f"{data_path}.dvc"
    snap_pointer = tree / f"{snapshot}.dvc"
    if pointer.is_file() and snap_pointer.is_file():
        doc = yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}
        snap = yaml.safe_load(snap_pointer.read_text(encoding="utf-8")) or {}
        outs = [dict(o) for o in snap.get("outs") or []]
        for out in outs:
            out["path"] = Path(data_path).name
        doc["outs"] = outs
        pointer.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return f"`{data_path}.dvc` now points at the data of `{snapshot}`"
    return ""


def training_data(root: Path, result: MonitorResult) -> str:
    """The ``dvc add``ed file a project's own training comes from: the champion's training
    data (its lineage), followed up through the stages that make it."""
    from mlci.project import pipeline

    recorded = sorted(result.champion.data) if result.champion else []
    if not recorded:
        raise ConfigError(
            "the champion's lineage names no training data: a retraining PR cannot tell which "
            "file to point at the snapshot",
            fix="promote with `mlci promote` after `dvc repro`, so the lineage is recorded",
        )
    found = pipeline.read(root).upstream(recorded, lambda p: (root / f"{p}.dvc").is_file())
    added = [p for p in found if (root / f"{p}.dvc").is_file()]
    if len(added) != 1:
        named = ", ".join(added or found)
        raise ConfigError(
            f"the champion's training data comes from {len(added)} `dvc add`ed files "
            f"({named or 'none'}): a retraining PR repoints exactly one",
            fix="keep the raw training data in one `dvc add`ed file the stages read",
        )
    return added[0]


TRAILER = "Mlci-Retrain"  # on every commit mlci puts on a retraining branch: the model's name


def refuse_reserved(branch: str, reserved: dict[str, str]) -> None:
    """A retraining branch is never one of the repository's own: ``reserved`` maps the names
    it must not be (the default, base, promotion and images branches) to what they are."""
    for name, what in reserved.items():
        if name and branch == name:
            raise ConfigError(
                f"mlci.monitor.branch is {branch!r}, the {what}: mlci force-pushes the "
                "retraining branch and will not move that one",
                fix="name a branch of its own for the retraining PR, e.g. `branch: mlci/retrain`",
            )


def _lease(root: Path, branch: str, model: str, env: dict[str, str]) -> str:
    """The commit the remote's ``branch`` is at ("" when it does not exist), once it is proven
    to be a retraining commit of this model that mlci made; a branch mlci did not create is
    never force-pushed."""
    ref = f"refs/heads/{branch}"
    listed = _git(root, "ls-remote", "--heads", "origin", ref, env=env, check=False)
    if listed.returncode != 0:
        from mlci.git import git_reason

        raise ExternalError(
            f"git ls-remote of branch {branch} failed: {git_reason(listed.stderr)}",
            fix="check the remote `origin` and the job's `contents` permission",
        )
    found = [ln.split("\t")[0] for ln in listed.stdout.splitlines() if ln.endswith("\t" + ref)]
    if not found:
        return ""
    sha = found[0]
    _git(root, "fetch", "-q", "--no-tags", "origin", ref, env=env, check=False)
    message = _git(root, "log", "-1", "--format=%B", sha, check=False).stdout
    trailers = re.findall(rf"(?mi)^{TRAILER}:[ \t]*(.*?)[ \t]*$", message)
    legacy = not trailers and message.startswith(f"mlci monitor: retrain {model} on ")
    if trailers[-1:] != [model] and not legacy:
        whose = f"a retraining of {trailers[-1]!r}" if trailers else "not made by mlci monitor"
        raise ConfigError(
            f"branch {branch} exists on origin and its tip {sha[:12]} is {whose}: mlci "
            "force-pushes only a retraining branch it made for this model",
            fix="set mlci.monitor.branch to a branch of this model's own (or delete that "
            "branch if it is a stale retraining branch)",
        )
    return sha


def propose(
    root: Path,
    settings: Settings,
    ms: MonitorSettings,
    result: MonitorResult,
    gh: Any,
    base: str,
    reserved: dict[str, str],
) -> PullResult | None:
    """Open or update the retraining PR; None (with a note on ``result``) when there is
    nothing to propose. ``reserved``: the branches it may never push (see
    :func:`refuse_reserved`)."""
    from mlci.training.base import mlci_train_params

    refuse_reserved(ms.branch, {base: "base branch", **reserved})
    snapshot = result.snapshot
    if not result.labelled:
        result.notes.append("the snapshot has no labels to train on: no retraining PR")
        return None
    if not _tracked(root, snapshot):
        raise ConfigError(
            f"snapshot {snapshot} is tracked by neither git nor DVC: a retraining PR could "
            "not get it",
            fix=f"`dvc add {snapshot}`, commit the .dvc file and `dvc push` (the ingestion job)",
        )
    params_file = settings.params_file
    mlci_trains = mlci_train_params(root, params_file)
    data_path = mlci_trains.data if mlci_trains else training_data(root, result)
    _push_data(root, snapshot, settings.dvc_remote)
    tmp = Path(tempfile.mkdtemp(prefix="mlci-retrain-"))
    tree = tmp / "tree"
    _git(root, "worktree", "add", "--detach", str(tree), "HEAD")
    try:
        change = _repoint(tree, data_path, snapshot)
        if not change and mlci_trains is None:
            raise ConfigError(
                f"the training data {data_path} is not a `dvc add`ed file, or {snapshot} is "
                "not: a retraining PR cannot point one at the other",
                fix=f"`dvc add {data_path}` and `dvc add {snapshot}`, commit both .dvc files",
            )
        if not change:
            _set_train_data(tree / params_file, snapshot)
            change = f"`train.data` in `{params_file}` is now `{snapshot}`"
        _git(tree, "add", "-A", "--", ".")
        if _git(tree, "diff", "--cached", "--quiet", check=False).returncode == 0:
            result.notes.append(f"the training data already is {snapshot}: no retraining PR")
            return None
        who = (
            []
            if _git(root, "config", "user.email", check=False).stdout.strip()
            else ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
        )
        message = f"mlci monitor: retrain {settings.model_name} on {snapshot}"
        trailer = f"{TRAILER}: {settings.model_name}"
        _git(tree, *who, "commit", "-q", "-m", message, "-m", result.summary[:2000], "-m", trailer)
        env = _push_env(root)
        lease = _lease(root, ms.branch, settings.model_name, env)
        push = _git(
            tree,
            "push",
            f"--force-with-lease=refs/heads/{ms.branch}:{lease}",
            "origin",
            f"HEAD:refs/heads/{ms.branch}",
            env=env,
            check=False,
        )
        if push.returncode != 0:
            from mlci.git import git_reason

            raise ExternalError(
                f"git push of branch {ms.branch} failed: {git_reason(push.stderr)}",
                fix="give the workflow `permissions: contents: write` (and check the remote)",
            )
    finally:
        _git(root, "worktree", "remove", "--force", str(tree), check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    title = plain_title(f"mlci: retrain {settings.model_name} on {snapshot}")
    return gh.pulls_upsert(ms.branch, base, title, _body(settings, result, change))  # type: ignore[no-any-return]


def _push_data(root: Path, snapshot: str, remote: str | None) -> None:
    """``dvc push`` of the snapshot, so the PR check can pull it (a no-op for git files)."""
    from mlci.project import data

    if not (root / f"{snapshot}.dvc").is_file() and data.base_md5(root, "HEAD", snapshot) is None:
        return
    with repository.opened(root) as repo:
        try:
            repo.push(targets=[str(root / snapshot)], remote=remote)
        except Exception as exc:
            raise DvcRemoteError(
                f"dvc push of {snapshot} failed: {first_line(exc)}",
                fix="check the DVC remote's credentials and `dvc remote list`",
            ) from None


def _body(settings: Settings, result: MonitorResult, change: str) -> str:
    champ = result.champion
    version = f" v{champ.version}" if champ else ""
    return (
        f"mlci monitor found the champion{version} of {code(settings.model_name)} "
        f"**{result.status.value}** on {code(result.snapshot)}: {inert(result.summary, 2000)}\n\n"
        f"This pull request retrains on the snapshot: {change}. The PR check trains the model "
        "and gates it against the champion; merging promotes it as usual. mlci never "
        "promotes by itself, and updates this pull request on its next runs.\n"
    )
