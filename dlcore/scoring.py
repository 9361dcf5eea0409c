"""Use a finished run's models on new data, whatever the kind: load one model (``load_scorer``),
or score an uploaded file (``score_upload``: a table, pictures, or newer values of a series).

Every CSV we write back is safe to open in a spreadsheet: text cells that start like a formula
are prefixed with an apostrophe.
"""

from __future__ import annotations

import math

import pandas as pd

from dlcore import kinds
from dlcore.base import Scored, Scorer, ScoreSummary
from dlcore.errors import SchemaError
from dlcore.outputs import best_model, check_model
from dlcore.store import RunRecord, Store

__all__ = ["Scorer", "ScoreSummary", "Scored", "load_scorer", "score_upload", "best_model", "check_model",
           "neutralise_formulas", "to_safe_csv", "API_INPUT", "answer_of"]

# The name a REST request's rows are kept under with its scoring (a JSON array of records, read
# by the same reader as an uploaded file); its scoring also writes ``answer.json`` (``answer_of``).
API_INPUT = "api-request.json"


def load_scorer(store: Store, run_id: str, model: str | None = None) -> Scorer:
    """A scorer for ``model`` (default: the run's model in use, ``dlcore.monitor.model_in_use``),
    cached per process."""
    from dlcore.monitor import resolve

    run_id, model = resolve(store, run_id, model)
    run = store.run(run_id)
    kind = kinds.get((run.result or {}).get("kind", "tabular"))
    if kind.scorer is None:
        raise SchemaError(f"A {kind.title.lower()} run's models are used on whole files: score an upload instead.")
    return kind.scorer.for_run(store, run_id, model)


def score_upload(store: Store, run_id: str, model: str | None, content: bytes, name: str) -> Scored:
    """An uploaded file scored by one model of a finished run (``model`` None: its model in use),
    read the way files of the run's kind are read."""
    from dlcore.monitor import resolve

    run_id, model = resolve(store, run_id, model)
    run = store.run(run_id)
    kind = kinds.get((run.result or {}).get("kind", "tabular"))
    return kind.score_upload(store, run, model, content, name)


def answer_of(scored: Scored, run: RunRecord) -> dict:
    """What the REST endpoint returns for a table scored by ``score_upload``: the predictions and,
    for a classification, each class's probability per row, read from the very columns the scored
    file gets (so the endpoint, the Predict page and the CLI give the same numbers)."""
    classes = [str(c) for c in (run.result or {}).get("classes") or []]
    k = 0 if run.task == "regression" else len(classes)
    decided = scored.summary.threshold is not None
    added = list(scored.table.columns[-(1 + k + decided):])  # prediction, probabilities, decision
    table = scored.table
    out: dict = {"model": scored.summary.model,
                 "predictions": [_plain(v) for v in table[added[0]].tolist()],
                 "probabilities": None, "classes": classes if k else None}
    if k:
        values = table[added[1:1 + k]].to_numpy(dtype=float).tolist()
        out["probabilities"] = [dict(zip(classes, row)) for row in values]
    if decided:
        out["decisions"] = [_plain(v) for v in table[added[-1]].tolist()]
        out["threshold"] = scored.summary.threshold
    out["notes"] = scored.summary.notes()
    return out


def _plain(value: object) -> object:
    """A cell as JSON has it: numbers and text as they are, missing as null."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with an apostrophe."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_datetime64_any_dtype(out[col]):
            continue
        text = out[col].astype("string")
        risky = text.str.startswith(_FORMULA_START, na=False) & ~_looks_numeric(text)
        if risky.any():
            out[col] = text.mask(risky, "'" + text)
    renamed = {c: f"'{c}" for c in out.columns if isinstance(c, str) and c.startswith(_FORMULA_START)}
    return out.rename(columns=renamed)


def _looks_numeric(text: pd.Series) -> pd.Series:
    return pd.to_numeric(text, errors="coerce").notna()


def to_safe_csv(frame: pd.DataFrame, delimiter: str | None = ",", decimal: str | None = ".") -> bytes:
    """CSV that spreadsheets open as intended: formulas neutralised, a UTF-8 byte-order mark so
    Excel reads accents right, and the input's own separator and decimal mark (a European file
    comes back as ``;`` with decimal commas)."""
    text = neutralise_formulas(frame).to_csv(index=False, sep=delimiter or ",", decimal=decimal or ".")
    return text.encode("utf-8-sig")
