"""Why a model predicts what it predicts, for tables, in terms of the columns the analyst knows.

Every explanation works on the raw input columns (not on one-hot codes or scaled numbers)
and on any model of a run, deep or baseline, through the same ``Scorer`` that Predict uses:

- **Global**: permutation importance on the run's test rows (scikit-learn's
  ``permutation_importance``: shuffle one column, see how much the test score drops,
  repeated to show the spread) and partial dependence with individual curves for the top
  columns (scikit-learn's ``partial_dependence``).
- **One row**: Shapley values from SHAP's permutation explainer over a background of
  training rows: each column's push up or down, adding up from the average prediction to
  this row's, plus a plain sentence.

The model is wrapped as a fitted scikit-learn estimator (``RawModel``) so the library code
runs unchanged on a Keras network. This module imports TensorFlow only through the scorer,
so it runs in a worker; pages read the saved results.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from dlcore import evaluate, formats
from dlcore.errors import RunError, SchemaError
from dlcore.outputs import load_test_outputs
from dlcore.spec import RunSpec
from dlcore.store import EVALUATED, RunRecord, Store
from dlcore.tables import text
from dlcore.tables.run import prepare
from dlcore.tables.scoring import TableScorer as Scorer

__all__ = ["RawModel", "global_explanation", "row_explanation", "sentence", "explain_model", "explain_row_of_run",
           "MAX_ROWS"]

MAX_ROWS = 2_000  # test rows used for importance (a seeded sample beyond this)
PDP_ROWS = 300  # rows averaged for partial dependence
ICE_ROWS = 40  # individual curves kept for the chart
GRID = 20
TOP_PDP = 4
MAX_CATEGORIES = 15
BACKGROUND_ROWS = 100
_SPLITS: dict[tuple[str, str], tuple[pd.DataFrame, np.ndarray, pd.DataFrame]] = {}  # see _test_rows


class _Raw(BaseEstimator):
    """Raw rows in, the scorer's output out; fitted already (the run trained it)."""

    def __init__(self, scorer: Scorer | None = None) -> None:
        self.scorer = scorer

    def fit(self, X: Any, y: Any = None) -> "_Raw":
        raise RunError("This model was trained by its run; it is only explained here.")

    def output(self, X: pd.DataFrame) -> np.ndarray:
        return self.scorer.output(X)[0]


class RawClassifier(ClassifierMixin, _Raw):
    def __init__(self, scorer: Scorer | None = None) -> None:
        super().__init__(scorer)
        if scorer is not None:
            self.classes_ = np.arange(len(scorer.classes))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.output(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.output(X).argmax(axis=1)


class RawRegressor(RegressorMixin, _Raw):
    def __init__(self, scorer: Scorer | None = None) -> None:
        super().__init__(scorer)
        if scorer is not None:
            self.n_features_in_ = len(scorer.pre.columns)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.output(X), dtype=np.float64).reshape(-1)


def RawModel(scorer: Scorer) -> _Raw:  # noqa: N802 (a factory that reads like the class it returns)
    """A fitted scikit-learn estimator over raw rows for any model of a run."""
    return RawRegressor(scorer) if scorer.task == "regression" else RawClassifier(scorer)


