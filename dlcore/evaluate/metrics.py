"""One metric code path for Keras and scikit-learn models: the metrics of every task, scored from
a model's test-set output, and percentile-bootstrap intervals on the same resampled rows for
every model (a paired bootstrap).

Outputs follow one convention (the caller converts):

- ``"binary"`` / ``"multiclass"``: ``y_true`` int class codes ``0..k-1``; ``output`` class
  probabilities of shape ``(n, k)`` (binary: ``k == 2``, column 1 is the positive class).
- ``"regression"``: ``y_true`` floats ``(n,)``; ``output`` predictions ``(n,)``.
- ``"forecast"``: not scored row by row. ``mase``, ``mae``, ``rmse`` and ``smape`` score each
  backtest window (MASE needs the training part and the season), and the forecast leaderboard
  (``dlcore.series.leaderboard``) ranks the models from those per-window values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
from sklearn import metrics as skm

from dlcore.errors import DataError, SpecError

TASKS = ("binary", "multiclass", "regression", "forecast")
FAMILIES = ("deep", "baseline", "ensemble")
FORECAST_METRICS = ("mase", "mae", "rmse", "smape")  # the first is the primary one; all lower is better
OUTCOMES = ("better", "worse", "not_clearly_better", "no_deep_model", "no_baseline")

# Probabilities are clipped away from 0 and 1 so that one confident mistake costs a large
# but finite log loss instead of infinity, which would make every comparison meaningless.
_PROB_EPS = 1e-15
# Below this many test rows the intervals are wide enough that the analyst should be told.
_SMALL_TEST = 100
# Below this many backtest windows, likewise: a t-interval from 3 windows is very wide.
_FEW_WINDOWS = 5
# Resamples are processed in blocks of about this many (resample, row) cells: half a
# megabyte per work array, small enough to stay in the CPU cache (measured 2x faster than
# 8 MB blocks) and large enough that per-call overhead stays small for small test sets.
_BLOCK_CELLS = 65_536

ScoreFn = Callable[[np.ndarray, np.ndarray], float]
# (y_true, output) -> (counts -> one value per resample); see _BootAuc.
BootFn = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class Metric:
    """One metric: its names, its direction, a sentence for an analyst and how to compute it.

    ``fn`` scores validated ``(y_true, output)``. ``boot`` (optional) takes the same pair and
    returns a scorer of many bootstrap resamples at once, given their row counts; that is
    what makes 1,000 resamples of a large test set cheap. Metrics without it are resampled
    by a plain loop over ``fn``.
    """

    key: str
    title: str
    higher_is_better: bool
    explain: str
    fn: ScoreFn = field(compare=False, repr=False)
    boot: BootFn | None = field(default=None, compare=False, repr=False)

    def __call__(self, y_true: np.ndarray, output: np.ndarray) -> float:
        return float(self.fn(y_true, output))


# --------------------------------------------------------------------------------------
# Forecast errors: one step or one window at a time (MASE needs the training part).
# --------------------------------------------------------------------------------------


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype="float64").reshape(-1)
    p = np.asarray(y_pred, dtype="float64").reshape(-1)
    if t.shape != p.shape or t.size == 0:
        raise ValueError(
            f"y_true and y_pred must be non-empty and the same size; got {t.size} and {p.size}"
        )
    return t, p


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in the series' own units."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error: like MAE but large misses weigh more."""
    t, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Symmetric mean absolute percentage error on a 0-200 scale:
    ``200 * mean(|y - ŷ| / (|y| + |ŷ|))``, where a step with both 0 counts as 0."""
    t, p = _pair(y_true, y_pred)
    denom = np.abs(t) + np.abs(p)
    ratio = np.divide(np.abs(t - p), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(200.0 * np.mean(ratio))


def mase(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray, season: int = 1) -> float:
    """Mean absolute scaled error: the forecast's MAE divided by the MAE the seasonal naive
    forecast makes one season ahead inside the training part. Below 1 beats that.

    Uses lag 1 when the training part is not longer than a season. When the training part
    is constant (scale 0) it returns 0 for a perfect forecast and nan otherwise, since no
    finite ratio would be honest.
    """
    t, p = _pair(y_true, y_pred)
    train = np.asarray(y_train, dtype="float64").reshape(-1)
    lag = season if len(train) > season else 1
    if len(train) <= lag:
        return math.nan
    scale = float(np.mean(np.abs(train[lag:] - train[:-lag])))
    error = float(np.mean(np.abs(t - p)))
    if scale == 0.0:
        return 0.0 if error == 0.0 else math.nan
    return error / scale


# ---------------------------------------------------------------------------------------
# Metric functions. Inputs are already validated by _check; undefined values give nan.


def _argmax(output: np.ndarray) -> np.ndarray:
    return np.argmax(output, axis=1)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    if np.unique(y).size < 2:
        return math.nan
    return float(skm.roc_auc_score(y, p[:, 1]))


def _pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    # Average precision needs at least one positive; sklearn would warn and return 0.
    if not np.any(y == 1):
        return math.nan
    return float(skm.average_precision_score(y, p[:, 1]))


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.accuracy_score(y, _argmax(p)))


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.f1_score(y, _argmax(p), pos_label=1, zero_division=np.nan))


def _balanced_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    # Mean recall over the classes present in y_true: sklearn's balanced accuracy, written
    # this way because balanced_accuracy_score warns whenever a model predicts a class the
    # test sample lacks, which is common and harmless on small or resampled sets.
    return float(skm.recall_score(y, _argmax(p), labels=np.unique(y), average="macro"))


def _macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.f1_score(y, _argmax(p), average="macro", zero_division=np.nan))


def _clipped(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _PROB_EPS, 1.0 - _PROB_EPS)
    # Renormalise so rows still sum to one; sklearn refuses rows that do not.
    return q / q.sum(axis=1, keepdims=True)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return float(skm.log_loss(y, _clipped(p), labels=np.arange(p.shape[1])))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(skm.root_mean_squared_error(y, pred))


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(skm.mean_absolute_error(y, pred))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    # R² divides by the spread of y_true; with fewer than two distinct values it is undefined.
    if y.size < 2 or np.ptp(y) == 0:
        return math.nan
    return float(skm.r2_score(y, pred))


# Vectorised forms. ``boot(y, output)`` does the per-model work once (sorting, per-row
# losses) and returns a function of a ``(n_resamples, n_rows)`` matrix of row counts, where
# ``counts[b, i]`` is how often row i was drawn in resample b (each row of counts sums to n).
# The counts are integers, so the sums below are exact.


def _mean_of(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda counts: (counts @ values) / values.size


def _boot_accuracy(y: np.ndarray, p: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return _mean_of((_argmax(p) == y).astype(float))


def _boot_log_loss(y: np.ndarray, p: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return _mean_of(-np.log(_clipped(p)[np.arange(y.size), y]))


def _boot_rmse(y: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    mse = _mean_of((y - pred) ** 2)
    return lambda counts: np.sqrt(mse(counts))


def _boot_mae(y: np.ndarray, pred: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return _mean_of(np.abs(y - pred))


class _BootAuc:
    """ROC AUC of many resamples at once: the Mann-Whitney statistic with row counts.

    AUC = P(score of a positive > score of a negative) + 1/2 P(tie). With the rows sorted
    by score once, the negatives below each positive come from one cumulative sum per
    resample, so 1,000 resamples cost a few passes over a counts matrix instead of 1,000
    calls to sklearn. Integer arithmetic keeps it exact: it equals sklearn's ROC AUC.
    """

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        s = p[:, 1]
        self.order = np.argsort(s, kind="stable")
        s_sorted = s[self.order]
        self.pos = (y[self.order] == 1).astype(np.int64)
        # Rows with equal scores form one group; without ties every row is its own group.
        self.starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
        self.tied = self.starts.size < s.size
        # Work arrays are kept between calls: allocating fresh megabyte-sized arrays for
        # every block of resamples made page faults, not arithmetic, most of the cost.
        self._work: dict[int, tuple[np.ndarray, ...]] = {}

    def _arrays(self, b: int) -> tuple[np.ndarray, ...]:
        if b not in self._work:
            n, g = self.order.size, self.starts.size
            full = [np.empty((b, n), dtype=np.int64) for _ in range(3)]
            grouped = [np.empty((b, g), dtype=np.int64) for _ in range(2 if self.tied else 0)]
            self._work[b] = (*full, *grouped, np.empty((b, g), dtype=np.int64))
        return self._work[b]

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        work = self._arrays(counts.shape[0])
        c, c_pos, c_neg, cum = work[0], work[1], work[2], work[-1]
        np.take(counts, self.order, axis=1, out=c)
        np.multiply(c, self.pos, out=c_pos)
        np.subtract(c, c_pos, out=c_neg)
        if self.tied:
            c_pos = np.add.reduceat(c_pos, self.starts, axis=1, out=work[3])
            c_neg = np.add.reduceat(c_neg, self.starts, axis=1, out=work[4])
        np.cumsum(c_neg, axis=1, out=cum)
        # Twice the numerator: negatives at or below each positive's score count 2, then
        # the tied ones are taken back once so that a tie counts one half.
        num2 = 2 * np.einsum("ij,ij->i", c_pos, cum)
        if self.tied:
            num2 -= np.einsum("ij,ij->i", c_pos, c_neg)
        den2 = 2 * c_pos.sum(axis=1) * c_neg.sum(axis=1)
        return np.where(den2 > 0, num2 / np.maximum(den2, 1), np.nan)


# ---------------------------------------------------------------------------------------
# The metric tables.

_ACCURACY = Metric(
    "accuracy", "Accuracy", True,
    "Share of rows whose predicted class is the true class.",
    _accuracy, _boot_accuracy,
)
_LOG_LOSS = Metric(
    "log_loss", "Log loss", False,
    "How far the predicted probabilities are from what happened, punishing confident "
    "mistakes hardest: lower is better, 0 is perfect.",
    _log_loss, _boot_log_loss,
)

_METRICS: dict[str, list[Metric]] = {
    "binary": [
        Metric(
            "roc_auc", "ROC AUC", True,
            "How well the model ranks positives above negatives: 0.5 is a coin flip, "
            "1.0 is perfect.",
            _auc, _BootAuc,
        ),
        _ACCURACY,
        Metric(
            "f1", "F1 (positive class)", True,
            "Balance of precision and recall for the positive class at a 0.5 threshold: "
            "0 finds none of them correctly, 1.0 is perfect.",
            _f1,
        ),
        _LOG_LOSS,
        Metric(
            "pr_auc", "PR AUC (average precision)", True,
            "How precise the model stays as it finds more of the positives; useful when "
            "positives are rare. The share of positives is a coin flip, 1.0 is perfect.",
            _pr_auc,
        ),
    ],
    "multiclass": [
        _ACCURACY,
        Metric(
            "balanced_accuracy", "Balanced accuracy", True,
            "Accuracy averaged over the classes, so rare classes count as much as common "
            "ones: 1 / number of classes is guessing, 1.0 is perfect.",
            _balanced_accuracy,
        ),
        Metric(
            "macro_f1", "Macro F1", True,
            "F1 (balance of precision and recall) averaged over the classes, each class "
            "counting equally: 1.0 is perfect.",
            _macro_f1,
        ),
        _LOG_LOSS,
    ],
    "regression": [
        Metric(
            "rmse", "RMSE", False,
            "Typical size of a prediction error, in the target's own units, with large "
            "errors weighing more: lower is better, 0 is perfect.",
            _rmse, _boot_rmse,
        ),
        Metric(
            "mae", "MAE", False,
            "Average size of a prediction error, in the target's own units: lower is "
            "better, 0 is perfect.",
            _mae, _boot_mae,
        ),
        Metric(
            "r2", "R²", True,
            "Share of the target's variation the model explains: 0 is no better than "
            "predicting the average, 1.0 is perfect.",
            _r2,
        ),
    ],
}


def _needs_window_scoring(y: np.ndarray, p: np.ndarray) -> float:
    raise SpecError(
        "MASE needs the training part and the season length, not just actual and forecast; "
        "score forecasts with dlcore.evaluate.mase, or dlcore.series.backtest's backtest or score_forecasts."
    )


_METRICS["forecast"] = [
    Metric(
        "mase", "MASE", False,
        "The forecast's average error divided by the average error of the seasonal naive "
        "forecast (same time last season) on the training part: below 1 beats it, 0.5 "
        "halves its error; lower is better.",
        _needs_window_scoring,
    ),
    Metric(
        "mae", "MAE", False,
        "Average size of a forecast error, in the series' own units: lower is better, "
        "0 is perfect.",
        mae,
    ),
    Metric(
        "rmse", "RMSE", False,
        "Typical size of a forecast error, in the series' own units, with large misses "
        "weighing more: lower is better, 0 is perfect.",
        rmse,
    ),
    Metric(
        "smape", "sMAPE", False,
        "Forecast error as a percentage of the actual and forecast values together, on a "
        "0 to 200 scale: 0 is perfect, 200 is the worst (for example, forecasting 0 where "
        "the actual is not 0).",
        smape,
    ),
]
assert [m.key for m in _METRICS["forecast"]] == list(FORECAST_METRICS)


def _task(task: str) -> str:
    if task not in _METRICS:
        raise SpecError(f"Unknown task {task!r}; use one of: {', '.join(TASKS)}.")
    return task


def metrics_for(task: str) -> list[Metric]:
    """The metrics reported for ``task``, primary first."""
    return list(_METRICS[_task(task)])


def primary_metric(task: str) -> Metric:
    """The metric that ranks the leaderboard of ``task``."""
    return _METRICS[_task(task)][0]


def _check(task: str, y_true: Any, output: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``(y_true, output)`` to the convention of ``task``."""
    if _task(task) == "forecast":
        # Bootstrapping forecast points would treat strongly correlated steps as independent
        # rows and give falsely narrow intervals; the windows are the unit instead.
        raise SpecError(
            "Forecasts are scored per backtest window, not row by row: run "
            "dlcore.series.backtest.backtest (or score_forecasts) for each model, then "
            "forecast_leaderboard with the per-window metrics."
        )
    y = np.asarray(y_true)
    out = np.asarray(output, dtype=float)
    if y.ndim != 1:
        raise DataError(f"y_true must be one-dimensional; got shape {y.shape}.")
    if y.size == 0:
        raise DataError("The test set is empty; keep some rows for testing.")
    if not np.all(np.isfinite(out)):
        raise DataError(
            "The model's predictions contain missing or infinite values; training probably "
            "diverged. Retrain with a lower learning rate."
        )
    if task == "regression":
        if out.shape != y.shape:
            raise DataError(
                f"Regression predictions must have shape {y.shape} like y_true; got {out.shape}."
            )
        y = y.astype(float)
        if not np.all(np.isfinite(y)):
            raise DataError("The test target contains missing or infinite values; drop those rows.")
        return y, out
    k_expected = 2 if task == "binary" else None
    if out.ndim != 2 or out.shape[0] != y.size or out.shape[1] < 2 or (
        k_expected is not None and out.shape[1] != k_expected
    ):
        want = f"({y.size}, 2)" if task == "binary" else f"({y.size}, number of classes)"
        hint = (
            " For a positive-class probability p, pass np.column_stack([1 - p, p])."
            if task == "binary" else ""
        )
        raise DataError(
            f"{task.capitalize()} output must be class probabilities of shape {want}; "
            f"got {out.shape}.{hint}"
        )
    k = out.shape[1]
    if y.dtype.kind not in "biuf" or (y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0)):
        raise DataError(
            f"Class labels in y_true must be integer codes 0..{k - 1} (encode the labels first); "
            f"got values of type {y.dtype}."
        )
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise DataError(
            f"Class codes in y_true must lie in 0..{k - 1} to match the {k} probability "
            f"columns; got values from {y.min()} to {y.max()}."
        )
    return y, out


