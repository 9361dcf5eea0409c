"""Explanations and thresholds from money: known answers on synthetic data, and the pages."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlcore.outputs import load_test_outputs
from tests.conftest import open_page as _app
from tests.conftest import start_worker, use_app_router_in_apptest

use_app_router_in_apptest()


def signal_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """One column drives the target, one category helps a little, one column is pure noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    noise = rng.normal(size=n)
    group = rng.choice(["a", "b", "c"], n)
    target = np.where(2.0 * signal + 0.8 * (group == "a") + rng.normal(0, 0.3, n) > 0, "yes", "no")
    return pd.DataFrame({"signal": signal.round(4), "noise": noise.round(4), "group": group, "target": target})


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """A finished binary run on ``signal_frame`` (MLP and every baseline), trained in-process."""
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("explain") / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, signal_frame().to_csv(index=False).encode(), "signal.csv")
    spec = RunSpec(data=DataSpec(record.id, "target"), template="mlp", train=TrainSpec(epochs=8, batch_size=32))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    assert store.run(run_id).status == "done", store.run(run_id).message
    return home, store, run_id


def test_permutation_importance_ranks_the_driving_column_first_for_deep_and_baseline(explained):
    from dlcore import explain

    _, store, run_id = explained
    for model in ("mlp", "random_forest"):
        result = explain.explain_run(store, run_id, model)
        ranked = [d["feature"] for d in result["importance"]]
        assert ranked[0] == "signal", (model, result["importance"])
        by_name = {d["feature"]: d for d in result["importance"]}
        assert by_name["signal"]["mean"] > 0.2  # AUC drops a lot without it
        assert abs(by_name["noise"]["mean"]) < 0.05 and by_name["noise"]["mean"] < by_name["signal"]["mean"] / 5
        assert explain.load_global(store, run_id, model)["importance"] == result["importance"]  # kept with the run


def test_partial_dependence_rises_with_the_driving_column(explained):
    from dlcore import explain

    _, store, run_id = explained
    result = explain.load_global(store, run_id, "mlp") or explain.explain_run(store, run_id, "mlp")
    signal = next(d for d in result["dependence"] if d["feature"] == "signal")
    average = np.asarray(signal["average"][0])
    assert len(signal["grid"]) == len(average) >= 10
    assert average[-1] - average[0] > 0.5  # probability of "yes" climbs from low to high across the grid
    assert np.all(np.diff(signal["grid"]) > 0)
    ice = np.asarray(signal["individual"][0])
    assert ice.shape[1] == len(signal["grid"]) and ice.shape[0] >= 10
    assert np.allclose(ice.mean(axis=0), average, atol=0.15)  # a sample of the curves behind the average
    assert "noise" not in [d["feature"] for d in result["dependence"][:1]]


@pytest.mark.slow
def test_a_column_of_whole_numbers_gets_its_dependence_too(tmp_path):
    """A count or months of tenure (whole numbers) drives the target: its dependence is drawn
    (scikit-learn refuses partial dependence on integer data unless it is given floats)."""
    from dlcore import datasets, explain, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    rng = np.random.default_rng(5)
    tenure = rng.integers(0, 60, 400)
    frame = pd.DataFrame({"tenure_months": tenure, "plan": rng.choice(["basic", "pro"], 400),
                          "churn": np.where(tenure + rng.normal(0, 8, 400) < 20, "yes", "no")})
    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "crm.csv")
    spec = RunSpec(data=DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(epochs=2, batch_size=32))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    result = explain.explain_run(store, run_id, "logistic_regression")
    assert result["importance"][0]["feature"] == "tenure_months"
    tenure_dependence = next(d for d in result["dependence"] if d["feature"] == "tenure_months")
    average = np.asarray(tenure_dependence["average"][0])
    assert average[0] - average[-1] > 0.3  # churn is likelier for short tenure