# ---- global ------------------------------------------------------------------------------
def global_explanation(scorer: Scorer, frame: pd.DataFrame, y_true: np.ndarray, seed: int = 0,
                       n_repeats: int = 5) -> dict[str, Any]:
    """Permutation importance of every input column and partial dependence of the top ones.

    ``frame`` holds raw test rows (input columns at least); ``y_true`` their targets in the
    metric convention (class codes, or values). Returns a JSON-able dict."""
    from sklearn.inspection import partial_dependence, permutation_importance

    if scorer.kind != "tabular":
        raise SchemaError("Column importance is for tables; image and forecast runs have their own explanations.")
    columns = list(scorer.pre.columns)
    rng = np.random.default_rng(seed)
    if len(frame) > MAX_ROWS:
        keep = np.sort(rng.choice(len(frame), MAX_ROWS, replace=False))
        frame, y_true = frame.iloc[keep], np.asarray(y_true)[keep]
    x = frame[columns].reset_index(drop=True)
    model = RawModel(scorer)
    metric = evaluate.primary_metric(scorer.task)
    sign = 1.0 if metric.higher_is_better else -1.0

    def score(est: _Raw, X: pd.DataFrame, y: np.ndarray) -> float:
        return sign * float(metric(y, est.output(X)))

    started = time.perf_counter()
    base = score(model, x, np.asarray(y_true))
    result = permutation_importance(model, x, np.asarray(y_true), scoring=score, n_repeats=n_repeats,
                                    random_state=seed, n_jobs=1)
    importance = [{"feature": c, "mean": float(m), "std": float(s), "kind": _kind(scorer, c)}
                  for c, m, s in zip(columns, result.importances_mean, result.importances_std)]
    importance.sort(key=lambda d: -d["mean"])

    # Dependence for the columns that clearly matter (beyond the noise of shuffling); the first
    # column at least, so the page always shows how the prediction moves with something.
    drawable = [d for d in importance if d["kind"] not in ("datetime", "text")]
    top = [d["feature"] for d in drawable if d["mean"] > max(2 * d["std"], 0.0)][:TOP_PDP] or [d["feature"] for d in drawable[:1]]
    sample = x.iloc[np.sort(rng.choice(len(x), min(PDP_ROWS, len(x)), replace=False))].reset_index(drop=True)
    dependence = [_dependence(model, scorer, sample, c, partial_dependence) for c in top]
    out = {
        "model": scorer.model_name, "task": scorer.task, "classes": list(scorer.classes),
        "metric": metric.key, "metric_title": metric.title, "higher_is_better": metric.higher_is_better,
        "score": sign * base, "n_rows": len(x), "n_repeats": n_repeats,
        "importance": importance, "dependence": dependence,
    }
    if scorer.pre.text:
        out["words"] = model_words(scorer, x, np.asarray(y_true), seed)
    out["seconds"] = time.perf_counter() - started
    return out


def _kind(scorer: Scorer, column: str) -> str:
    pre = scorer.pre
    if column in pre.text:
        return "text"
    return "numeric" if column in pre.numeric else "datetime" if column in pre.datetime else "categorical"


# ---- words -------------------------------------------------------------------------------
WORD_ROWS = 60  # test rows whose words are weighed for the model's words per class


