"""The images branch: one commit per check run, of blobs already uploaded one by one.

Its tree is bounded twice: the newest ``keep_runs`` runs at most, and the newest of those that
fit in :data:`MAX_BRANCH_BYTES` together with the new run (each run folder's name carries its
bytes, ``{seq:06d}-{bytes}b-{run}``, so no file is listed to size it; a folder named before
sizes were is listed once). Its history is bounded too: every ``keep_runs`` runs, and whenever
a run folder had to be dropped for its bytes, the branch starts again from a root commit, so
what the branch reaches is at most the root's tree plus the runs added since, each within
:data:`MAX_BRANCH_BYTES`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlci.errors import ConfigError, GitHubError

if TYPE_CHECKING:
    from mlci.github.client import GitHubClient
    from mlci.settings.plots import PlotSettings

ROOT_DIR = "mlci-plots"  # the branch's one top-level directory: also how we know it is ours
MAX_BRANCH_BYTES = 100 * 1024 * 1024  # the tree of the images branch, every kept run together
_RUN = re.compile(r"(\d{6})-(?:(\d{1,12})b-)?[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Blob:
    """One image already stored as a git blob."""

    key: str
    sha: str
    size: int


@dataclass(frozen=True)
class Run:
    """One run folder on the branch: its name, tree and bytes (None: not in its name)."""

    name: str
    sha: str
    size: int | None

    @property
    def seq(self) -> int:
        return int(self.name[:6])


@dataclass(frozen=True)
class Branch:
    """The branch as read before a commit: its head (None: no branch yet) and run folders."""

    name: str
    head: str | None
    runs: tuple[Run, ...]


def read_branch(client: GitHubClient, branch: str) -> Branch:
    """The images branch now. :class:`ConfigError` when it exists but is not an mlci images
    branch: mlci never writes to it then."""
    head = client.branch_head(branch)
    if head is None:
        return Branch(branch, None, ())
    found = client.list_directory(ROOT_DIR, head)
    if found is None:
        raise ConfigError(
            f"branch {branch} exists and is not an mlci plot images branch "
            f"(it has no {ROOT_DIR}/ folder); mlci will not write to it",
            fix="choose another `plots.branch`, or delete that branch",
        )
    runs = []
    for entry in found:
        m = _RUN.fullmatch(str(entry.get("name")))
        if entry.get("type") == "dir" and m:
            size = int(m.group(2)) if m.group(2) else None
            runs.append(Run(str(entry["name"]), str(entry["sha"]), size))
    return Branch(branch, head, tuple(sorted(runs, key=lambda r: (r.seq, r.name))))


def commit_run(
    client: GitHubClient,
    blobs: Sequence[Blob],
    settings: PlotSettings,
    *,
    run_name: str,
    server_url: str,
    branch: Branch | None = None,
) -> tuple[str, dict[str, str]]:
    """Commit ``blobs`` as one run folder and move the branch to it: the commit and each
    image's commit-pinned URL. ``branch`` is the branch as already read, if it was."""
    run = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:60] or "run"
    size = sum(b.size for b in blobs)
    for _attempt in range(3):  # another run may move the branch between our read and write
        now = branch or read_branch(client, settings.branch)
        branch = None
        seq = 1 + max((r.seq for r in now.runs), default=0)
        run_dir = f"{ROOT_DIR}/{seq:06d}-{size}b-{run}"
        kept, trimmed = _kept(client, now, settings.keep_runs - 1, MAX_BRANCH_BYTES - size)
        # a new generation (a root commit) every keep_runs runs, or when a run was dropped
        # for its bytes, keeps the history bounded
        restart = now.head is not None and ((seq - 1) % settings.keep_runs == 0 or trimmed)
        entries = [_entry(f"{ROOT_DIR}/{r.name}", "tree", r.sha) for r in kept]
        entries += [_entry(f"{run_dir}/{b.key}", "blob", b.sha) for b in blobs]
        tree = client.create_tree(entries)
        message = f"mlci plots: {run} ({len(blobs)} images, {size:,} bytes)"
        parents = [now.head] if now.head is not None and not restart else []
        commit = client.create_commit(message, tree, parents)
        create = now.head is None
        if client.move_branch(settings.branch, commit, create=create, force=restart):
            base = f"{server_url.rstrip('/')}/{client.repository}/raw/{commit}"
            return commit, {b.key: f"{base}/{run_dir}/{b.key}" for b in blobs}
    raise GitHubError(
        f"branch {settings.branch} kept moving while plot images were committed to it",
        fix="re-run the job; several runs wrote plot images at the same moment",
    )


def _kept(client: GitHubClient, branch: Branch, keep: int, room: int) -> tuple[list[Run], bool]:
    """The newest ``keep`` runs that fit in ``room`` bytes, oldest first, and whether any of
    those was dropped for its bytes."""
    newest = list(branch.runs[max(len(branch.runs) - keep, 0) :]) if keep > 0 else []
    kept: list[Run] = []
    for run in reversed(newest):
        size = run.size if run.size is not None else _listed_size(client, branch, run)
        if size > room:
            break
        room -= size
        kept.append(run)
    return kept[::-1], len(kept) < len(newest)


def _listed_size(client: GitHubClient, branch: Branch, run: Run) -> int:
    found = client.list_directory(f"{ROOT_DIR}/{run.name}", branch.head or "") or []
    return sum(_int(e.get("size")) for e in found if isinstance(e, Mapping))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _entry(path: str, kind: str, sha: str) -> dict[str, str]:
    return {
        "path": path,
        "mode": "040000" if kind == "tree" else "100644",
        "type": kind,
        "sha": sha,
    }
