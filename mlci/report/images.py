"""Plot images, shown only to people who can read the repository.

Images are named by their content (:func:`image_key`) and committed to a dedicated orphan
branch of the same repository through the Git Data API: only images the branch does not hold
yet are uploaded, and a check run makes at most one commit, none when every image is there
already (:mod:`mlci.report.images_branch`). They are embedded by a commit-pinned URL,
``{server}/{owner}/{repo}/raw/{commit}/{path}``, which a reader's browser fetches with the
reader's own GitHub session. Nothing goes to a third-party host.

Bounds: :data:`MAX_IMAGE_BYTES` per image, :data:`MAX_IMAGES` and :data:`MAX_RUN_BYTES` per
check run (images past them are left out and named with the reason), and
:data:`mlci.report.images_branch.MAX_BRANCH_BYTES` for the branch's tree. Every image is checked by
decoding its structure (:mod:`mlci.report.image_decode`): a PNG or JPEG of at most 4096x4096 pixels.
Where the token may not write contents (or a fork's PR has no token), the PNGs and a manifest
are saved in the report directory (the artifact), and the report holds placeholders that
:func:`fill` replaces once a ``workflow_run`` job has published them with
:func:`publish_saved`, which reads the artifact as untrusted input one file at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.errors import ConfigError, GitHubError
from mlci.markdown import inert
from mlci.report.image_decode import JPEG_MAGIC, PNG_MAGIC, decode

if TYPE_CHECKING:
    from mlci.github.client import GitHubClient
    from mlci.settings.plots import PlotSettings

MANIFEST = "manifest.json"
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # one image
MAX_IMAGES = 200  # images of one check run
MAX_RUN_BYTES = 20 * 1024 * 1024  # the images of one check run, together
PERMISSION = "contents: write"
LEFT_OUT_BYTES = f"left out: the images of one run may take {MAX_RUN_BYTES // 2**20} MiB together"
LEFT_OUT_COUNT = f"left out: at most {MAX_IMAGES} images per run"
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
    left_out: Mapping[str, str] = field(default_factory=dict)  # key -> why it is not shown


def image_key(plot_id: str, rev: str, data: bytes, suffix: str = ".png") -> str:
    """A file name for image ``data`` of ``plot_id`` at ``rev``: readable, safe anywhere, unique
    to the plot, and named by its content (the first 128 bits of the SHA-256 of its bytes), so
    the same image always has the same name and a changed one another."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", plot_id).strip("-.")[:48] or "plot"
    plot = hashlib.sha1(f"{plot_id}\0{rev}".encode()).hexdigest()[:8]
    content = hashlib.sha256(data).hexdigest()[:32]
    return f"{slug}{'-' + rev if rev else ''}-{plot}-{content}{suffix}"


def placeholder(key: str) -> str:
    """What the report holds where an image not yet published goes (invisible on GitHub)."""
    return f"<!-- mlci-plot-image:{key} -->"


def fill(markdown: str, links: Links, alts: Mapping[str, str]) -> str:
    """``markdown`` with each placeholder of a published image replaced by the image, and of
    an image left out by a bound by a line that says so."""

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        url = links.urls.get(key)
        alt = inert(alts.get(key, "plot"))
        if url:
            return f"![{alt}]({url})"
        if key in links.left_out:
            return f"- no image of {alt}: {inert(links.left_out[key])}"
        return m.group(0)

    return _PLACEHOLDER.sub(one, markdown)


