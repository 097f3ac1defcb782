"""Data checks: pandera validation, drift, personal data, and their one cache."""
