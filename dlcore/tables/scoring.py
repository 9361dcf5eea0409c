"""Score new rows of a table with a finished run's model, deep or baseline, exactly as in training.

The run's saved preprocessing (JSON) rebuilds the same columns from a raw file; the schema check
names missing columns, notes ignored extra ones, and counts categories never seen in training
(they are scored as "other"). A file whose columns have other names is matched to the model's
(``dlcore.tables.matching``): by name, by the matching saved with the run for those names, or
as the analyst chose; otherwise it is refused with the columns that look like the missing ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dlcore import base, baselines
from dlcore.base import Scored, ScoreSummary
from dlcore.errors import DlcoreError, SchemaError
from dlcore.outputs import load_explanation
from dlcore.store import RunRecord, Store
from dlcore.tables import matching, text
from dlcore.tables.preprocess import TabularPreprocessor
from dlcore.tables.reader import read_table
from dlcore.tables.templates import TEMPLATES

__all__ = ["TableScorer", "score_upload", "expected_of", "explanation_of", "match_columns"]


class TableScorer(base.Scorer):
    """One model of one table run, ready to score raw rows."""

    upload_hint = "a table (CSV, Excel or Parquet)."

    def setup(self, meta: dict[str, Any]) -> None:
        self.pre = TabularPreprocessor.from_dict(meta["preprocessor"])
        self.template = next((t for t in TEMPLATES if t.name == self.template_name), None)

    def output(self, frame: pd.DataFrame) -> tuple[np.ndarray, ScoreSummary]:
        """Raw model output for ``frame``: probabilities (n, k) or values (n,)."""
        feats = self.pre.transform(frame)
        extra = [c for c in frame.columns if c not in self.pre.columns and c != self.target_column]
        summary = ScoreSummary(len(frame), self.model_name, extra, feats.unseen, feats.not_numbers,
                               empty_text=feats.empty_text, long_text=feats.long_text)
        if self.pre.text:
            summary.unknown_words = self._unknown_words(feats.text)
        if self.family == "ensemble":
            out = sum(w * self.members[name].output(frame)[0] for name, w in self.weights.items())
        elif self.family == "baseline":
            x_base = text.baseline_frame(self.pre.dense(feats), feats.text) if self.pre.text else self.pre.dense(feats)
            out = baselines.predict_output(self.task, self.pipeline, x_base, self.n_outputs)
        else:
            x = base.model_inputs(self.template, self.info, lambda: self.pre.dense(feats), feats.numeric, feats.codes,
                                  feats.text)
            out = self.target.from_model(_predict(self.keras_model, x, len(frame)))
        return out, summary

    def _unknown_words(self, texts: np.ndarray) -> dict[str, int]:
        """Words per text column that the run's training rows never had (read as unknown)."""
        known = text.known_words(self)
        out: dict[str, int] = {}
        if known is None:
            return out
        for j, col in enumerate(self.pre.text):
            n = sum(1 for cell in texts[:, j] for word in text.words(cell) if word not in known[j])
            if n:
                out[col] = n
        return out

    def score(self, frame: pd.DataFrame, decision: Any = None,
              columns: dict[str, str | None] | None = None) -> tuple[pd.DataFrame, ScoreSummary]:
        """The input columns plus ``prediction`` (and ``probability <class>`` per class), and a
        ``decision`` column when a threshold from money (``handover.decision.Decision``) is given.
        ``columns``: the model's column -> the file's that holds it (None: scored as missing),
        for a file that names them differently; the output keeps the file's own names."""
        if len(frame) == 0:
            raise SchemaError("The file has no rows to score. Add rows and upload again.")
        if columns is None:
            out, summary = self.output(frame)
        else:
            blank = pd.Series(np.nan, index=frame.index)
            inputs = pd.DataFrame({c: frame[columns[c]] if columns.get(c) is not None else blank
                                   for c in self.pre.columns}, index=frame.index)
            out, summary = self.output(inputs)
            used = {s for s in columns.values() if s is not None}
            summary.extra_columns = [c for c in frame.columns if c not in used and c != self.target_column]
        scored = frame.copy()

        def fresh(name: str) -> str:  # never overwrite a column the input already has
            while name in scored.columns:
                name = f"{name} (model)"
            return name

        if self.task == "regression":
            scored[fresh("prediction")] = out
        else:
            scored[fresh("prediction")] = np.asarray(self.classes, dtype=object)[out.argmax(axis=1)]
            for k, label in enumerate(self.classes):
                scored[fresh(f"probability {label}")] = out[:, k]
            if decision is not None:  # yes/no, or one class against the rest: that class's probability
                from dlcore.handover.decision import DECISION_COLUMN, class_column, decide

                scored[fresh(DECISION_COLUMN)] = decide(out[:, class_column(self.classes, decision.positive)], decision)
                summary.threshold = decision.threshold
        return scored, summary


