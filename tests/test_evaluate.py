"""Tests of dlcore.evaluate: metric values by hand, the fast bootstrap against sklearn, verdicts."""

from __future__ import annotations

import json
import math
from typing import Callable

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    log_loss,
    roc_auc_score,
    root_mean_squared_error,
)

from dlcore.errors import DataError, SpecError
from dlcore.evaluate import (
    Leaderboard,
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_values,
    leaderboard,
    metrics_for,
    predicted_labels,
    primary_metric,
    score,
)
from dlcore.series.leaderboard import forecast_leaderboard


def probs(p1: list[float] | np.ndarray) -> np.ndarray:
    """Binary output from positive-class probabilities."""
    p1 = np.asarray(p1, dtype=float)
    return np.column_stack([1 - p1, p1])


def binary_case(n: int, signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities whose ranking quality grows with ``signal``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    return y, probs(s)


# --- metric tables ---------------------------------------------------------------------


def test_metric_tables_list_primary_first() -> None:
    assert [m.key for m in metrics_for("binary")] == [
        "roc_auc", "accuracy", "f1", "log_loss", "pr_auc",
    ]
    assert [m.key for m in metrics_for("multiclass")] == [
        "accuracy", "balanced_accuracy", "macro_f1", "log_loss",
    ]
    assert [m.key for m in metrics_for("regression")] == ["rmse", "mae", "r2"]
    assert primary_metric("regression").higher_is_better is False
    assert primary_metric("binary").key == "roc_auc"
    assert [m.key for m in metrics_for("forecast")] == ["mase", "mae", "rmse", "smape"]
    assert all(not m.higher_is_better for m in metrics_for("forecast"))
    assert primary_metric("forecast").title == "MASE"
    assert "seasonal naive" in primary_metric("forecast").explain
    for task in ("binary", "multiclass", "regression", "forecast"):
        assert all(m.explain.endswith(".") for m in metrics_for(task))


def test_unknown_task_names_the_allowed_ones() -> None:
    with pytest.raises(SpecError, match="binary, multiclass, regression"):
        metrics_for("ranking")


# --- metric values by hand -------------------------------------------------------------


def test_binary_metrics_by_hand() -> None:
    y = np.array([0, 0, 1, 1])
    out = probs([0.1, 0.4, 0.35, 0.8])
    m = score("binary", y, out)
    # Pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4.
    assert m["roc_auc"] == pytest.approx(0.75)
    # Predicted [0, 0, 0, 1]: 3 of 4 right.
    assert m["accuracy"] == pytest.approx(0.75)
    # tp=1, fp=0, fn=1 -> precision 1, recall 1/2 -> F1 = 2/3.
    assert m["f1"] == pytest.approx(2 / 3)
    expected_ll = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert m["log_loss"] == pytest.approx(expected_ll)
    # Ranked 0.8(+), 0.4(-), 0.35(+), 0.1(-): AP = 1/2 * 1 + 1/2 * 2/3.
    assert m["pr_auc"] == pytest.approx(0.5 + 1 / 3)


def test_multiclass_metrics_by_hand() -> None:
    y = np.array([0, 1, 2, 2])
    out = np.array([
        [0.7, 0.2, 0.1],
        [0.1, 0.3, 0.6],
        [0.2, 0.2, 0.6],
        [0.1, 0.1, 0.8],
    ])
    m = score("multiclass", y, out)
    assert m["accuracy"] == pytest.approx(3 / 4)
    # Recall per class: 1, 0, 1.
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)
    # F1 per class: 1, 0, 2*2/(2*2+1+0) = 0.8.
    assert m["macro_f1"] == pytest.approx((1 + 0 + 0.8) / 3)
    expected_ll = -(math.log(0.7) + math.log(0.3) + math.log(0.6) + math.log(0.8)) / 4
    assert m["log_loss"] == pytest.approx(expected_ll)


