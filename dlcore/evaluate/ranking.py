"""The honest leaderboard: every model of a run ranked on the same test rows by the primary
metric, each with its interval, and a plain-language verdict on the deep model against the best
baseline, with the paired interval of their difference (``dlcore.evaluate.metrics`` scores).

Forecasts are ranked by ``dlcore.series.leaderboard`` on the same ``Row`` and ``Verdict``,
with backtest windows as the unit.

Example::

    board = leaderboard("binary", y_test, {"mlp": p_mlp, "dummy": p_dummy},
                        families={"mlp": "deep", "dummy": "baseline"})
    board.verdicts[0].text
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn import metrics as skm

from dlcore import formats
from dlcore.errors import DataError, SpecError
from dlcore.evaluate.metrics import (
    _METRICS,
    _SMALL_TEST,
    FAMILIES,
    Metric,
    _check,
    _check_confidence,
    _check_n_boot,
    _percentile_ci,
    _resampled,
    _task,
    primary_metric,
)

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
    # Cross-validation (tables run within a budget): the mean fold score, its interval across
    # folds, each fold's score by position (None where this model was not scored on it), and
    # how many settings the search tried in how long. None where a kind has no folds.
    cv_score: float | None = None
    cv_ci: tuple[float, float] | None = None
    cv_folds: list[float | None] | None = None
    trials: int | None = None
    search_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "test_score": _nan_to_none(self.test_score),
            "ci": [_nan_to_none(c) for c in self.ci],
            "metrics": {k: _nan_to_none(v) for k, v in self.metrics.items()},
            "fit_seconds": self.fit_seconds,
            "cv_score": _nan_to_none(self.cv_score),
            "cv_ci": None if self.cv_ci is None else [_nan_to_none(c) for c in self.cv_ci],
            "cv_folds": None if self.cv_folds is None else [_nan_to_none(c) for c in self.cv_folds],
            "trials": self.trials,
            "search_seconds": self.search_seconds,
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
            cv_score=d.get("cv_score"),
            cv_ci=None if d.get("cv_ci") is None else (_none_to_nan(d["cv_ci"][0]), _none_to_nan(d["cv_ci"][1])),
            cv_folds=d.get("cv_folds"),
            trials=d.get("trials"),
            search_seconds=d.get("search_seconds"),
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
    # With cross-validation: the paired fold difference (deep better by) and its interval; the
    # outcome is then judged on the folds, and ``diff``/``diff_ci`` stay the test rows'.
    cv_diff: float | None = None
    cv_diff_ci: tuple[float, float] | None = None
    test_rows_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "deep_model": self.deep_model,
            "best_baseline": self.best_baseline,
            "diff": _nan_to_none(self.diff),
            "diff_ci": [_nan_to_none(c) for c in self.diff_ci],
            "text": self.text,
            "cv_diff": _nan_to_none(self.cv_diff),
            "cv_diff_ci": None if self.cv_diff_ci is None else [_nan_to_none(c) for c in self.cv_diff_ci],
            "test_rows_needed": self.test_rows_needed,
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
            cv_diff=d.get("cv_diff"),
            cv_diff_ci=None if d.get("cv_diff_ci") is None else (_none_to_nan(d["cv_diff_ci"][0]), _none_to_nan(d["cv_diff_ci"][1])),
            test_rows_needed=d.get("test_rows_needed"),
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
    # The column predicted, as the analyst named it, for the "nothing predicts" sentence.
    target: str | None = None

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
            "target": self.target,
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
            target=d.get("target"),
        )


def _num(x: float) -> str:
    """A metric value for a sentence, as the leaderboard's table writes it (``dlcore.formats``):
    "0.9120", "693.2", "43,805"."""
    return formats.number(x)


def _signed(x: float) -> str:
    # A real minus sign reads better than a hyphen next to a plus sign.
    s = _num(abs(x))
    return ("+" if x >= 0 else "\u2212") + s


def _in_sentence(title: str) -> str:
    """'Accuracy' -> 'accuracy' inside a sentence; acronyms such as 'ROC AUC' stay as they are."""
    return title[0].lower() + title[1:] if title[1:2].islower() else title


DISPLAY_NAMES = {
    "mlp": "MLP",
    "ensemble": "ensemble (weighted average)",
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


def best_by(board: dict) -> str:
    """How a board's first model is the best, in words: by its cross-validated score where the run
    had folds (the test rows only confirm it, and another model may score higher there), over the
    backtest windows for a forecast, else on the test rows.

    >>> best_by({"task": "binary", "rows": [{"cv_score": 0.9}]}), best_by({"task": "binary", "rows": [{"cv_score": None}]})
    ('by cross-validation', 'on the test rows')
    """
    rows = board.get("rows") or []
    if rows and rows[0].get("cv_score") is not None:
        return "in the backtest" if board.get("task") == "forecast" else "by cross-validation"
    return "on the test rows"


def recommended(board: dict) -> tuple[str, str]:
    """The model to use, and why in words: what the verdict advises, not just the board's first row.

    The board's first model is the best by its score (cross-validated where the run had folds).
    Where that is a deep model, or an ensemble holding one, that is not clearly better than the
    best baseline, the verdict calls the simpler model the safer choice, so that baseline is the
    one recommended (and every page opens on it). An ensemble stays recommended when its own
    fold scores beat the baseline's clearly (paired, as the verdict judges the deep model).

    >>> board = {"task": "binary", "higher_is_better": True, "confidence": 0.95,
    ...          "rows": [{"model": "mlp", "family": "deep", "cv_score": None},
    ...                   {"model": "logistic_regression", "family": "baseline", "cv_score": None}],
    ...          "verdicts": [{"outcome": "not_clearly_better", "deep_model": "mlp",
    ...                        "best_baseline": "logistic_regression"}]}
    >>> recommended(board)[0]
    'logistic_regression'

    When no model is clearly better than the dummy floor (``nothing_predicts``), no model is
    recommended for use: the model returned is only the one the pages open on, and ``why`` is
    the plain sentence saying so, which every place that names the model to use shows instead.
    """
    use, why = _recommended_model(board)
    nothing = nothing_predicts(board)
    return (use, nothing) if nothing else (use, why)


def _recommended_model(board: dict) -> tuple[str, str]:
    rows = [r for r in board.get("rows") or [] if not r["model"].startswith("dummy")] or board.get("rows") or []
    if not rows:
        raise DataError("The run's leaderboard has no models.")
    top = rows[0]
    where = best_by(board)
    first = f"the best {where}"
    if top["family"] == "baseline":
        return top["model"], first
    deep = next((r["model"] for r in rows if r["family"] == "deep"), None)
    verdict = next((v for v in board.get("verdicts") or [] if v.get("deep_model") == deep), None)
    base = (verdict or {}).get("best_baseline")
    by_model = {r["model"]: r for r in rows}
    if verdict is None or verdict.get("outcome") not in ("worse", "not_clearly_better") or base not in by_model:
        return top["model"], first
    if top["family"] == "ensemble":
        from dlcore.folds import paired_folds

        ours, theirs = top.get("cv_folds"), by_model[base].get("cv_folds")
        if ours and theirs:
            paired = paired_folds(ours, theirs, bool(board.get("higher_is_better", True)),
                                  confidence=float(board.get("confidence") or 0.95))
            if paired.n_folds >= 2 and paired.ci[0] > 0:
                return top["model"], f"{first}, and clearly better than {display_name(base)} on the folds"
    said = ("is worse than it" if verdict["outcome"] == "worse" else "is not clearly better than it")
    held = f" ({display_name(top['model'])} scores highest {where})" if top["model"] != deep else ""
    return base, (f"recommended by the verdict: the deep model ({display_name(deep)}) {said}, so the simpler "
                  f"model is the safer choice{held}")


_FLOOR_GUESS = {"regression": "always guessing its average",
                "binary": "always guessing by how common each class is",
                "multiclass": "always guessing by how common each class is"}


def _finite(*values: Any) -> bool:
    return all(v is not None and math.isfinite(float(v)) for v in values)


def _by_folds(row: dict) -> bool:
    """Whether a row has a cross-validated score with an interval (two folds or more)."""
    return _finite(row.get("cv_score")) and len(row.get("cv_ci") or []) == 2 and _finite(*row["cv_ci"])


def _side(row: dict, floor: dict) -> tuple[float | None, list | None]:
    """A row's score and interval on the same footing as the floor's: cross-validated where both
    have fold intervals, else on the test rows."""
    if _by_folds(row) and _by_folds(floor):
        return row.get("cv_score"), row.get("cv_ci")
    return row.get("test_score"), row.get("ci")


def _clearly_above_floor(row: dict, floor: dict, higher: bool) -> bool | None:
    """Whether ``row`` is clearly better than the dummy floor: its score lies beyond the floor's
    interval, and its own interval clears the floor's score (a floor whose interval has no width,
    ROC AUC 0.5 on every fold, is cleared only by a model sure to rank better than a coin).
    None when the board does not say enough to judge (no intervals)."""
    score, ci = _side(row, floor)
    floor_score, floor_ci = _side(floor, floor)
    if not floor_ci or not _finite(floor_score, *floor_ci):
        return None
    if not _finite(score):
        return False
    sign = 1.0 if higher else -1.0
    beyond = sign * (score - (floor_ci[1] if higher else floor_ci[0])) > 0
    if ci and _finite(*ci):
        return beyond and sign * ((ci[0] if higher else ci[1]) - floor_score) > 0
    return beyond


def nothing_predicts(board: dict) -> str | None:
    """The plain sentence when no model on the board is clearly better than the dummy floor (its
    interval), else None: the verdict then says so first, and no model is recommended for use.

    A board without a dummy floor (forecasts) or without intervals (an old run) is not judged.

    >>> row = lambda m, f, s, ci: {"model": m, "family": f, "cv_score": s, "cv_ci": ci}
    >>> board = {"task": "regression", "metric_title": "RMSE", "higher_is_better": False, "target": "Prix (€)",
    ...          "rows": [row("ridge", "baseline", 1309.0, [1250.0, 1370.0]),
    ...                   row("dummy", "baseline", 1310.0, [1255.0, 1365.0])]}
    >>> nothing_predicts(board)[:72]
    'Nothing here predicts Prix (€) better than always guessing its average: '
    >>> board["rows"][0].update(cv_score=900.0, cv_ci=[850.0, 950.0])
    >>> nothing_predicts(board) is None
    True
    """
    rows = board.get("rows") or []
    floor = next((r for r in rows if r["model"].startswith("dummy")), None)
    others = [r for r in rows if r is not floor]
    if floor is None or not others:
        return None
    higher = bool(board.get("higher_is_better", True))
    judged = [_clearly_above_floor(r, floor, higher) for r in others]
    if any(j is None or j for j in judged):
        return None
    score, ci = _side(floor, floor)
    where = "by cross-validation" if _by_folds(floor) else "on the test rows"
    title = board.get("metric_title") or "score"
    target = board.get("target") or "the target"
    guess = _FLOOR_GUESS.get(board.get("task", ""), "always guessing the same answer")
    level = f"{float(board.get('confidence') or 0.95):.0%} interval"
    return (f"Nothing here predicts {target} better than {guess}: no model is clearly better than the dummy floor "
            f"({_in_sentence(title)} {_num(score)} {where}, {level} {_num(ci[0])} to {_num(ci[1])}), so no "
            "model is recommended for use. Check that the target is the column meant, or bring columns that "
            "bear on it.")


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
    unit: str = "rows",
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
            # diff > 0 means the deep model's error is lower, so say "lower" in words; a higher error
            # gets its interval for how much higher, never a double negative ("higher ... lower: -1,777").
            word = "lower" if diff >= 0 else "higher"
            low, high = ci if diff >= 0 else (-ci[1], -ci[0])
            interval = f"{_signed(low)} to {_signed(high)}"
            change = f"{_num(abs(diff))} {word} ({level} for how much {word}: {interval})"
            difference = f"its {name} is {_num(abs(diff))} {word}"
            interval_named = f"the {level} for how much {word} ({interval})"
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
            f" The test set has only {n} {unit}, so these intervals are wide; more test data "
            "would give a sharper comparison."
        )
    return text


# A tie on the primary metric (two models both at ROC AUC 1.0, say) is broken by a metric that
# also judges how sure the model is, lower being better; a tie on both goes to the baseline,
# the simpler model. So the first row is always the model the verdict would recommend.
_TIE_BREAK = {"binary": "log_loss", "multiclass": "log_loss", "regression": "mae", "forecast": "mae"}


def _rank_key(metric: Metric, task: str) -> Callable[[Row], tuple[int, float, float, float, int]]:
    sign = -1.0 if metric.higher_is_better else 1.0
    tie = _TIE_BREAK.get(task, "")

    def key(r: Row) -> tuple[int, float, float, float, int]:
        # With cross-validation the winner is chosen by its fold score; the test confirms it.
        cv = math.nan if r.cv_score is None else float(r.cv_score)
        if math.isnan(r.test_score) and math.isnan(cv):  # an undefined score goes last, not wherever nan sorts
            return (2, 0.0, 0.0, 0.0, 0)
        first = (0, sign * cv) if not math.isnan(cv) else (1, 0.0)
        second = r.metrics.get(tie, math.nan)
        test = sign * r.test_score if not math.isnan(r.test_score) else math.inf
        return (*first, test, math.inf if math.isnan(second) else second, r.family != "baseline")

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
    cv: dict[str, dict[str, Any]] | None = None,
    unit: str = "rows",
    target: str | None = None,
) -> Leaderboard:
    """Score every model the same way, rank them and judge each deep model against baselines.
    ``unit`` is what one test example is called in the verdict ("rows", "images").

    ``cv`` (tables run within a budget): per model, ``folds`` (a list of fold scores by fold
    position, None where not scored), ``trials``, ``search_seconds``, and ``held_share`` (the
    share of rows a fold holds out). Rows then rank by cross-validated score, and each verdict
    is judged on the paired fold scores, with the test rows' comparison beside it.
    ``target`` names the column predicted: when no model is clearly better than the Dummy floor,
    every verdict starts by saying that nothing here predicts it (``nothing_predicts``).

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
    held_share = 0.2
    if cv:
        from dlcore.folds import fold_interval

        for r in rows:
            c = cv.get(r.model)
            if not c:
                continue
            held_share = float(c.get("held_share", held_share))
            scores = [None if v is None or not math.isfinite(v) else float(v) for v in c["folds"]]
            present = [v for v in scores if v is not None]
            r.cv_folds = scores
            r.cv_score = float(np.mean(present)) if present else math.nan
            low, high = fold_interval(present, held_share, confidence)
            if _task(task) in ("binary", "multiclass") and not math.isnan(low):  # classification metrics lie in 0..1
                low, high = max(0.0, low), min(1.0, high)
            r.cv_ci = (low, high)
            r.trials = c.get("trials")
            r.search_seconds = c.get("search_seconds")
    rows.sort(key=_rank_key(metric, _task(task)))
    verdicts = _verdicts(metric, rows, boots, confidence, n, unit)
    if cv:
        verdicts = [_with_folds(v, metric, rows, confidence, held_share, n) for v in verdicts]
    board = Leaderboard(
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
        target=target,
    )
    nothing = nothing_predicts(board.to_dict())
    if nothing:  # said first and plainly: it is the answer, whatever the deep model's comparison
        for v in board.verdicts:
            v.text = f"{nothing} {v.text}"
    return board


