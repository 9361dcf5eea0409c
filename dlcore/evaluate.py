"""One metric code path for Keras and scikit-learn models, and an honest leaderboard.

Every model on a board, deep or baseline, is scored here from its test-set output, so the
numbers are comparable by construction. Outputs follow one convention (the caller converts):

- ``"binary"`` / ``"multiclass"``: ``y_true`` int class codes ``0..k-1``; ``output`` class
  probabilities of shape ``(n, k)`` (binary: ``k == 2``, column 1 is the positive class).
- ``"regression"``: ``y_true`` floats ``(n,)``; ``output`` predictions ``(n,)``.
- ``"forecast"``: not scored row by row here. ``dlcore.forecast`` scores each backtest window
  (MASE needs the training part and the season); ``forecast_leaderboard`` ranks the models
  from those per-window values.

The primary metric of each task gets a percentile-bootstrap confidence interval. All models
are scored on the *same* resampled rows (a paired bootstrap), so the interval for "deep minus
best baseline" reflects the difference between models, not the noise each one has alone.
Forecasts instead get a t-interval across backtest windows, paired by window (see
``forecast_leaderboard`` for why).

Example::

    board = leaderboard("binary", y_test, {"mlp": p_mlp, "dummy": p_dummy},
                        families={"mlp": "deep", "dummy": "baseline"})
    board.verdicts[0].text
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from dlcore import forecast as fc
from dlcore.errors import DataError, SpecError

__all__ = [
    "TASKS",
    "FAMILIES",
    "OUTCOMES",
    "Metric",
    "metrics_for",
    "primary_metric",
    "score",
    "predicted_labels",
    "per_class",
    "bootstrap_indices",
    "bootstrap_values",
    "bootstrap_ci",
    "Row",
    "Verdict",
    "Leaderboard",
    "leaderboard",
    "forecast_leaderboard",
]

TASKS = ("binary", "multiclass", "regression", "forecast")
FAMILIES = ("deep", "baseline")
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
        "score forecasts with dlcore.forecast.mase, backtest or score_forecasts."
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
        fc.mae,
    ),
    Metric(
        "rmse", "RMSE", False,
        "Typical size of a forecast error, in the series' own units, with large misses "
        "weighing more: lower is better, 0 is perfect.",
        fc.rmse,
    ),
    Metric(
        "smape", "sMAPE", False,
        "Forecast error as a percentage of the actual and forecast values together, on a "
        "0 to 200 scale: 0 is perfect, 200 is the worst (for example, forecasting 0 where "
        "the actual is not 0).",
        fc.smape,
    ),
]
assert [m.key for m in _METRICS["forecast"]] == list(fc.METRICS)


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
            "dlcore.forecast.backtest (or score_forecasts) for each model, then "
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


# ---------------------------------------------------------------------------------------
# Leaderboard and verdict.


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _none_to_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


@dataclass
class Row:
    """One model on the board: its primary score with interval, and all metrics."""

    model: str
    family: str
    test_score: float
    ci: tuple[float, float]
    metrics: dict[str, float]
    fit_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "test_score": _nan_to_none(self.test_score),
            "ci": [_nan_to_none(c) for c in self.ci],
            "metrics": {k: _nan_to_none(v) for k, v in self.metrics.items()},
            "fit_seconds": self.fit_seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        return cls(
            model=d["model"],
            family=d["family"],
            test_score=_none_to_nan(d["test_score"]),
            ci=(_none_to_nan(d["ci"][0]), _none_to_nan(d["ci"][1])),
            metrics={k: _none_to_nan(v) for k, v in d["metrics"].items()},
            fit_seconds=d.get("fit_seconds"),
        )


@dataclass
class Verdict:
    """Is a deep model better than the best baseline? ``diff > 0`` means the deep model is."""

    outcome: str
    deep_model: str | None
    best_baseline: str | None
    diff: float
    diff_ci: tuple[float, float]
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "deep_model": self.deep_model,
            "best_baseline": self.best_baseline,
            "diff": _nan_to_none(self.diff),
            "diff_ci": [_nan_to_none(c) for c in self.diff_ci],
            "text": self.text,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(
            outcome=d["outcome"],
            deep_model=d["deep_model"],
            best_baseline=d["best_baseline"],
            diff=_none_to_nan(d["diff"]),
            diff_ci=(_none_to_nan(d["diff_ci"][0]), _none_to_nan(d["diff_ci"][1])),
            text=d["text"],
        )


@dataclass
class Leaderboard:
    """Models ranked by the task's primary metric (best first), with one verdict per deep model."""

    task: str
    metric: str
    metric_title: str
    higher_is_better: bool
    n_test: int
    rows: list[Row]
    verdicts: list[Verdict]
    n_boot: int
    seed: int
    confidence: float = 0.95
    # Forecast boards only: how many backtest windows the intervals come from. Their n_boot
    # is 0 (no bootstrap) and n_test the forecast points scored (0 when not given).
    n_windows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (nan becomes None) that ``from_dict`` turns back into this board."""
        return {
            "task": self.task,
            "metric": self.metric,
            "metric_title": self.metric_title,
            "higher_is_better": self.higher_is_better,
            "n_test": self.n_test,
            "rows": [r.to_dict() for r in self.rows],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "n_boot": self.n_boot,
            "seed": self.seed,
            "confidence": self.confidence,
            "n_windows": self.n_windows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Leaderboard:
        return cls(
            task=d["task"],
            metric=d["metric"],
            metric_title=d["metric_title"],
            higher_is_better=bool(d["higher_is_better"]),
            n_test=int(d["n_test"]),
            rows=[Row.from_dict(r) for r in d["rows"]],
            verdicts=[Verdict.from_dict(v) for v in d["verdicts"]],
            n_boot=int(d["n_boot"]),
            seed=int(d["seed"]),
            confidence=float(d.get("confidence", 0.95)),
            n_windows=None if d.get("n_windows") is None else int(d["n_windows"]),
        )


def _num(x: float) -> str:
    """A metric value for a sentence: 3 decimals, thousands grouped for large-unit errors."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3f}"


