"""The target as models learn it, for every kind of data: class labels <-> codes 0..k-1, or a
standardised number. Fitted by the run, saved as plain JSON with it, and used again to turn a
model's raw output into the metric convention (class probabilities, or values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import DataError

__all__ = ["TargetEncoder"]


class TargetEncoder:
    """Class labels <-> codes 0..k-1 for classification; standardisation for regression."""

    def __init__(self, task: str) -> None:
        self.task = task

    def fit(self, y: pd.Series) -> "TargetEncoder":
        if self.task == "regression":
            values = pd.to_numeric(y, errors="coerce").astype("float64")
            self.mean_ = float(values.mean())
            std = float(values.std(ddof=0))
            self.std_ = std if std > 1e-12 else 1.0
            self.classes_: list[str] = []
        else:
            self.classes_ = sorted(_labels(y).dropna().unique().tolist(), key=_natural_key)
            if len(self.classes_) < 2:
                only = f" ({self.classes_[0]!r})" if self.classes_ else ""
                raise DataError(
                    f"The target has only one class{only} in the training rows; "
                    "pick another target or add rows with other values."
                )
        return self

    def encode(self, y: pd.Series) -> np.ndarray:
        if self.task == "regression":
            return ((pd.to_numeric(y, errors="coerce").astype("float64") - self.mean_) / self.std_).to_numpy(np.float32)
        index = {c: i for i, c in enumerate(self.classes_)}
        return _labels(y).map(index).to_numpy(dtype=np.int32)

    def decode_regression(self, scaled: np.ndarray) -> np.ndarray:
        return np.asarray(scaled, dtype=np.float64).reshape(-1) * self.std_ + self.mean_

    def from_model(self, raw: np.ndarray) -> np.ndarray:
        """A Keras head's output in the metric convention: (n, k) probabilities, or values."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.task == "binary":
            p = raw.reshape(-1)
            return np.column_stack([1.0 - p, p])
        if self.task == "multiclass":
            return raw
        return self.decode_regression(raw)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes_": self.classes_,
                "mean_": getattr(self, "mean_", None), "std_": getattr(self, "std_", None)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TargetEncoder":
        enc = cls(raw["task"])
        enc.classes_ = list(raw["classes_"])
        if raw.get("mean_") is not None:
            enc.mean_, enc.std_ = raw["mean_"], raw["std_"]
        return enc


def _labels(y: pd.Series) -> pd.Series:
    """Class labels as text; whole-number floats (1.0) read as '1' so '1' and 1.0 agree."""
    if pd.api.types.is_float_dtype(y):
        whole = y.dropna()
        if len(whole) and (whole == whole.round()).all():
            return y.map(lambda v: str(int(v)) if pd.notna(v) else None).astype("string")
    return y.astype("string").str.strip().mask(lambda s: s == "")


def _natural_key(label: str) -> tuple:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)
