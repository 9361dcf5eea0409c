"""The forecast leaderboard: the backtest windows are the unit.

Every model's MASE, MAE, RMSE and sMAPE per (series, window), ranked by MASE with a
t-interval across the windows, and a verdict on the paired differences by window.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from dlcore.errors import DataError, SpecError
from dlcore.evaluate.metrics import (
    _FEW_WINDOWS,
    FORECAST_METRICS,
    Metric,
    _check_confidence,
    primary_metric,
)
from dlcore.evaluate.ranking import (
    Leaderboard,
    Row,
    Verdict,
    _check_families,
    _num,
    _one_side_missing,
    _outcome,
    _rank_key,
    _verdict_text,
    display_name,
)

# ---------------------------------------------------------------------------------------
# Forecast leaderboard: backtest windows are the unit.


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Student-t interval of the mean of the finite values; (nan, nan) with fewer than two."""
    finite = values[np.isfinite(values)]
    k = finite.size
    if k < 2:
        return (math.nan, math.nan)
    mean = float(finite.mean())
    half = float(stats.t.ppf((1.0 + confidence) / 2.0, k - 1) * finite.std(ddof=1) / math.sqrt(k))
    return (mean - half, mean + half)


def _window_values(
    per_window: dict[str, dict[str, list[float]]], families: dict[str, str]
) -> dict[str, dict[str, np.ndarray]]:
    """Check the per-window metrics and return them as arrays, one per model and metric."""
    if not per_window:
        raise SpecError("No backtest results to rank; backtest at least one model first.")
    _check_families(families, per_window, "per_window")
    out: dict[str, dict[str, np.ndarray]] = {}
    k: int | None = None
    first = ""
    for name, by_metric in per_window.items():
        if set(by_metric) != set(FORECAST_METRICS):
            raise SpecError(
                f"Model {name!r} has metrics {sorted(by_metric)}; give one list per metric for "
                f"exactly: {', '.join(FORECAST_METRICS)} (BacktestResult.per_window(key) for each)."
            )
        out[name] = {}
        for key in FORECAST_METRICS:
            try:
                values = np.asarray(by_metric[key], dtype=float)
            except (TypeError, ValueError) as e:
                raise DataError(f"Model {name!r}: {key} values must be numbers; {e}.") from e
            if values.ndim != 1:
                raise DataError(
                    f"Model {name!r}: {key} must be one value per backtest window; got shape "
                    f"{values.shape}."
                )
            if k is None:
                k, first = values.size, name
                if k == 0:
                    raise DataError(f"Model {name!r} has no backtest windows; use at least one.")
            elif values.size != k:
                raise DataError(
                    f"Model {name!r} has {values.size} {key} values but {first!r} has {k}; every "
                    "model must be scored on the same backtest windows, in the same order."
                )
            if np.any(np.isinf(values)):
                raise DataError(
                    f"Model {name!r}: {key} is infinite in some window; training probably "
                    "diverged. Retrain with a lower learning rate."
                )
            out[name][key] = values
        if not np.any(np.isfinite(out[name]["mase"])):
            raise DataError(
                f"Model {name!r}: MASE is undefined in every window (the training part is "
                "constant, so there is no seasonal naive error to scale by). Use a longer or "
                "less flat stretch of the series, or compare on MAE."
            )
    return out


