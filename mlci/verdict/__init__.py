"""Judging: metrics, which direction is better, and the one outcome type."""