def test_regression_metrics_by_hand() -> None:
    m = score("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0]))
    # Errors 0, 1, 2.
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["mae"] == pytest.approx(1.0)
    # 1 - SSE / SST = 1 - 5 / 2.
    assert m["r2"] == pytest.approx(-1.5)


def test_log_loss_is_finite_for_a_confident_mistake() -> None:
    m = score("binary", np.array([1, 0]), probs([0.0, 0.0]))
    assert math.isfinite(m["log_loss"])
    assert m["log_loss"] == pytest.approx(-math.log(1e-15) / 2, rel=1e-3)


def test_log_loss_counts_classes_absent_from_the_sample() -> None:
    # Only class 0 present, but the probabilities have three columns: no error, right value.
    y = np.array([0, 0])
    out = np.array([[0.5, 0.25, 0.25], [0.8, 0.1, 0.1]])
    expected = -(math.log(0.5) + math.log(0.8)) / 2
    assert score("multiclass", y, out)["log_loss"] == pytest.approx(expected)


def test_undefined_metrics_are_nan_not_errors() -> None:
    one_class = score("binary", np.array([0, 0, 0]), probs([0.2, 0.7, 0.1]))
    assert math.isnan(one_class["roc_auc"])
    assert math.isnan(one_class["pr_auc"])
    assert math.isnan(score("binary", np.array([0, 0]), probs([0.1, 0.2]))["f1"])
    assert math.isnan(score("regression", np.array([2.0, 2.0]), np.array([1.0, 3.0]))["r2"])


def test_predicted_labels() -> None:
    assert predicted_labels("binary", probs([0.2, 0.7])).tolist() == [0, 1]
    assert predicted_labels("multiclass", np.eye(3)[[2, 0]]).tolist() == [2, 0]
    assert predicted_labels("regression", [1.5, 2.5]).tolist() == [1.5, 2.5]


@pytest.mark.parametrize(
    ("task", "y", "out", "match"),
    [
        ("binary", [0, 1], [0.2, 0.7], r"np.column_stack"),
        ("binary", [0, 2], probs([0.2, 0.7]), r"0\.\.1"),
        ("binary", ["no", "yes"], probs([0.2, 0.7]), r"encode the labels"),
        ("multiclass", [0, 1], np.ones((3, 3)) / 3, r"\(2, number of classes\)"),
        ("regression", [1.0, 2.0], [1.0], r"shape \(2,\)"),
        ("regression", [1.0, 2.0], [1.0, np.nan], r"missing or infinite"),
        ("binary", [], np.zeros((0, 2)), r"empty"),
    ],
)
def test_bad_outputs_say_what_is_wrong(task: str, y: list, out: object, match: str) -> None:
    with pytest.raises(DataError, match=match):
        score(task, np.array(y), out)


# --- bootstrap -------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_auc_equals_sklearn_on_the_same_resamples(ties: bool) -> None:
    y, out = binary_case(60, 0.7, seed=1)
    # Few positives, so some resamples hold no positive at all: both sides must give nan.
    y[np.flatnonzero(y == 1)[3:]] = 0
    if ties:
        out = probs(np.round(out[:, 1], 1))
    idx = bootstrap_indices(60, 300, seed=5)
    fast = bootstrap_values("binary", "roc_auc", y, out, n_boot=300, seed=5)
    slow = np.array([
        roc_auc_score(y[r], out[r, 1]) if np.unique(y[r]).size == 2 else np.nan for r in idx
    ])
    assert np.isnan(slow).any()
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    np.testing.assert_allclose(fast[~np.isnan(fast)], slow[~np.isnan(slow)], rtol=0, atol=1e-9)


def test_vectorised_auc_on_constant_scores_is_one_half() -> None:
    y = np.array([0, 1] * 20)
    values = bootstrap_values("binary", "roc_auc", y, probs(np.full(40, 0.3)), n_boot=50)
    np.testing.assert_allclose(values, 0.5)


@pytest.mark.parametrize(
    ("task", "key", "reference"),
    [
        ("multiclass", "accuracy", lambda y, o: accuracy_score(y, o.argmax(1))),
        ("multiclass", "log_loss", lambda y, o: log_loss(y, o, labels=[0, 1, 2])),
        ("regression", "rmse", root_mean_squared_error),
        ("regression", "mae", lambda y, o: np.abs(y - o).mean()),
    ],
)
def test_vectorised_means_equal_sklearn_on_the_same_resamples(
    task: str, key: str, reference: Callable[[np.ndarray, np.ndarray], float]
) -> None:
    rng = np.random.default_rng(2)
    if task == "multiclass":
        y, out = rng.integers(0, 3, 80), rng.dirichlet(np.ones(3), 80)
    else:
        y = rng.normal(size=80)
        out = y + rng.normal(size=80)
    fast = bootstrap_values(task, key, y, out, n_boot=100, seed=3)
    slow = [reference(y[r], out[r]) for r in bootstrap_indices(80, 100, seed=3)]
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)


