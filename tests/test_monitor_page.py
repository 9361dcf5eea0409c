"""The Monitor page through AppTest, opened from a link: every scoring with its drift, the chosen
scoring's sentence and charts, the realized score and its alert (also on Predict and the Runs
list), and a run of another workspace answered as not found."""

from __future__ import annotations

import numpy as np
import pytest

from dlcore import datasets, evaluate, jobs, monitor
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import churn_frame, open_page, run_here

pytestmark = pytest.mark.slow


@pytest.fixture
def watched(store):
    """A run with a drifted scoring whose outcomes came back worse than promised, and a calm one."""
    record, _ = datasets.register_bytes(store, churn_frame(400).to_csv(index=False).encode(), "churn.csv")
    run = run_here(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=3)))
    model = monitor.model_in_use(store, run.id).model
    calm = jobs.submit_scoring(store, run.id, model, churn_frame(200, seed=4).to_csv(index=False).encode(), "april.csv")
    jobs.execute_scoring(store, calm)
    moved = churn_frame(300, seed=7)
    moved["charges"] = moved["charges"] + 60
    moved["churn"] = np.where(moved["churn"] == "yes", "no", "yes")
    drifted = jobs.submit_scoring(store, run.id, model, moved.to_csv(index=False).encode(), "may.csv")
    jobs.execute_scoring(store, drifted)
    outcome = monitor.record_outcomes(store, run.id, scoring_id=drifted)
    return run, calm, drifted, outcome


def store_of(home):
    from dlcore.store import Store

    return Store.open(home)


def test_the_monitor_page_lists_scorings_and_shows_the_chosen_ones_drift_and_outcome(home, watched):
    run, calm, drifted, outcome = watched
    at = open_page(home, "monitor", run=run.id, scoring=drifted)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["File"]) == ["may.csv", "april.csv"]
    assert list(table["Drift"]) == ["charges", "none"]
    assert all(f"scoring={s}" in link for s, link in zip([drifted, calm], table["Scoring"]))
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("This file differs from the training data in charges (") for w in warnings)
    errors = [e.value for e in at.error]
    assert outcome["sentence"] in errors  # the alert on top, and the chosen scoring's outcome
    keys = [c.key for c in at.get("plotly_chart")]
    # The realized score over time, then a chart per drifted column (the inputs, then the model's answers).
    assert keys[0] is None and keys[1] == f"drift-{drifted}-charges"
    assert len(keys) == 1 + len(monitor.load_drift(store_of(home), drifted).drifted)
    assert "Retrain on newer data" in [s.value for s in at.subheader]


def test_the_alert_shows_on_predict_and_the_runs_list(home, watched):
    run, _, _, outcome = watched
    at = open_page(home, "predict", run=run.id)
    assert outcome["sentence"] in [e.value for e in at.error]
    runs = open_page(home, "runs")
    assert runs.dataframe[0].value["At work"].iloc[0].startswith("⚠")


def test_a_scoring_of_another_run_or_an_unknown_run_is_not_found(home, watched):
    run, _, _, _ = watched
    at = open_page(home, "monitor", run="nope-nope-nope")
    assert any("No run with id 'nope-nope-nope'" in e.value for e in at.error)
    at = open_page(home, "monitor", run=run.id, scoring="unknown-id")
    assert any("No scoring job with id 'unknown-id'" in e.value for e in at.error)


def test_predict_opens_on_a_promoted_model_of_a_retrained_run_and_scores_with_it(home, store, watched):
    run, _, _, _ = watched
    newer, _ = datasets.register_bytes(store, churn_frame(400, seed=30).to_csv(index=False).encode(), "june.csv")
    challenger = run_here(store, RunSpec(DataSpec(newer.id, "churn"), train=TrainSpec(epochs=3)))
    promoted = monitor.promote(store, run.id, challenger.id)
    at = open_page(home, "predict", run=run.id)
    assert not at.exception
    picker = at.selectbox(key="predict-model")
    assert picker.value == "(model in use)"
    assert picker.format_func(picker.value) == (f"Model in use: {evaluate.display_name(promoted.model)}"
                                                f" of the retrained run {challenger.id}")