def test_one_row_explanation_adds_up_and_names_the_driver(explained):
    from dlcore import explain
    from dlcore.scoring import load_scorer

    _, store, run_id = explained
    row = pd.DataFrame([{"signal": 2.5, "noise": 0.0, "group": "b"}])
    result = explain.explain_row_of_run(store, run_id, "mlp", row)
    p = load_scorer(store, run_id, "mlp").output(row)[0][0, 1]
    assert result["prediction"] == pytest.approx(p, abs=1e-6) and result["class"] == "yes"
    total = sum(d["contribution"] for d in result["contributions"])
    assert result["base"] + total == pytest.approx(result["prediction"], abs=1e-4)  # Shapley values add up
    top = result["contributions"][0]
    assert top["feature"] == "signal" and top["value"] == "2.5" and top["contribution"] > 0.2
    assert result["sentence"].startswith(f"{p:.0%} likely to be “yes”, mostly because signal is 2.5, which adds ")
    json.dumps(result)

    low = explain.explain_row_of_run(store, run_id, "random_forest", test_row=0)
    assert low["test_row"] == 0 and low["actual"] in ("yes", "no")
    assert low["base"] + sum(d["contribution"] for d in low["contributions"]) == pytest.approx(low["prediction"], abs=1e-4)


def test_profit_curve_and_best_threshold_match_a_hand_computed_case():
    from dlcore.handover import decision

    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    money = decision.Money(value_tp=100, cost_fp=30, cost_fn=10, value_tn=0, currency="$")
    curve = decision.profit_curve(y, p, money)
    profits = dict(zip(curve["threshold"].round(2), curve["profit"]))
    # flag none: 3 misses = -30; >=0.9: 100 - 20 = 80; >=0.8: 200 - 10 = 190; >=0.7: 200 - 30 - 10 = 160;
    # >=0.4: 300 - 30 = 270; >=0.3: 300 - 60 = 240; >=0.1 (all): 300 - 90 = 210
    assert profits == {1.0: -30, 0.9: 80, 0.8: 190, 0.7: 160, 0.4: 270, 0.3: 240, 0.1: 210}
    assert decision.best_threshold(curve) == pytest.approx(0.4)
    assert decision.confusion_at(y, p, 0.4) == {"tp": 3, "fp": 1, "fn": 0, "tn": 2}
    low, high = decision.profit_interval(y, p, 0.4, money)
    assert low <= 270 / 6 <= high
    g = decision.gains(y, p, points=7)
    assert g["gain"].iloc[-1] == 1.0 and g["gain"].iloc[2] == pytest.approx(2 / 3)  # top 2 of 6 rows: 2 of 3 positives
    assert g["lift"].iloc[2] == pytest.approx(2.0)
    assert money.money(1234.5) == "$1,234" and money.money(-5) == "-$5.00"
    with pytest.raises(decision.SpecError):
        decision.Money(0, 0, 0, 0)


def test_saved_threshold_adds_a_decision_column_to_scored_files(explained):
    from dlcore import jobs
    from dlcore.handover import decision

    _, store, run_id = explained
    chosen = decision.Decision(model="mlp", threshold=0.8, money=decision.Money(), positive="yes", negative="no",
                               profit_per_row=1.0)
    decision.save_decision(store, run_id, chosen)
    assert decision.load_decision(store, run_id) == decision.Decision.from_dict(
        {**chosen.to_dict(), "saved_at": decision.load_decision(store, run_id).saved_at})
    rows = pd.DataFrame({"signal": [-2.0, 0.1, 3.0], "noise": [0, 0, 0], "group": ["b", "a", "c"]})
    for model, has_column in (("mlp", True), ("logistic_regression", False)):
        scoring_id = jobs.submit_scoring(store, run_id, model, rows.to_csv(index=False).encode(), "new.csv")
        assert store.claim_next_scoring() == scoring_id
        jobs.execute_scoring(store, scoring_id)
        scored = pd.read_csv(store.scoring_dir(scoring_id) / "scored.csv", encoding="utf-8-sig")
        assert ("decision" in scored.columns) is has_column
        if has_column:
            expected = np.where(scored["probability yes"] >= 0.8, "yes", "no")
            assert scored["decision"].tolist() == expected.tolist()
            assert scored["decision"].tolist()[0] == "no" and scored["decision"].tolist()[2] == "yes"
            assert any("threshold saved" in note for note in store.scoring(scoring_id).summary["notes"])
    (store.run_dir(run_id) / "decision.json").unlink()