def test_metrics_without_a_vectorised_form_are_resampled_by_loop() -> None:
    y, out = binary_case(50, 1.0, seed=4)
    values = bootstrap_values("binary", "pr_auc", y, out, n_boot=20, seed=0)
    first = bootstrap_indices(50, 20, seed=0)[0]
    assert values[0] == pytest.approx(score("binary", y[first], out[first])["pr_auc"])


def test_resamples_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import dlcore.evaluate.metrics as ev

    before = bootstrap_indices(100, 30, seed=9)
    monkeypatch.setattr(ev, "_BLOCK_CELLS", 300)
    np.testing.assert_array_equal(bootstrap_indices(100, 30, seed=9), before)


def test_ci_contains_the_estimate_repeats_and_narrows_with_more_rows() -> None:
    y, out = binary_case(4000, 0.8, seed=6)
    point = score("binary", y, out)["roc_auc"]
    small = bootstrap_ci("binary", "roc_auc", y[:200], out[:200], n_boot=400, seed=1)
    large = bootstrap_ci("binary", "roc_auc", y, out, n_boot=400, seed=1)
    assert large[0] < point < large[1]
    assert (large[1] - large[0]) < (small[1] - small[0]) / 2
    assert bootstrap_ci("binary", "roc_auc", y, out, n_boot=400, seed=1) == large
    assert bootstrap_ci("binary", "roc_auc", y, out, n_boot=400, seed=2) != large


def test_ci_skips_undefined_resamples() -> None:
    y = np.array([1] + [0] * 19)
    lo, hi = bootstrap_ci("binary", "roc_auc", y, probs(np.linspace(0, 1, 20)[::-1]), n_boot=200)
    assert 0.0 <= lo <= hi <= 1.0


@pytest.mark.parametrize(("n_boot", "confidence"), [(0, 0.95), (2.5, 0.95), (100, 95)])
def test_bootstrap_settings_are_checked(n_boot: object, confidence: float) -> None:
    y, out = binary_case(20, 1.0, seed=0)
    with pytest.raises(SpecError):
        bootstrap_ci("binary", "roc_auc", y, out, n_boot=n_boot, confidence=confidence)


# --- leaderboard and verdicts ----------------------------------------------------------


@pytest.fixture(scope="module")
def binary_board() -> Leaderboard:
    y, weak = binary_case(1500, 0.3, seed=10)
    rng = np.random.default_rng(11)
    # The same rows with a stronger signal: a deep model that is clearly better.
    strong = probs(1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(size=y.size)))))
    noise = probs(rng.uniform(size=y.size))
    return leaderboard(
        "binary",
        y,
        {"dummy": probs(np.full(y.size, y.mean())), "logistic": weak, "mlp": strong,
         "copy": weak.copy(), "cnn": noise},
        families={"dummy": "baseline", "logistic": "baseline", "mlp": "deep", "copy": "deep",
                  "cnn": "deep"},
        fit_seconds={"mlp": 3.5},
        n_boot=300,
    )


def test_rows_are_ranked_best_first_with_their_intervals(binary_board: Leaderboard) -> None:
    assert [r.model for r in binary_board.rows][:2] == ["mlp", "logistic"]
    assert binary_board.rows[-1].model in {"dummy", "cnn"}
    scores = [r.test_score for r in binary_board.rows]
    assert scores == sorted(scores, reverse=True)
    for r in binary_board.rows:
        assert r.metrics["roc_auc"] == r.test_score
        assert r.ci[0] <= r.test_score <= r.ci[1]
    assert binary_board.rows[0].fit_seconds == 3.5
    assert binary_board.rows[1].fit_seconds is None
    board = binary_board
    assert (board.metric, board.metric_title, board.n_test) == ("roc_auc", "ROC AUC", 1500)


