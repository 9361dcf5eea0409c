"""Thresholds from money: where to set the cut-off of a yes/no model, in the user's currency.

A binary model gives each row a probability; the business acts on the rows at or above a
threshold (a model of several classes: the probability of one class, against the rest).
Given what a correct flag earns and what a false alarm and a miss cost, the
expected profit at every threshold follows from the test rows' confusion counts
(scikit-learn's ``roc_curve`` gives them at every distinct score). The best threshold is
the one with the highest profit; the chosen one is saved with the run and Predict adds a
``decision`` column with it.

>>> money = Money(value_tp=120, cost_fp=20, cost_fn=0)
>>> curve = profit_curve(y_test, p_test, money)
>>> best = best_threshold(curve)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from dlcore.errors import SpecError
from dlcore.store import Store, atomic_write

__all__ = ["Money", "Decision", "profit_curve", "best_threshold", "confusion_at", "profit_interval", "gains",
           "save_decision", "load_decision", "decide", "class_column", "rarer_class", "other_side", "resolved", "DECISION_COLUMN"]

DECISION_COLUMN = "decision"
_FILE = "decision.json"


@dataclass(frozen=True)
class Money:
    """What each outcome is worth, in one currency: values earned and costs paid (positive numbers)."""

    value_tp: float = 100.0  # a real positive the model flags (e.g. a churner kept by an offer)
    cost_fp: float = 10.0  # a flag that was not needed (an offer to someone who stays anyway)
    cost_fn: float = 0.0  # a real positive the model misses (beyond the lost value above)
    value_tn: float = 0.0  # a row correctly left alone
    currency: str = "€"

    def __post_init__(self) -> None:
        for name in ("value_tp", "cost_fp", "cost_fn", "value_tn"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SpecError(f"{name} must be a number, got {value!r}.")
        if self.value_tp == 0 and self.cost_fp == 0 and self.cost_fn == 0 and self.value_tn == 0:
            raise SpecError("Enter at least one value or cost: with everything at 0 every threshold is worth the same.")

    def profit(self, tp: Any, fp: Any, fn: Any, tn: Any) -> Any:
        return tp * self.value_tp - fp * self.cost_fp - fn * self.cost_fn + tn * self.value_tn

    def money(self, amount: float) -> str:
        """An amount as people write it: "€1,234" or "-€56"."""
        sign = "-" if amount < 0 else ""
        digits = f"{abs(amount):,.0f}" if abs(amount) >= 100 else f"{abs(amount):,.2f}"
        return f"{sign}{self.currency}{digits}"


@dataclass(frozen=True)
class Decision:
    """A threshold chosen for one model of one run, with the money that chose it."""

    model: str
    threshold: float
    money: Money
    positive: str  # the class a flag means
    negative: str
    profit_per_row: float  # on the test rows, at this threshold
    saved_at: float = 0.0
    rows_per_month: int | None = None  # what the analyst scores in a month, to put the profit in their numbers

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["money"] = asdict(self.money)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Decision":
        """A saved decision; one saved before the class was recorded has no ``positive`` (""), which
        ``class_column`` reads as a yes/no target's second class, as it always meant."""
        return cls(**{"positive": "", "negative": "", **raw, "money": Money(**raw["money"])})


