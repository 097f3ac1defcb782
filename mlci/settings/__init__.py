"""Typed settings, read once: params.yaml's `mlci:` section, gates, trust keys."""