def test_verdicts_better_same_and_worse(binary_board: Leaderboard) -> None:
    by_model = {v.deep_model: v for v in binary_board.verdicts}
    assert set(by_model) == {"mlp", "copy", "cnn"}
    assert all(v.best_baseline == "logistic" for v in by_model.values())

    better = by_model["mlp"]
    assert better.outcome == "better"
    assert better.diff_ci[0] > 0
    assert better.text.startswith(
        "The deep model (MLP) is better than the best baseline (logistic): ROC AUC"
    )
    rows = {r.model: r for r in binary_board.rows}
    assert better.diff == pytest.approx(rows["mlp"].test_score - rows["logistic"].test_score)

    same = by_model["copy"]
    assert same.outcome == "not_clearly_better"
    assert same.diff == 0 and same.diff_ci == (0.0, 0.0)
    assert "includes zero" in same.text and "safer choice" in same.text

    assert by_model["cnn"].outcome == "worse"
    assert by_model["cnn"].diff_ci[1] < 0


def test_regression_verdict_uses_lower_is_better() -> None:
    rng = np.random.default_rng(12)
    y = rng.normal(size=800)
    good, bad = y + rng.normal(scale=0.5, size=800), y + rng.normal(scale=0.8, size=800)
    board = leaderboard(
        "regression", y,
        {"ridge": bad, "mean": np.full(800, y.mean()), "mlp": good},
        families={"ridge": "baseline", "mean": "baseline", "mlp": "deep"},
        n_boot=300,
    )
    assert [r.model for r in board.rows] == ["mlp", "ridge", "mean"]
    (verdict,) = board.verdicts
    rmse = {r.model: r.test_score for r in board.rows}
    assert verdict.outcome == "better"
    assert verdict.diff == pytest.approx(rmse["ridge"] - rmse["mlp"]) and verdict.diff > 0
    assert verdict.diff_ci[0] > 0
    assert "RMSE" in verdict.text and "lower" in verdict.text

    swapped = leaderboard("regression", y, {"ridge": good, "mlp": bad},
                          families={"ridge": "baseline", "mlp": "deep"}, n_boot=300)
    assert swapped.verdicts[0].outcome == "worse"
    assert swapped.verdicts[0].diff < 0


def test_the_dummy_floor_can_be_the_best_baseline() -> None:
    y, _ = binary_case(300, 1.0, seed=13)
    inverted = probs(1 - y * 0.8)  # ranks every positive below every negative
    board = leaderboard(
        "binary", y,
        {"dummy": probs(np.full(300, 0.5)), "tree": inverted, "mlp": probs(np.full(300, 0.5))},
        families={"dummy": "baseline", "tree": "baseline", "mlp": "deep"},
        n_boot=100,
    )
    assert board.verdicts[0].best_baseline == "dummy"


def test_small_test_sets_are_called_out() -> None:
    y, out = binary_case(60, 1.0, seed=14)
    board = leaderboard("binary", y, {"lr": out, "mlp": out},
                        families={"lr": "baseline", "mlp": "deep"}, n_boot=100)
    assert "only 60 rows" in board.verdicts[0].text


def test_boards_without_a_deep_model_or_a_baseline() -> None:
    y, out = binary_case(200, 1.0, seed=15)
    only_base = leaderboard("binary", y, {"lr": out}, families={"lr": "baseline"}, n_boot=50)
    assert [(v.outcome, v.deep_model, v.best_baseline) for v in only_base.verdicts] == [
        ("no_deep_model", None, "lr")
    ]
    only_deep = leaderboard("binary", y, {"mlp": out}, families={"mlp": "deep"}, n_boot=50)
    assert [(v.outcome, v.deep_model) for v in only_deep.verdicts] == [("no_baseline", "mlp")]
    assert math.isnan(only_deep.verdicts[0].diff)


