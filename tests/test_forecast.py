"""Forecasting core: windows, backtest splits without leakage, baselines, metrics, intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dlcore.errors import DataError, SpecError
from dlcore.series import backtest as fc


def _weeks(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2020-01-04", periods=n, freq="W-SAT")


def _seasonal_series(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.3 * t + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)


# --------------------------------------------------------------------------------------
# Windows and splits


def test_make_windows_exact_values():
    X, Y = fc.make_windows(np.arange(6.0), lookback=2, horizon=2)
    assert X.shape == (3, 2, 1) and Y.shape == (3, 2)
    assert X[:, :, 0].tolist() == [[0, 1], [1, 2], [2, 3]]
    assert Y.tolist() == [[2, 3], [3, 4], [4, 5]]


def test_make_windows_with_covariates_and_target_column():
    values = np.column_stack([np.arange(5.0), 10 * np.arange(5.0)])
    X, Y = fc.make_windows(values, lookback=3, horizon=1, target_col=1)
    assert X.shape == (2, 3, 2)
    assert X[1].tolist() == [[1, 10], [2, 20], [3, 30]]
    assert Y.tolist() == [[30], [40]]
    # Every window's inputs end right before its outputs start.
    assert np.all(X[:, -1, 1] + 10 == Y[:, 0])


def test_make_windows_short_series_gives_no_windows():
    X, Y = fc.make_windows(np.arange(3.0), lookback=3, horizon=2)
    assert X.shape == (0, 3, 1) and Y.shape == (0, 2)


def test_last_window():
    assert fc.last_window(np.arange(5.0), 3)[0, :, 0].tolist() == [2, 3, 4]
    with pytest.raises(DataError, match="fewer than the look-back"):
        fc.last_window(np.arange(2.0), 3)


def test_backtest_splits_exact_positions():
    splits = fc.backtest_splits(100, horizon=10, windows=3, lookback=20)
    assert [(s.index, s.origin) for s in splits] == [(0, 70), (1, 80), (2, 90)]
    assert [(s.test.start, s.test.stop) for s in splits] == [(70, 80), (80, 90), (90, 100)]
    assert all(s.train == slice(0, s.origin) for s in splits)
    # The smallest series that fits: 3 x 10 to test, 20 + 10 + 9 before that.
    assert fc.backtest_splits(69, 10, 3, 20)[0].origin == 39
    with pytest.raises(DataError, match="at least 69"):
        fc.backtest_splits(68, 10, 3, 20)


def test_scaler_uses_only_what_it_was_fitted_on():
    scaler = fc.Scaler().fit(np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]]))
    assert scaler.mean_.tolist() == [2, 20, 5] and scaler.scale_.tolist() == [1, 10, 1]
    scaled = scaler.transform(np.array([[4.0, 0.0, 5.0]]))
    assert scaled.tolist() == [[2, -2, 0]]
    assert scaler.inverse_transform(scaled).tolist() == [[4, 0, 5]]
    assert scaler.inverse_column(np.array([[0.0, 1.0]]), column=1).tolist() == [[20, 30]]
    assert scaler.transform(np.array([2.0, 4.0])).tolist() == [0, 2]


# --------------------------------------------------------------------------------------
# Leakage


FACTORIES = {
    "naive": fc.Naive,
    "seasonal_naive": lambda: fc.SeasonalNaive(12),
    "ridge_lags": lambda: fc.RidgeLags(12, 12),
    "gradient_boosting_lags": lambda: fc.GradientBoostingLags(12, 12, max_iter=20),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_no_future_value_changes_a_backtest_forecast(name):
    y = _seasonal_series(90)
    times = _weeks(90)
    splits = fc.backtest_splits(len(y), horizon=6, windows=3, lookback=12)
    result = fc.backtest(FACTORIES[name], y, times, splits, season=12)
    for i, split in enumerate(splits):
        poisoned = y.copy()
        poisoned[split.origin :] = 1e6  # any use of the future would move the forecast
        again = fc.backtest(FACTORIES[name], poisoned, times, [split], season=12)
        assert again.forecasts[0] == pytest.approx(result.forecasts[i], abs=1e-9)


def test_backtest_gives_each_model_only_the_past():
    seen: list[int] = []

    class Spy(fc.Naive):
        def fit(self, train, times=None):
            seen.append(len(train))
            assert len(times) == len(train)
            return super().fit(train, times)

    fc.backtest(Spy, np.arange(60.0), _weeks(60), fc.backtest_splits(60, 5, 3, 5), season=1)
    assert seen == [45, 50, 55]


# --------------------------------------------------------------------------------------
# Baselines against hand-computed values


def test_naive_repeats_the_last_value():
    assert fc.Naive().fit(np.array([1.0, 2.0, 3.0]), _weeks(3)).predict(2).tolist() == [3, 3]


def test_seasonal_naive_repeats_the_last_season():
    model = fc.SeasonalNaive(2).fit(np.array([1.0, 2.0, 3.0, 4.0]), _weeks(4))
    assert model.predict(3).tolist() == [3, 4, 3]
    short = fc.SeasonalNaive(5).fit(np.array([1.0, 2.0, 3.0]), _weeks(3))
    assert short.fallback_ and short.predict(2).tolist() == [3, 3]


def test_baselines_use_the_target_column_only():
    values = np.column_stack([[1.0, 2.0, 3.0], [9.0, 9.0, 9.0]])
    assert fc.Naive().fit(values).predict(1).tolist() == [3]


def test_ridge_on_a_perfect_line_forecasts_the_line():
    line = np.arange(1.0, 41.0)
    forecast = fc.RidgeLags(lookback=5, season=1).fit(line, _weeks(40)).predict(4)
    assert forecast == pytest.approx([41, 42, 43, 44], abs=1e-9)


def test_ridge_learns_a_repeating_pattern():
    pattern = np.tile([0.0, 10.0, 5.0], 20)
    forecast = fc.RidgeLags(lookback=3, season=3, alpha=1e-6).fit(pattern, _weeks(60)).predict(4)
    assert forecast == pytest.approx([0, 10, 5, 0], abs=1e-3)


def test_gradient_boosting_on_a_line_and_on_a_zigzag():
    line = np.arange(1.0, 61.0)
    forecast = fc.GradientBoostingLags(lookback=4).fit(line, _weeks(60)).predict(3)
    # Every step up is exactly 1, so the model's constant answer is exactly right.
    assert forecast == pytest.approx([61, 62, 63], abs=1e-9)
    zigzag = np.tile([0.0, 10.0], 40)
    model = fc.GradientBoostingLags(lookback=2, max_iter=50).fit(zigzag, _weeks(80))
    assert model.predict(4) == pytest.approx([0, 10, 0, 10], abs=0.1)


def test_gradient_boosting_uses_the_calendar_of_the_forecast_step():
    # Monthly values that jump by 12 every January and are flat otherwise: only the month
    # of the step being forecast tells when the jump comes.
    # (31 years, so that the 30 Januaries fill a tree leaf of the default 20 rows.)
    months = pd.date_range("1990-01-01", periods=372, freq="MS")
    y = 12.0 * (months.year - 1990).to_numpy(dtype=float)
    model = fc.GradientBoostingLags(lookback=1, season=1).fit(y[:-12], months[:-12])
    assert model.predict(12) == pytest.approx(y[-12:], abs=0.1)


def test_baselines_factories_and_titles_agree():
    made = fc.baselines(lookback=8, season=4)
    assert list(made) == list(fc.BASELINE_TITLES)
    assert isinstance(made["seasonal_naive"](), fc.SeasonalNaive)


def test_missing_values_are_refused_with_the_fix():
    with pytest.raises(DataError, match="Fill its gaps"):
        fc.Naive().fit(np.array([1.0, np.nan, 3.0]))


# --------------------------------------------------------------------------------------
# Metrics against hand-computed numbers


def test_point_metrics():
    y, p = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 3.0, 6.0])
    assert fc.mae(y, p) == pytest.approx(0.75)
    assert fc.rmse(y, p) == pytest.approx(math.sqrt(1.25))
    # 200 / 4 * (0 + 1/5 + 0 + 2/10)
    assert fc.smape(y, p) == pytest.approx(20.0)
    assert fc.smape(np.zeros(2), np.zeros(2)) == 0.0
    assert fc.smape(np.array([0.0]), np.array([1.0])) == 200.0


def test_mase_scaled_by_the_in_sample_seasonal_naive():
    train = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0])
    # Lag-2 errors in training: 1, 1, 1, 1 -> scale 1; forecast MAE 0.5.
    assert fc.mase([6.0, 5.0], [5.0, 5.0], train, season=2) == pytest.approx(0.5)
    # A season longer than the training part falls back to lag 1: scale (2+1+2+1+2)/5 = 1.6.
    assert fc.mase([6.0, 5.0], [5.0, 5.0], train, season=10) == pytest.approx(0.5 / 1.6)
    # A constant training part: 0 for a perfect forecast, nan (not infinity) otherwise.
    assert fc.mase([2.0], [2.0], np.full(5, 2.0), season=1) == 0.0
    assert math.isnan(fc.mase([3.0], [2.0], np.full(5, 2.0), season=1))


# --------------------------------------------------------------------------------------
# Backtest results and intervals


def test_backtest_result_metrics_per_window_and_overall():
    y = np.arange(1.0, 17.0)
    splits = fc.backtest_splits(len(y), horizon=2, windows=2, lookback=1)
    assert [s.origin for s in splits] == [12, 14]
    result = fc.backtest(fc.Naive, y, _weeks(len(y)), splits, season=1)
    assert result.forecasts.tolist() == [[12, 12], [14, 14]]
    assert result.actuals.tolist() == [[13, 14], [15, 16]]
    # MAE 1.5 in both windows; in-sample lag-1 MAE is 1, so MASE is 1.5 too.
    assert result.per_window("mase").tolist() == [1.5, 1.5]
    assert result.overall["mae"] == 1.5 and result.overall["rmse"] == pytest.approx(math.sqrt(2.5))
    assert result.residuals.tolist() == [[1, 2], [1, 2]]
    frame = result.to_frame()
    assert frame.shape == (4, 5) and frame["time"].iloc[0] == _weeks(16)[12]
    again = fc.BacktestResult.from_dict(result.to_dict())
    assert again.forecasts.tolist() == result.forecasts.tolist()
    assert again.metrics == result.metrics
    with pytest.raises(SpecError, match="Use one of: mase"):
        result.per_window("r2")


def test_score_forecasts_matches_backtest():
    y = _seasonal_series(80)
    times = _weeks(80)
    splits = fc.backtest_splits(80, 6, 3, 12)
    base = fc.backtest(lambda: fc.SeasonalNaive(12), y, times, splits, season=12)
    same = fc.score_forecasts(base.forecasts, y, times, splits, season=12)
    assert same.metrics == base.metrics


def test_forecast_intervals_are_empirical_quantiles_of_error_sizes_per_step():
    residuals = np.array([[-1.0, 0.0], [0.0, 2.0], [1.0, 4.0]])
    lower, upper = fc.forecast_intervals(residuals, np.array([10.0, 20.0]), level=0.5)
    assert lower.tolist() == [9.0, 18.0] and upper.tolist() == [11.0, 22.0]  # medians of |e|: 1, then 2
    # A model that erred the same way every time: the interval is wide around the forecast,
    # and never narrower further ahead than nearer.
    lower, upper = fc.forecast_intervals(np.array([[3.0, 1.0], [4.0, 1.0]]), np.array([0.0, 0.0]), level=0.5)
    assert lower.tolist() == [-3.5, -3.5] and upper.tolist() == [3.5, 3.5]
    with pytest.raises(SpecError, match="between 0 and 1"):
        fc.forecast_intervals(residuals, np.array([10.0, 20.0]), level=90)
