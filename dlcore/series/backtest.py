"""Forecasting core: windows, a rolling-origin backtest, baselines, metrics and intervals.

No Keras here. Deep templates and baselines meet on the same splits and the same metric
code: a baseline goes through ``backtest``; a deep model's forecasts for the same splits go
through ``score_forecasts``; both give a ``BacktestResult``.

The backtest tests the last ``windows`` blocks of ``horizon`` steps. For each block (a
*split*), the model sees only the values before the block's first step (its *origin*):
fitting, scaling and the input window all come from there, so nothing from the future can
leak into a forecast. A test perturbs every value after each origin and checks that the
forecasts do not move.

Every forecaster has one interface::

    model = factory().fit(train, times)    # train: (n,) target, or (n, k) with it in column 0
    model.predict(horizon)                 # (horizon,): the steps right after train

Example::

    splits = backtest_splits(len(y), horizon=52, windows=3, lookback=104)
    result = backtest(lambda: SeasonalNaive(52), y, times, splits, season=52)
    result.overall["mase"], result.per_window("mase")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from dlcore.errors import DataError, SpecError
from dlcore.evaluate.metrics import FORECAST_METRICS, mae, mase, rmse, smape
from dlcore.series.checks import MIN_TRAIN_WINDOWS, check_settings
from dlcore.series.frequency import Frequency, infer_frequency

__all__ = [
    "BASELINE_TITLES",
    "eager_predict",
    "METRICS",
    "BacktestResult",
    "Forecaster",
    "GradientBoostingLags",
    "Naive",
    "RidgeLags",
    "Scaler",
    "SeasonalNaive",
    "Split",
    "backtest",
    "backtest_splits",
    "baselines",
    "forecast_intervals",
    "last_window",
    "mae",
    "make_windows",
    "mase",
    "rmse",
    "score_forecasts",
    "smape",
]

METRICS = FORECAST_METRICS  # the first is the primary one; all lower is better
BASELINE_TITLES = {
    "naive": "Naive (last value)",
    "seasonal_naive": "Seasonal naive (same time last season)",
    "ridge_lags": "Ridge regression on lags",
    "gradient_boosting_lags": "Gradient boosting on lags and calendar",
}
_SEED = 0


# --------------------------------------------------------------------------------------
# Windows and splits
# --------------------------------------------------------------------------------------


def _as_2d(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype="float64")
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"values must have shape (n,) or (n, k); got {arr.shape}")
    return arr


def make_windows(
    values: np.ndarray, lookback: int, horizon: int, target_col: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Every (input, output) pair a series holds, inputs ending right before outputs start.

    ``values`` is ``(n,)`` or ``(n, k)``; returns ``X`` of shape ``(m, lookback, k)`` and
    ``Y`` of shape ``(m, horizon)`` (column ``target_col``), ``m = n - lookback - horizon +
    1`` (zero windows when the series is shorter than ``lookback + horizon``). Window ``i``
    reads steps ``i .. i+lookback-1`` and predicts ``i+lookback .. i+lookback+horizon-1``.

    Example::

        X, Y = make_windows(np.arange(6.0), lookback=2, horizon=2)
        # X[:, :, 0] = [[0, 1], [1, 2], [2, 3]]; Y = [[2, 3], [3, 4], [4, 5]]
    """
    arr = _as_2d(values)
    n, k = arr.shape
    m = max(0, n - lookback - horizon + 1)
    if m == 0:
        return np.empty((0, lookback, k)), np.empty((0, horizon))
    inputs = np.lib.stride_tricks.sliding_window_view(arr[: n - horizon], lookback, axis=0)
    outputs = np.lib.stride_tricks.sliding_window_view(arr[lookback:, target_col], horizon)
    # sliding_window_view puts the window last: (m, k, lookback) -> (m, lookback, k).
    return np.ascontiguousarray(inputs.transpose(0, 2, 1)), np.ascontiguousarray(outputs)


def last_window(values: np.ndarray, lookback: int) -> np.ndarray:
    """The input for a forecast after the last step: the last ``lookback`` steps,
    shaped ``(1, lookback, k)``."""
    arr = _as_2d(values)
    if len(arr) < lookback:
        raise DataError(
            f"The series has {len(arr)} steps, fewer than the look-back of {lookback}. "
            "Shorten the look-back window."
        )
    return arr[-lookback:][None, :, :].copy()


