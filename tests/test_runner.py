"""A whole run in-process: the deep model and the baselines on one split, one metric path."""

import numpy as np
import pytest

from dlcore import datasets, runner, splits
from dlcore.outputs import load_test_outputs
from dlcore.scoring import load_scorer
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import churn_frame, regression_frame


def _run(store, frame, target, **train):
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "data.csv")
    spec = RunSpec(data=DataSpec(record.id, target), template=train.pop("template", "mlp"),
                   train=TrainSpec(**{"epochs": 4, "batch_size": 32, **train}))
    run_id = runner.submit(store, spec)
    assert store.claim_next_run() == run_id
    runner.execute_run(store, run_id)
    return store.run(run_id)


def test_split_is_reproducible_disjoint_and_stratified():
    y = np.array([0] * 80 + [1] * 20)
    a = splits.split_indices(y, "binary", 0.2, 0.2, seed=3)
    b = splits.split_indices(y, "binary", 0.2, 0.2, seed=3)
    c = splits.split_indices(y, "binary", 0.2, 0.2, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    train, val, test = a
    assert len(set(train) | set(val) | set(test)) == 100 and len(train) + len(val) + len(test) == 100
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert y[test].sum() == 4 and y[val].sum() == 4  # 20% positives in every part


@pytest.mark.slow
def test_binary_run_ranks_deep_model_against_every_baseline(store):
    run = _run(store, churn_frame(300), "churn", template="mlp_embed")
    assert run.status == "done", run.message
    assert (run.task, run.metric, run.higher_is_better) == ("binary", "roc_auc", True)
    board = run.result["leaderboard"]
    assert {r["model"] for r in board["rows"]} == {"mlp_embed", "dummy", "logistic_regression", "random_forest", "gradient_boosting"}
    assert [r["test_score"] for r in board["rows"]] == sorted((r["test_score"] for r in board["rows"]), reverse=True)
    dummy = next(r for r in board["rows"] if r["model"] == "dummy")
    assert dummy["test_score"] == pytest.approx(0.5)
    best = board["rows"][0]
    assert best["test_score"] > 0.7 and best["ci"][0] <= best["test_score"] <= best["ci"][1]
    assert len(store.epochs(run.id)) == run.result["deep"]["epochs_run"] >= 1
    assert run.result["rows"] == {"train": 180, "validation": 60, "test": 60, "dropped_missing_target": 0}
    assert board["verdicts"][0]["deep_model"] == "mlp_embed"
    # Scoring the training file again reproduces the saved test outputs of every model.
    y_true, outputs, rows = load_test_outputs(store, run.id)
    frame = datasets.load_frame(store, run.dataset_id)
    for model in ("mlp_embed", "random_forest"):
        out, _ = load_scorer(store, run.id, model).output(frame.iloc[rows])
        assert np.allclose(out, outputs[model], atol=1e-5)


@pytest.mark.slow
def test_regression_run_reports_rmse_in_the_targets_units(store):
    run = _run(store, regression_frame(240), "price", epochs=6)
    assert run.status == "done", run.message
    board = run.result["leaderboard"]
    assert run.task == "regression" and board["metric"] == "rmse" and board["higher_is_better"] is False
    dummy = next(r for r in board["rows"] if r["model"] == "dummy")
    ridge = next(r for r in board["rows"] if r["model"] == "ridge")
    assert ridge["test_score"] < 0.5 * dummy["test_score"]  # the linear signal is found
    assert dummy["test_score"] > 10_000  # in price units, not standardised ones
    live = store.epochs(run.id)
    assert live[0]["val_metric"] > 1_000  # the live RMSE is shown in price units too


@pytest.mark.slow
def test_a_stop_request_ends_training_but_the_run_is_still_evaluated(store):
    record, _ = datasets.register_bytes(store, churn_frame(300).to_csv(index=False).encode(), "data.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=200, patience=200)))
    store.claim_next_run()
    store.request_stop(run_id)  # asked before the first batch: training ends after one batch
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "stopped" and run.result["deep"]["stopped_by_user"]
    assert run.result["deep"]["epochs_run"] == 1
    assert len(run.result["leaderboard"]["rows"]) == 5


def test_a_one_class_target_is_refused_at_submit_with_a_plain_message(store):
    from dlcore.errors import DataError

    frame = churn_frame(100)
    frame["churn"] = "no"
    with pytest.raises(DataError, match="same value.*'no'"):
        _run(store, frame, "churn")
    assert store.list_runs() == []  # nothing queued, nothing to clean up