def test_explain_page_from_a_link_shows_importance_and_explains_a_row_in_a_worker(explained):
    from dlcore.outputs import best_model

    home, store, run_id = explained
    worker = start_worker(home, "--only", "score")
    try:
        at = _app(home, "explain", run=run_id)
        assert not at.exception
        assert at.selectbox[0].value == best_model(store.run(run_id).result)
        at.selectbox[0].select("logistic_regression").run()
        for _ in range(120):  # the global explanation is worked out by the worker, then drawn
            if any("leans on it most" in m.value for m in at.markdown):
                break
            at.run()
        text = "\n".join(m.value for m in at.markdown)
        assert "Shuffling **signal** costs" in text and "leans on it most" in text
        assert any("noise" in m.value and "no clear difference" in m.value for m in at.markdown)

        at.radio[0].set_value("typed").run()
        form_inputs = {n.label: n for n in at.number_input}
        form_inputs["signal"].set_value(3.0)
        at.button(key="FormSubmitter:explain-row-Explain this row").click().run(timeout=120)
        assert not at.exception
        sentence = at.success[0].value
        assert "likely to be “yes”, mostly because signal is 3, which adds" in sentence
        explanation_id = at.query_params["explanation"][0] if isinstance(at.query_params["explanation"], list) \
            else at.query_params["explanation"]
        # The link with the explanation's id shows the same explanation to a colleague.
        again = _app(home, "explain", run=run_id, explanation=explanation_id)
        assert again.success[0].value == sentence
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_decide_page_finds_the_best_threshold_and_saves_it_for_predict(explained):
    from dlcore.handover import decision

    home, store, run_id = explained
    at = _app(home, "decide", run=run_id)
    assert not at.exception
    # "no" is the rarer class here and comes preselected; the analyst acts on "yes".
    next(s for s in at.selectbox if s.label == "The class you act on").set_value("yes").run()
    inputs = {n.label.split(",")[0]: n for n in at.number_input}
    inputs["Right flag: a real “yes” you act on"].set_value(200.0)
    inputs["False alarm: acting on a row that did not need it"].set_value(50.0)
    at.run()
    best_metric = next(m for m in at.metric if m.label == "Best threshold for this money")
    y, outputs, _ = load_test_outputs(store, run_id)
    model = at.selectbox[0].value
    expected = decision.best_threshold(decision.profit_curve(y, outputs[model][:, 1], decision.Money(200, 50, 0, 0)))
    assert best_metric.value == f"{expected:.3f}"
    assert at.slider[0].value == pytest.approx(round(expected, 3))
    rows = next(n for n in at.number_input if n.label.startswith("Rows you would score in a month"))
    rows.set_value(5000).run()
    at.button[0].click().run()
    saved = decision.load_decision(store, run_id)
    assert saved.model == model and saved.threshold == pytest.approx(round(expected, 3))
    assert saved.money.value_tp == 200 and saved.money.cost_fp == 50 and saved.positive == "yes"
    assert saved.rows_per_month == 5000
    assert any("Saved." in s.value for s in at.success)
    # Opened again (a reload, a colleague's link): the month's rows come back with the money.
    again = _app(home, "decide", run=run_id)
    assert next(n for n in again.number_input if n.label.startswith("Rows you would score in a month")).value == 5000
    (store.run_dir(run_id) / "decision.json").unlink()


def test_the_best_threshold_is_a_round_number_that_flags_the_same_rows():
    """The page shows and saves the best threshold with few decimals; rounding 0.0959 to 0.096 used
    to leave out the row it was chosen for (an analyst saw "best" earn less than acting on every row)."""
    from dlcore.handover import decision

    money = decision.Money(value_tp=300, cost_fp=50, cost_fn=0, value_tn=0)
    y = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    for p, expected in ((np.array([0.0959, 0.0951, 0.7, 0.2, 0.05, 0.4, 0.01, 0.3]), 0.0959),
                        (np.array([0.0959, 0.05, 0.7, 0.2, 0.04, 0.4, 0.01, 0.3]), 0.09)):
        curve = decision.profit_curve(y, p, money)
        best = decision.best_threshold(curve)
        assert best == expected
        counts = decision.confusion_at(y, p, best)
        assert money.profit(counts["tp"], counts["fp"], counts["fn"], counts["tn"]) == curve["profit"].max()