@dataclass(frozen=True)
class Split:
    """One backtest window: train on steps ``[0, origin)``, test on ``[origin, origin +
    horizon)``. A validation tail for early stopping is cut from the training part by the
    caller (the last steps before ``origin``), never from the test part."""

    index: int
    origin: int
    horizon: int

    @property
    def train(self) -> slice:
        return slice(0, self.origin)

    @property
    def test(self) -> slice:
        return slice(self.origin, self.origin + self.horizon)

    def to_dict(self) -> dict[str, int]:
        return {"index": self.index, "origin": self.origin, "horizon": self.horizon}


def backtest_splits(n: int, horizon: int, windows: int, lookback: int) -> list[Split]:
    """Rolling origin over the last ``windows`` blocks of ``horizon`` steps, oldest first.

    The test blocks do not overlap and end at the last step; each origin trains on
    everything before it. Raises ``DataError`` (via ``check_settings``) when the earliest
    origin leaves too little to learn from.

    Example::

        backtest_splits(100, horizon=10, windows=3, lookback=20)
        # origins 70, 80, 90; tests [70, 80), [80, 90), [90, 100)
    """
    check_settings(n, horizon, lookback, windows)
    return [Split(i, n - (windows - i) * horizon, horizon) for i in range(windows)]


class Scaler:
    """Per-column mean and standard deviation, fitted on the training part only.

    A constant column gets scale 1 (so it maps to 0 rather than dividing by zero).
    """

    def fit(self, train: np.ndarray) -> Scaler:
        arr = _as_2d(train)
        if not np.isfinite(arr).all():
            raise DataError("The series has missing values. Fill its gaps before forecasting.")
        self.mean_ = arr.mean(axis=0)
        std = arr.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale ``(n,)`` (the first column) or ``(..., k)`` values."""
        arr = np.asarray(values, dtype="float64")
        k = 1 if arr.ndim == 1 else arr.shape[-1]
        mean, scale = self.mean_[:k], self.scale_[:k]
        return (arr - mean[0]) / scale[0] if arr.ndim == 1 else (arr - mean) / scale

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Undo ``transform``."""
        arr = np.asarray(values, dtype="float64")
        k = 1 if arr.ndim == 1 else arr.shape[-1]
        mean, scale = self.mean_[:k], self.scale_[:k]
        return arr * scale[0] + mean[0] if arr.ndim == 1 else arr * scale + mean

    def inverse_column(self, values: np.ndarray, column: int = 0) -> np.ndarray:
        """Undo the scaling of one column, e.g. model outputs ``(m, horizon)`` of the target."""
        return np.asarray(values, dtype="float64") * self.scale_[column] + self.mean_[column]


# --------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------


class Forecaster(Protocol):
    def fit(self, train: np.ndarray, times: pd.DatetimeIndex) -> Forecaster: ...

    def predict(self, horizon: int) -> np.ndarray: ...


def _target(train: np.ndarray) -> np.ndarray:
    """Column 0 of the training part; baselines forecast the target from its own past."""
    y = _as_2d(train)[:, 0]
    if y.size == 0:
        raise DataError("There is nothing to learn from: the training part is empty.")
    if not np.isfinite(y).all():
        raise DataError("The series has missing values. Fill its gaps before forecasting.")
    return y


def _check_horizon(horizon: int) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise SpecError(f"The horizon must be a whole number of at least 1; got {horizon!r}.")
    return int(horizon)


class Naive:
    """Every future step equals the last value seen."""

    def fit(self, train: np.ndarray, times: pd.DatetimeIndex | None = None) -> Naive:
        self.last_ = float(_target(train)[-1])
        return self

    def predict(self, horizon: int) -> np.ndarray:
        return np.full(_check_horizon(horizon), self.last_)


class SeasonalNaive:
    """Each future step equals the value one season before it: the last season, repeated.

    With a training part shorter than one season it falls back to the last value
    (``fallback_`` is then True).
    """

    def __init__(self, season: int) -> None:
        self.season = season

    def fit(self, train: np.ndarray, times: pd.DatetimeIndex | None = None) -> SeasonalNaive:
        if self.season < 1:
            raise SpecError(f"The season length must be at least 1; got {self.season!r}.")
        y = _target(train)
        self.fallback_ = len(y) < self.season
        self.last_season_ = y[-1:] if self.fallback_ else y[-self.season :]
        return self

    def predict(self, horizon: int) -> np.ndarray:
        h = _check_horizon(horizon)
        return np.resize(self.last_season_, h).astype("float64")