def test_leaderboard_checks_its_arguments() -> None:
    y, out = binary_case(20, 1.0, seed=0)
    with pytest.raises(SpecError, match="same models"):
        leaderboard("binary", y, {"a": out}, families={"b": "deep"})
    with pytest.raises(SpecError, match="deep, baseline"):
        leaderboard("binary", y, {"a": out}, families={"a": "neural"})
    with pytest.raises(DataError, match="Model 'a'"):
        leaderboard("binary", y, {"a": out[:, 1]}, families={"a": "deep"})


def test_round_trip_through_json(binary_board: Leaderboard) -> None:
    d = binary_board.to_dict()
    again = Leaderboard.from_dict(json.loads(json.dumps(d)))
    assert again == binary_board
    assert isinstance(again.rows[0].ci, tuple)


def test_round_trip_turns_nan_into_null_and_back() -> None:
    y = np.zeros(30, dtype=int)  # one class: AUC undefined everywhere
    board = leaderboard(
        "binary", y, {"lr": probs(np.full(30, 0.2)), "mlp": probs(np.full(30, 0.4))},
        families={"lr": "baseline", "mlp": "deep"}, n_boot=20,
    )
    d = board.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["rows"][0]["test_score"] is None and d["verdicts"][0]["diff"] is None
    again = Leaderboard.from_dict(json.loads(text))
    assert math.isnan(again.rows[0].test_score)
    assert again.to_dict() == d
    assert board.verdicts[0].outcome == "not_clearly_better"
    assert "cannot be compared" in board.verdicts[0].text


def test_a_tie_on_the_primary_metric_goes_to_the_surer_model_then_to_the_baseline():
    y = np.array([0, 1] * 20)
    timid = np.column_stack([np.where(y == 1, 0.49, 0.51), np.where(y == 1, 0.51, 0.49)])  # ranks perfectly, unsure
    sure = np.column_stack([np.where(y == 1, 0.05, 0.95), np.where(y == 1, 0.95, 0.05)])
    board = leaderboard("binary", y, {"deep": timid, "forest": sure}, {"deep": "deep", "forest": "baseline"},
                        n_boot=50)
    assert [r.test_score for r in board.rows] == [1.0, 1.0]
    assert [r.model for r in board.rows] == ["forest", "deep"]  # same ROC AUC, lower log loss first
    twins = leaderboard("binary", y, {"deep": sure, "forest": sure.copy()}, {"deep": "deep", "forest": "baseline"},
                        n_boot=50)
    assert [r.model for r in twins.rows] == ["forest", "deep"]  # a tie on both: the simpler model


# --- forecast leaderboard: backtest windows are the unit --------------------------------


def windows(mase: list[float], mae: list[float] | None = None) -> dict[str, list[float]]:
    """Per-window metrics of one model; MAE, RMSE and sMAPE follow MASE unless given."""
    return {
        "mase": mase,
        "mae": mae if mae is not None else [10 * m for m in mase],
        "rmse": [12 * m for m in mase],
        "smape": [20 * m for m in mase],
    }


T3 = stats.t.ppf(0.975, 2)  # two-sided 95%, 3 windows -> 2 degrees of freedom


@pytest.fixture(scope="module")
def forecast_board() -> Leaderboard:
    return forecast_leaderboard(
        {
            "naive": windows([1.2, 1.0, 1.4]),
            "seasonal_naive": windows([1.0, 0.8, 0.9]),
            "lstm": windows([0.6, 0.5, 0.7]),  # better than the seasonal naive in every window
            "gru": windows([0.5, 1.0, 0.9]),  # better on average, but the windows disagree
            "cnn1d": windows([1.4, 1.2, 1.3]),  # worse in every window, by the same 0.4
        },
        families={"naive": "baseline", "seasonal_naive": "baseline", "lstm": "deep",
                  "gru": "deep", "cnn1d": "deep"},
        fit_seconds={"lstm": 12.0},
        n_points=3 * 52,
    )


