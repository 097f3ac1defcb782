"""GitHub's own Markdown renderer (Debian's ``cmark-gfm``, with GitHub's extensions) to judge
what a reader of a comment, an issue or a summary sees. ``.ci/run`` installs it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

EXTENSIONS = ("table", "autolink", "strikethrough", "tagfilter")


def render(markdown: str) -> str:
    """The HTML GitHub would make of ``markdown`` before its sanitiser (``--unsafe``: raw HTML
    kept, so a test sees everything data could have turned into markup)."""
    exe = shutil.which("cmark-gfm")
    if exe is None:
        pytest.skip("cmark-gfm is not installed (Debian package cmark-gfm; .ci/run installs it)")
    args = [exe, "--unsafe", *(a for ext in EXTENSIONS for a in ("-e", ext))]
    return subprocess.run(args, input=markdown, capture_output=True, text=True, check=True).stdout


def assert_inert(html: str, *live: str) -> None:
    """No tag that data could have made (image, link, raw HTML) and none of ``live`` (a
    mention, a reference) left as it was written."""
    for tag in ("<img", "<a ", "<script", "<iframe", "<svg", "<details"):
        assert tag not in html.lower(), (tag, html)
    for text in live:
        assert text not in html, (text, html)