def forecast_leaderboard(
    per_window: dict[str, dict[str, list[float]]],
    families: dict[str, str],
    fit_seconds: dict[str, float] | None = None,
    confidence: float = 0.95,
    n_points: int | None = None,
) -> Leaderboard:
    """Rank forecasters by mean MASE over the backtest windows and judge each deep model.

    ``per_window[model][key]`` holds one value per backtest window for each key of
    ``dlcore.series.backtest.METRICS`` (``BacktestResult.per_window(key)``), the same windows in the
    same order for every model. ``n_points`` (windows times horizon) is stored as ``n_test``.

    The windows, not the forecast points, are the independent unit: the steps inside one
    window share an origin and their errors are strongly correlated, so a bootstrap over points
    would give falsely narrow intervals. Each row's interval is a t-interval of the mean over
    the windows. A verdict compares the deep model with the best baseline window by window
    (paired: the same windows are hard for both), with a t-interval of the mean difference;
    ``Verdict.diff`` is the baseline's MASE minus the deep model's, so as on every board
    ``diff > 0`` means the deep model is better, and "better" means the whole interval of
    (deep minus baseline) lies below zero. One window gives no interval: (nan, nan).
    A window where a metric is undefined (nan) is left out of that metric's mean.

    Example::

        board = forecast_leaderboard(
            {"lstm": {k: lstm.per_window(k) for k in METRICS},
             "seasonal_naive": {k: snaive.per_window(k) for k in METRICS}},
            families={"lstm": "deep", "seasonal_naive": "baseline"},
        )
    """
    _check_confidence(confidence)
    values = _window_values(per_window, families)
    metric = primary_metric("forecast")
    fit_seconds = fit_seconds or {}
    n_windows = next(iter(next(iter(values.values())).values())).size

    rows = []
    for name, by_metric in values.items():
        secs = fit_seconds.get(name)
        means = {
            key: float(np.mean(v[np.isfinite(v)])) if np.any(np.isfinite(v)) else math.nan
            for key, v in by_metric.items()
        }
        rows.append(
            Row(
                model=name,
                family=families[name],
                test_score=means[metric.key],
                # An error measure is never below zero, whatever the t-interval says with few windows.
                ci=tuple(max(0.0, b) if math.isfinite(b) else b for b in _t_interval(by_metric[metric.key], confidence)),
                metrics=means,
                fit_seconds=None if secs is None else float(secs),
            )
        )
    rows.sort(key=_rank_key(metric, "forecast"))
    mase = {name: by_metric[metric.key] for name, by_metric in values.items()}
    return Leaderboard(
        task="forecast",
        metric=metric.key,
        metric_title=metric.title,
        higher_is_better=metric.higher_is_better,
        n_test=0 if n_points is None else int(n_points),
        rows=rows,
        verdicts=_forecast_verdicts(metric, rows, mase, confidence, n_windows),
        n_boot=0,
        seed=0,
        confidence=float(confidence),
        n_windows=n_windows,
    )


def _forecast_verdicts(
    metric: Metric, rows: list[Row], mase: dict[str, np.ndarray], confidence: float, k: int
) -> list[Verdict]:
    """One verdict per deep model against the best baseline, paired by backtest window."""
    missing = _one_side_missing(rows)
    if missing is not None:
        return missing
    base = next(r for r in rows if r.family == "baseline")
    seasonal = next((r for r in rows if r.model == "seasonal_naive"), None)
    verdicts = []
    for r in (r for r in rows if r.family == "deep"):
        # Baseline minus deep, window by window: positive where the deep model's error is lower.
        gains = mase[base.model] - mase[r.model]
        both = gains[np.isfinite(gains)]
        diff = float(both.mean()) if both.size else math.nan
        ci = _t_interval(gains, confidence)
        lead = f"The deep model ({display_name(r.model)})"
        vs = f"the best baseline ({display_name(base.model)})"
        if both.size < 2:
            outcome = "not_clearly_better"
            text = _one_window_text(lead, vs, mase[r.model], mase[base.model], k)
        else:
            outcome = _outcome(ci)
            text = _verdict_text(
                outcome, r.model, base.model, metric, r.test_score, base.test_score,
                diff, ci, confidence, None, where="on these backtest windows",
            )
            if k < _FEW_WINDOWS:
                text += (
                    f" The backtest has only {k} windows, so these intervals are wide; more "
                    "windows would give a sharper comparison."
                )
        text += _seasonal_naive_text(r, seasonal, base, "on average" if k > 1 else "in that window")
        verdicts.append(Verdict(outcome, r.model, base.model, diff, ci, text))
    return verdicts


def _one_window_text(lead: str, vs: str, deep: np.ndarray, base: np.ndarray, k: int) -> str:
    """A verdict that cannot be made: fewer than two windows where both MASEs are defined."""
    where = "the one backtest window" if k == 1 else "the one window where both are defined"
    both = np.isfinite(deep) & np.isfinite(base)
    scores = (
        f" There its MASE is {_num(deep[both][0])} vs {_num(base[both][0])}." if both.any() else ""
    )
    return (
        f"{lead} cannot be compared with {vs} with any confidence: {where} cannot show how "
        f"much the errors vary from one period to the next.{scores} Backtest on at least 2 "
        "windows, 5 or more for a sharper comparison."
    )


def _seasonal_naive_text(deep: Row, seasonal: Row | None, base: Row, over: str) -> str:
    """Whether the deep model beats the seasonal naive forecast, the bar analysts care about."""
    if seasonal is None or math.isnan(seasonal.test_score) or math.isnan(deep.test_score):
        return ""
    beats = "beats" if deep.test_score < seasonal.test_score else "does not beat"
    if seasonal is base:
        return (
            " The best baseline is the seasonal naive forecast (same time last season), the "
            f"usual bar for a forecast: {over} the deep model {beats} it."
        )
    return (
        " Against the seasonal naive forecast (same time last season), the usual bar for a "
        f"forecast, its MASE is {_num(deep.test_score)} vs {_num(seasonal.test_score)} {over}: "
        f"it {beats} it."
    )
