"""A re-run repeats no work for plot images: images are named by their content on the images
branch, what the branch holds is learnt from its ref and one listing of its tree, and only new
images are uploaded, in at most one commit (none when nothing is new). Reads are never spaced;
mutating requests stay a second apart. Against the loopback GitHub server; request counts, never
timings (those are in bench/plots.py)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

from mlci.github.client import GitHubClient
from mlci.github.http import MUTATION_BURST, MUTATION_SPACING_S
from mlci.report import images
from mlci.report.images_branch import ROOT_DIR
from mlci.settings.plots import PlotSettings

from github_server import FakeGitHub


def _png(rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes(rgb) * 3 for _ in range(2))
    header = struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)
    return (images.PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


def _plots(*shades: int) -> list[images.PlotImage]:
    """One image per plot; ``shades`` sets each image's colour (its content)."""
    data = [_png((s, 80, 120)) for s in shades]
    return [
        images.PlotImage(images.image_key(f"plot {i}", "", d), f"plot {i}", "", d)
        for i, d in enumerate(data)
    ]


def _client(github: FakeGitHub, sleeps: list[float] | None = None) -> GitHubClient:
    record = sleeps.append if sleeps is not None else (lambda s: None)
    return GitHubClient(github.url, github.integration_token, github.repo, sleep=record)


def _requests(github: FakeGitHub, since: int) -> list[str]:
    """The requests since ``since``, as "METHOD resource" (Git Data resource or contents)."""
    out = []
    for r in github.requests[since:]:
        resource = r.path.split("/git/")[1].split("/")[0] if "/git/" in r.path else "other"
        out.append(f"{r.method} {resource}")
    return sorted(out)


def test_a_second_identical_run_writes_nothing_and_reads_the_branch_once(
    github: FakeGitHub,
) -> None:
    sleeps: list[float] = []
    client = _client(github, sleeps)
    first = images.publish(client, _plots(10, 20, 30), PlotSettings(), run_name="1-1")
    assert first.uploaded_bytes == sum(len(p.data) for p in _plots(10, 20, 30))
    before, spaced = len(github.requests), len(sleeps)
    again = images.publish(client, _plots(10, 20, 30), PlotSettings(), run_name="1-2")
    # no blob, tree, commit or ref written: the branch's ref and one listing of its tree
    assert _requests(github, before) == ["GET ref", "GET trees"]
    assert github.requests[-1].query == {"recursive": ["1"]}
    assert again.urls == first.urls and again.commit == first.commit
    assert again.uploaded_bytes == 0
    assert len(sleeps) == spaced  # reads are never spaced
    assert len(github.git.history("mlci-plots")) == 1
    assert github.violations == []


def test_one_changed_plot_sends_one_blob_in_one_commit(github: FakeGitHub) -> None:
    client = _client(github)
    first = images.publish(client, _plots(10, 20, 30), PlotSettings(), run_name="1-1")
    before = len(github.requests)
    changed = _plots(10, 21, 30)
    links = images.publish(client, changed, PlotSettings(), run_name="1-2")
    assert _requests(github, before) == [
        *("GET ref", "GET trees", "PATCH refs"),
        *("POST blobs", "POST commits", "POST trees"),
    ]
    assert links.uploaded_bytes == len(changed[1].data)
    assert github.git.history("mlci-plots") == [links.commit, first.commit]
    files = github.git.files(str(links.commit))
    for img in changed:  # every image of the run in its folder, by content, unchanged ones too
        path = links.urls[img.key].split(f"/raw/{links.commit}/")[1]
        assert path.startswith(f"{ROOT_DIR}/000002-") and files[path] == img.data
        assert path.endswith(f"-{hashlib.sha256(img.data).hexdigest()[:32]}.png")
    assert github.violations == []


def test_mutations_stay_spaced_and_reads_are_not(github: FakeGitHub) -> None:
    sleeps: list[float] = []
    client = _client(github, sleeps)
    for _ in range(3):
        client.branch_head("mlci-plots")  # GETs, one after another: never spaced
    assert sleeps == []
    for i in range(MUTATION_BURST):  # a job's first few mutations go one after another
        client.create_blob(f"blob {i}".encode())
        client.branch_head("mlci-plots")
    assert sleeps == []
    client.create_blob(b"one more")  # beyond them, each waits out GitHub's second
    assert len(sleeps) == 1 and 0 < sleeps[0] <= MUTATION_SPACING_S


def test_identical_images_in_one_run_are_sent_once(github: FakeGitHub) -> None:
    """An image plot unchanged between base and PR: two images, one blob sent."""
    client = _client(github)
    same = _png((1, 2, 3))
    run = [images.PlotImage(images.image_key("images/a.png", rev, same), "images/a.png", rev, same)
           for rev in ("base", "pr")]  # fmt: skip
    links = images.publish(client, run, PlotSettings(), run_name="1")
    assert len(github.requests_to("POST", r"/git/blobs$")) == 1
    assert links.uploaded_bytes == len(same)
    files = github.git.files("mlci-plots")
    assert [files[u.split(f"/raw/{links.commit}/")[1]] for u in links.urls.values()] == [same] * 2


def test_a_truncated_listing_starts_the_branch_again(github: FakeGitHub) -> None:
    """Past GitHub's listing limit nothing is known to be on the branch: every image is sent
    and the run starts a new history (a root commit), so the branch stays bounded."""
    client = _client(github)
    images.publish(client, _plots(10, 20), PlotSettings(), run_name="1")
    github.git.max_listing = 1
    links = images.publish(client, _plots(10, 20), PlotSettings(), run_name="2")
    assert len(github.requests_to("POST", r"/git/blobs$")) == 4
    assert github.git.history("mlci-plots") == [links.commit]
    assert sorted({p.split("/")[1] for p in github.git.files("mlci-plots")}) == [
        f"000001-{links.uploaded_bytes}b-2"
    ]


def test_the_fork_publisher_sends_only_what_is_new(github: FakeGitHub, tmp_path: Path) -> None:
    client = _client(github)
    first, _alts = images.publish_saved(
        client, images.save(_plots(10, 20), tmp_path / "a"), PlotSettings(), run_name="1"
    )
    before = len(github.requests)
    again, _alts = images.publish_saved(
        client, images.save(_plots(10, 20), tmp_path / "b"), PlotSettings(), run_name="2"
    )
    assert _requests(github, before) == ["GET ref", "GET trees"]
    assert again.urls == first.urls and again.uploaded_bytes == 0
    before = len(github.requests)
    changed, _alts = images.publish_saved(
        client, images.save(_plots(10, 22), tmp_path / "c"), PlotSettings(), run_name="3"
    )
    assert _requests(github, before).count("POST blobs") == 1
    assert _requests(github, before).count("POST commits") == 1
    assert changed.commit != first.commit and github.violations == []