def sniff(data: bytes) -> str | None:
    """ "png" or "jpg" by the magic bytes; None for anything else (SVG included). Only a
    first guess: :func:`problem` decodes."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpg"
    return None


def problem(data: bytes, key: str | None = None) -> str | None:
    """Why ``data`` may not be published (named ``key``), or None: a bounded PNG or JPEG that
    decodes, of at most 4096x4096 pixels, whose name ends as its kind does."""
    if len(data) > MAX_IMAGE_BYTES:
        return f"{len(data):,} bytes (limit {MAX_IMAGE_BYTES:,})"
    found = decode(data)
    if isinstance(found, str):
        return found
    if key is not None and not (_KEY.fullmatch(key) and key.endswith(f".{found.kind}")):
        return f"a {found.kind.upper()} image under a name mlci does not write"
    return None


def budget(images: Sequence[PlotImage]) -> tuple[list[PlotImage], dict[str, str]]:
    """The images of one run within :data:`MAX_IMAGES` and :data:`MAX_RUN_BYTES`, in order,
    and each one left out (by key) with the reason."""
    kept: list[PlotImage] = []
    left_out: dict[str, str] = {}
    total = 0
    for img in images:
        if len(kept) >= MAX_IMAGES:
            left_out[img.key] = LEFT_OUT_COUNT
        elif total + len(img.data) > MAX_RUN_BYTES:
            left_out[img.key] = LEFT_OUT_BYTES
        else:
            kept.append(img)
            total += len(img.data)
    return kept, left_out


# ---- saving into the report directory (the artifact), reading it back ----


def save(images: Sequence[PlotImage], directory: Path) -> Path:
    """Write ``images`` and a manifest under ``directory/plots``; returns that folder."""
    target = directory / "plots"
    target.mkdir(parents=True, exist_ok=True)
    manifest = {img.key: {"plot": img.plot_id, "rev": img.rev} for img in images}
    for img in images:
        (target / img.key).write_bytes(img.data)
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return target


@dataclass(frozen=True)
class Saved:
    """One image a manifest names, not read yet: ``size`` is what lstat said."""

    key: str
    plot_id: str
    rev: str
    size: int

    @property
    def alt(self) -> str:
        return f"{self.plot_id} ({self.rev})" if self.rev else self.plot_id


def saved_entries(folder: Path) -> list[Saved]:
    """The images :func:`save` wrote, as untrusted input, before any is read: the manifest is
    bounded and typed, every name one :func:`image_key` makes, every file a regular file (no
    symlink, FIFO or device; one link) of at most :data:`MAX_IMAGE_BYTES` by lstat."""
    from mlci.report.artifact import read_artifact_file

    raw = read_artifact_file(folder, MANIFEST, 256 * 1024)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _rejected(f"{MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or len(manifest) > MAX_IMAGES:
        raise _rejected(f"{MANIFEST} is not an object of at most {MAX_IMAGES} images")
    entries = []
    for key, meta in manifest.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise _rejected(f"image name {key[:80]!r} is not one mlci writes")
        if not isinstance(meta, dict) or not all(
            isinstance(meta.get(k), str) for k in ("plot", "rev")
        ):
            raise _rejected(f"{MANIFEST} entry for {key} is malformed")
        entries.append(Saved(key, meta["plot"][:200], meta["rev"][:10], _size(folder, key)))
    return entries


def _size(folder: Path, key: str) -> int:
    try:
        found = os.lstat(folder / key)
    except OSError as exc:
        raise _rejected(f"cannot read {key}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(found.st_mode):
        raise _rejected(f"{key} is a symbolic link, not a regular file")
    if not stat.S_ISREG(found.st_mode) or found.st_nlink > 1:
        raise _rejected(f"{key} is not a regular file with one link")
    if found.st_size > MAX_IMAGE_BYTES:
        raise _rejected(f"{key} is {found.st_size:,} bytes (limit {MAX_IMAGE_BYTES:,})")
    return found.st_size


def read_saved(folder: Path, entry: Saved, limit: int = MAX_IMAGE_BYTES) -> PlotImage:
    """The one image ``entry`` names, read (no further than ``limit`` bytes: the open file is
    checked again) and decoded: a PNG or JPEG as its name says, else :class:`ConfigError`."""
    from mlci.report.artifact import read_artifact_file

    data = read_artifact_file(folder, entry.key, min(limit, MAX_IMAGE_BYTES))
    why = problem(data, entry.key)
    if why is not None:
        raise _rejected(f"{entry.key} is not a PNG or JPEG image that decodes ({why})")
    return PlotImage(entry.key, entry.plot_id, entry.rev, data)


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
    """Commit ``images`` to ``settings.branch`` and return their pinned URLs: only images the
    branch does not hold are uploaded (``Links.uploaded_bytes``), in one commit, and none when
    it holds them all; those past the bounds of a run are left out (``Links.left_out``).

    Raises :class:`mlci.github.client.ContentsRefused` when the token may not write contents, and
    :class:`ConfigError` when the branch exists but is not an mlci images branch.
    """
    from mlci.report.images_branch import commit_run, read_branch, store

    if not images:
        return Links()
    for img in images:
        why = problem(img.data, img.key)
        if why is not None:
            raise GitHubError(f"refusing to publish {img.key}: {why}")
    kept, left_out = budget(images)
    branch = read_branch(client, settings.branch)  # a branch not ours: refused before uploads
    blobs, uploaded, sent = [], 0, dict[str, str]()
    for img in kept:  # only what the branch does not hold yet is sent
        blob, new = store(client, branch, img.key, img.data, sent)
        blobs.append(blob)
        uploaded += blob.size if new else 0
    commit, urls = commit_run(
        client, blobs, settings, run_name=run_name, server_url=server_url, branch=branch
    )
    return Links(urls, None, uploaded, commit, left_out=left_out)


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
    from mlci.github.client import ContentsRefused

    if settings.images == "off":
        return Links(note="Plot images are off (`plots.images: off`).")
    images, left_out = budget(images)
    if not images:
        return Links(left_out=left_out)
    saved = save(images, report_dir) if report_dir is not None else None
    where = " They are in the report artifact, under `plots/`." if saved else ""
    if client is None:
        note = f"Plot images are not shown: {why_no_client}.{where}"
        return Links(note=note, saved=saved, left_out=left_out)
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
        return Links(note=note, saved=saved, left_out=left_out)
    return Links(links.urls, None, links.uploaded_bytes, links.commit, saved, left_out)


def publish_saved(
    client: GitHubClient,
    folder: Path,
    settings: PlotSettings,
    *,
    run_name: str,
    server_url: str = "https://github.com",
) -> tuple[Links, dict[str, str]]:
    """For the ``workflow_run`` publisher of a fork's PR: check and publish the images a PR
    job saved; returns the links and each image's alt text (for :func:`fill`).

    The artifact is untrusted: every file is checked by lstat before any is read, then each
    is read, decoded and (unless the branch holds it already) uploaded as a blob in turn, so
    one image at a time is in memory.
    Images past :data:`MAX_RUN_BYTES` are not read at all (``Links.left_out``)."""
    from mlci.report.images_branch import commit_run, read_branch, store

    entries = saved_entries(folder)
    alts = {e.key: e.alt for e in entries}
    branch = read_branch(client, settings.branch)  # a branch not ours: refused before uploads
    blobs, left_out, sent = [], dict[str, str](), dict[str, str]()
    total = uploaded = 0
    for entry in entries:
        if total + entry.size > MAX_RUN_BYTES:
            left_out[entry.key] = LEFT_OUT_BYTES
            continue
        img = read_saved(folder, entry, limit=MAX_RUN_BYTES - total)
        blob, new = store(client, branch, img.key, img.data, sent)  # sent only when new
        blobs.append(blob)
        total += blob.size
        uploaded += blob.size if new else 0
        del img  # the next image is read only now
    if not blobs:
        return Links(left_out=left_out), alts
    commit, urls = commit_run(
        client, blobs, settings, run_name=run_name, server_url=server_url, branch=branch
    )
    return Links(urls, None, uploaded, commit, left_out=left_out), alts
