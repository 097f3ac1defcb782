"""Plot images, shown only to people who can read the repository.

Images are committed to a dedicated orphan branch of the same repository through the Git Data
API (blobs, a tree, a commit, the ref: one commit per check run) and embedded by a
commit-pinned URL, ``{server}/{owner}/{repo}/raw/{commit}/{path}``, which a reader's browser
fetches with the reader's own GitHub session. Nothing goes to a third-party host.

The branch keeps the newest ``keep_runs`` runs in its tree; every ``keep_runs`` runs it starts
again from a root commit, so its history stays bounded too. Where the token may not write
contents (or a fork's PR has no token), the PNGs and a manifest are saved in the report
directory (the artifact), and the report holds placeholders that :func:`fill` replaces once a
``workflow_run`` job has published them with :func:`publish_saved`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.errors import ConfigError, GitHubError
from mlci.markdown import inert

if TYPE_CHECKING:
    from mlci.github import GitHubClient
    from mlci.plots import PlotSettings

ROOT_DIR = "mlci-plots"  # the branch's one top-level directory: also how we know it is ours
MANIFEST = "manifest.json"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 200
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
PERMISSION = "contents: write"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(png|jpg)")
_PLACEHOLDER = re.compile(r"<!-- mlci-plot-image:([A-Za-z0-9._-]{1,104}) -->")


@dataclass(frozen=True)
class PlotImage:
    """One image of one plot: ``rev`` is "base", "pr", or "" for a chart of both."""

    key: str  # the file name: unique, safe in a URL path and a git tree
    plot_id: str
    rev: str
    data: bytes

    @property
    def alt(self) -> str:
        return f"{self.plot_id} ({self.rev})" if self.rev else self.plot_id


@dataclass(frozen=True)
class Links:
    """Where the images of one run are, and what the report says when they are not shown."""

    urls: Mapping[str, str] = field(default_factory=dict)  # key -> image URL
    note: str | None = None
    uploaded_bytes: int = 0
    commit: str | None = None
    saved: Path | None = None


def image_key(plot_id: str, rev: str, suffix: str = ".png") -> str:
    """A file name for ``plot_id`` at ``rev``: readable, unique, safe anywhere."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", plot_id).strip("-.")[:60] or "plot"
    digest = hashlib.sha1(f"{plot_id}\0{rev}".encode()).hexdigest()[:8]
    return f"{slug}{'-' + rev if rev else ''}-{digest}{suffix}"


def placeholder(key: str) -> str:
    """What the report holds where an image not yet published goes (invisible on GitHub)."""
    return f"<!-- mlci-plot-image:{key} -->"


def fill(markdown: str, links: Links, alts: Mapping[str, str]) -> str:
    """``markdown`` with each placeholder of a published image replaced by the image."""

    def one(m: re.Match[str]) -> str:
        url = links.urls.get(m.group(1))
        return f"![{inert(alts.get(m.group(1), 'plot'))}]({url})" if url else m.group(0)

    return _PLACEHOLDER.sub(one, markdown)