def test_forecast_rows_are_ranked_by_mean_mase(forecast_board: Leaderboard) -> None:
    b = forecast_board
    assert (b.task, b.metric, b.metric_title, b.higher_is_better) == ("forecast", "mase", "MASE", False)
    assert (b.n_test, b.n_windows, b.n_boot) == (156, 3, 0)
    assert [r.model for r in b.rows] == ["lstm", "gru", "seasonal_naive", "naive", "cnn1d"]
    assert [r.test_score for r in b.rows] == pytest.approx([0.6, 0.8, 0.9, 1.2, 1.3])
    lstm = b.rows[0]
    assert lstm.metrics == pytest.approx({"mase": 0.6, "mae": 6.0, "rmse": 7.2, "smape": 12.0})
    assert lstm.fit_seconds == 12.0 and b.rows[1].fit_seconds is None


def test_forecast_row_interval_is_a_t_interval_across_windows(forecast_board: Leaderboard) -> None:
    # lstm: mean 0.6, sample sd of (0.6, 0.5, 0.7) = 0.1, 3 windows.
    half = T3 * 0.1 / math.sqrt(3)
    assert half == pytest.approx(0.24841, abs=1e-5)
    assert forecast_board.rows[0].ci == pytest.approx((0.6 - half, 0.6 + half))


def test_forecast_verdict_better_when_every_window_wins(forecast_board: Leaderboard) -> None:
    v = {v.deep_model: v for v in forecast_board.verdicts}["lstm"]
    assert (v.outcome, v.best_baseline) == ("better", "seasonal_naive")
    # Paired gains (baseline minus deep) 0.4, 0.3, 0.2: mean 0.3, sd 0.1.
    assert v.diff == pytest.approx(0.3)
    half = T3 * 0.1 / math.sqrt(3)
    assert v.diff_ci == pytest.approx((0.3 - half, 0.3 + half))
    assert v.text.startswith(
        "The deep model (LSTM) is better than the best baseline (seasonal naive): "
        "MASE 0.6000 vs 0.9000, 0.3000 lower (95% interval for how much lower: +0.0516 to +0.5484)."
    )
    assert "only 3 windows, so these intervals are wide" in v.text
    assert "The best baseline is the seasonal naive forecast" in v.text
    assert v.text.endswith("on average the deep model beats it.")


def test_forecast_verdict_not_clearly_when_windows_disagree(forecast_board: Leaderboard) -> None:
    v = {v.deep_model: v for v in forecast_board.verdicts}["gru"]
    assert v.outcome == "not_clearly_better"
    # Gains 0.5, -0.2, 0.0: mean 0.1, sd sqrt(0.13).
    half = T3 * math.sqrt(0.13) / math.sqrt(3)
    assert v.diff == pytest.approx(0.1)
    assert v.diff_ci == pytest.approx((0.1 - half, 0.1 + half))
    assert "is not clearly better than the best baseline (seasonal naive)" in v.text
    assert "on these backtest windows the simpler model is the safer choice" in v.text

    worse = {v.deep_model: v for v in forecast_board.verdicts}["cnn1d"]
    assert worse.outcome == "worse" and worse.diff == pytest.approx(-0.4)
    assert worse.diff_ci[1] < 0
    assert worse.text.endswith("on average the deep model does not beat it.")


def test_forecast_verdict_names_the_seasonal_naive_when_another_baseline_is_best() -> None:
    board = forecast_leaderboard(
        {"seasonal_naive": windows([1.0, 0.8, 0.9]), "ridge_lags": windows([0.7, 0.6, 0.8]),
         "gru": windows([0.8, 0.7, 0.9]), "lstm": windows([1.1, 1.0, 0.9])},
        families={"seasonal_naive": "baseline", "ridge_lags": "baseline", "gru": "deep",
                  "lstm": "deep"},
    )
    by_model = {v.deep_model: v for v in board.verdicts}
    gru = by_model["gru"]
    assert gru.best_baseline == "ridge_lags" and gru.outcome == "worse"
    assert gru.text.endswith(
        "Against the seasonal naive forecast (same time last season), the usual bar for a "
        "forecast, its MASE is 0.8000 vs 0.9000 on average: it beats it."
    )
    assert by_model["lstm"].text.endswith("its MASE is 1.0000 vs 0.9000 on average: it does not beat it.")
    no_seasonal = forecast_leaderboard(
        {"naive": windows([1.0, 0.8, 0.9]), "gru": windows([0.8, 0.7, 0.9])},
        families={"naive": "baseline", "gru": "deep"},
    )
    assert "seasonal naive" not in no_seasonal.verdicts[0].text


