"""Plot images are bounded: per image, per check run in count and bytes, and on the images
branch across runs; an image from an artifact is accepted only when it decodes as a PNG or
JPEG of at most 4096x4096 pixels. Against the loopback GitHub server."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import ConfigError
from mlci.github.client import GitHubClient
from mlci.plots import png as plot_png
from mlci.plots import render as plot_render
from mlci.plots.collect import Plot, PlotSet
from mlci.report import artifact, image_decode, images, images_branch
from mlci.settings.plots import PlotSettings

from github_server import FakeGitHub

MiB = 1024 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, seed: int, level: int = 6) -> bytes:
    """A valid RGB PNG of random pixels (incompressible: its size is about 3 x pixels)."""
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (image_decode.PNG_MAGIC + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, level)) + _chunk(b"IEND", b""))  # fmt: skip


def _client(github: FakeGitHub) -> GitHubClient:
    return GitHubClient(github.url, github.integration_token, github.repo, sleep=lambda s: None)


def _image(i: int, data: bytes) -> images.PlotImage:
    return images.PlotImage(images.image_key(f"plot {i}", "pr", data), f"plot {i}", "pr", data)


# ---- part 5: decoded, not sniffed ----


def test_decode_accepts_real_images_and_refuses_lookalikes() -> None:
    from PIL import Image

    for mode, fmt in (("RGB", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("L", "JPEG"),
                      ("RGB", "JPEG")):  # fmt: skip
        out = io.BytesIO()
        Image.new(mode, (37, 11)).save(out, fmt, **({"progressive": True} if mode == "L" else {}))
        found = image_decode.decode(out.getvalue())
        assert found == image_decode.Decoded("png" if fmt == "PNG" else "jpg", 37, 11)
    good = _png(8, 4, 1)
    bad_crc = bytearray(good)
    bad_crc[45] ^= 1  # a byte of the image data
    too_wide = image_decode.PNG_MAGIC + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", 5000, 1, 8, 0, 0, 0, 0)
    )  # fmt: skip
    short_rows = good.replace(good[33:-12], _chunk(b"IDAT", zlib.compress(b"\x00" * 5)))
    for data, why in [
        (image_decode.PNG_MAGIC + b"garbage" * 99, "PNG: a chunk"),
        (good + b"trailing", "no IEND chunk at the end"),
        (bytes(bad_crc), "CRC of chunk IDAT is wrong"),
        (too_wide, "5000x1 pixels (at most 4096x4096)"),
        (short_rows, "ends before its last row"),
        (image_decode.JPEG_MAGIC + b"\xe0garbage", "JPEG:"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a PNG or JPEG"),
    ]:
        found = image_decode.decode(data)
        assert isinstance(found, str) and why in found, (why, found)


def test_an_artifact_png_with_magic_bytes_and_garbage_is_refused(
    github: FakeGitHub, tmp_path: Path
) -> None:
    saved = [_image(0, _png(4, 4, 0)), _image(1, _png(4, 4, 1))]
    folder = images.save(saved, tmp_path)
    key = saved[1].key
    (folder / key).write_bytes(image_decode.PNG_MAGIC + b"\x00" * 64 + b"not an image")
    with pytest.raises(ConfigError, match="not a PNG or JPEG image that decodes"):
        images.publish_saved(_client(github), folder, PlotSettings(), run_name="fork")
    assert github.git.refs.get("heads/mlci-plots") is None  # nothing was committed


# ---- part 2: bounded per run, streamed, bounded on the branch ----


def test_a_forks_artifact_commits_at_most_the_run_bound_one_image_at_a_time(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 images of about 1 MiB each (each within the 5 MiB bound): 20 MiB are committed, the
    rest is named in the report and never read; the files are read one at a time, each
    uploaded before the next is read."""
    pngs = [_image(i, _png(600, 600, i, level=0)) for i in range(30)]
    assert all(MiB < len(p.data) < 1.1 * MiB for p in pngs)
    folder = images.save(pngs, tmp_path)
    events: list[str] = []
    real_read = artifact.read_artifact_file

    def read(directory: Path, name: str, limit: int) -> bytes:
        events.append(f"read {name}")
        return real_read(directory, name, limit)

    monkeypatch.setattr(artifact, "read_artifact_file", read)
    client = _client(github)
    real_blob = client.create_blob

    def blob(content: bytes) -> str:
        events.append(f"blob {len(content)}")
        return real_blob(content)

    monkeypatch.setattr(client, "create_blob", blob)
    links, alts = images.publish_saved(client, folder, PlotSettings(), run_name="fork")
    assert links.uploaded_bytes <= images.MAX_RUN_BYTES == 20 * MiB
    committed = github.git.files("mlci-plots")
    assert sum(len(b) for b in committed.values()) == links.uploaded_bytes
    assert sum(len(b) for b in github.git.blobs.values()) == links.uploaded_bytes
    shown = [p for p in pngs if p.key in links.urls]
    assert len(shown) == 19 and shown == pngs[:19]  # in order, up to the bound
    assert set(links.left_out) == {p.key for p in pngs[19:]}
    # one file read, then its blob sent, then the next: never two images held
    assert events[0] == f"read {images.MANIFEST}"
    pairs = events[1:]
    assert len(pairs) == 2 * 19
    for i, p in enumerate(pngs[:19]):
        assert pairs[2 * i : 2 * i + 2] == [f"read {p.key}", f"blob {len(p.data)}"]
    # the report names each image left out, by plot id, inertly, with the reason
    markdown = "\n".join(images.placeholder(p.key) for p in pngs)
    filled = images.fill(markdown, links, alts)
    assert filled.count("](https://github.com/") == 19
    assert "- no image of plot 29 (pr): left out: the images of one run may take 20 MiB" in filled
    assert "mlci-plot-image:" not in filled


