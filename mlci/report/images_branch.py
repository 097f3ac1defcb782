"""The images branch: content-addressed plot images, at most one commit per check run.

Each image is stored under its name (:func:`mlci.report.images.image_key`: the plot, and the
SHA-256 of its bytes) in a run folder ``mlci-plots/{seq:06d}-{bytes}b-{run}/``. The branch is
read with two requests, its ref and one listing of its whole tree
(``git/trees/{head}?recursive=1``), and nothing else. An image whose git blob the branch holds
already is never uploaded again (git names a blob by its content, so that is known before
anything is sent); a run whose images are all there writes nothing at all (no blob, tree,
commit or ref: its URLs point at the head commit, which holds them); a run with anything new
uploads only the new blobs and makes one commit, a new run folder of every image of the run
(those stored already referenced by their blob SHA, not sent again).

The tree is bounded twice: the newest ``keep_runs`` runs at most, and the newest of those that
fit in :data:`MAX_BRANCH_BYTES` together with the new run (sized from the listing; a folder's
name carries its bytes too). The history is bounded too: every ``keep_runs`` runs, whenever a
run folder had to be dropped for its bytes, and when GitHub cut the listing short, the branch
starts again from a root commit, so what the branch reaches is at most the root's tree plus the
runs added since, each within :data:`MAX_BRANCH_BYTES`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlci.errors import ConfigError, GitHubError

if TYPE_CHECKING:
    from mlci.github.client import GitHubClient
    from mlci.settings.plots import PlotSettings

ROOT_DIR = "mlci-plots"  # the branch's one top-level directory: also how we know it is ours
MAX_BRANCH_BYTES = 100 * 1024 * 1024  # the tree of the images branch, every kept run together
_RUN = re.compile(r"(\d{6})-(?:(\d{1,12})b-)?[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Blob:
    """One image of a run as a git blob: ``key`` its file name (content-addressed:
    :func:`mlci.report.images.image_key`), ``sha`` its git blob SHA."""

    key: str
    sha: str
    size: int


def blob_of(key: str, data: bytes) -> Blob:
    """The blob ``data`` is: git's blob SHA is computed here, as git computes it, so what the
    branch holds is known before anything is sent."""
    sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return Blob(key, sha, len(data))


@dataclass(frozen=True)
class Run:
    """One run folder on the branch: its name, tree SHA and bytes (of the files listed)."""

    name: str
    sha: str
    size: int

    @property
    def seq(self) -> int:
        return int(self.name[:6])


@dataclass(frozen=True)
class Branch:
    """The branch as read before a commit: its head (None: no branch yet), run folders, and
    where each blob it holds is (blob SHA -> path in the newest run holding it).
    ``complete`` is False when GitHub cut the listing short: then nothing is known to be
    there."""

    name: str
    head: str | None
    runs: tuple[Run, ...]
    stored: Mapping[str, str] = field(default_factory=dict)
    complete: bool = True

    def path_of(self, blob: Blob) -> str | None:
        return self.stored.get(blob.sha)


def read_branch(client: GitHubClient, branch: str) -> Branch:
    """The images branch now, in two requests (its ref, then its whole tree). :class:`ConfigError`
    when it exists but is not an mlci images branch: mlci never writes to it then."""
    head = client.branch_head(branch)
    if head is None:
        return Branch(branch, None, ())
    found = client.tree(head)
    if found is None:
        raise GitHubError(f"GitHub did not list the files of branch {branch} at {head[:12]}")
    entries, truncated = found
    if not any(e.get("path") == ROOT_DIR and e.get("type") == "tree" for e in entries):
        raise ConfigError(
            f"branch {branch} exists and is not an mlci plot images branch "
            f"(it has no {ROOT_DIR}/ folder); mlci will not write to it",
            fix="choose another `plots.branch`, or delete that branch",
        )
    if truncated:
        return Branch(branch, head, (), complete=False)
    runs, stored = _runs(entries)
    return Branch(branch, head, runs, stored)


def _runs(entries: Iterable[Mapping[str, Any]]) -> tuple[tuple[Run, ...], dict[str, str]]:
    """The run folders of a recursive listing, oldest first, and each blob's newest path."""
    trees: dict[str, str] = {}
    sizes: dict[str, int] = {}
    stored: dict[str, tuple[int, str]] = {}
    for entry in entries:
        path, kind, sha = str(entry.get("path")), entry.get("type"), str(entry.get("sha"))
        parts = path.split("/")
        if len(parts) < 2 or parts[0] != ROOT_DIR or not _RUN.fullmatch(parts[1]):
            continue
        if len(parts) == 2 and kind == "tree":
            trees[parts[1]] = sha
        elif kind == "blob":
            sizes[parts[1]] = sizes.get(parts[1], 0) + _int(entry.get("size"))
            seq = int(parts[1][:6])
            if len(parts) == 3 and seq >= stored.get(sha, (-1, ""))[0]:
                stored[sha] = (seq, path)
    runs = sorted(
        (Run(name, sha, sizes.get(name, 0)) for name, sha in trees.items()),
        key=lambda r: (r.seq, r.name),
    )
    return tuple(runs), {sha: path for sha, (_seq, path) in stored.items()}


