"""On a schedule: the champion on fresh data, the living issue, the retraining PR."""
