"""Adopting mlci: `mlci init` and `mlci demo`."""