def _check(y_true: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(int).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if len(y) != len(p) or len(y) == 0:
        raise SpecError(f"Need the same number of true values and probabilities (got {len(y)} and {len(p)}).")
    if not set(np.unique(y)) <= {0, 1}:
        raise SpecError("Thresholds from money need a yes/no target (two classes).")
    return y, p


def profit_curve(y_true: np.ndarray, p: np.ndarray, money: Money) -> pd.DataFrame:
    """Profit at every distinct threshold: flag a row when its probability is at least ``threshold``.

    Columns: threshold, tp, fp, fn, tn, flagged (share of rows), profit (total on these rows),
    profit_per_row. The first row (threshold above every score) flags no one."""
    y, p = _check(y_true, p)
    n_pos, n = int(y.sum()), len(y)
    if n_pos in (0, n):
        # roc_curve needs both classes; with one, the counts are simple.
        thresholds = np.r_[np.inf, np.unique(p)[::-1]]
        tp = np.array([((p >= t) & (y == 1)).sum() for t in thresholds], dtype=float)
        fp = np.array([((p >= t) & (y == 0)).sum() for t in thresholds], dtype=float)
    else:
        fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
        tp, fp = tpr * n_pos, fpr * (n - n_pos)
    fn, tn = n_pos - tp, (n - n_pos) - fp
    frame = pd.DataFrame({"threshold": np.minimum(thresholds, 1.0 + 1e-9), "tp": tp.round(), "fp": fp.round(),
                          "fn": fn.round(), "tn": tn.round()})
    frame["flagged"] = (frame["tp"] + frame["fp"]) / n
    frame["profit"] = money.profit(frame["tp"], frame["fp"], frame["fn"], frame["tn"])
    frame["profit_per_row"] = frame["profit"] / n
    return frame


def best_threshold(curve: pd.DataFrame) -> float:
    """The threshold of highest profit (of equals, the highest threshold: fewer rows to act on),
    as a round number that flags exactly the same rows: the page shows and saves three decimals,
    and a threshold of 0.0959 rounded to 0.096 would leave out the row it was chosen for."""
    i = int(np.argmax(curve["profit"].to_numpy()))  # thresholds fall down the frame: first max is highest
    best = float(curve["threshold"].iloc[i])
    below = float(curve["threshold"].iloc[i + 1]) if i + 1 < len(curve) else -np.inf  # the next lower score
    if i == 0 or not np.isfinite(best):  # flag no one: above every score, nothing to round
        return best
    for decimals in (2, 3, 4):
        rounded = np.floor(best * 10**decimals) / 10**decimals
        if rounded > below:  # still above every lower score: the same rows are flagged
            return float(round(rounded, decimals))
    return best


def confusion_at(y_true: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    y, p = _check(y_true, p)
    flag = p >= threshold
    return {"tp": int((flag & (y == 1)).sum()), "fp": int((flag & (y == 0)).sum()),
            "fn": int((~flag & (y == 1)).sum()), "tn": int((~flag & (y == 0)).sum())}


def profit_interval(y_true: np.ndarray, p: np.ndarray, threshold: float, money: Money, n_boot: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """A 95% bootstrap interval of the profit per row at a fixed threshold (rows resampled)."""
    y, p = _check(y_true, p)
    flag = p >= threshold
    per_row = np.where(flag & (y == 1), money.value_tp, 0.0) - np.where(flag & (y == 0), money.cost_fp, 0.0) \
        - np.where(~flag & (y == 1), money.cost_fn, 0.0) + np.where(~flag & (y == 0), money.value_tn, 0.0)
    rng = np.random.default_rng(seed)
    means = per_row[rng.integers(0, len(per_row), size=(n_boot, len(per_row)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def gains(y_true: np.ndarray, p: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Cumulative gain and lift: act on the top share of rows by probability; what share of
    all positives does that reach, and how many times better than picking rows at random?"""
    y, p = _check(y_true, p)
    order = np.argsort(-p, kind="stable")
    found = np.cumsum(y[order])
    n, n_pos = len(y), max(int(y.sum()), 1)
    share = np.linspace(0, 1, points)
    k = np.clip(np.round(share * n).astype(int), 0, n)
    gain = np.where(k > 0, found[np.maximum(k - 1, 0)] / n_pos, 0.0)
    lift = np.where(share > 0, gain / np.where(share > 0, share, 1), np.nan)
    return pd.DataFrame({"share": share, "gain": gain, "lift": lift})


def class_column(classes: list[str], positive: str) -> int:
    """The column of class probabilities a decision thresholds: its positive class's. For a yes/no
    target that is the second class; for several classes, the one acted on against the rest.

    >>> class_column(["basic", "plus", "premium"], "premium")
    2
    """
    labels = [str(c) for c in classes]
    if positive in (None, "") and len(labels) == 2:  # saved before the class was recorded: the second class
        return 1
    if str(positive) not in labels:
        raise SpecError(f"The class {positive!r} saved with the threshold is not one of the run's classes "
                        f"({', '.join(map(repr, labels))}). Save the threshold again on the Decide page.")
    return labels.index(str(positive))


def rarer_class(y_true: np.ndarray, classes: list[str]) -> str:
    """The class with the fewest rows (``y_true`` coded as positions in ``classes``): the one a
    yes/no decision usually acts on (the churner, the fraud, the default). Of equals, the later
    class, so a balanced yes/no target keeps acting on its second class as before.

    >>> rarer_class(np.array([1, 1, 0, 1]), ["ja", "nein"])
    'ja'
    """
    counts = np.bincount(np.asarray(y_true).astype(int).reshape(-1), minlength=len(classes))[:len(classes)]
    order = [k for k in range(len(classes)) if counts[k] == counts.min()]
    return str(classes[order[-1]])


def other_side(classes: list[str], positive: str) -> str:
    """What a row that is not flagged is called: the other class of a yes/no target, else "not <class>"."""
    labels = [str(c) for c in classes]
    if len(labels) == 2 and str(positive) in labels:
        return labels[1 - labels.index(str(positive))]
    return f"not {positive}"


def decide(probabilities: np.ndarray, decision: Decision) -> np.ndarray:
    """The decision per row: the positive class at or above the threshold, else the negative."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    return np.where(p >= decision.threshold, decision.positive, decision.negative).astype(object)


def resolved(decision: Decision, classes: list[str]) -> Decision:
    """A decision with its classes named: one saved before the class was recorded acts on a yes/no
    target's second class (``class_column``), and is named so here for the pages and the files."""
    if decision.positive or len(classes) != 2:
        return decision
    from dataclasses import replace

    return replace(decision, positive=str(classes[1]), negative=decision.negative or str(classes[0]))


def save_decision(store: Store, run_id: str, decision: Decision) -> None:
    """Keep the chosen threshold with the run (written whole or not at all); editors and owners."""
    store.require("decide", "run", run_id)
    data = {**decision.to_dict(), "saved_at": time.time()}
    with atomic_write(store.run_dir(run_id) / _FILE) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def load_decision(store: Store, run_id: str) -> Decision | None:
    path = store.run_dir(run_id) / _FILE
    if not path.exists():
        return None
    chosen = Decision.from_dict(json.loads(path.read_text()))
    if not chosen.positive:  # saved before the class was recorded: name the class it always meant
        chosen = resolved(chosen, list((store.run(run_id).result or {}).get("classes", [])))
    return chosen
