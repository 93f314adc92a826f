"""Decay curves on hand-built points: ages ≥ 0 only, gaps kept as gaps, and a champion with
no closed label window after its cutoff reported as such (not as a negative age)."""

import math

import pandas as pd

from propensity_assets.lifecycle.monitoring import COLUMNS, decay_figure, decay_row, with_gaps


def _curves(rows: list[tuple]) -> pd.DataFrame:
    """(version, cutoff, as_of, age, value, at_training, degraded, is_champion) rows."""
    return pd.DataFrame(
        [{"model_version": v, "cutoff": c, "as_of": d, "age_days": a, "metric": "rmse", "value": x,
          "at_training": t, "degraded": g, "is_champion": ch} for v, c, d, a, x, t, g, ch in rows],
        columns=COLUMNS,
    )


# v2 (champion, cutoff 2017-06-02): weekly points at ages 0, 7, then 28 (ages 14 and 21 missing)
CURVES = _curves([
    ("2", "2017-06-02", "2017-06-02", 0, 10.0, 10.0, False, True),
    ("2", "2017-06-02", "2017-06-09", 7, 10.2, 10.0, False, True),
    ("2", "2017-06-02", "2017-06-30", 28, 10.5, 10.0, True, True),
    ("1", "2017-05-26", "2017-06-02", 7, 11.0, 10.8, False, False),
])


def test_a_missing_date_is_a_gap_not_a_line():
    points = with_gaps(CURVES[CURVES["model_version"] == "2"], step_days=7)
    assert points["age_days"].tolist() == [0, 7, 14, 28]
    assert points["value"].iloc[:2].tolist() == [10.0, 10.2] and points["value"].iloc[3] == 10.5
    assert math.isnan(points["value"].iloc[2])  # the break between age 7 and 28
    # Consecutive weekly points have no gap.
    assert with_gaps(CURVES[CURVES["model_version"] == "1"], 7)["age_days"].tolist() == [7]


def test_the_summary_is_the_champions_newest_out_of_sample_point():
    row = decay_row(CURVES, "ltv__beef")
    assert row == {
        "versions": "1, 2", "points": 4, "retraining_interval_days": "28", "champion": "2",
        "champion_at_training": 10.0, "champion_latest": 10.5, "champion_age_days": 28, "degraded": True,
    }


def test_no_closed_window_after_the_cutoff_gives_no_age():
    # The champion (v3, cutoff 2017-12-29, 90-day labels) has no labelled as_of after its cutoff.
    only_older = CURVES[CURVES["model_version"] == "1"]
    row = decay_row(only_older, "ltv__beef")
    assert "champion_age_days" not in row and row["degraded"] is False
    assert row["champion"] == "ltv__beef@champion: no labelled as_of after its cutoff yet"
    empty = decay_row(CURVES.iloc[:0], "ltv__beef")
    assert empty["points"] == 0 and empty["versions"] == "none"
    assert empty["champion"] == "ltv__beef: no labelled as_of after the cutoff of its champion or newest versions yet"


def test_the_figure_starts_at_age_zero():
    fig = decay_figure(CURVES, "ltv__beef: rmse by age", step_days=7)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0
    curves = {line.get_label(): list(line.get_xdata()) for line in ax.get_lines() if line.get_label().startswith("v")}
    assert curves == {"v1 (cutoff 2017-05-26)": [7], "v2 (cutoff 2017-06-02) champion": [0, 7, 14, 28]}
