"""PNGs of plots, rendered in Python from the Vega-Lite specification DVC fills (vl-convert:
no node, no browser, no remote data), cached by specification; image plots as they are (SVG
rasterised, never published as such)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlci.images import PlotImage, image_key, sniff
from mlci.plots import Plot, PlotSet, PlotSettings

MAX_IMAGE_ROWS = 50_000  # datapoints a PNG is rendered from


def pngs(
    plotset: PlotSet, settings: PlotSettings, cache_dir: Path | None = None
) -> tuple[list[PlotImage], dict[str, str]]:
    """PNGs of every shown plot (none when images are off), and why a plot has none.

    With ``cache_dir`` a chart is rendered once per specification (keyed by its hash), so a
    re-run of an unchanged check renders nothing."""
    images: list[PlotImage] = []
    problems: dict[str, str] = {}
    if settings.images == "off":
        return images, problems
    import vl_convert  # type: ignore[import-untyped, unused-ignore]

    for plot in plotset.shown():
        if plot.kind == "vega" and plot.spec:
            if len(plot.datapoints) > MAX_IMAGE_ROWS:
                problems[plot.id] = f"{len(plot.datapoints):,} points: too many for an image"
                continue
            digest = hashlib.sha256(json.dumps(plot.spec, sort_keys=True).encode()).hexdigest()
            cached = cache_dir / f"{digest}.png" if cache_dir else None
            if cached is not None and cached.is_file():
                images.append(PlotImage(image_key(plot.id, ""), plot.id, "", cached.read_bytes()))
                continue
            try:
                data = vl_convert.vegalite_to_png(
                    dict(plot.spec),
                    scale=1.0,
                    config={"background": "white"},
                    allowed_base_urls=[],  # no remote data or images: nothing leaves
                )
            except Exception as exc:
                problems[plot.id] = (
                    f"Vega-Lite could not render it: {str(exc).splitlines()[0][:150]}"
                )
                continue
            if cached is not None:
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_bytes(bytes(data))
            images.append(PlotImage(image_key(plot.id, ""), plot.id, "", bytes(data)))
        elif plot.kind == "image":
            for rev, path in sorted(plot.images.items()):
                img = _image_file(plot, rev, path.read_bytes(), vl_convert)
                if isinstance(img, str):
                    problems[plot.id] = img
                else:
                    images.append(img)
    return images, problems


def _image_file(plot: Plot, rev: str, data: bytes, vl_convert: Any) -> PlotImage | str:
    from mlci.images import MAX_IMAGE_BYTES

    kind = sniff(data)
    if kind is None and plot.id.lower().endswith(".svg"):
        try:  # an SVG is rasterised: SVG is never published as such
            data, kind = bytes(vl_convert.svg_to_png(data.decode("utf-8"), scale=1.0)), "png"
        except Exception as exc:
            return f"the SVG could not be rasterised: {str(exc).splitlines()[0][:150]}"
    if kind is None:
        return "only PNG, JPEG and SVG images are shown"
    if len(data) > MAX_IMAGE_BYTES:
        return f"the image is {len(data):,} bytes (limit {MAX_IMAGE_BYTES:,})"
    return PlotImage(image_key(plot.id, rev, f".{kind}"), plot.id, rev, data)