class _LagModel:
    """Shared by the lag-feature baselines: windows of the last ``lookback`` values (at
    least one season) with each value taken relative to the last one, and targets as the
    change from the last value.

    Working in changes from the last value makes the models blind to the series' level, so
    a trending series (CO₂ climbs every year) is forecast beyond the range seen in training;
    a tree model on raw levels cannot go above the highest value it has seen.
    """

    def __init__(self, lookback: int, season: int = 1) -> None:
        self.lookback = lookback
        self.season = season

    def fit(self, train: np.ndarray, times: pd.DatetimeIndex | None = None) -> _LagModel:
        if self.lookback < 1 or self.season < 1:
            raise SpecError(
                f"The look-back and season length must be at least 1; got {self.lookback!r} "
                f"and {self.season!r}."
            )
        self.y_ = _target(train)
        self.times_ = None if times is None else pd.DatetimeIndex(times)
        if self.times_ is not None and len(self.times_) != len(self.y_):
            raise ValueError("times must have one entry per training step")
        return self

    def _lags(self, horizon: int) -> int:
        # Reach back a full season when the data leave enough training windows for it.
        room = len(self.y_) - horizon + 1 - MIN_TRAIN_WINDOWS
        lags = max(self.lookback, min(self.season, room))
        if len(self.y_) - lags - horizon + 1 < 1:
            raise DataError(
                f"The training part has {len(self.y_)} steps, too few for a look-back of "
                f"{lags} and a horizon of {horizon}. Shorten them or bring a longer history."
            )
        return lags

    def _design(self, horizon: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Relative lags ``(m, lags)``, changes to predict ``(m, horizon)`` and the lag count."""
        lags = self._lags(horizon)
        X, Y = make_windows(self.y_, lags, horizon)
        X = X[:, :, 0]
        last = X[:, -1:]
        return X - last, Y - last, lags


class RidgeLags(_LagModel):
    """Ridge regression from the last values to all ``horizon`` next values at once
    (direct multi-output), inside a scikit-learn ``Pipeline`` with standard scaling.

    The model for a horizon is trained on the first ``predict(horizon)`` call, since only
    then is the horizon known; ``fit`` checks and keeps the training part.
    """

    def __init__(self, lookback: int, season: int = 1, alpha: float = 1.0) -> None:
        super().__init__(lookback, season)
        self.alpha = alpha

    def fit(self, train: np.ndarray, times: pd.DatetimeIndex | None = None) -> RidgeLags:
        super().fit(train, times)
        self.models_: dict[int, tuple[int, Any]] = {}
        return self

    def predict(self, horizon: int) -> np.ndarray:
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        h = _check_horizon(horizon)
        if h not in self.models_:
            X, Y, lags = self._design(h)
            self.models_[h] = (
                lags,
                make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(X, Y),
            )
        lags, pipe = self.models_[h]
        window = self.y_[-lags:]
        return window[-1] + pipe.predict((window - window[-1])[None, :]).reshape(-1)


def _calendar(times: pd.DatetimeIndex, freq: Frequency | None) -> np.ndarray:
    """Calendar features of the forecast step, as the frequency makes them meaningful:
    hour and weekday below a day, weekday and month for days, week of the year for weeks,
    month for months, quarter for quarters, none for years."""
    if freq is None:
        return np.empty((len(times), 0))
    off = freq.offset
    if isinstance(off, pd.offsets.Tick):
        cols = [times.hour, times.day_of_week]
    elif isinstance(off, (pd.offsets.Day, pd.offsets.BusinessDay)):
        cols = [times.day_of_week, times.month]
    elif isinstance(off, pd.offsets.Week):
        cols = [times.isocalendar().week.to_numpy()]
    elif isinstance(off, (pd.offsets.MonthBegin, pd.offsets.MonthEnd)):
        cols = [times.month]
    elif isinstance(off, (pd.offsets.QuarterBegin, pd.offsets.QuarterEnd)):
        cols = [times.quarter]
    else:
        return np.empty((len(times), 0))
    return np.column_stack([np.asarray(c, dtype="float64") for c in cols])


class GradientBoostingLags(_LagModel):
    """Histogram gradient boosting on lags and calendar features, forecasting recursively.

    One model learns the change from the last value to the next one, from the relative lags
    and the calendar of the step being forecast (month, weekday, week of the year...); for
    a longer horizon it is fed its own forecasts as the newest lags, step by step.

    Recursive rather than one model per step: on CO₂ (weekly, horizon 52, look-back 104)
    both were measured, and the recursive model was as accurate (MASE 0.27 against 0.28)
    for one fit instead of 52 (about 2 s per backtest window instead of 36 s on two CPU
    cores). Its known weakness, errors compounding over a long horizon, is exactly what the
    backtest measures and shows.

    The fit and the forecast run on one OpenMP thread: these models are small, and on a
    busy machine (a Keras model training beside them) scikit-learn's threads fought for
    the cores and made the CO₂ backtest 7 times slower (18 s against 2.5 s on 2 cores).
    """

    def __init__(
        self, lookback: int, season: int = 1, max_iter: int = 100, learning_rate: float = 0.1
    ) -> None:
        super().__init__(lookback, season)
        self.max_iter = max_iter
        self.learning_rate = learning_rate

    def fit(self, train: np.ndarray, times: pd.DatetimeIndex | None = None) -> GradientBoostingLags:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        super().fit(train, times)
        X, Y, self.lags_ = self._design(1)
        self.freq_ = None
        if self.times_ is not None:
            try:
                self.freq_ = infer_frequency(self.times_)
            except DataError:
                self.freq_ = None  # too irregular for a calendar: lags only
        if self.freq_ is not None:
            # Window i forecasts position i + lags of the training part.
            X = np.hstack([X, _calendar(self.times_[self.lags_ : self.lags_ + len(X)], self.freq_)])
        model = HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            early_stopping=False,
            random_state=_SEED,
        )
        with threadpool_limits(1, user_api="openmp"):
            self.model_ = model.fit(X, Y[:, 0])
        return self

    def predict(self, horizon: int) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        h = _check_horizon(horizon)
        lags = self.lags_
        values = np.concatenate([self.y_[-lags:], np.empty(h)])
        calendar = None
        if self.freq_ is not None:
            calendar = _calendar(self.freq_.future(self.times_[-1], h), self.freq_)
        with threadpool_limits(1, user_api="openmp"):
            for j in range(h):
                window = values[j : j + lags]
                x = (window - window[-1])[None, :]
                if calendar is not None:
                    x = np.hstack([x, calendar[j : j + 1]])
                values[lags + j] = window[-1] + self.model_.predict(x)[0]
        return values[lags:].copy()


def baselines(lookback: int, season: int) -> dict[str, Callable[[], Forecaster]]:
    """A factory per baseline, keyed as ``BASELINE_TITLES``, for ``backtest``."""
    return {
        "naive": Naive,
        "seasonal_naive": lambda: SeasonalNaive(season),
        "ridge_lags": lambda: RidgeLags(lookback, season),
        "gradient_boosting_lags": lambda: GradientBoostingLags(lookback, season),
    }


def _scores(
    actual: np.ndarray, forecast: np.ndarray, train: np.ndarray, season: int
) -> dict[str, float]:
    return {
        "mase": mase(actual, forecast, train, season),
        "mae": mae(actual, forecast),
        "rmse": rmse(actual, forecast),
        "smape": smape(actual, forecast),
    }


# --------------------------------------------------------------------------------------
# Backtest
# --------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    """Forecasts against actuals per backtest window, with the metrics per window.

    ``forecasts``, ``actuals`` and ``times`` have shape ``(windows, horizon)``; ``metrics``
    holds one dict per window (keys ``METRICS``). ``overall`` is the mean over windows; the
    windows are the unit to resample for an interval (``per_window("mase")``).
    """

    splits: list[Split]
    forecasts: np.ndarray
    actuals: np.ndarray
    times: np.ndarray
    season: int
    metrics: list[dict[str, float]]

    @property
    def overall(self) -> dict[str, float]:
        return {key: float(np.mean(self.per_window(key))) for key in METRICS}

    def per_window(self, key: str) -> np.ndarray:
        if key not in METRICS:
            raise SpecError(f"There is no metric '{key}'. Use one of: {', '.join(METRICS)}.")
        return np.array([m[key] for m in self.metrics])

    @property
    def residuals(self) -> np.ndarray:
        """Actual minus forecast, ``(windows, horizon)``: the input of ``forecast_intervals``."""
        return self.actuals - self.forecasts

    def to_frame(self) -> pd.DataFrame:
        """One row per window and step: ``window, step, time, actual, forecast`` (for the
        chart of actual against forecast per window, and for a CSV)."""
        w, h = self.forecasts.shape
        return pd.DataFrame(
            {
                "window": np.repeat(np.arange(w), h),
                "step": np.tile(np.arange(1, h + 1), w),
                "time": self.times.reshape(-1),
                "actual": self.actuals.reshape(-1),
                "forecast": self.forecasts.reshape(-1),
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, for the run store (nan becomes None)."""

        def clean(x: float) -> float | None:
            return None if not math.isfinite(x) else float(x)

        return {
            "splits": [s.to_dict() for s in self.splits],
            "forecasts": self.forecasts.tolist(),
            "actuals": self.actuals.tolist(),
            "times": [[pd.Timestamp(t).isoformat() for t in row] for row in self.times],
            "season": self.season,
            "metrics": [{k: clean(v) for k, v in m.items()} for m in self.metrics],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BacktestResult:
        return cls(
            splits=[Split(**s) for s in data["splits"]],
            forecasts=np.asarray(data["forecasts"], dtype="float64"),
            actuals=np.asarray(data["actuals"], dtype="float64"),
            times=np.array([[np.datetime64(t) for t in row] for row in data["times"]]),
            season=int(data["season"]),
            metrics=[
                {k: math.nan if v is None else float(v) for k, v in m.items()}
                for m in data["metrics"]
            ],
        )


def score_forecasts(
    forecasts: np.ndarray,
    values: np.ndarray,
    times: pd.DatetimeIndex | Sequence[Any],
    splits: Sequence[Split],
    season: int = 1,
) -> BacktestResult:
    """Score forecasts made elsewhere (a Keras model) for ``splits`` exactly as
    ``backtest`` scores a baseline. ``forecasts`` is ``(windows, horizon)``."""
    y = _target(values)
    times = pd.DatetimeIndex(times)
    f = np.asarray(forecasts, dtype="float64")
    if f.shape != (len(splits), splits[0].horizon if splits else 0):
        raise ValueError(f"forecasts must have shape (windows, horizon); got {f.shape}")
    actuals = np.stack([y[s.test] for s in splits])
    stamps = np.stack([times[s.test].to_numpy() for s in splits])
    metrics = [_scores(actuals[i], f[i], y[s.train], season) for i, s in enumerate(splits)]
    return BacktestResult(list(splits), f, actuals, stamps, season, metrics)


def backtest(
    model_factory: Callable[[], Forecaster],
    values: np.ndarray,
    times: pd.DatetimeIndex | Sequence[Any],
    splits: Sequence[Split],
    season: int = 1,
) -> BacktestResult:
    """Fit a fresh model on each split's training part and forecast its test block.

    ``values`` is the whole series ``(n,)`` or ``(n, k)`` (target in column 0); the model
    only ever receives ``values[:origin]`` and ``times[:origin]``. ``season`` scales MASE.
    """
    arr = _as_2d(values)
    times = pd.DatetimeIndex(times)
    if len(times) != len(arr):
        raise ValueError("times must have one entry per step of values")
    forecasts = []
    for s in splits:
        model = model_factory().fit(arr[s.train].copy(), times[s.train])
        forecasts.append(np.asarray(model.predict(s.horizon), dtype="float64").reshape(-1))
    return score_forecasts(np.stack(forecasts), arr, times, splits, season)


def forecast_intervals(
    residuals_by_step: np.ndarray, point: np.ndarray, level: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Prediction interval around a forecast from the backtest's own errors.

    Method: for each step ahead ``j``, take the sizes of the errors (|actual - forecast|) the
    same model made ``j`` steps ahead in the backtest windows; the interval is the forecast
    plus and minus their empirical ``level`` quantile, made never narrower than for an
    earlier step (errors do not shrink further out). No normal distribution is assumed, and
    the interval always contains the forecast. With few windows it is only as wide as the
    errors seen (with 3 windows, about the largest of them), so it is honest about what was
    measured, not more; a model that erred one way every time gets a wide interval, not a
    shifted one.

    ``residuals_by_step`` is ``(r, horizon)`` (r = windows, or windows × series); returns
    ``(lower, upper)``, each ``(horizon,)``.
    """
    if not 0.0 < level < 1.0:
        raise SpecError(f"The interval level must be between 0 and 1 (e.g. 0.9); got {level!r}.")
    res = np.asarray(residuals_by_step, dtype="float64")
    point = np.asarray(point, dtype="float64").reshape(-1)
    if res.ndim == 1:
        res = res[None, :]
    if res.ndim != 2 or res.shape[1] != point.size:
        raise ValueError(f"residuals must be (r, {point.size}); got {res.shape}")
    if res.shape[0] == 0 or np.isnan(res).all(axis=0).any():
        raise DataError(
            "There are no backtest errors to build an interval from. Run a backtest first."
        )
    width = np.maximum.accumulate(np.nanquantile(np.abs(res), level, axis=0))
    return point - width, point + width


def eager_predict(model: Any, x: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The model's outputs for ``x``, called directly a chunk at a time: ``model.predict`` traces a
    new function for every new model (seconds on a busy CPU, once per backtest fit) to predict a
    handful of windows, which a direct call does in milliseconds."""
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    return np.concatenate([np.asarray(model(x[i:i + chunk], training=False)) for i in range(0, len(x), chunk)])