def _predict(model: Any, x: Any, n: int) -> np.ndarray:
    """Keras' ``predict`` for many rows; one direct batch for a few (a what-if, an explanation's
    masked rows), where ``predict``'s per-call set-up would cost more than the model itself."""
    if n <= 4096:
        return np.asarray(model.predict_on_batch(x))
    return model.predict(x, verbose=0, batch_size=2048)


def score_upload(store: Store, run: RunRecord, model: str | None, content: bytes, name: str,
                 columns: list[tuple[str, str]] | None = None) -> Scored:
    """A table uploaded for scoring, read with the same robust reader as training files; the
    threshold saved on the Decide page adds a ``decision`` column for its model. ``columns``:
    (model column, file column) pairs the analyst gave (the command line's ``--map``), kept with
    the run once the whole file is matched."""
    from dlcore.handover.decision import load_decision

    scorer = TableScorer.for_run(store, run.id, model)
    frame, report = read_table(content, name=name)
    mapping, notes = match_columns(store, run, scorer.model_name, frame, columns)
    chosen = load_decision(store, run.id)
    table, summary = scorer.score(frame, chosen if chosen is not None and chosen.model == scorer.model_name else None,
                                  columns=mapping)
    summary.columns = notes
    return Scored(table, summary, report.delimiter, report.decimal)


def expected_of(store: Store, run: RunRecord) -> list[matching.Expected]:
    """The columns a table run's models read, with what the run saved of their values."""
    result = run.result or {}
    try:
        profile = store.dataset(run.dataset_id).profile
    except DlcoreError:  # the dataset is gone; the ranges saved with the run still match by values
        profile = None
    return matching.expected_columns(result["features"], result.get("input_defaults") or {}, profile)


def explanation_of(store: Store, run: RunRecord, model: str) -> tuple[dict[str, Any] | None, str]:
    """The global explanation of ``model`` (or, until it has one, of the best explained model of the
    run) and the title of the model it explains."""
    from dlcore.evaluate import display_name

    rows = [r["model"] for r in (run.result or {}).get("leaderboard", {}).get("rows", [])]
    for name in [model, *[r for r in rows if r != model]]:
        found = load_explanation(store, run.id, name)
        if found is not None and found.get("importance"):
            return found, display_name(name)
    return None, display_name(model)


def match_columns(store: Store, run: RunRecord, model: str, frame: pd.DataFrame,
                  columns: list[tuple[str, str]] | None = None) -> tuple[dict[str, str | None] | None, list[str]]:
    """The model's column -> the file's, for a file that names them differently (None when every
    column is there under its own name), and what the scoring should say about it; a
    ``SchemaError`` naming the columns still to match, with the file's columns that look like them."""
    expected = expected_of(store, run)
    chosen = matching.check_map(columns, [e.name for e in expected], list(frame.columns)) if columns else None
    proposal = matching.propose(expected, frame, matching.load_mappings(store, run.id), chosen)
    if proposal.identical:
        return None, []
    explanation, title = explanation_of(store, run, model)
    relied = {m.column: matching.reliance(explanation, m.column, title) for m in proposal.matches
              if m.source is None}
    if not proposal.settled:
        raise SchemaError(matching.unmatched_message(proposal, relied))
    if chosen:
        matching.save_mapping(store, run.id, proposal.mapping)
    return proposal.mapping, matching.matched_notes(proposal, relied, saved=bool(chosen))
