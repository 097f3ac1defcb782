"""mlci: every pull request proves the model got better, not worse."""

from __future__ import annotations

__version__ = "0.1.0"
