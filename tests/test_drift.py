"""Drift of a scored file against the training rows: the statistics, the sentence, no false
alarm on a plain resample (made-up data and real samples), a shift found and named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlcore.errors import DataError
from dlcore.monitor import charts, drift
from dlcore.monitor.drift import DriftReport, Reference, compare, psi

KINDS = {"mass": "number", "island": "category", "note": "text", "day": "date"}


def training(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["the", "bird", "was", "seen", "near", "the", "shore", "with", "a", "small", "group", "of",
                      "others", "on", "the", "rocks"])
    notes = [" ".join(rng.choice(words, rng.integers(4, 9))) for _ in range(n)]
    mass = rng.normal(4200, 800, n)
    mass[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame({"mass": mass, "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n, p=[.5, .3, .2]),
                         "note": notes, "day": pd.date_range("2021-01-01", periods=n, freq="h")})


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    same = psi(np.array([0.25] * 4), np.array([0.25] * 4))
    small = psi(np.array([0.25] * 4), np.array([0.3, 0.2, 0.25, 0.25]))
    big = psi(np.array([0.25] * 4), np.array([0.7, 0.1, 0.1, 0.1]))
    assert same == 0.0 and 0 < small < 0.05 < drift.PSI_DRIFT < big


@pytest.mark.parametrize("size", [30, 200, 3000])
def test_a_plain_resample_is_never_flagged(size):
    frame = training()
    ref = Reference.from_frame(frame, KINDS)
    flagged = [compare(ref, frame.sample(size, replace=True, random_state=seed)).drifted_columns for seed in range(25)]
    assert flagged == [[]] * 25
    assert "looks like the training data" in compare(ref, frame.sample(size, random_state=1)).sentence


def test_a_shifted_number_and_a_new_category_are_named_with_figures():
    frame = training()
    now = frame.sample(900, random_state=2).copy()
    now["mass"] += 2000
    now.loc[now.index[:300], "island"] = "Anvers"
    report = compare(Reference.from_frame(frame, KINDS), now)
    assert report.drifted_columns == ["mass", "island"] or report.drifted_columns == ["island", "mass"]
    mass = report.column("mass")
    assert mass.details["mean_current"] - mass.details["mean_reference"] == pytest.approx(2000, abs=120)
    assert "higher on average" in mass.words
    assert report.column("island").details["new_values"] == {"Anvers": 300}
    sentence = report.sentence
    assert sentence.startswith("This file differs from the training data in ")
    assert "a new value 'Anvers' in 33% of rows" in sentence and "mass (" in sentence
    assert sentence.endswith("the scores may be less reliable.")


def test_a_vanished_value_longer_texts_unknown_words_and_missing_shares():
    frame = training()
    ref = Reference.from_frame(frame, KINDS)
    now = frame.sample(800, random_state=3).copy()
    now["island"] = np.where(now["island"] == "Biscoe", "Dream", now["island"])
    assert "no 'Biscoe' at all" in compare(ref, now).column("island").words
    longer = frame.sample(800, random_state=4).copy()
    longer["note"] = longer["note"] + " " + longer["note"] + " " + longer["note"]
    column = compare(ref, longer).column("note")
    assert column.drifted and "words on average" in column.words
    foreign = frame.sample(800, random_state=5).copy()
    foreign["note"] = "zorblax quintessa " + foreign["note"]
    column = compare(ref, foreign).column("note")
    assert column.drifted and "never seen in training" in column.words
    gaps = frame.sample(800, random_state=6).copy()
    gaps.loc[gaps.index[:400], "mass"] = np.nan
    column = compare(ref, gaps).column("mass")
    assert column.drifted and column.words.startswith("missing in 5")
    later = frame.sample(800, random_state=7).copy()
    later["day"] = later["day"] + pd.Timedelta(days=400)
    assert "days later on average" in compare(ref, later).column("day").words


def test_a_million_rows_with_a_negligible_change_is_not_flagged():
    rng = np.random.default_rng(0)
    ref = Reference.from_frame(pd.DataFrame({"x": rng.normal(0, 1, 20000)}))
    now = pd.DataFrame({"x": rng.normal(0.15, 1, 1_000_000)})  # significant, but a small effect
    report = compare(ref, now)
    assert report.column("x").p_value < drift.P_DRIFT and report.column("x").psi < 0.05
    assert report.drifted_columns == []


def test_the_model_answers_are_compared_with_its_test_rows():
    rng = np.random.default_rng(1)
    p_test = rng.beta(2, 2, 3000)
    ref = Reference.from_frame(pd.DataFrame({"a": rng.normal(size=3000)}), predictions=np.c_[1 - p_test, p_test],
                               classes=["no", "yes"])
    p_now = np.clip(rng.beta(8, 1, 1000), 0, 1)
    report = compare(ref, pd.DataFrame({"a": rng.normal(size=1000)}), predictions=np.c_[1 - p_now, p_now],
                     classes=["no", "yes"])
    assert report.drifted_columns == []  # the inputs did not move
    assert report.column("prediction").drifted and "'yes' predicted for" in report.column("prediction").words
    assert report.sentence.startswith("The model answers differently on this file")
    same = rng.beta(2, 2, 1000)
    quiet = compare(ref, pd.DataFrame({"a": rng.normal(size=1000)}), predictions=np.c_[1 - same, same],
                    classes=["no", "yes"])
    assert [c.name for c in quiet.drifted] == []


@pytest.mark.parametrize("sample", ["tips", "wine"])
def test_real_samples_resampled_are_quiet_and_shifted_are_named(sample):
    if sample == "tips":
        import plotly.express as px

        frame = px.data.tips()
        column, factor = "total_bill", 1.8
    else:
        from sklearn.datasets import load_wine

        frame = load_wine(as_frame=True).frame
        column, factor = "alcohol", 1.25
    ref = Reference.from_frame(frame)
    for seed in range(10):
        assert compare(ref, frame.sample(len(frame), replace=True, random_state=seed)).drifted_columns == []
    moved = frame.sample(len(frame), replace=True, random_state=0).copy()
    moved[column] = moved[column] * factor
    report = compare(ref, moved)
    assert report.drifted_columns == [column]
    assert report.sentence.startswith(f"This file differs from the training data in {column} (")


def test_reports_and_references_round_trip_through_json_with_a_schema_version():
    frame = training(800)
    ref = Reference.from_frame(frame, KINDS)
    again = Reference.from_dict(json.loads(json.dumps(ref.to_dict())))
    now = frame.sample(300, random_state=1).assign(mass=lambda f: f["mass"] * 2)
    report = compare(again, now)
    raw = json.loads(json.dumps(report.to_dict()))
    assert raw["schema_version"] == drift.SCHEMA_VERSION and raw["drifted_columns"] == ["mass"]
    back = DriftReport.from_dict(raw)
    assert back.sentence == report.sentence and back.column("mass").psi == pytest.approx(report.column("mass").psi)
    with pytest.raises(DataError, match="schema version 99"):
        DriftReport.from_dict({**raw, "schema_version": 99})


def test_bad_input_is_refused_in_words():
    with pytest.raises(DataError, match="Unknown kind 'float'"):
        Reference.from_frame(pd.DataFrame({"a": [1.0]}), {"a": "float"})
    with pytest.raises(DataError, match="no rows"):
        compare(pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame({"a": []}))


def test_the_chart_puts_training_beside_this_file():
    frame = training(800)
    now = frame.sample(300, random_state=1).copy()
    now.loc[now.index[:150], "island"] = "Anvers"
    column = compare(Reference.from_frame(frame, KINDS), now).column("island")
    fig = charts.drift_chart(column)
    assert [t.name for t in fig.data] == ["training", "this file"]
    shares = dict(zip(fig.data[1].x, fig.data[1].y))
    assert shares["(new values)"] == pytest.approx(0.5)
    assert fig.layout.title.text == "island"
