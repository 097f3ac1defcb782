"""Drift and personal-data scans: pure functions on frames, then in a real PR check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlci.checks import drift, privacy
from mlci.report.data_sections import pii_section


def _frame(seed: int = 0, n: int = 500, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1.0, n), "g": rng.choice(["a", "b"], n)})


def test_identical_data_has_exactly_zero_drift() -> None:
    f = _frame()
    result = drift.compare_frames("d.csv", f, f.copy(), drift.Thresholds())
    assert [(c.column, c.score, c.ks) for c in result.columns] == [
        ("x", 0.0, 0.0),
        ("g", 0.0, None),
    ]
    assert not result.drifted


def test_a_shifted_column_is_found_and_noise_is_not() -> None:
    base = _frame(seed=1)
    noise = drift.compare_frames("d.csv", base, _frame(seed=2), drift.Thresholds())
    assert not noise.drifted, noise
    shifted = drift.compare_frames("d.csv", base, _frame(seed=2, shift=1.0), drift.Thresholds())
    assert [c.column for c in shifted.drifted] == ["x"]
    x = shifted.drifted[0]
    assert x.score > 0.2 and x.ks > 0.3 and x.ks_pvalue < 1e-6


def test_new_and_vanished_categories() -> None:
    base = pd.DataFrame({"g": ["a"] * 50 + ["b"] * 50})
    head = pd.DataFrame({"g": ["a"] * 50 + ["c"] * 50})
    (col,) = drift.compare_frames("d.csv", base, head, drift.Thresholds()).columns
    assert col.new == ("c",) and col.vanished == ("b",) and col.drifted
    assert col.score == pytest.approx(0.5)


def test_thresholds_reject_unknown_keys() -> None:
    from mlci.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        drift.Thresholds.from_mapping({"pis": 0.1})
    assert "unknown key 'pis'" in err.value.message
    assert "did you mean 'psi'" in err.value.one_line()


SECRETS = {
    "email": "jane.doe@example.org",
    "phone": "+44 20 7946 0958",
    "card": "4111 1111 1111 1111",
    "national_id": "078-05-1120",
}


def test_planted_personal_data_is_found_and_never_shown() -> None:
    notes = ["fine", "all good", *[f"contact {v} today" for v in SECRETS.values()]]
    frame = pd.DataFrame(
        {"note": notes, "n": range(len(notes)), "ok_email": ["x@y.io"] * len(notes)}
    )
    findings = privacy.scan_frame("d.csv", frame, allow=["ok_email"])
    assert {(f.column, f.kind, f.count) for f in findings} == {
        ("note", "email", 1),
        ("note", "phone", 1),
        ("note", "card", 1),
        ("note", "national_id", 1),
    }
    text = pii_section(privacy.PiiReport(findings, block=True)) + repr(findings)
    for value in SECRETS.values():
        assert value not in text


def test_card_numbers_need_a_valid_luhn_checksum() -> None:
    assert privacy.luhn("4111111111111111")
    assert not privacy.luhn("4111111111111112")
    frame = pd.DataFrame({"ref": ["order 4111 1111 1111 1112"]})
    assert privacy.scan_frame("d.csv", frame) == ()


def test_ks_matches_the_definition_on_ties_and_small_samples() -> None:
    """The KS statistic is the largest gap between the two empirical CDFs over every value
    either sample holds: computed here the plain way (every point of both, unsorted) and
    compared with drift.ks on awkward inputs (ties, one-element samples, identical samples)."""
    import numpy as np

    from mlci.checks import drift

    rng = np.random.default_rng(7)
    for trial in range(600):
        na, nb = (int(n) for n in rng.integers(1, 40, 2))
        kind = trial % 4
        if kind == 0:
            a, b = rng.normal(size=na), rng.normal(size=nb)
        elif kind == 1:
            a, b = rng.integers(0, 4, na).astype(float), rng.integers(0, 4, nb).astype(float)
        elif kind == 2:
            a = rng.integers(0, 3, na).astype(float)
            b = a.copy()
        else:
            a, b = np.round(rng.normal(size=na), 1), np.round(rng.normal(size=nb) + 0.3, 1)
        grid = np.concatenate([a, b])
        want = max(abs((a <= x).mean() - (b <= x).mean()) for x in grid)
        got, p = drift.ks(a, b)
        assert got == pytest.approx(want, abs=1e-12), (a, b)
        assert 0.0 <= p <= 1.0 and (got > 0.0 or p == 1.0)
