"""The model a run recommends: what its verdict advises, not just the board's first row.

When the deep model (or an ensemble holding it) is first on the board but not clearly better than
the best baseline, the verdict says the simpler model is the safer choice: the pages, the CLI's
scoring, the report and the bundle picker open on that baseline, and say why.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from dlcore import datasets, evaluate
from dlcore.outputs import best_model
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import churn_frame, open_page, run_here


def _board(first: str, outcome: str, ensemble_folds=None, base_folds=None) -> dict:
    rows = {
        "mlp": {"model": "mlp", "family": "deep", "cv_score": 0.90, "cv_folds": [0.90, 0.91, 0.89, 0.90, 0.90]},
        "ensemble": {"model": "ensemble", "family": "ensemble", "cv_score": 0.91, "cv_folds": ensemble_folds},
        "logistic_regression": {"model": "logistic_regression", "family": "baseline", "cv_score": 0.895,
                                "cv_folds": base_folds or [0.89, 0.90, 0.89, 0.90, 0.89]},
        "random_forest": {"model": "random_forest", "family": "baseline", "cv_score": 0.88, "cv_folds": None},
        "dummy": {"model": "dummy", "family": "baseline", "cv_score": 0.5, "cv_folds": None},
    }
    order = [first] + [m for m in rows if m != first]
    return {"task": "binary", "higher_is_better": True, "confidence": 0.95, "rows": [rows[m] for m in order],
            "verdicts": [{"outcome": outcome, "deep_model": "mlp", "best_baseline": "logistic_regression"}]}


def test_the_verdict_decides_which_model_is_recommended():
    # A baseline first: it is the best and the simplest.
    assert evaluate.recommended(_board("logistic_regression", "worse")) == (
        "logistic_regression", "the best by cross-validation")
    # The deep model first and clearly better: it.
    assert evaluate.recommended(_board("mlp", "better")) == ("mlp", "the best by cross-validation")
    # The deep model first but not clearly better: the best baseline, with the verdict's reason.
    assert evaluate.recommended(_board("mlp", "not_clearly_better")) == (
        "logistic_regression", "recommended by the verdict: the deep model (MLP) is not clearly better than it, so "
                               "the simpler model is the safer choice")
    # The ensemble first, the deep model not clearly better, the ensemble's folds not clearly better either
    # (differences 0.01, 0.00, 0.01, -0.01, 0.01: an interval across zero).
    model, why = evaluate.recommended(_board("ensemble", "not_clearly_better",
                                             ensemble_folds=[0.90, 0.90, 0.90, 0.89, 0.90]))
    assert model == "logistic_regression"
    assert why.endswith("(ensemble (weighted average) scores highest by cross-validation)")
    # ... but clearly better on every fold by about 0.03: the ensemble stays.
    assert evaluate.recommended(_board("ensemble", "not_clearly_better",
                                       ensemble_folds=[0.92, 0.93, 0.92, 0.93, 0.92])) == (
        "ensemble", "the best by cross-validation, and clearly better than logistic regression on the folds")
    # Without folds (images): the deep model's verdict decides for the ensemble too.
    board = _board("ensemble", "worse")
    for row in board["rows"]:
        row["cv_score"] = row["cv_folds"] = None
    assert evaluate.recommended(board)[0] == "logistic_regression"
    # No baseline to compare with: the board's first.
    assert evaluate.recommended({**_board("mlp", "no_baseline"), "verdicts": [
        {"outcome": "no_baseline", "deep_model": "mlp", "best_baseline": None}]})[0] == "mlp"


@pytest.fixture
def not_clearly_better(store):
    """A finished table run whose board is then made to read: MLP first, not clearly better than
    logistic regression (what an analyst saw on a real table)."""
    record, _ = datasets.register_bytes(store, churn_frame(240).to_csv(index=False).encode(), "churn.csv")
    run = run_here(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=3, seed=1)))
    result = copy.deepcopy(run.result)
    board = result["leaderboard"]
    rows = {r["model"]: r for r in board["rows"]}
    board["rows"] = [rows["mlp"]] + [r for r in board["rows"] if r["model"] != "mlp"]
    board["verdicts"] = [{**board["verdicts"][0], "outcome": "not_clearly_better", "deep_model": "mlp",
                          "best_baseline": "logistic_regression",
                          "text": "The deep model (MLP) is not clearly better than the best baseline (logistic regression)."}]
    store.update_run(run.id, result=result)
    return store, store.run(run.id)


def test_pages_cli_and_report_open_on_the_model_the_verdict_recommends(not_clearly_better, tmp_path, capsys):
    store, run = not_clearly_better
    assert best_model(run.result) == "logistic_regression"
    why = evaluate.recommended(run.result["leaderboard"])[1]
    for page in ("predict", "explain"):
        at = open_page(store.home, page, run=run.id)
        assert not at.exception, at.exception
        picker = next(s for s in at.selectbox if s.label == "Model")
        assert picker.value == "logistic_regression" and picker.options[0].endswith("← recommended")
        assert next(o for o in picker.options if o.startswith("MLP")).endswith("← best on the test rows")
        assert f"Showing logistic regression, {why}." in [c.value for c in at.caption]
    at = open_page(store.home, "decide", run=run.id)
    assert not at.exception, at.exception
    assert next(s for s in at.selectbox if s.label == "Model to act on").value == "logistic_regression"
    at = open_page(store.home, "compare", run=run.id)
    assert not at.exception, at.exception
    assert next(s for s in at.selectbox if s.label == "Model to bundle").value == "logistic_regression"
    assert any(m.value.startswith("**The model to use: logistic regression**, recommended by the verdict")
               for m in at.markdown)

    # Scoring with no model named uses it, and the CLI says why.
    from dlcore import cli

    new = tmp_path / "new.csv"
    churn_frame(10, seed=3).drop(columns=["churn"]).to_csv(new, index=False)
    out = tmp_path / "scored.csv"
    assert cli.main(["predict", run.id, str(new), "-o", str(out)]) == 0
    assert f"note: scoring with logistic_regression, {why}" in capsys.readouterr().err
    assert len(pd.read_csv(out)) == 10

    from dlcore.handover.report import build_report

    html = build_report(store, run.id)
    assert "<b>The model to use: logistic regression</b>, recommended by the verdict" in html
    assert "Confusion matrix on the test rows of the model to use: logistic regression." in html