def _signed(x: float) -> str:
    # A real minus sign reads better than a hyphen next to a plus sign.
    s = _num(abs(x))
    return ("+" if x >= 0 else "\u2212") + s


def _in_sentence(title: str) -> str:
    """'Accuracy' -> 'accuracy' inside a sentence; acronyms such as 'ROC AUC' stay as they are."""
    return title[0].lower() + title[1:] if title[1:2].islower() else title


DISPLAY_NAMES = {
    "mlp": "MLP",
    "mlp_embed": "MLP with embeddings",
    "cnn_small": "small CNN",
    "cnn_deep": "deeper CNN",
    "dummy": "dummy floor",
    "logistic_regression": "logistic regression",
    "ridge": "ridge regression",
    "random_forest": "random forest",
    "gradient_boosting": "gradient boosting",
    "cnn1d": "1-D CNN",
    "lstm": "LSTM",
    "gru": "GRU",
    "naive": "naive (last value)",
    "seasonal_naive": "seasonal naive",
    "ridge_lags": "ridge on lags",
    "gradient_boosting_lags": "gradient boosting on lags",
}


def per_class(y_true: Any, output: Any, classes: list[str]) -> list[dict[str, Any]]:
    """Precision, recall and F1 of each class from class probabilities, with how many test rows
    truly are that class (``support``); in plain words on the page, so a weak class shows."""
    y = np.asarray(y_true).astype(int)
    pred = np.asarray(output).argmax(axis=1)
    labels = list(range(len(classes)))
    p, r, f, n = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return [{"class": classes[k], "precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]),
             "support": int(n[k])} for k in labels]


def display_name(model: str) -> str:
    """The name an analyst reads for a model id ('random_forest' -> 'random forest')."""
    return DISPLAY_NAMES.get(model, model.replace("_", " "))