def test_the_pr_job_names_the_images_past_the_run_bound() -> None:
    """In the PR job the same bound applies before anything is saved or published: the
    plots past it are named in the section, with the reason."""
    plots = tuple(
        Plot(f"p{i}", "vega", "custom", f"p{i}", spec={"mark": "point", "n": i}) for i in range(25)
    )
    big = {i: _png(600, 600, i, level=0) for i in range(25)}

    def render(jobs: Any) -> list[bytes | str]:
        return [big[job.source["n"]] for job in jobs]

    plotset = PlotSet("0" * 40, plots)
    kept, problems = plot_png.pngs(plotset, PlotSettings(), render=render)
    assert sum(len(p.data) for p in kept) <= images.MAX_RUN_BYTES
    assert [p.plot_id for p in kept] == [f"p{i}" for i in range(19)]
    assert set(problems) == {f"p{i}" for i in range(19, 25)}
    text = plot_render.section(plotset, None, PlotSettings(), problems, kept)
    assert "- no image: left out: the images of one run may take 20 MiB together" in text
    for i in range(19, 25):
        block = text.split(f"<summary>p{i} ")[1].split("</details>")[0]
        assert "left out: the images of one run" in block


def _tree_bytes(github: FakeGitHub, ref: str) -> int:
    return sum(len(b) for b in github.git.files(ref).values())


def _reachable_bytes(github: FakeGitHub) -> int:
    blobs: dict[str, int] = {}
    for commit in github.git.history("mlci-plots"):
        for content in github.git.files(commit).values():
            blobs[hashlib.sha256(content).hexdigest()] = len(content)
    return sum(blobs.values())


def test_the_images_branch_holds_a_bounded_number_of_bytes(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tree keeps the newest runs that fit in MAX_BRANCH_BYTES (here made small), however
    many keep_runs allows; dropping a run for its bytes starts the history again, so what the
    branch reaches stays bounded too. Every run folder, one named before sizes were included,
    is sized from the one listing of the branch's tree: no folder is listed on its own."""
    assert images_branch.MAX_BRANCH_BYTES // MiB == 100
    client = _client(github)
    legacy = bytes(3000)
    tree = client.create_tree([{"path": "mlci-plots/000001-legacy-1/a.png", "mode": "100644",
                                "type": "blob", "sha": client.create_blob(legacy)}])  # fmt: skip
    assert client.move_branch("mlci-plots", client.create_commit("old", tree, []), create=True)
    size = 2 * len(_png(40, 30, 0, level=0))  # about 7.4 kB a run, whatever its pixels
    bound = 3 * size + 100
    monkeypatch.setattr(images_branch, "MAX_BRANCH_BYTES", bound)
    settings = PlotSettings(keep_runs=20)
    names = []
    for n in range(7):
        run = [_image(i, _png(40, 30, 10 * n + i, level=0)) for i in range(2)]  # new images
        links = images.publish(client, run, settings, run_name=f"run {n}")
        names.append(sorted({p.split("/")[1] for p in github.git.files(str(links.commit))}))
        assert _tree_bytes(github, "mlci-plots") <= bound
        assert _reachable_bytes(github) <= 2 * bound
    assert names[1] == ["000001-legacy-1", f"000002-{size}b-run-0", f"000003-{size}b-run-1"]
    assert names[2] == [f"00000{n}-{size}b-run-{n - 2}" for n in (2, 3, 4)]  # the legacy out
    assert names[-1] == [f"00000{n}-{size}b-run-{n - 2}" for n in (6, 7, 8)]  # the newest 3
    assert github.requests_to("GET", r"/contents/") == []
    assert len(github.requests_to("GET", r"/git/trees/")) == 7  # one listing a run


def test_a_run_alone_larger_than_the_branch_bound_still_commits_only_itself(
    github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(github)
    monkeypatch.setattr(images_branch, "MAX_BRANCH_BYTES", 10)
    for n in range(3):
        run = [_image(0, _png(40, 30, n, level=0))]
        images.publish(client, run, PlotSettings(), run_name=f"r{n}")
    assert sorted({p.split("/")[1] for p in github.git.files("mlci-plots")}) == [
        f"000003-{len(run[0].data)}b-r2"
    ]
    assert len(github.git.history("mlci-plots")) == 1