def test_forecast_with_one_window_has_no_interval() -> None:
    board = forecast_leaderboard(
        {"seasonal_naive": windows([0.9]), "lstm": windows([0.6])},
        families={"seasonal_naive": "baseline", "lstm": "deep"},
    )
    assert board.n_windows == 1
    assert all(math.isnan(r.ci[0]) and math.isnan(r.ci[1]) for r in board.rows)
    (v,) = board.verdicts
    assert v.outcome == "not_clearly_better"
    assert v.diff == pytest.approx(0.3)
    assert math.isnan(v.diff_ci[0]) and math.isnan(v.diff_ci[1])
    assert "the one backtest window cannot show how much the errors vary" in v.text
    assert "There its MASE is 0.6000 vs 0.9000." in v.text
    assert "at least 2 windows" in v.text
    assert v.text.endswith("in that window the deep model beats it.")


def test_forecast_many_windows_are_not_called_few() -> None:
    board = forecast_leaderboard(
        {"seasonal_naive": windows([1.0, 0.8, 0.9, 1.1, 1.0]),
         "lstm": windows([0.6, 0.5, 0.7, 0.6, 0.6])},
        families={"seasonal_naive": "baseline", "lstm": "deep"},
    )
    assert board.verdicts[0].outcome == "better"
    assert "only" not in board.verdicts[0].text


def test_forecast_tie_on_mase_goes_to_lower_mae_then_to_the_baseline() -> None:
    # Same windows in a different order: the mean MASE is exactly 0.75 for both.
    deep, base = [0.5, 1.0, 0.75], [1.0, 0.5, 0.75]
    board = forecast_leaderboard(
        {"seasonal_naive": windows(base, mae=[5.0, 5.0, 5.0]), "lstm": windows(deep, mae=[4.0, 4.0, 4.0])},
        families={"seasonal_naive": "baseline", "lstm": "deep"},
    )
    assert [r.test_score for r in board.rows] == [0.75, 0.75]
    assert [r.model for r in board.rows] == ["lstm", "seasonal_naive"]
    twins = forecast_leaderboard(
        {"lstm": windows(deep, mae=[5.0, 5.0, 5.0]), "seasonal_naive": windows(base, mae=[5.0, 5.0, 5.0])},
        families={"lstm": "deep", "seasonal_naive": "baseline"},
    )
    assert [r.model for r in twins.rows] == ["seasonal_naive", "lstm"]


def test_forecast_undefined_windows_are_left_out_of_the_means() -> None:
    board = forecast_leaderboard(
        {"seasonal_naive": windows([1.0, math.nan, 0.8, 0.9]),
         "lstm": windows([0.6, math.nan, 0.5, 0.7])},
        families={"seasonal_naive": "baseline", "lstm": "deep"},
    )
    assert [r.test_score for r in board.rows] == pytest.approx([0.6, 0.9])
    assert board.verdicts[0].diff == pytest.approx(0.3)
    assert board.verdicts[0].outcome == "better"