def _verdict_text(
    outcome: str,
    deep: str,
    base: str,
    metric: Metric,
    deep_score: float,
    base_score: float,
    diff: float,
    ci: tuple[float, float],
    confidence: float,
    n: int | None,
    where: str = "on this test set",
) -> str:
    """The verdict in words. ``n`` test rows adds a warning when small (None: the caller
    words its own); ``where`` names the data the comparison was made on."""
    level = f"{confidence:.0%} interval"
    name = _in_sentence(metric.title)
    lead = f"The deep model ({display_name(deep)})"
    vs = f"the best baseline ({display_name(base)})"
    if math.isnan(diff) or math.isnan(ci[0]):
        text = (
            f"{lead} cannot be compared with {vs}: {name} is undefined on this test "
            "set (for example, only one class is present). Use a larger or stratified test set."
        )
    else:
        interval = f"{_signed(ci[0])} to {_signed(ci[1])}"
        if metric.higher_is_better:
            change = f"{_signed(diff)} ({level} {interval})"
            difference = f"the difference in {name} is {_signed(diff)}"
            interval_named = f"the {level} ({interval})"
        else:
            # diff > 0 means the deep model's error is lower, so say "lower" in words.
            word = "lower" if diff >= 0 else "higher"
            change = f"{_num(abs(diff))} {word} ({level} for how much lower: {interval})"
            difference = f"its {name} is {_num(abs(diff))} {word}"
            interval_named = f"the {level} for how much lower ({interval})"
        scores = f"{name} {_num(deep_score)} vs {_num(base_score)}"
        if outcome == "better":
            text = f"{lead} is better than {vs}: {scores}, {change}."
        elif outcome == "worse":
            text = (
                f"{lead} is worse than {vs}: {scores}, {change}. "
                "The simpler model is the better choice."
            )
        else:
            text = (
                f"{lead} is not clearly better than {vs}: {difference}, and {interval_named} "
                f"includes zero, so {where} the simpler model is the safer choice."
            )
    if n is not None and n < _SMALL_TEST:
        text += (
            f" The test set has only {n} rows, so these intervals are wide; more test data "
            "would give a sharper comparison."
        )
    return text


# A tie on the primary metric (two models both at ROC AUC 1.0, say) is broken by a metric that
# also judges how sure the model is, lower being better; a tie on both goes to the baseline,
# the simpler model. So the first row is always the model the verdict would recommend.
_TIE_BREAK = {"binary": "log_loss", "multiclass": "log_loss", "regression": "mae", "forecast": "mae"}


def _rank_key(metric: Metric, task: str) -> Callable[[Row], tuple[int, float, float, int]]:
    sign = -1.0 if metric.higher_is_better else 1.0
    tie = _TIE_BREAK.get(task, "")

    def key(r: Row) -> tuple[int, float, float, int]:
        if math.isnan(r.test_score):  # an undefined score goes last, not wherever nan sorts
            return (1, 0.0, 0.0, 0)
        second = r.metrics.get(tie, math.nan)
        return (0, sign * r.test_score, math.inf if math.isnan(second) else second, r.family != "baseline")

    return key


