"""Score new rows of a table with a finished run's model, deep or baseline, exactly as in training.

The run's saved preprocessing (JSON) rebuilds the same columns from a raw file; the schema check
names missing columns, notes ignored extra ones, and counts categories never seen in training
(they are scored as "other").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dlcore import base, baselines
from dlcore.base import Scored, ScoreSummary
from dlcore.errors import SchemaError
from dlcore.store import RunRecord, Store
from dlcore.tables import text
from dlcore.tables.preprocess import TabularPreprocessor
from dlcore.tables.reader import read_table
from dlcore.tables.templates import TEMPLATES

__all__ = ["TableScorer", "score_upload"]


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
        if self.family == "baseline":
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

    def score(self, frame: pd.DataFrame, decision: Any = None) -> tuple[pd.DataFrame, ScoreSummary]:
        """The input columns plus ``prediction`` (and ``probability <class>`` per class), and a
        ``decision`` column when a threshold from money (``handover.decision.Decision``) is given."""
        if len(frame) == 0:
            raise SchemaError("The file has no rows to score. Add rows and upload again.")
        out, summary = self.output(frame)
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
            if decision is not None and self.task == "binary":
                from dlcore.handover.decision import DECISION_COLUMN, decide

                scored[fresh(DECISION_COLUMN)] = decide(out[:, 1], decision)
                summary.threshold = decision.threshold
        return scored, summary


def _predict(model: Any, x: Any, n: int) -> np.ndarray:
    """Keras' ``predict`` for many rows; one direct batch for a few (a what-if, an explanation's
    masked rows), where ``predict``'s per-call set-up would cost more than the model itself."""
    if n <= 4096:
        return np.asarray(model.predict_on_batch(x))
    return model.predict(x, verbose=0, batch_size=2048)


def score_upload(store: Store, run: RunRecord, model: str | None, content: bytes, name: str) -> Scored:
    """A table uploaded for scoring, read with the same robust reader as training files; the
    threshold saved on the Decide page adds a ``decision`` column for its model."""
    from dlcore.handover.decision import load_decision

    scorer = TableScorer.for_run(store, run.id, model)
    frame, report = read_table(content, name=name)
    chosen = load_decision(store, run.id)
    table, summary = scorer.score(frame, chosen if chosen is not None and chosen.model == scorer.model_name else None)
    return Scored(table, summary, report.delimiter, report.decimal)
