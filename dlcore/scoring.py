"""Score new rows with a finished run's model, deep or baseline, exactly as in training.

The run's saved preprocessing (JSON) rebuilds the same columns from a raw file; the schema
check names missing columns, notes ignored extra ones, and counts categories never seen in
training (they are scored as "other"). Every CSV we write back is safe to open in a
spreadsheet: text cells that start like a formula are prefixed with an apostrophe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlcore import baselines, templates
from dlcore.errors import NotFoundError, RunError, SchemaError
from dlcore.features import TabularPreprocessor, TargetEncoder
from dlcore.store import EVALUATED, RunRecord, Store

__all__ = ["Scorer", "load_scorer", "best_model", "ScoreSummary", "neutralise_formulas", "to_safe_csv"]


@dataclass
class ScoreSummary:
    n_rows: int
    model: str
    extra_columns: list[str] = field(default_factory=list)
    unseen: dict[str, int] = field(default_factory=dict)
    not_numbers: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # images: file name -> why it was not scored
    threshold: float | None = None  # the saved threshold from money behind the decision column

    def notes(self) -> list[str]:
        out = []
        if self.unreadable:
            names = ", ".join(list(self.unreadable)[:8]) + (" …" if len(self.unreadable) > 8 else "")
            out.append(f"{len(self.unreadable)} file(s) could not be read as images and have no prediction "
                       f"(the 'problem' column says why): {names}.")
        if self.extra_columns:
            shown = ", ".join(map(repr, self.extra_columns[:8])) + (" …" if len(self.extra_columns) > 8 else "")
            out.append(f"{len(self.extra_columns)} column(s) the model does not use were ignored (kept in the output): {shown}.")
        for col, n in self.unseen.items():
            out.append(f"{n} row(s) have a value in {col!r} that the model never saw in training; they were scored as 'other'.")
        for col, n in self.not_numbers.items():
            out.append(f"{n} cell(s) in {col!r} were not numbers and were treated as missing.")
        if self.threshold is not None:
            out.append(f"The 'decision' column applies the threshold saved on the Decide page: probability "
                       f"{self.threshold:.3f} or more.")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "model": self.model, "extra_columns": self.extra_columns,
                "unseen": self.unseen, "not_numbers": self.not_numbers, "unreadable": self.unreadable,
                "threshold": self.threshold, "notes": self.notes()}


class Scorer:
    """One model of one run, ready to score raw rows."""

    def __init__(self, folder: Path, run_id: str, model: str) -> None:
        meta_path = folder / "preprocess.json"
        if not meta_path.exists():
            raise NotFoundError(f"Run {run_id!r} has no saved model yet: wait until it finishes, or pick a finished run.")
        meta = json.loads(meta_path.read_text())
        self.kind: str = meta.get("kind", "tabular")
        self.task: str = meta["task"]
        self.target_column: str = meta["target_column"]
        self.pre = TabularPreprocessor.from_dict(meta["preprocessor"]) if self.kind == "tabular" else None
        self.image: dict[str, int] = meta.get("image", {})
        self.target = TargetEncoder.from_dict(meta["target"])
        self.model_name = model
        self.template_name = meta["template"]
        if model == meta["template"]:
            import keras

            self.family = "deep"
            self.keras_model = keras.saving.load_model(folder / f"{model}.keras", safe_mode=True)
            self.template = templates.get(model)
            info = meta["input_info"]
            if self.kind == "image":
                self.info = templates.InputInfo(image_shape=tuple(info["image_shape"]))
            else:
                self.info = templates.InputInfo(info["n_dense"], info["n_numeric"], tuple(info["cardinalities"]))
        else:
            path = folder / f"{model}.skops"
            if not path.exists():
                known = sorted([meta["template"]] + [p.stem for p in folder.glob("*.skops")])
                raise NotFoundError(f"Run {run_id!r} has no model named {model!r}; its models are: {', '.join(known)}.")
            self.family = "baseline"
            self.pipeline = baselines.load(path)

    @property
    def classes(self) -> list[str]:
        return self.target.classes_

    def _check_kind(self, kind: str) -> None:
        if self.kind != kind:
            raise SchemaError(f"This run's models read {self.kind} data, not {kind} data: upload "
                              + ("images (one, several, or a ZIP)." if self.kind == "image" else "a table (CSV, Excel or Parquet)."))

    def image_output(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) for decoded pixels (n, size, size, channels), as in training."""
        from dlcore.data import images

        n_classes = len(self.classes)
        if self.family == "baseline":
            return baselines.predict_output(self.task, self.pipeline, images.baseline_features(pixels), n_classes)
        return self.target.from_model(self.keras_model.predict(pixels, verbose=0, batch_size=256))

    def score_images(self, items: list[tuple[str, bytes]]) -> tuple[pd.DataFrame, ScoreSummary]:
        """One row per image: its name, the predicted class and each class's probability.

        An image that cannot be read keeps its row, with no prediction and the reason why."""
        from dlcore.data import images
        from dlcore.errors import DataError

        self._check_kind("image")
        if not items:
            raise SchemaError("There are no images to score. Upload one or more images, or a ZIP of them.")
        size, channels = self.image["size"], self.image["channels"]
        decoded, problems = [], {}
        for name, data in items:
            try:
                decoded.append(images.decode_image(data, size, channels, name=name))
            except DataError as exc:
                problems[name] = str(exc)
        readable = [name for name, _ in items if name not in problems]
        out = self.image_output(np.stack(decoded)) if decoded else np.zeros((0, len(self.classes)))
        rows = {name: i for i, name in enumerate(readable)}
        table = pd.DataFrame({"file": [name for name, _ in items]})
        pick = [rows.get(name) for name, _ in items]
        labels = np.asarray(self.classes, dtype=object)
        table["prediction"] = [labels[out[i].argmax()] if i is not None else None for i in pick]
        table["confidence"] = [float(out[i].max()) if i is not None else None for i in pick]
        for k, label in enumerate(self.classes):
            table[f"probability {label}"] = [float(out[i, k]) if i is not None else None for i in pick]
        if problems:
            table["problem"] = [problems.get(name) for name, _ in items]
        return table, ScoreSummary(len(items), self.model_name, unreadable=problems)

    def output(self, frame: pd.DataFrame) -> tuple[np.ndarray, ScoreSummary]:
        """Raw model output for ``frame``: probabilities (n, k) or values (n,)."""
        self._check_kind("tabular")
        feats = self.pre.transform(frame)
        extra = [c for c in frame.columns if c not in self.pre.columns and c != self.target_column]
        summary = ScoreSummary(len(frame), self.model_name, extra, feats.unseen, feats.not_numbers)
        n_classes = len(self.classes) if self.task != "regression" else 1
        if self.family == "baseline":
            out = baselines.predict_output(self.task, self.pipeline, self.pre.dense(feats), n_classes)
        else:
            x = templates.model_inputs(self.template, self.info, lambda: self.pre.dense(feats), feats.numeric, feats.codes)
            out = self.target.from_model(_predict(self.keras_model, x, len(frame)))
        return out, summary

    def score(self, frame: pd.DataFrame, decision: Any = None) -> tuple[pd.DataFrame, ScoreSummary]:
        """The input columns plus ``prediction`` (and ``probability <class>`` per class), and a
        ``decision`` column when a threshold from money (``decision.Decision``) is given."""
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
                from dlcore.decision import DECISION_COLUMN, decide

                scored[fresh(DECISION_COLUMN)] = decide(out[:, 1], decision)
                summary.threshold = decision.threshold
        return scored, summary