def _verdicts(
    metric: Metric, rows: list[Row], boots: dict[str, np.ndarray], confidence: float, n: int, unit: str = "rows"
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
            diff, ci, confidence, n, unit=unit,
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


def _error_words(name: str, diff: float, ci: tuple[float, float], level: str) -> tuple[str, str, str]:
    """An error metric's difference (``diff`` > 0: the deep model errs less) in words: "its RMSE is
    2,589 higher on average", "95% interval for how much higher", "-4,285 to +9,464"."""
    word = "lower" if diff >= 0 else "higher"
    low, high = ci if diff >= 0 else (-ci[1], -ci[0])
    return (f"its {name} is {_num(abs(diff))} {word} on average", f"{level} for how much {word}",
            f"{_signed(low)} to {_signed(high)}")


def _with_folds(v: Verdict, metric: Metric, rows: list[Row], confidence: float, held_share: float,
                n_test: int) -> Verdict:
    """A deep model's verdict judged on the paired fold scores (best baseline by its fold score),
    with the test rows' comparison after it, and how many test rows would tell them apart."""
    from dlcore.folds import paired_folds, rows_to_separate

    if v.deep_model is None or v.best_baseline is None:
        return v
    deep = next(r for r in rows if r.model == v.deep_model)
    base = next((r for r in rows if r.family == "baseline" and r.cv_folds), None)
    if base is None or not deep.cv_folds:
        return v
    paired = paired_folds(deep.cv_folds, base.cv_folds, metric.higher_is_better, held_share, confidence)
    if paired.n_folds < 2:
        return v
    name = _in_sentence(metric.title)
    level = f"{confidence:.0%} interval"
    lead = f"the deep model ({display_name(deep.model)})"
    vs = f"the best baseline ({display_name(base.model)})"
    planned = len(deep.cv_folds)  # a fold the time budget left out is None in its place
    over = f"{paired.n_folds} folds" if paired.n_folds == planned else f"{paired.n_folds} of the {planned} planned folds"
    scores = f"{name} {_num(deep.cv_score)} vs {_num(base.cv_score)} on average over {over}"
    wins = f"better on {paired.a_wins} of {paired.n_folds} folds"
    if metric.higher_is_better:
        interval = f"{_signed(paired.ci[0])} to {_signed(paired.ci[1])}"
        clear = f"{'higher by ' if paired.outcome == 'better' else ''}{_signed(paired.diff)} ({level} {interval}; {wins})"
        unclear = f"the difference is {_signed(paired.diff)} and its {level} ({interval}) includes zero ({wins})"
    else:
        # An error: say how much lower or higher the deep model's is, never a bare signed difference
        # ("the difference is -2,589" read as a gain where the MLP's RMSE was 2,589 higher).
        error, label, span = _error_words(name, paired.diff, paired.ci, level)
        clear = f"{error} ({label}: {span}; {wins})"
        unclear = f"{error}, and the {label} ({span}) includes zero ({wins})"
    if paired.outcome == "better":
        first = f"By cross-validation, {lead} is better than {vs}: {scores}; {clear}."
    elif paired.outcome == "worse":
        first = f"By cross-validation, {lead} is worse than {vs}: {scores}; {clear}. The simpler model is the better choice."
    else:
        first = (f"By cross-validation, {lead} is not clearly better than {vs}: {scores}; {unclear}, so the simpler "
                 "model is the safer choice.")
    test_base = next((r for r in rows if r.model == base.model), None)
    test_diff = (1.0 if metric.higher_is_better else -1.0) * (deep.test_score - test_base.test_score)
    if base.model == v.best_baseline:
        test_ci = v.diff_ci
    else:  # the verdict's test comparison was with the best baseline on the test rows
        test_ci = v.diff_ci
        test_diff = v.diff
    test_outcome = _outcome(test_ci) if not math.isnan(test_ci[0]) else "not_clearly_better"
    if math.isnan(test_diff) or math.isnan(test_ci[0]):
        second = f" On the {n_test} held-out test rows the two cannot be compared ({name} is undefined there)."
        needed = None
    else:
        word = {"better": "better", "worse": "worse", "not_clearly_better": "not clearly different"}[test_outcome]
        if metric.higher_is_better:
            of = f"{level} of the difference {_signed(test_ci[0])} to {_signed(test_ci[1])}"
        else:
            of = ": ".join(_error_words(name, test_diff, test_ci, level)[1:])
        second = (f" On the {n_test} held-out test rows it is {word}: {name} {_num(deep.test_score)} vs "
                  f"{_num(test_base.test_score)} ({of}).")
        needed = rows_to_separate(n_test, test_diff, test_ci) if test_outcome == "not_clearly_better" else None
        if needed is not None:
            times = needed / max(1, n_test)
            second += (f" To tell them apart on held-out rows alone, the test set would need about {needed:,} rows "
                       f"(about {times:.0f} times as many); the folds above use every training row instead.")
        elif test_outcome == "not_clearly_better":
            second += " Their test scores are equal, so no test set size would tell them apart."
    return Verdict(paired.outcome, v.deep_model, v.best_baseline, v.diff, v.diff_ci, first + second,
                   cv_diff=paired.diff, cv_diff_ci=paired.ci, test_rows_needed=needed)