def score(task: str, y_true: Any, output: Any) -> dict[str, float]:
    """Every metric of ``task`` on ``(y_true, output)``; undefined metrics are nan."""
    y, out = _check(task, y_true, output)
    return {m.key: m(y, out) for m in _METRICS[task]}


def predicted_labels(task: str, output: Any) -> np.ndarray:
    """Predicted class codes (argmax of the probabilities), or the predictions themselves."""
    out = np.asarray(output, dtype=float)
    if _task(task) in ("regression", "forecast"):
        return out
    if out.ndim != 2:
        raise DataError(f"Classification output must be 2-D probabilities; got shape {out.shape}.")
    return _argmax(out)


# ---------------------------------------------------------------------------------------
# Bootstrap.


def _index_blocks(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Resampled row indices, a block of resamples at a time.

    Resample ``b`` is the ``b``-th draw of ``n`` indices from ``default_rng(seed)``, so the
    sets do not depend on the block size, and every model scored with the same seed and
    ``n`` sees the same rows (which is what makes the comparison paired).
    """
    rng = np.random.default_rng(seed)
    per_block = max(1, _BLOCK_CELLS // n)
    for start in range(0, n_boot, per_block):
        stop = min(n_boot, start + per_block)
        yield np.stack([rng.integers(0, n, size=n) for _ in range(start, stop)])


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each row appears in each resample: shape ``(len(idx), n)``."""
    b = idx.shape[0]
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n)


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The ``(n_boot, n)`` row indices the bootstrap uses for a test set of ``n`` rows."""
    return np.concatenate(list(_index_blocks(n, n_boot, seed)))


def _check_n_boot(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise SpecError(f"n_boot must be a whole number of at least 1 (e.g. 1000); got {n_boot!r}.")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise SpecError(
            f"confidence must lie strictly between 0 and 1 (e.g. 0.95); got {confidence!r}."
        )


def _metric_of(task: str, metric: Metric | str) -> Metric:
    if isinstance(metric, Metric):
        return metric
    for m in _METRICS[_task(task)]:
        if m.key == metric:
            return m
    keys = ", ".join(m.key for m in _METRICS[task])
    raise SpecError(f"Unknown metric {metric!r} for a {task} task; use one of: {keys}.")


def _resampled(
    metric: Metric, ys: np.ndarray, outs: list[np.ndarray], n_boot: int, seed: int
) -> list[np.ndarray]:
    """Metric values on the same resamples for several outputs (paired): one array each."""
    n = ys.size
    values: list[list[np.ndarray]] = [[] for _ in outs]
    scorers = [metric.boot(ys, out) for out in outs] if metric.boot is not None else None
    for idx in _index_blocks(n, n_boot, seed):
        if scorers is not None:
            counts = _counts(idx, n)
            for acc, scorer in zip(values, scorers):
                acc.append(np.asarray(scorer(counts), dtype=float))
        else:
            for acc, out in zip(values, outs):
                acc.append(np.array([metric(ys[r], out[r]) for r in idx]))
    return [np.concatenate(v) for v in values]


def bootstrap_values(
    task: str, metric: Metric | str, y_true: Any, output: Any, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """The metric on each of ``n_boot`` resamples of the test rows (nan where undefined)."""
    _check_n_boot(n_boot)
    m = _metric_of(task, metric)
    y, out = _check(task, y_true, output)
    return _resampled(m, y, [out], n_boot, seed)[0]


def _percentile_ci(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the finite values; (nan, nan) when none is finite."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return (float(lo), float(hi))


def bootstrap_ci(
    task: str,
    metric: Metric | str,
    y_true: Any,
    output: Any,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of one metric; resamples where it is undefined are skipped."""
    _check_confidence(confidence)
    return _percentile_ci(bootstrap_values(task, metric, y_true, output, n_boot, seed), confidence)


