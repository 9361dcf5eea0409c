"""Tests for dlcore.charts: assert on the figures' data, not only that they build."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from dlcore import charts


def _history(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    epochs = np.arange(1, n + 1)
    val_loss = np.array([0.9, 0.7, 0.5, 0.55, 0.45, 0.6])[:n]
    return pd.DataFrame({
        "epoch": epochs,
        "loss": 1.0 / epochs,
        "val_loss": val_loss,
        "metric": rng.uniform(0.5, 0.9, n),
        "val_metric": rng.uniform(0.5, 0.9, n),
    })


def _annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _serialises(fig: go.Figure) -> dict:
    out = json.loads(fig.to_json())
    assert out["layout"]["template"]["layout"]  # plotly_white travels with the figure
    return out


# --- training_curves --------------------------------------------------------------------


def test_training_curves_traces_hold_history_values() -> None:
    h = _history()
    fig = charts.training_curves(h, "Accuracy", higher_is_better=True)
    by_key = {(t.name, t.xaxis): t for t in fig.data}
    expected = {
        ("Training", "x"): "loss", ("Validation", "x"): "val_loss",
        ("Training", "x2"): "metric", ("Validation", "x2"): "val_metric",
    }
    for key, column in expected.items():
        np.testing.assert_array_equal(np.asarray(by_key[key].x), h["epoch"].to_numpy())
        np.testing.assert_allclose(np.asarray(by_key[key].y, dtype=float), h[column].to_numpy())
    titles = _annotation_texts(fig)
    assert "Loss (lower is better)" in titles
    assert "Accuracy (higher is better)" in titles
    assert fig.layout.uirevision == "training-curves"
    assert fig.layout.template.layout.paper_bgcolor == "white"
    _serialises(fig)


def test_training_curves_best_epoch_is_argmin_of_val_loss() -> None:
    h = _history()
    fig = charts.training_curves(h, "RMSE", higher_is_better=False)
    best = [t for t in fig.data if t.legendgroup == "best"]
    assert len(best) == 2  # one star on each panel
    i = int(np.argmin(h["val_loss"]))
    assert {t.x[0] for t in best} == {int(h["epoch"][i])} == {5}
    loss_star = next(t for t in best if t.xaxis == "x")
    metric_star = next(t for t in best if t.xaxis == "x2")
    assert loss_star.y[0] == pytest.approx(h["val_loss"][i])
    assert metric_star.y[0] == pytest.approx(h["val_metric"][i])
    assert "Best so far" in loss_star.hovertemplate
    assert "RMSE (lower is better)" in _annotation_texts(fig)


def test_training_curves_ignores_nan_val_loss_for_best() -> None:
    h = _history()
    h.loc[4, "val_loss"] = np.nan  # the real minimum (epoch 5) is gone; epoch 3 is best
    fig = charts.training_curves(h, "Accuracy", True)
    best = [t for t in fig.data if t.legendgroup == "best"]
    assert best[0].x[0] == 3
    _serialises(fig)  # NaN must become JSON null, not break serialisation


def test_training_curves_without_validation_has_no_best_marker() -> None:
    h = _history().assign(val_loss=np.nan, val_metric=np.nan)
    fig = charts.training_curves(h, "Accuracy", True)
    assert not [t for t in fig.data if t.legendgroup == "best"]


def test_training_curves_fixes_x_range_to_total_epochs() -> None:
    fig = charts.training_curves(_history(3), "Accuracy", True, total_epochs=40)
    assert list(fig.layout.xaxis.range) == [1, 40]
    assert list(fig.layout.xaxis2.range) == [1, 40]
    free = charts.training_curves(_history(3), "Accuracy", True)
    assert free.layout.xaxis.range is None


def test_training_curves_empty_history_waits() -> None:
    empty = pd.DataFrame(columns=["epoch", "loss", "val_loss", "metric", "val_metric"])
    fig = charts.training_curves(empty, "Accuracy", True, total_epochs=20)
    assert any("Waiting for the first epoch" in t for t in _annotation_texts(fig))
    assert len(fig.data) == 0
    assert list(fig.layout.xaxis.range) == [1, 20]
    _serialises(fig)


# --- leaderboard_chart ------------------------------------------------------------------

ROWS = [
    {"model": "Dummy (most frequent)", "family": "baseline", "test_score": 0.50, "ci": [0.45, 0.55]},
    {"model": "MLP", "family": "deep", "test_score": 0.91, "ci": [0.88, 0.93]},
    {"model": "Random forest", "family": "baseline", "test_score": 0.87, "ci": [0.84, 0.90]},
    {"model": "Logistic regression", "family": "baseline", "test_score": 0.80, "ci": [0.76, 0.83]},
]


@pytest.mark.parametrize(
    ("higher", "expected"),
    [
        (True, ["MLP", "Random forest", "Logistic regression", "Dummy (most frequent)"]),
        (False, ["Dummy (most frequent)", "Logistic regression", "Random forest", "MLP"]),
    ],
)
def test_leaderboard_best_first(higher: bool, expected: list[str]) -> None:
    fig = charts.leaderboard_chart(ROWS, "Accuracy", higher_is_better=higher)
    assert list(fig.layout.yaxis.categoryarray) == expected
    assert fig.layout.yaxis.autorange == "reversed"  # first category drawn at the top
    _serialises(fig)


def test_leaderboard_error_bars_are_ci_minus_score() -> None:
    fig = charts.leaderboard_chart(ROWS, "Accuracy", True)
    by_model = {r["model"]: r for r in ROWS}
    seen = set()
    for trace in fig.data:
        for model, x, plus, minus in zip(trace.y, trace.x, trace.error_x.array, trace.error_x.arrayminus):
            row = by_model[model]
            assert x == pytest.approx(row["test_score"])
            assert plus == pytest.approx(row["ci"][1] - row["test_score"])
            assert minus == pytest.approx(row["test_score"] - row["ci"][0])
            seen.add(model)
    assert seen == set(by_model)


def test_leaderboard_legend_separates_deep_baseline_and_dummy() -> None:
    fig = charts.leaderboard_chart(ROWS, "Accuracy", True)
    groups = {t.name: list(t.y) for t in fig.data}
    assert groups == {
        "Deep learning model": ["MLP"],
        "scikit-learn baseline": ["Random forest", "Logistic regression"],
        "Dummy floor (always guesses the same)": ["Dummy (most frequent)"],
    }
    colors = {t.name: t.marker.color for t in fig.data}
    assert len(set(colors.values())) == 3
    assert colors["Deep learning model"] == charts.DEEP_COLORS[0]
    floor = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert floor and floor[0].x0 == pytest.approx(0.50)


def test_leaderboard_missing_score_and_ci_go_last_without_bars() -> None:
    rows = ROWS + [{"model": "GRU", "family": "deep", "test_score": None, "ci": None}]
    fig = charts.leaderboard_chart(rows, "Accuracy", True)
    assert fig.layout.yaxis.categoryarray[-1] == "GRU"
    deep = next(t for t in fig.data if t.name == "Deep learning model")
    gru = list(deep.y).index("GRU")
    assert deep.error_x.array[gru] == 0 and deep.error_x.arrayminus[gru] == 0
    _serialises(fig)


def test_leaderboard_empty() -> None:
    fig = charts.leaderboard_chart([], "Accuracy", True)
    assert any("No models" in t for t in _annotation_texts(fig))


# --- classification ---------------------------------------------------------------------


def test_confusion_matrix_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 3, 300))
    labels = ["cat", "dog", "bird"]
    fig = charts.confusion_matrix_chart(y_true, y_pred, labels)
    heat = fig.data[0]
    expected = confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    np.testing.assert_array_equal(np.asarray(heat.z), expected)
    assert list(heat.x) == labels and list(heat.y) == labels
    assert fig.layout.xaxis.title.text == "Predicted"
    assert fig.layout.yaxis.title.text == "Actual"
    # Row percentages: share of each actual class.
    pct = expected[0, 0] / expected[0].sum()
    assert heat.text[0][0] == f"{expected[0, 0]:,}<br>{pct:.1%}"
    _serialises(fig)


def test_confusion_matrix_class_absent_from_test_rows() -> None:
    fig = charts.confusion_matrix_chart(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "c"])
    z = np.asarray(fig.data[0].z)
    assert z.shape == (3, 3) and z[2].sum() == 0
    assert fig.data[0].text[2][2] == "0<br>–"
    with pytest.raises(ValueError, match="codes outside"):
        charts.confusion_matrix_chart(np.array([0, 3]), np.array([0, 1]), ["a", "b"])


def _binary(n: int = 400, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = np.clip(y * 0.6 + rng.random(n) * 0.5, 0, 1)
    weak = np.clip(y * 0.1 + rng.random(n) * 0.9, 0, 1)
    return y, {"Logistic regression": weak, "MLP": good, "Dummy (prior)": np.full(n, y.mean())}


def test_roc_legend_auc_matches_sklearn_and_best_first() -> None:
    y, scores = _binary()
    fig = charts.roc_chart(y, scores, "churned", families={"MLP": "deep", "Logistic regression": "baseline"})
    curves = [t for t in fig.data if t.meta]
    assert [t.name.split(" (AUC")[0] for t in curves] == ["MLP", "Logistic regression", "Dummy (prior)"]
    for t in curves:
        name = t.name.split(" (AUC")[0]
        auc = roc_auc_score(y, scores[name])
        assert t.meta["auc"] == pytest.approx(auc)
        assert re.search(r"AUC (\d\.\d{3})\)", t.name).group(1) == f"{auc:.3f}"
        assert t.x[0] == 0 and t.y[-1] == 1
    styles = {t.name.split(" (AUC")[0]: t.line for t in curves}
    assert styles["MLP"].color == charts.DEEP_COLORS[0]
    assert styles["Dummy (prior)"].dash == "dash" and styles["Dummy (prior)"].color == charts.DUMMY_COLOR
    coin = fig.data[0]
    assert coin.name.startswith("Coin flip") and list(coin.x) == [0, 1] and list(coin.y) == [0, 1]
    _serialises(fig)


def test_roc_thinned_to_curve_cap() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 50_000)
    s = rng.random(50_000) + y * 0.3
    fig = charts.roc_chart(y, {"m": s}, "yes")
    curve = fig.data[1]
    assert len(curve.x) <= charts.MAX_CURVE_POINTS
    assert (curve.x[0], curve.y[0]) == (0, 0) and (curve.x[-1], curve.y[-1]) == (1, 1)
    assert curve.meta["auc"] == pytest.approx(roc_auc_score(y, s))  # AUC from all points


def test_roc_one_class_says_so() -> None:
    fig = charts.roc_chart(np.zeros(10, dtype=int), {"m": np.linspace(0, 1, 10)}, "yes")
    assert any("only one class" in t for t in _annotation_texts(fig))
    with pytest.raises(ValueError, match="0/1"):
        charts.roc_chart(np.array([0, 2]), {"m": np.array([0.1, 0.2])}, "yes")


def test_pr_average_precision_and_base_rate() -> None:
    y, scores = _binary()
    fig = charts.pr_chart(y, scores, "churned")
    base = fig.data[0]
    assert base.name.startswith("Base rate")
    assert list(base.y) == [pytest.approx(y.mean())] * 2
    for t in fig.data[1:]:
        name = t.name.split(" (AP")[0]
        ap = average_precision_score(y, scores[name])
        assert t.meta["average_precision"] == pytest.approx(ap)
        assert f"AP {ap:.3f}" in t.name
        assert len(t.x) <= charts.MAX_CURVE_POINTS
    _serialises(fig)


# --- regression -------------------------------------------------------------------------


def test_predicted_vs_actual_small_input_keeps_every_point() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    preds = {"MLP": np.array([1.1, 1.9, 3.2, 3.7]), "Ridge": np.array([1.5, 2.5, 2.5, 3.5])}
    fig = charts.predicted_vs_actual_chart(y, preds)
    perfect = fig.data[0]
    assert perfect.name.startswith("Perfect")
    assert list(perfect.x) == list(perfect.y) == [1.0, 4.0]
    for t in fig.data[1:]:
        np.testing.assert_array_equal(t.x, y)
        np.testing.assert_array_equal(t.y, preds[t.name])
    _serialises(fig)


def test_predicted_vs_actual_draws_the_best_of_each_kind_and_keeps_the_rest_a_click_away() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    preds = {"MLP": y + 0.1, "wide MLP": y + 0.2, "random forest": y - 0.1, "ridge": y - 0.2, "dummy mean": y * 0 + 2.5}
    families = {"MLP": "deep", "wide MLP": "deep", "random forest": "baseline", "ridge": "baseline", "dummy mean": "dummy"}
    fig = charts.predicted_vs_actual_chart(y, preds, families=families)
    visible = {t.name: t.visible for t in fig.data[1:]}
    assert visible == {"MLP": True, "wide MLP": "legendonly", "random forest": True, "ridge": "legendonly",
                       "dummy mean": "legendonly"}
    assert "click a name in the legend to add the other 3" in fig.layout.title.subtitle.text
    np.testing.assert_array_equal(fig.data[2].y, preds["wide MLP"])  # a hidden model's points are there
    _serialises(fig)


def test_scatter_downsampling_caps_and_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    n = 100_000
    y = rng.normal(size=n)
    preds = {"MLP": y + rng.normal(scale=0.1, size=n), "Ridge": y + rng.normal(scale=0.3, size=n)}
    a = charts.predicted_vs_actual_chart(y, preds)
    b = charts.predicted_vs_actual_chart(y, preds)
    for ta, tb in zip(a.data[1:], b.data[1:]):
        assert len(ta.x) == charts.MAX_SCATTER_POINTS
        np.testing.assert_array_equal(ta.x, tb.x)
        np.testing.assert_array_equal(ta.y, tb.y)
    # Every model shows the same rows, so the clouds are comparable point for point.
    np.testing.assert_array_equal(a.data[1].x, a.data[2].x)
    assert "5,000 of 100,000" in a.layout.title.subtitle.text
    r1 = charts.residuals_chart(y, preds["MLP"], "MLP")
    r2 = charts.residuals_chart(y, preds["MLP"], "MLP")
    assert len(r1.data[0].x) == charts.MAX_SCATTER_POINTS
    np.testing.assert_array_equal(r1.data[0].y, r2.data[0].y)
    assert len(a.to_json()) < 1_000_000


def test_residuals_values_and_histogram_counts_every_row() -> None:
    y = np.array([3.0, 5.0, 7.0, 9.0, np.nan])
    p = np.array([2.0, 5.5, 7.0, 10.0, 1.0])
    fig = charts.residuals_chart(y, p, "MLP")
    scatter, hist = fig.data
    np.testing.assert_allclose(scatter.y, y - p)
    np.testing.assert_array_equal(scatter.x, p)
    assert int(np.sum(hist.y)) == 4  # the NaN residual is left out of the histogram
    zero = [s for s in fig.layout.shapes if s.y0 == 0 and s.y1 == 0]
    assert zero, "zero line missing"
    _serialises(fig)


# --- data profile -----------------------------------------------------------------------


def test_distribution_numeric_histogram_and_missing_in_title() -> None:
    rng = np.random.default_rng(0)
    s = pd.Series(np.r_[rng.normal(50, 10, 990), [np.nan] * 10], name="age")
    fig = charts.distribution_chart(s, "Age")
    assert "10 missing (1.0%)" in fig.layout.title.text
    bar = fig.data[0]
    assert int(np.sum(bar.y)) == 990
    assert len(bar.x) <= 50  # binned here: the raw values never ship
    _serialises(fig)


def test_distribution_integers_get_one_bar_per_value() -> None:
    s = pd.Series([1, 2, 2, 3, 3, 3])
    fig = charts.distribution_chart(s, "Children")
    np.testing.assert_array_equal(fig.data[0].x, [1, 2, 3])
    np.testing.assert_array_equal(fig.data[0].y, [1, 2, 3])
    assert "no missing values" in fig.layout.title.text


def test_distribution_text_top_20_plus_other() -> None:
    values = [f"city{i}" for i in range(30) for _ in range(30 - i)] + [None] * 5
    s = pd.Series(values, dtype="object")
    fig = charts.distribution_chart(s, "City")
    bar = fig.data[0]
    assert len(bar.y) == 21
    assert list(bar.y[:3]) == ["city0", "city1", "city2"]
    assert bar.y[-1] == "Other (10 values)"
    assert int(bar.x[-1]) == sum(30 - i for i in range(20, 30))
    assert int(np.sum(bar.x)) == len(values) - 5
    assert "5 missing" in fig.layout.title.text
    _serialises(fig)


def test_distribution_datetime_histogram() -> None:
    s = pd.Series(pd.date_range("2024-01-01", periods=365, freq="D", tz="Europe/Paris"))
    s[0] = pd.NaT
    fig = charts.distribution_chart(s, "Order date")
    assert int(np.sum(fig.data[0].y)) == 364
    assert fig.layout.xaxis.type == "date"
    assert "1 missing" in fig.layout.title.text
    _serialises(fig)


def test_distribution_all_missing() -> None:
    fig = charts.distribution_chart(pd.Series([np.nan, np.nan]), "Empty")
    assert "2 missing (100.0%)" in fig.layout.title.text
    assert any("every value is missing" in t for t in _annotation_texts(fig))


def test_class_balance_counts_and_percentages() -> None:
    y = pd.Series(["no"] * 90 + ["yes"] * 10)
    fig = charts.class_balance_chart(y)
    bar = fig.data[0]
    assert list(bar.y) == ["no", "yes"] and list(bar.x) == [90, 10]
    assert list(bar.text) == ["90 (90.0%)", "10 (10.0%)"]
    assert "9×" in fig.layout.title.subtitle.text  # imbalance warning
    balanced = charts.class_balance_chart(pd.Series([0, 1, 1, 0]))
    assert balanced.layout.title.subtitle.text is None
    assert balanced.layout.yaxis.type == "category"  # class 0 / 1 stay labels, not numbers
    _serialises(fig)


def test_forecast_chart_draws_history_backtest_windows_and_a_band():
    import pandas as pd

    from dlcore.series.charts import forecast_chart

    times = pd.date_range("2024-01-01", periods=30, freq="D")
    history = np.arange(30.0)
    window_times = np.stack([times[20:25].to_numpy(), times[25:30].to_numpy()])
    backtest = {"LSTM": np.arange(20.0, 30.0).reshape(2, 5) + 1, "naive": np.full((2, 5), 19.0)}
    future = pd.DataFrame({"time": pd.date_range("2024-01-31", periods=5, freq="D"), "forecast": np.arange(30.0, 35.0),
                           "lower 90%": np.arange(29.0, 34.0), "upper 90%": np.arange(31.0, 36.0)})
    fig = forecast_chart(times, history, window_times, backtest, future, families={"LSTM": "deep", "naive": "baseline"},
                         show_last=12)
    names = [t.name for t in fig.data]
    assert names == ["actual", "LSTM (backtest)", "naive (backtest)", "interval (90%)", "forecast"]
    assert len(fig.data[0].x) == 12  # only the last steps of a long history
    lstm = fig.data[1]
    assert list(lstm.y) == [21.0, 22.0, 23.0, 24.0, 25.0, None, 26.0, 27.0, 28.0, 29.0, 30.0, None]  # one segment per window
    band = fig.data[3]
    assert band.fill == "toself" and band.mode == "lines" and len(band.x) == 10
    assert len(fig.layout.shapes) == 2  # a dotted line where each window starts


def test_rows_without_a_target_are_not_a_class() -> None:
    """Missing target values used to be a "(missing)" bar and made the classes look 15x uneven."""
    fig = charts.class_balance_chart(pd.Series(["m"] * 150 + ["f"] * 140 + [None] * 10 + [" "] * 2))
    assert list(fig.data[0].y) == ["m", "f"] and list(fig.data[0].x) == [150, 140]
    assert "(290 rows, 2 classes)" in fig.layout.title.text
    assert fig.layout.title.subtitle.text == "12 rows without a value are left out of training"