def store(
    client: GitHubClient, branch: Branch, key: str, data: bytes, sent: dict[str, str]
) -> tuple[Blob, bool]:
    """``data`` as a blob, and whether it was uploaded now: only when neither ``branch`` holds
    it already nor this run sent it before (``sent``: git's SHA -> the one GitHub answered)."""
    blob = blob_of(key, data)
    if branch.path_of(blob) is not None:
        return blob, False
    new = blob.sha not in sent
    if new:
        sent[blob.sha] = client.create_blob(data)
    return Blob(key, sent[blob.sha], blob.size), new


def commit_run(
    client: GitHubClient,
    blobs: Sequence[Blob],
    settings: PlotSettings,
    *,
    run_name: str,
    server_url: str,
    branch: Branch | None = None,
) -> tuple[str, dict[str, str]]:
    """The commit that holds ``blobs`` and each image's commit-pinned URL: the head, when it
    holds every one of them already (nothing is written), else one new commit of a run folder
    the branch is moved to. ``branch`` is the branch as already read, if it was."""
    run = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:60] or "run"
    unique = list({b.key: b for b in blobs}.values())  # one file per name
    size = sum(b.size for b in unique)
    for _attempt in range(3):  # another run may move the branch between our read and write
        now = branch or read_branch(client, settings.branch)
        branch = None
        there = {b.key: path for b in blobs if (path := now.path_of(b)) is not None}
        if now.head is not None and len(there) == len({b.key for b in blobs}):
            return now.head, _urls(client, server_url, now.head, there)  # nothing to write
        seq = 1 + max((r.seq for r in now.runs), default=0)
        run_dir = f"{ROOT_DIR}/{seq:06d}-{size}b-{run}"
        kept, trimmed = _kept(now, settings.keep_runs - 1, MAX_BRANCH_BYTES - size)
        # a new generation (a root commit) every keep_runs runs, when a run was dropped for its
        # bytes, or when the branch could not be listed whole, keeps the history bounded
        restart = now.head is not None and (
            (seq - 1) % settings.keep_runs == 0 or trimmed or not now.complete
        )
        entries = [_entry(f"{ROOT_DIR}/{r.name}", "tree", r.sha) for r in kept]
        entries += [_entry(f"{run_dir}/{b.key}", "blob", b.sha) for b in unique]
        tree = client.create_tree(entries)
        message = f"mlci plots: {run} ({len(unique)} images, {size:,} bytes)"
        parents = [now.head] if now.head is not None and not restart else []
        commit = client.create_commit(message, tree, parents)
        create = now.head is None
        if client.move_branch(settings.branch, commit, create=create, force=restart):
            paths = {b.key: f"{run_dir}/{b.key}" for b in blobs}
            return commit, _urls(client, server_url, commit, paths)
    raise GitHubError(
        f"branch {settings.branch} kept moving while plot images were committed to it",
        fix="re-run the job; several runs wrote plot images at the same moment",
    )


def _urls(
    client: GitHubClient, server_url: str, commit: str, paths: Mapping[str, str]
) -> dict[str, str]:
    base = f"{server_url.rstrip('/')}/{client.repository}/raw/{commit}"
    return {key: f"{base}/{path}" for key, path in paths.items()}


def _kept(branch: Branch, keep: int, room: int) -> tuple[list[Run], bool]:
    """The newest ``keep`` runs that fit in ``room`` bytes, oldest first, and whether any of
    those was dropped for its bytes."""
    newest = list(branch.runs[max(len(branch.runs) - keep, 0) :]) if keep > 0 else []
    kept: list[Run] = []
    for run in reversed(newest):
        if run.size > room:
            break
        room -= run.size
        kept.append(run)
    return kept[::-1], len(kept) < len(newest)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _entry(path: str, kind: str, sha: str) -> dict[str, str]:
    return {
        "path": path,
        "mode": "040000" if kind == "tree" else "100644",
        "type": kind,
        "sha": sha,
    }
