"""Preprocessing fitted on the training split only, shared by deep models and baselines.

``TabularPreprocessor`` turns raw columns into two arrays: standardised numbers (with a
missing-value flag where the training rows had gaps) and integer codes for categories. The
plain MLP and every scikit-learn baseline see the same numbers plus a one-hot of the codes;
the embedding template sees the codes directly. Its state is plain JSON, saved with the run,
so scoring a raw CSV months later gives exactly the same columns, and loading it runs no code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import SchemaError

__all__ = ["TabularPreprocessor", "Features", "MISSING", "OTHER"]

MISSING, OTHER = 0, 1  # reserved category codes: a missing value, and a rare or unseen value
_DATE_PARTS = ("days", "month", "dayofweek")


@dataclass
class Features:
    """Model-ready arrays for a set of rows, and what had to be fixed on the way."""

    numeric: np.ndarray  # float32 (n, n_numeric)
    codes: np.ndarray  # int32 (n, n_categorical)
    unseen: dict[str, int] = field(default_factory=dict)  # column -> values never seen in training
    not_numbers: dict[str, int] = field(default_factory=dict)  # column -> cells that were not numbers
    text: np.ndarray | None = None  # str objects (n, n_text): cleaned free text, cut at text.MAX_CHARS
    empty_text: dict[str, int] = field(default_factory=dict)  # column -> empty text cells
    long_text: dict[str, int] = field(default_factory=dict)  # column -> cells cut at text.MAX_CHARS

    def __len__(self) -> int:
        return len(self.numeric)


class TabularPreprocessor:
    """Median-impute and standardise numbers, expand dates, and code categories.

    Parameters are only stored here; ``fit`` learns from the training rows (scikit-learn's
    convention: learned attributes end in ``_``).
    """

    def __init__(self, numeric: list[str], categorical: list[str], datetime: list[str] | None = None,
                 max_categories: int = 50, text: list[str] | None = None) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.datetime = list(datetime or [])
        self.max_categories = max_categories
        self.text = list(text or [])  # free-text columns: passed through as cleaned strings

    @property
    def columns(self) -> list[str]:
        """The raw input columns, in training order."""
        return self.numeric + self.datetime + self.categorical + self.text

    # ---- fit -----------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, rows: np.ndarray | None = None) -> "TabularPreprocessor":
        """Learn from the rows of ``df`` (all of them, or the positions ``rows``), one column at a
        time: the training rows of a big table are never copied whole."""
        self.check_columns(df)
        take = (lambda column: column) if rows is None else (lambda column: column.iloc[rows])
        self.num_names_, self.medians_, self.flags_, self.means_, self.stds_ = [], [], [], [], []
        for name, values in self._numeric_columns(df, {}, take):
            median = values.median()
            self.num_names_.append(name)
            self.medians_.append(float(median) if np.isfinite(median) else 0.0)
            if values.isna().any():
                self.flags_.append(name)
            filled = values.fillna(self.medians_[-1])
            self.means_.append(float(filled.mean()))
            std = filled.std(ddof=0)
            self.stds_.append(float(std) if std > 1e-12 else 1.0)  # a constant (or empty) column: 1
        self.vocab_: dict[str, list[str]] = {}
        for col in self.categorical:
            counts = _as_category(take(df[col])).value_counts()
            self.vocab_[col] = [str(v) for v in counts.index[: self.max_categories]]
        return self

    # ---- transform -----------------------------------------------------------------------
    def transform(self, df: pd.DataFrame) -> Features:
        self.check_columns(df)
        num, not_numbers = self._numeric_frame(df)
        num = num.reindex(columns=self.num_names_)
        flags = num[self.flags_].isna().to_numpy(dtype=np.float32) if self.flags_ else None
        values = num.fillna(dict(zip(self.num_names_, self.medians_))).to_numpy(dtype=np.float64)
        values = (values - np.asarray(self.means_)) / np.asarray(self.stds_)
        numeric = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        if flags is not None:
            numeric = np.hstack([numeric, flags])
        codes = np.zeros((len(df), len(self.categorical)), dtype=np.int32)
        unseen: dict[str, int] = {}
        for j, col in enumerate(self.categorical):
            raw = _as_category(df[col])
            vocab = self.vocab_[col]
            mapped = pd.Index(vocab).get_indexer(raw).astype(np.int32)  # -1 = not in vocab (or missing)
            missing = raw.isna().to_numpy()
            col_codes = np.where(missing, MISSING, np.where(mapped < 0, OTHER, mapped + 2))
            codes[:, j] = col_codes
            # Values outside the kept vocabulary that were never seen in training at all.
            n_unseen = int(((mapped < 0) & ~missing).sum())
            if n_unseen:
                unseen[col] = n_unseen
        feats = Features(numeric=numeric, codes=codes, unseen=unseen, not_numbers=not_numbers)
        if self.text:
            from dlcore.tables.text import clean

            feats.text = np.empty((len(df), len(self.text)), dtype=object)
            for j, col in enumerate(self.text):
                feats.text[:, j], n_empty, n_long = clean(df[col])
                if n_empty:
                    feats.empty_text[col] = n_empty
                if n_long:
                    feats.long_text[col] = n_long
        return feats

    def fit_transform(self, df: pd.DataFrame) -> Features:
        return self.fit(df).transform(df)

    def dense(self, features: Features) -> np.ndarray:
        """Numbers plus a one-hot of every category code: what the plain MLP and baselines see."""
        blocks = [features.numeric]
        for j, col in enumerate(self.categorical):
            width = len(self.vocab_[col]) + 2
            onehot = np.zeros((len(features), width), dtype=np.float32)
            onehot[np.arange(len(features)), features.codes[:, j]] = 1.0
            blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((len(features), 0), dtype=np.float32)

    @property
    def n_numeric(self) -> int:
        return len(self.num_names_) + len(self.flags_)

    @property
    def cardinalities(self) -> list[int]:
        """Number of codes per categorical column (the two reserved codes included)."""
        return [len(self.vocab_[c]) + 2 for c in self.categorical]

    @property
    def dense_names(self) -> list[str]:
        names = list(self.num_names_) + [f"{c} is missing" for c in self.flags_]
        for col in self.categorical:
            names += [f"{col} = (missing)", f"{col} = (other)"] + [f"{col} = {v}" for v in self.vocab_[col]]
        return names

    # ---- helpers -------------------------------------------------------------------------
    def check_columns(self, df: pd.DataFrame) -> None:
        missing = [c for c in self.columns if c not in df.columns]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10]) + (" …" if len(missing) > 10 else "")
            raise SchemaError(
                f"The file lacks {len(missing)} column(s) the model was trained on: {shown}. "
                "Add them with their values, or, if the file names them differently, match its columns to the "
                "model's on the Predict page, and upload again."
            )

    def _numeric_frame(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        not_numbers: dict[str, int] = {}
        frame = pd.DataFrame(dict(self._numeric_columns(df, not_numbers)), index=df.index)
        return frame, not_numbers

    def _numeric_columns(self, df: pd.DataFrame, not_numbers: dict[str, int],
                         take: Any = lambda column: column) -> Any:
        """(name, float64 values) of every numeric input, dates expanded, one at a time, from the
        rows ``take`` picks of each raw column; cells that are not numbers counted in ``not_numbers``."""
        for col in self.numeric:
            raw = take(df[col])
            if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
                values = raw.astype("float64")
            else:
                values = pd.to_numeric(raw.astype("string").str.strip(), errors="coerce").astype("float64")
                bad = int((values.isna() & raw.notna() & (raw.astype("string").str.strip() != "")).sum())
                if bad:
                    not_numbers[col] = bad
            yield col, values.replace([np.inf, -np.inf], np.nan)
        for col in self.datetime:
            raw = take(df[col])
            stamp = pd.to_datetime(raw, errors="coerce", format="mixed") if not pd.api.types.is_datetime64_any_dtype(raw) else raw
            if getattr(stamp.dt, "tz", None) is not None:
                stamp = stamp.dt.tz_localize(None)
            yield f"{col} (days)", (stamp - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
            yield f"{col} (month)", stamp.dt.month.astype("float64")
            yield f"{col} (day of week)", stamp.dt.day_of_week.astype("float64")

    # ---- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {
            "numeric": self.numeric, "categorical": self.categorical, "datetime": self.datetime,
            "max_categories": self.max_categories, "num_names_": self.num_names_,
            "medians_": self.medians_, "means_": self.means_, "stds_": self.stds_,
            "flags_": self.flags_, "vocab_": self.vocab_,
        }
        if self.text:  # only then: a table without text saves exactly what it always did
            from dlcore.tables.text import MAX_CHARS

            out["text"], out["max_chars"] = self.text, MAX_CHARS
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TabularPreprocessor":
        pre = cls(raw["numeric"], raw["categorical"], raw["datetime"], raw["max_categories"], raw.get("text"))
        for key in ("num_names_", "medians_", "means_", "stds_", "flags_", "vocab_"):
            setattr(pre, key, raw[key])
        return pre


def _as_category(series: pd.Series) -> pd.Series:
    """Categories compared as trimmed text, so 1, '1' and ' 1' are one category."""
    text = series.astype("string").str.strip()
    return text.mask(text == "")