def _focus_output(scorer: Scorer, frame: pd.DataFrame, focus: int | None) -> np.ndarray:
    """The value, or the log-odds of class ``focus``: a confident model's probability barely moves
    when one of several telling words goes (0.999 -> 0.998), its log-odds still do."""
    out = np.asarray(scorer.output(frame)[0])
    if focus is None:
        return out.reshape(-1)
    p = np.clip(out[:, focus], 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def row_words(scorer: Scorer, row: pd.DataFrame, focus: int | None) -> dict[str, Any]:
    """For each text column of one row: every word's push on the output (``focus``: the class
    whose log-odds are explained; None: the value), by removing it from the text."""
    out: dict[str, Any] = {}
    for col in scorer.pre.text:
        cell = row[col].iloc[0]
        value = "" if cell is None or (not isinstance(cell, str) and pd.isna(cell)) else str(cell)[:text.MAX_CHARS]

        def predict(variants: list[str], col: str = col) -> np.ndarray:
            many = row.loc[row.index.repeat(len(variants))].reset_index(drop=True)
            many[col] = variants
            return _focus_output(scorer, many, focus)

        out[col] = {"text": value, "effects": text.word_effects(predict, value)}
    return out


def model_words(scorer: Scorer, frame: pd.DataFrame, y_true: np.ndarray, seed: int = 0,
                top: int = 8) -> dict[str, Any]:
    """The words that matter most for each class (or for the value): on up to ``WORD_ROWS`` test
    rows, each word's push on the probability of the row's own class, averaged over the rows
    that have it, with its spread (standard deviation) and the number of rows."""
    rng = np.random.default_rng(seed)
    if len(frame) > WORD_ROWS:
        keep = np.sort(rng.choice(len(frame), WORD_ROWS, replace=False))
        frame, y_true = frame.iloc[keep], np.asarray(y_true)[keep]
    frame = frame.reset_index(drop=True)
    groups: dict[str, dict[str, list[float]]] = {}
    for i in range(len(frame)):
        focus = None if scorer.task == "regression" else (int(y_true[i]) if scorer.task == "multiclass" else 1)
        name = "value" if focus is None else str(scorer.classes[focus])
        for found in row_words(scorer, frame.iloc[[i]], focus).values():
            for e in found["effects"]:
                groups.setdefault(name, {}).setdefault(e["word"].lower(), []).append(e["effect"])
    out: dict[str, Any] = {}
    for name, by_word in groups.items():
        rows = [{"word": w, "mean": float(np.mean(v)), "std": float(np.std(v)), "rows": len(v)}
                for w, v in by_word.items()]
        out[name] = sorted(rows, key=lambda d: -d["mean"])[:top]
    return out


def _dependence(model: _Raw, scorer: Scorer, sample: pd.DataFrame, column: str, partial_dependence: Any) -> dict[str, Any]:
    categorical = _kind(scorer, column) == "categorical"
    x = sample.copy()
    if categorical:
        text = x[column].astype("string").str.strip()
        values = text.value_counts().index[:MAX_CATEGORIES].tolist()
        x[column] = text.where(text.isin(values), values[0] if values else None).astype(object)
        custom = {column: np.asarray(values, dtype=object)}
    else:
        # As floats: scikit-learn refuses partial dependence on a column of whole numbers (a count,
        # months of tenure), and the model reads the column as numbers either way.
        numbers = pd.to_numeric(x[column], errors="coerce").astype("float64")
        x[column] = numbers.fillna(numbers.median())
        low, high = np.nanpercentile(numbers, [5, 95]) if numbers.notna().any() else (0.0, 0.0)
        grid = np.unique(np.linspace(low, high, GRID)) if high > low else np.unique(numbers.dropna())[:GRID]
        custom = {column: grid}
    kw: dict[str, Any] = {"kind": "both", "custom_values": custom}
    if categorical:
        kw["categorical_features"] = [column]
    if scorer.task != "regression":
        kw["response_method"] = "predict_proba"
    pd_result = partial_dependence(model, x, [column], **kw)
    grid = pd_result["grid_values"][0]
    average = np.asarray(pd_result["average"])  # (outputs, grid)
    individual = np.asarray(pd_result["individual"])  # (outputs, rows, grid)
    keep = np.linspace(0, individual.shape[1] - 1, min(ICE_ROWS, individual.shape[1])).astype(int)
    return {"feature": column, "categorical": categorical,
            "grid": [str(v) if categorical else float(v) for v in grid],
            "average": average.round(6).tolist(), "individual": individual[:, keep, :].round(5).tolist()}


# ---- one row -----------------------------------------------------------------------------
class _Codec:
    """Raw columns <-> numbers, so SHAP's maskers (which compare numbers) can mix a row with
    background rows: categories become codes, dates become nanoseconds."""

    def __init__(self, scorer: Scorer, frames: list[pd.DataFrame]) -> None:
        self.columns = list(scorer.pre.columns)
        self.kinds = {c: _kind(scorer, c) for c in self.columns}
        self.levels: dict[str, list[Any]] = {}
        for c in self.columns:
            if self.kinds[c] in ("categorical", "text"):  # a whole text is one value here; its words come apart below
                seen = pd.concat([f[c].astype("string").str.strip() for f in frames]).dropna().unique().tolist()
                self.levels[c] = seen

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.full((len(frame), len(self.columns)), np.nan)
        for j, c in enumerate(self.columns):
            kind = self.kinds[c]
            if kind == "numeric":
                out[:, j] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
            elif kind == "datetime":
                stamp = pd.to_datetime(frame[c], errors="coerce", format="mixed")
                if getattr(stamp.dt, "tz", None) is not None:
                    stamp = stamp.dt.tz_localize(None)
                out[:, j] = np.where(stamp.isna(), np.nan, stamp.astype("datetime64[ns]").astype("int64"))
            else:
                codes = pd.Index(self.levels[c]).get_indexer(frame[c].astype("string").str.strip())
                out[:, j] = np.where(codes < 0, np.nan, codes)
        return out

    def decode(self, values: np.ndarray) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for j, c in enumerate(self.columns):
            col = values[:, j]
            kind = self.kinds[c]
            if kind == "numeric":
                data[c] = col
            elif kind == "datetime":
                data[c] = pd.to_datetime(pd.Series(col).where(~np.isnan(col)).astype("Int64"), unit="ns")
            else:
                levels = np.asarray(self.levels[c] + [None], dtype=object)
                data[c] = levels[np.where(np.isnan(col), len(self.levels[c]), col).astype(int)]
        return pd.DataFrame(data)


def row_explanation(scorer: Scorer, row: pd.DataFrame, background: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Each input column's push on one row's prediction (Shapley values, SHAP's permutation
    explainer over ``background`` rows), ranked, with a plain sentence."""
    import shap

    if scorer.kind != "tabular":
        raise SchemaError("Row explanations are for tables.")
    if len(row) != 1:
        raise SchemaError(f"Explain one row at a time (got {len(row)}).")
    scorer.pre.check_columns(row)
    columns = list(scorer.pre.columns)
    background = background[columns].reset_index(drop=True)
    if len(background) > BACKGROUND_ROWS:
        background = background.sample(BACKGROUND_ROWS, random_state=seed).reset_index(drop=True)
    codec = _Codec(scorer, [background, row])
    output, summary = scorer.output(row)
    output = np.asarray(output)
    if scorer.task == "regression":
        focus, label = None, None
        prediction = float(output.reshape(-1)[0])
    else:
        focus = int(output[0].argmax()) if scorer.task == "multiclass" else 1
        label = scorer.classes[focus]
        prediction = float(output[0, focus])

    def f(values: np.ndarray) -> np.ndarray:
        out = np.asarray(scorer.output(codec.decode(values))[0])
        return out.reshape(-1) if focus is None else out[:, focus]

    masker = shap.maskers.Independent(codec.encode(background), max_samples=BACKGROUND_ROWS)
    explainer = shap.PermutationExplainer(f, masker, seed=seed)
    n = len(columns)
    values = explainer(codec.encode(row), max_evals=max(500, 2 * n + 1), silent=True)
    contributions = np.asarray(values.values).reshape(-1)
    base = float(np.asarray(values.base_values).reshape(-1)[0])
    items = [{"feature": c, "value": _shown(row[c].iloc[0]), "contribution": float(v)}
             for c, v in zip(columns, contributions)]
    items.sort(key=lambda d: -abs(d["contribution"]))
    out = {"model": scorer.model_name, "task": scorer.task, "class": label, "prediction": prediction,
           "base": base, "contributions": items, "notes": summary.notes()}
    out["sentence"] = sentence(out, scorer.target_column)
    if scorer.pre.text:
        out["words"] = row_words(scorer, row.reset_index(drop=True), focus)
        effects = sorted((e for found in out["words"].values() for e in found["effects"]),
                         key=lambda e: -abs(e["effect"]))
        outcome = (f"Predicted {scorer.target_column}: {prediction:,.4g}" if label is None
                   else f"{prediction:.0%} likely to be '{label}'")
        out["words_sentence"] = text.sentence(effects, outcome)
    return out


def _shown(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(empty)"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.4g}"
    if isinstance(value, str) and len(value) > 60:  # a long text: its start (its words are explained apart)
        return f"“{value[:57].rstrip()}…”"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else str(value)
    return str(value)


def sentence(explained: dict[str, Any], target: str) -> str:
    """One plain sentence: the prediction and the two columns that moved it most."""
    task, p, base = explained["task"], explained["prediction"], explained["base"]

    def amount(v: float) -> str:  # rounded as the table of pushes rounds (dlcore.formats)
        if task == "regression":
            return formats.number(abs(v))
        shown = formats.points(abs(v)).removesuffix(".0")
        return f"{shown} point" + ("" if shown == "1" else "s")

    # A push that rounds to nothing in the table is no reason in the sentence either.
    ranked = [d for d in explained["contributions"]
              if any(c in "123456789" for c in (formats.points(d["contribution"]) if task != "regression"
                                                else formats.number(d["contribution"])))]

    def part(d: dict[str, Any]) -> str:
        verb = "adds" if d["contribution"] > 0 else "takes off"
        return f"{d['feature']} is {d['value']}, which {verb} {amount(d['contribution'])}"

    if task == "regression":
        head = f"Predicted {target}: {p:,.4g}"
        tail = f" The average prediction is {base:,.4g}."
    else:
        head = f"{p:.0%} likely to be “{explained['class']}”"
        tail = f" The average row is {base:.0%}."
    if not ranked:
        return head + ": no column moves it away from the average." + tail
    because = part(ranked[0]) + (f"; then {part(ranked[1])}" if len(ranked) > 1 else "")
    return f"{head}, mostly because {because}.{tail}"


# ---- runs --------------------------------------------------------------------------------
def _test_rows(store: Store, run_id: str) -> tuple[pd.DataFrame, np.ndarray, Any]:
    """The run's test rows as raw columns, their targets, and its training rows (rebuilt from
    the dataset with the run's seed: the same split the run used)."""
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; explanations need a finished run.")
    key = (str(store.home), run_id)
    if key not in _SPLITS:
        # A finished run never changes: a worker explaining row after row loads and splits
        # the dataset once, not once per row.
        prep = prepare(store, RunSpec.from_dict(run.spec))
        y_true, _, rows = load_test_outputs(store, run_id)
        _SPLITS.clear()  # keep one run's rows in memory at most
        _SPLITS[key] = (prep.frame.iloc[rows].reset_index(drop=True), y_true, prep.frame.iloc[prep.train])
    return _SPLITS[key]


def explain_model(store: Store, run: RunRecord, model: str,
                  progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Column importance and dependence of one model of a finished run, on its test rows."""
    scorer = Scorer.for_run(store, run.id, model)
    frame, y_true, _ = _test_rows(store, run.id)
    return global_explanation(scorer, frame, y_true, seed=int(run.spec["train"]["seed"]))


def explain_row_of_run(store: Store, run_id: str, model: str, row: pd.DataFrame | None = None,
                       test_row: int | None = None) -> dict[str, Any]:
    """Explain one raw row (or the run's test row number ``test_row``) with one model of a run,
    against a background of its training rows."""
    scorer = Scorer.for_run(store, run_id, model)
    test, y_true, train = _test_rows(store, run_id)
    if row is None:
        if test_row is None or not 0 <= test_row < len(test):
            raise SchemaError(f"Pick a test row between 0 and {len(test) - 1} (got {test_row}).")
        row = test.iloc[[test_row]].reset_index(drop=True)
    out = row_explanation(scorer, row, train, seed=int(store.run(run_id).spec["train"]["seed"]))
    if test_row is not None:
        actual = y_true[test_row]
        out["test_row"] = int(test_row)
        out["actual"] = scorer.classes[int(actual)] if scorer.task != "regression" else float(actual)
    return out
