"""Cross-validation folds of a run's training part, and the comparisons made on them.

The folds cover the rows that are not test rows (the training and validation rows); the test
rows are never in a fold, so they stay untouched until the end. The first fold of the first
repeat *is* the run's validation split, so the search's trials (trained on the training rows,
judged on the validation rows) are that fold, and the best trial's model is the run's final
deep model. The other folds split the training rows, stratified for classes; further repeats
reshuffle every non-test row (tables under about 2,000 rows, where one set of folds is noisy).

Fold scores are not independent (their training rows overlap), so intervals and paired
comparisons use the corrected resampled t (Nadeau & Bengio, 2003), which widens the naive
interval by the share of rows held out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.model_selection import KFold, StratifiedKFold

__all__ = ["Fold", "make_folds", "repeats_for", "fold_interval", "paired_folds", "rows_to_separate"]

REPEAT_BELOW = 2000  # tables with fewer rows get a second set of folds when the budget allows


@dataclass(frozen=True)
class Fold:
    repeat: int
    index: int
    fit: np.ndarray  # row positions the candidate learns from
    held: np.ndarray  # row positions it is scored on


def repeats_for(n_rows: int) -> int:
    return 2 if n_rows < REPEAT_BELOW else 1


def _splitter(labels: np.ndarray | None, k: int, seed: int):  # noqa: ANN202
    if labels is not None:
        counts = np.bincount(labels.astype(int))
        if counts[counts > 0].min() >= k:
            return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), labels
    return KFold(n_splits=k, shuffle=True, random_state=seed), None


def make_folds(y: np.ndarray, task: str, train: np.ndarray, val: np.ndarray, k: int = 5, repeats: int = 1,
               seed: int = 0) -> list[Fold]:
    """``k`` folds per repeat over ``train`` and ``val`` (positions into ``y``); test rows are never in one.

    Repeat 0: fold 0 holds out ``val`` exactly, folds 1..k-1 split ``train`` (stratified for
    classes when every class has enough rows). Later repeats: a fresh stratified k-fold over all
    of ``train`` and ``val``, seeded by ``seed + repeat``.
    """
    if k < 2:
        raise ValueError(f"k is {k}; cross-validation needs at least 2 folds.")
    train, val = np.sort(np.asarray(train)), np.sort(np.asarray(val))
    classes = task != "regression"
    folds = [Fold(0, 0, train, val)]
    labels = y[train] if classes else None
    splitter, strat = _splitter(labels, k - 1, seed)
    for i, (_, held) in enumerate(splitter.split(train, strat), start=1):
        held_rows = np.sort(train[held])
        folds.append(Fold(0, i, np.sort(np.concatenate([np.setdiff1d(train, held_rows), val])), held_rows))
    pool = np.sort(np.concatenate([train, val]))
    for r in range(1, repeats):
        splitter, strat = _splitter(y[pool] if classes else None, k, seed + r)
        for i, (fit, held) in enumerate(splitter.split(pool, strat)):
            folds.append(Fold(r, i, pool[fit], pool[held]))
    return folds


def _t(confidence: float, dof: int) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, dof))


def fold_interval(scores: list[float] | np.ndarray, held_share: float = 0.2,
                  confidence: float = 0.95) -> tuple[float, float]:
    """Corrected t-interval of the mean fold score (nan with fewer than 2 folds)."""
    s = np.asarray([v for v in scores if v is not None and math.isfinite(v)], dtype=float)
    if s.size < 2:
        return (math.nan, math.nan)
    half = _t(confidence, s.size - 1) * math.sqrt((1 / s.size + held_share / (1 - held_share)) * s.var(ddof=1))
    return (float(s.mean() - half), float(s.mean() + half))


@dataclass(frozen=True)
class Paired:
    """Model a minus model b on the same folds (sign: positive means a is better)."""

    diff: float
    ci: tuple[float, float]
    n_folds: int
    a_wins: int  # folds where a was better

    @property
    def outcome(self) -> str:
        if math.isnan(self.ci[0]):
            return "not_clearly_better"
        return "better" if self.ci[0] > 0 else "worse" if self.ci[1] < 0 else "not_clearly_better"


def paired_folds(a: list[float], b: list[float], higher_is_better: bool, held_share: float = 0.2,
                 confidence: float = 0.95) -> Paired:
    """How much better ``a`` is than ``b`` on the folds both were scored on (same positions),
    with the corrected resampled t-interval of the mean difference."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    sign = 1.0 if higher_is_better else -1.0
    d = np.asarray([sign * (x - y) for x, y in pairs], dtype=float)
    if d.size == 0:
        return Paired(math.nan, (math.nan, math.nan), 0, 0)
    low, high = fold_interval(d, held_share, confidence)
    return Paired(float(d.mean()), (low, high), int(d.size), int((d > 0).sum()))


def rows_to_separate(n: int, diff: float, ci: tuple[float, float]) -> int | None:
    """About how many test rows would make an interval like ``ci`` around ``diff`` exclude zero
    (a width shrinking as one over the square root of the rows); None when ``diff`` is zero."""
    if not math.isfinite(diff) or diff == 0 or not all(map(math.isfinite, ci)):
        return None
    half = (ci[1] - ci[0]) / 2
    if half <= 0:
        return None
    return int(math.ceil(n * (half / abs(diff)) ** 2))
