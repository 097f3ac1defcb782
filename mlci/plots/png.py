"""PNGs of plots, rendered from the Vega-Lite specification DVC fills (vl-convert: no node,
no browser, no remote data) in a child process (:mod:`mlci.plots.child`: a renderer that
crashes or runs away costs the images, never the check), cached by specification; image plots
as they are (SVG rasterised, never published as such).

Every string of a specification (labels, class names, plot ids, field names) is cleaned before
it reaches the renderer: control characters (C0 but tab, newline and carriage return; DEL;
C1), lone surrogates and the non-characters U+FFFE/U+FFFF become U+FFFD, so XML (which the
renderer makes of text) can hold them. Every image, rendered or read, must decode as a PNG or
JPEG within the bounds of :mod:`mlci.report.images`; those past a run's bounds are named, not shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlci.plots import child as plot_child
from mlci.plots.child import Job
from mlci.plots.collect import Plot, PlotSet
from mlci.plots.legend import Legend, restyle
from mlci.report.images import MAX_IMAGE_BYTES, PlotImage, budget, image_key, problem, sniff
from mlci.settings.plots import PlotSettings

MAX_IMAGE_ROWS = 50_000  # datapoints a PNG is rendered from
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

Renderer = Callable[[Sequence[Job]], list[bytes | str]]


def clean(value: Any) -> Any:
    """``value`` (a specification, or any part of it) with every string, keys included, made
    safe for the renderer: unsafe characters replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSAFE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def pngs(
    plotset: PlotSet,
    settings: PlotSettings,
    cache_dir: Path | None = None,
    *,
    render: Renderer | None = None,
) -> tuple[list[PlotImage], dict[str, str]]:
    """PNGs of every shown plot (none when images are off), and why a plot has none. Charts
    are drawn in the report's colours, their revisions named as :mod:`mlci.plots.legend` says.

    With ``cache_dir`` a chart is rendered once per specification (keyed by its hash), so a
    re-run of an unchanged check renders nothing. ``render`` renders a batch of jobs (by
    default :func:`mlci.plots.child.render`: one child process for all of them)."""
    problems: dict[str, str] = {}
    if settings.images == "off":
        return [], problems
    slots: list[PlotImage | tuple[Plot, str, str, Job]] = []  # done, or (plot, rev, digest, job)
    legend = Legend.of(plotset.base_name, plotset.base, plotset.head_sha)
    for plot in plotset.shown():
        if plot.kind == "vega" and plot.spec:
            if len(plot.datapoints) > MAX_IMAGE_ROWS:
                problems[plot.id] = f"{len(plot.datapoints):,} points: too many for an image"
                continue
            spec = clean(restyle(plot.spec, plotset.revisions(), legend))
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
            cached = _cached(cache_dir, digest)
            if cached is not None:
                slots.append(PlotImage(image_key(plot.id, "", cached), plot.id, "", cached))
            else:
                slots.append((plot, "", digest, Job("vega-lite", spec)))
        elif plot.kind == "image":
            for rev, path in sorted(plot.images.items()):
                found = _image_file(plot, rev, path)
                if isinstance(found, str):
                    problems[plot.id] = found
                else:
                    slots.append(found)
    images = _rendered(slots, problems, cache_dir, render)
    kept, left_out = budget(images)
    for img in images:
        if img.key in left_out:
            problems.setdefault(img.plot_id, left_out[img.key])
    return kept, problems


def _rendered(
    slots: Sequence[PlotImage | tuple[Plot, str, str, Job]],
    problems: dict[str, str],
    cache_dir: Path | None,
    render: Renderer | None,
) -> list[PlotImage]:
    """Every slot as an image, in order: the jobs rendered in one batch (and cached)."""
    jobs = [s for s in slots if not isinstance(s, PlotImage)]
    batch = render or plot_child.render
    done = iter(batch([job for *_, job in jobs]) if jobs else [])
    images = []
    for slot in slots:
        if isinstance(slot, PlotImage):
            images.append(slot)
            continue
        plot, rev, digest, _job = slot
        data = next(done)
        why = data if isinstance(data, str) else problem(data)
        if isinstance(data, str) or why is not None:
            problems[plot.id] = data if isinstance(data, str) else f"the PNG is unusable: {why}"
            continue
        if cache_dir is not None and digest:
            cache_dir.mkdir(parents=True, exist_ok=True)
            (cache_dir / f"{digest}.png").write_bytes(data)
        images.append(PlotImage(image_key(plot.id, rev, data), plot.id, rev, data))
    return images


def _cached(cache_dir: Path | None, digest: str) -> bytes | None:
    """A PNG rendered before, if there is one that still decodes (the cache is in the work
    tree, so a pull request could have put anything there)."""
    if cache_dir is None:
        return None
    data = _bounded_read(cache_dir / f"{digest}.png")
    return data if isinstance(data, bytes) and problem(data) is None else None


def _bounded_read(path: Path) -> bytes | str:
    """The bytes of regular file ``path`` (not a symlink) of at most MAX_IMAGE_BYTES, checked
    before reading, or why not."""
    try:
        found = os.lstat(path)
    except OSError:
        return "the image file is missing"
    if not stat.S_ISREG(found.st_mode):
        return "the image is not a regular file"
    if found.st_size > MAX_IMAGE_BYTES:
        return f"the image is {found.st_size:,} bytes (limit {MAX_IMAGE_BYTES:,})"
    with open(path, "rb") as f:
        data = f.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        return f"the image is over {MAX_IMAGE_BYTES:,} bytes"
    return data


def _image_file(plot: Plot, rev: str, path: Path) -> PlotImage | tuple[Plot, str, str, Job] | str:
    """An image plot's file at ``rev``: a PNG or JPEG that decodes, an SVG to rasterise (in
    the child), or why it is not shown."""
    data = _bounded_read(path)
    if isinstance(data, str):
        return data
    kind = sniff(data)
    if kind is None and plot.id.lower().endswith(".svg"):
        try:  # an SVG is rasterised: SVG is never published as such
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return "the SVG is not UTF-8"
        return (plot, rev, "", Job("svg", clean(text)))
    if kind is None:
        return "only PNG, JPEG and SVG images are shown"
    why = problem(data)
    if why is not None:
        return f"not shown: {why}"
    return PlotImage(image_key(plot.id, rev, data, f".{kind}"), plot.id, rev, data)