def leaderboard(
    task: str,
    y_true: Any,
    outputs: dict[str, Any],
    families: dict[str, str],
    fit_seconds: dict[str, float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Leaderboard:
    """Score every model the same way, rank them and judge each deep model against baselines.

    The best baseline is the best-scoring model of family ``"baseline"`` (the Dummy floor
    included). A verdict is "better" or "worse" only when the whole paired-bootstrap interval
    of the difference lies on one side of zero.
    """
    metric = primary_metric(task)
    _check_n_boot(n_boot)
    _check_confidence(confidence)
    if not outputs:
        raise SpecError("No model outputs to rank; train at least one model first.")
    _check_families(families, outputs, "outputs")
    fit_seconds = fit_seconds or {}

    names = list(outputs)
    checked: dict[str, np.ndarray] = {}
    y = np.asarray(y_true)
    for name in names:
        try:
            y, checked[name] = _check(task, y_true, outputs[name])
        except DataError as e:
            raise DataError(f"Model {name!r}: {e}") from e
    n = y.size

    boots = dict(zip(names, _resampled(metric, y, [checked[m] for m in names], n_boot, seed)))
    rows = []
    for name in names:
        all_metrics = {m.key: m(y, checked[name]) for m in _METRICS[task]}
        secs = fit_seconds.get(name)
        rows.append(
            Row(
                model=name,
                family=families[name],
                test_score=all_metrics[metric.key],
                ci=_percentile_ci(boots[name], confidence),
                metrics=all_metrics,
                fit_seconds=None if secs is None else float(secs),
            )
        )
    rows.sort(key=_rank_key(metric, _task(task)))
    verdicts = _verdicts(metric, rows, boots, confidence, n)
    return Leaderboard(
        task=task,
        metric=metric.key,
        metric_title=metric.title,
        higher_is_better=metric.higher_is_better,
        n_test=n,
        rows=rows,
        verdicts=verdicts,
        n_boot=int(n_boot),
        seed=int(seed),
        confidence=float(confidence),
    )


def _verdicts(
    metric: Metric, rows: list[Row], boots: dict[str, np.ndarray], confidence: float, n: int
) -> list[Verdict]:
    """One verdict per deep model (rows are already ranked best first)."""
    missing = _one_side_missing(rows)
    if missing is not None:
        return missing
    base = next(r for r in rows if r.family == "baseline")
    sign = 1.0 if metric.higher_is_better else -1.0
    verdicts = []
    for r in (r for r in rows if r.family == "deep"):
        diff = sign * (r.test_score - base.test_score)
        # Paired: resample b of the deep model and of the baseline used the same rows.
        ci = _percentile_ci(sign * (boots[r.model] - boots[base.model]), confidence)
        outcome = _outcome(ci)
        text = _verdict_text(
            outcome, r.model, base.model, metric, r.test_score, base.test_score,
            diff, ci, confidence, n,
        )
        verdicts.append(Verdict(outcome, r.model, base.model, float(diff), ci, text))
    return verdicts


def _outcome(ci: tuple[float, float]) -> str:
    """"better" / "worse" only when the whole interval of (deep better by) lies on one side of 0."""
    if ci[0] > 0:
        return "better"
    if ci[1] < 0:
        return "worse"
    return "not_clearly_better"


def _one_side_missing(rows: list[Row]) -> list[Verdict] | None:
    """The verdicts of a board without a deep model or without a baseline; None if it has both."""
    deep = [r for r in rows if r.family == "deep"]
    baselines = [r for r in rows if r.family == "baseline"]
    nan_ci = (math.nan, math.nan)
    if not deep:
        best = baselines[0].model
        return [
            Verdict(
                "no_deep_model", None, best, math.nan, nan_ci,
                f"No deep model is on the board, so the best model is the baseline ({display_name(best)}).",
            )
        ]
    if not baselines:
        return [
            Verdict(
                "no_baseline", r.model, None, math.nan, nan_ci,
                f"There is no baseline to compare the deep model ({display_name(r.model)}) with, so there "
                "is no evidence that it beats a simpler model.",
            )
            for r in deep
        ]
    return None


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


def _check_families(families: dict[str, str], models: dict[str, Any], what: str) -> None:
    """Every model has a family, and every family is one of ``FAMILIES``."""
    if set(families) != set(models):
        raise SpecError(
            f"families must name the same models as {what}; {what}: {sorted(models)}, "
            f"families: {sorted(families)}."
        )
    for name, fam in families.items():
        if fam not in FAMILIES:
            raise SpecError(f"Family of {name!r} is {fam!r}; use one of: {', '.join(FAMILIES)}.")


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
        if set(by_metric) != set(fc.METRICS):
            raise SpecError(
                f"Model {name!r} has metrics {sorted(by_metric)}; give one list per metric for "
                f"exactly: {', '.join(fc.METRICS)} (BacktestResult.per_window(key) for each)."
            )
        out[name] = {}
        for key in fc.METRICS:
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
    ``dlcore.forecast.METRICS`` (``BacktestResult.per_window(key)``), the same windows in the
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