def _predict(model: Any, x: Any, n: int) -> np.ndarray:
    """Keras' ``predict`` for many rows; one direct batch for a few (a what-if, an explanation's
    masked rows), where ``predict``'s per-call set-up would cost more than the model itself."""
    if n <= 4096:
        return np.asarray(model.predict_on_batch(x))
    return model.predict(x, verbose=0, batch_size=2048)


@lru_cache(maxsize=8)
def _cached(folder: str, run_id: str, model: str) -> Scorer:
    return Scorer(Path(folder), run_id, model)


def check_model(run: RunRecord, model: str) -> None:
    """Refuse a model name that is not one of the run's own (it also names a file)."""
    known = list((run.result or {}).get("models", {}))
    if model not in known:
        raise NotFoundError(f"Run {run.id!r} has no model named {model!r}; its models are: {', '.join(known)}.")


def load_scorer(store: Store, run_id: str, model: str | None = None) -> Scorer:
    """A scorer for ``model`` (default: the run's best model on the test rows), cached per process."""
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; only a finished run's models can score new data.")
    model = model or best_model(run.result)
    check_model(run, model)
    return _cached(str(store.run_dir(run_id)), run_id, model)


def best_model(result: dict) -> str:
    """The model ranked first on the run's test rows: the one the verdict recommends."""
    return result["leaderboard"]["rows"][0]["model"]


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