def test_forecast_leaderboard_checks_its_arguments() -> None:
    fam = {"lstm": "deep", "naive": "baseline"}
    ok = windows([1.0, 0.9])
    with pytest.raises(SpecError, match="No backtest results"):
        forecast_leaderboard({}, {})
    with pytest.raises(SpecError, match="same models"):
        forecast_leaderboard({"lstm": ok}, {"naive": "baseline"})
    with pytest.raises(SpecError, match="'lstm' is 'neural'; use one of: deep, baseline"):
        forecast_leaderboard({"lstm": ok}, {"lstm": "neural"})
    with pytest.raises(DataError, match="'naive' has 3 mase values but 'lstm' has 2"):
        forecast_leaderboard({"lstm": ok, "naive": windows([1.0, 0.9, 0.8])}, fam)
    with pytest.raises(DataError, match="no backtest windows"):
        forecast_leaderboard({"lstm": windows([])}, {"lstm": "deep"})
    with pytest.raises(DataError, match="'naive': MASE is undefined in every window"):
        forecast_leaderboard({"lstm": ok, "naive": windows([math.nan, math.nan])}, fam)
    with pytest.raises(DataError, match="infinite"):
        forecast_leaderboard({"lstm": ok, "naive": windows([1.0, math.inf])}, fam)
    with pytest.raises(SpecError, match="mase, mae, rmse, smape"):
        forecast_leaderboard({"lstm": {"mase": [1.0]}}, {"lstm": "deep"})
    with pytest.raises(SpecError, match="confidence"):
        forecast_leaderboard({"lstm": ok}, {"lstm": "deep"}, confidence=95)


def test_forecasts_are_not_scored_row_by_row() -> None:
    with pytest.raises(SpecError, match="per backtest window"):
        score("forecast", [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(SpecError, match="per backtest window"):
        leaderboard("forecast", [1.0, 2.0], {"lstm": [1.0, 2.0]}, {"lstm": "deep"})


def test_forecast_board_round_trip(forecast_board: Leaderboard) -> None:
    d = forecast_board.to_dict()
    again = Leaderboard.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert again == forecast_board
    one = forecast_leaderboard(
        {"seasonal_naive": windows([0.9]), "lstm": windows([0.6])},
        families={"seasonal_naive": "baseline", "lstm": "deep"},
    )
    d1 = one.to_dict()
    text = json.dumps(d1, allow_nan=False)
    assert d1["rows"][0]["ci"] == [None, None] and d1["n_windows"] == 1
    again1 = Leaderboard.from_dict(json.loads(text))
    assert again1.to_dict() == d1 and math.isnan(again1.verdicts[0].diff_ci[0])


def test_a_higher_error_is_said_with_its_interval_for_how_much_higher() -> None:
    """No double negative: "1,423 higher (95% interval for how much higher: +1,180 to +1,659)"."""
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1000, 300)
    board = leaderboard("regression", y, {"mlp": y + rng.normal(0, 2600, 300), "ridge": y + rng.normal(0, 1200, 300)},
                        {"mlp": "deep", "ridge": "baseline"})
    text = board.verdicts[0].text
    assert board.verdicts[0].outcome == "worse"
    assert "higher (95% interval for how much higher: +" in text and "lower" not in text
    low, high = board.verdicts[0].diff_ci
    assert f"+{-high:,.0f} to +{-low:,.0f}" in text


def test_a_verdict_on_folds_says_how_many_of_the_planned_folds_it_rests_on():
    # The live line said "fold 4 of 10" and the verdict "over 4 folds": it now names the folds planned.
    rng = np.random.default_rng(5)
    y = rng.normal(50, 10, 120)
    outputs = {"mlp": y + rng.normal(0, 4, 120), "ridge": y + rng.normal(0, 5, 120)}
    families = {"mlp": "deep", "ridge": "baseline"}

    def text(deep_folds):
        cv = {"mlp": {"folds": deep_folds}, "ridge": {"folds": [5.1, 5.3, 4.9, 5.2, 5.0]}}
        return leaderboard("regression", y, outputs, families, cv=cv).verdicts[0].text

    assert "on average over 3 of the 5 planned folds" in text([4.0, 4.2, None, 4.1, None])
    assert "on average over 5 folds" in text([4.0, 4.2, 3.9, 4.1, 4.0])
    # An error says which way: "the difference is -0.0200" read as a gain where the deep model erred more.
    close = text([5.0, 5.6, 4.8, 5.3, 4.9])
    assert "its RMSE is 0.0200 higher on average, and the 95% interval for how much higher (" in close
    assert "the difference is" not in close and "interval for how much " in close.split("held-out test rows")[1]