def sniff(data: bytes) -> str | None:
    """ "png" or "jpg" by the magic bytes; None for anything else (SVG included)."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpg"
    return None


# ---- saving into the report directory (the artifact) ----


def save(images: Sequence[PlotImage], directory: Path) -> Path:
    """Write ``images`` and a manifest under ``directory/plots``; returns that folder."""
    target = directory / "plots"
    target.mkdir(parents=True, exist_ok=True)
    manifest = {img.key: {"plot": img.plot_id, "rev": img.rev} for img in images}
    for img in images:
        (target / img.key).write_bytes(img.data)
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return target


def load_saved(folder: Path) -> list[PlotImage]:
    """The images :func:`save` wrote, read as untrusted input: the manifest is bounded and
    typed, each image a regular file (no symlink) of at most 5 MiB whose bytes are PNG or
    JPEG (no SVG), named as :func:`image_key` names files."""
    from mlci.artifact import _read_artifact_file

    raw = _read_artifact_file(folder, MANIFEST, 256 * 1024)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _rejected(f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or len(manifest) > MAX_IMAGES:
        raise _rejected(f"{MANIFEST} is not an object of at most {MAX_IMAGES} images")
    images = []
    for key, meta in manifest.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise _rejected(f"image name {key[:80]!r} is not one mlci writes")
        if not isinstance(meta, dict) or not all(
            isinstance(meta.get(k), str) for k in ("plot", "rev")
        ):
            raise _rejected(f"{MANIFEST} entry for {key} is malformed")
        data = _read_artifact_file(folder, key, MAX_IMAGE_BYTES)
        kind = sniff(data)
        if kind is None or not key.endswith(f".{kind}"):
            raise _rejected(f"{key} is not a PNG or JPEG image (by its bytes)")
        images.append(PlotImage(key, meta["plot"][:200], meta["rev"][:10], data))
    return images


def _rejected(message: str) -> ConfigError:
    return ConfigError(
        f"plot images rejected: {message}",
        fix="publish only plot images saved by mlci in the PR job",
    )


# ---- publishing to the images branch ----


def publish(
    client: GitHubClient,
    images: Sequence[PlotImage],
    settings: PlotSettings,
    *,
    run_name: str,
    server_url: str = "https://github.com",
) -> Links:
    """Commit ``images`` to ``settings.branch`` (one commit) and return their pinned URLs.

    Raises :class:`mlci.github.ContentsRefused` when the token may not write contents, and
    :class:`ConfigError` when the branch exists but is not an mlci images branch.
    """
    if not images:
        return Links()
    for img in images:
        if (
            sniff(img.data) is None
            or len(img.data) > MAX_IMAGE_BYTES
            or not _KEY.fullmatch(img.key)
        ):
            raise GitHubError(f"refusing to publish {img.key}: not a bounded PNG or JPEG")
    run = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.")[:60] or "run"
    blobs: dict[str, str] = {}
    sent = 0
    for _attempt in range(3):  # another run may move the branch between our read and write
        head = client.branch_head(settings.branch)
        runs = _our_runs(client, settings.branch, head)
        seq = 1 + max((_seq(r["name"]) for r in runs), default=0)
        run_dir = f"{ROOT_DIR}/{seq:06d}-{run}"
        for img in images:
            if img.key not in blobs:
                blobs[img.key] = client.create_blob(img.data)
                sent += len(img.data)
        # a new generation (a root commit) every keep_runs runs keeps the history bounded
        restart = head is not None and (seq - 1) % settings.keep_runs == 0
        keep = settings.keep_runs - 1
        kept = runs[max(len(runs) - keep, 0) :] if keep else []
        entries = [_entry(f"{ROOT_DIR}/{r['name']}", "tree", r["sha"]) for r in kept]
        entries += [_entry(f"{run_dir}/{img.key}", "blob", blobs[img.key]) for img in images]
        tree = client.create_tree(entries)
        message = f"mlci plots: {run} ({len(images)} images)"
        parents = [head] if head is not None and not restart else []
        commit = client.create_commit(message, tree, parents)
        if client.move_branch(settings.branch, commit, create=head is None, force=restart):
            base = f"{server_url.rstrip('/')}/{client.repository}/raw/{commit}"
            urls = {img.key: f"{base}/{run_dir}/{img.key}" for img in images}
            return Links(urls, None, sent, commit)
    raise GitHubError(
        f"branch {settings.branch} kept moving while plot images were committed to it",
        fix="re-run the job; several runs wrote plot images at the same moment",
    )


def _entry(path: str, kind: str, sha: str) -> dict[str, str]:
    return {
        "path": path,
        "mode": "040000" if kind == "tree" else "100644",
        "type": kind,
        "sha": sha,
    }


def _our_runs(client: GitHubClient, branch: str, head: str | None) -> list[dict[str, str]]:
    """The run folders on the images branch, oldest first; [] for a new branch."""
    if head is None:
        return []
    found = client.list_directory(ROOT_DIR, head)
    if found is None:
        raise ConfigError(
            f"branch {branch} exists and is not an mlci plot images branch "
            f"(it has no {ROOT_DIR}/ folder); mlci will not write to it",
            fix="choose another `plots.branch`, or delete that branch",
        )
    runs = [
        {"name": str(e["name"]), "sha": str(e["sha"])}
        for e in found
        if e.get("type") == "dir" and re.fullmatch(r"\d{6}-[A-Za-z0-9._-]+", str(e.get("name")))
    ]
    return sorted(runs, key=lambda r: (_seq(r["name"]), r["name"]))


def _seq(name: str) -> int:
    return int(name[:6])


def publish_or_save(
    client: GitHubClient | None,
    images: Sequence[PlotImage],
    settings: PlotSettings,
    *,
    run_name: str,
    report_dir: Path | None,
    server_url: str = "https://github.com",
    why_no_client: str = "there is no GitHub token here",
) -> Links:
    """Publish where the token may, else keep the images in ``report_dir`` and say why.

    ``images: on`` makes a refusal an error; ``auto`` turns it into a note naming the
    permission that turns images on.
    """
    from mlci.github import ContentsRefused

    if settings.images == "off":
        return Links(note="Plot images are off (`plots.images: off`).")
    if not images:
        return Links()
    saved = save(images, report_dir) if report_dir is not None else None
    where = " They are in the report artifact, under `plots/`." if saved else ""
    if client is None:
        return Links(note=f"Plot images are not shown: {why_no_client}.{where}", saved=saved)
    try:
        links = publish(client, images, settings, run_name=run_name, server_url=server_url)
    except ContentsRefused:
        if settings.images == "on":
            raise
        note = (
            "Plot images are not shown: the workflow's token may not write the images branch "
            f"`{settings.branch}`. Give the job `permissions: {PERMISSION}` to show them here."
            + where
        )
        return Links(note=note, saved=saved)
    return Links(links.urls, None, links.uploaded_bytes, links.commit, saved)


def publish_saved(
    client: GitHubClient,
    folder: Path,
    settings: PlotSettings,
    *,
    run_name: str,
    server_url: str = "https://github.com",
) -> tuple[Links, dict[str, str]]:
    """For the ``workflow_run`` publisher of a fork's PR: check and publish the images a PR
    job saved; returns the links and each image's alt text (for :func:`fill`)."""
    images = load_saved(folder)
    links = publish(client, images, settings, run_name=run_name, server_url=server_url)
    return links, {img.key: img.alt for img in images}
