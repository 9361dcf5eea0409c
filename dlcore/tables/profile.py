"""Describe a table and check a target: the type of every column, missing shares, a small
distribution, warnings (constant, identifier-like, very many categories, a column that gives the
target away); which task a target makes and whether it can be learned.

Example::

    profile = profile_frame(df)
    task = infer_task(df["churned"])
    warnings = check_target(df, "churned", task) + leakage_warnings(df, "churned", task)
    features = usable_features(profile, "churned")
"""

from __future__ import annotations

import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import DataError, SpecError
from dlcore.tables.columns import _ID_NAME_RE, _SEED, _missing, _sample, _to_number
from dlcore.tables.personal import Finding, describe, detect_personal

__all__ = ["guess_target", "COLUMN_KINDS", "TASKS", "MIN_ROWS", "ColumnProfile", "DatasetProfile", "profile_frame", "profile_of",
           "infer_task", "check_target", "leakage_warnings", "usable_features", "personal_columns"]

COLUMN_KINDS = ("numeric", "categorical", "datetime", "text", "identifier")
TASKS = ("binary", "multiclass", "regression")
MIN_ROWS = 20
# The largest target a regression can learn. Training sums the target over the rows in 32-bit
# floats (a linear baseline's X'y), which overflow near 3.4e38: 1e30 leaves room for the
# millions of rows an upload can hold. (3.3e38 in a few rows of 200 already fails.)
MAX_TARGET = 1e30

# --------------------------------------------------------------------------------------
# Profile
# --------------------------------------------------------------------------------------


@dataclass
class ColumnProfile:
    """What one column holds: its kind, gaps, distinct values, summary and a small histogram.

    ``stats`` holds min/max/mean/median/std for numeric columns, min/max and ``top`` for
    datetime, and ``top`` (up to 5 ``{"value", "count"}``) for the others. ``personal`` is the
    personal data found in the column (``Finding.to_dict()``, see ``dlcore.tables.personal``) or
    None; such a column's profile keeps no value of it (no stats, no histogram labels).
    """

    name: str
    kind: str
    dtype: str
    n_missing: int
    missing_share: float
    n_unique: int
    stats: dict[str, Any] = field(default_factory=dict)
    hist_counts: list[int] = field(default_factory=list)
    hist_labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    personal: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain numbers and text; NaN becomes None)."""
        return _json_safe(
            {
                "personal": self.personal,
                "name": self.name,
                "kind": self.kind,
                "dtype": self.dtype,
                "n_missing": self.n_missing,
                "missing_share": self.missing_share,
                "n_unique": self.n_unique,
                "stats": self.stats,
                "hist_counts": self.hist_counts,
                "hist_labels": self.hist_labels,
                "warnings": self.warnings,
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Rebuild a column profile written by ``to_dict``."""
        return cls(
            name=data["name"],
            kind=data["kind"],
            dtype=data["dtype"],
            n_missing=int(data["n_missing"]),
            missing_share=float(data["missing_share"]),
            n_unique=int(data["n_unique"]),
            stats=dict(data.get("stats", {})),
            hist_counts=list(data.get("hist_counts", [])),
            hist_labels=list(data.get("hist_labels", [])),
            warnings=list(data.get("warnings", [])),
            personal=data.get("personal"),
        )


@dataclass
class DatasetProfile:
    """A profile of a whole table.

    ``warnings`` lists the table-level warnings first, then every column's warnings (each
    names its column), so a page can show one list; ``ColumnProfile.warnings`` has them per
    column.
    """

    n_rows: int
    n_cols: int
    columns: list[ColumnProfile]
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        names = _few_names([c.name for c in self.columns])
        raise DataError(f"There is no column named '{name}'. Columns: {names}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain numbers and text; NaN becomes None)."""
        return {
            "n_rows": int(self.n_rows),
            "n_cols": int(self.n_cols),
            "columns": [c.to_dict() for c in self.columns],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        """Rebuild a profile written by ``to_dict``."""
        return cls(
            n_rows=int(data["n_rows"]),
            n_cols=int(data["n_cols"]),
            columns=[ColumnProfile.from_dict(c) for c in data["columns"]],
            warnings=list(data.get("warnings", [])),
        )


_THREADED_CELLS = 1_000_000  # a table this big is profiled two columns at a time (1M x 20: 0.45 s -> 0.27 s)


def profile_frame(df: pd.DataFrame) -> DatasetProfile:
    """Profile every column: kind (one of ``COLUMN_KINDS``), gaps, summary, warnings.

    Expensive checks (text length, numbers hidden in text) run on a seeded sample, so a
    million-row table profiles in about a second.
    """
    n = len(df)

    def one(i: int) -> ColumnProfile:
        return _profile_column(df.iloc[:, i], str(df.columns[i]), n)

    if n * df.shape[1] < _THREADED_CELLS:
        columns = [one(i) for i in range(df.shape[1])]
    else:  # NumPy's sorts and pandas' counts release the GIL: two columns at a time
        with ThreadPoolExecutor(2) as pool:
            columns = list(pool.map(one, range(df.shape[1])))
    table_warnings: list[str] = []
    if n < MIN_ROWS:
        table_warnings.append(
            f"The table has only {n} row{'s' if n != 1 else ''}; at least {MIN_ROWS} are "
            "needed to train and test a model. Add more rows."
        )
    for col in columns:
        table_warnings += col.warnings
    return DatasetProfile(n_rows=n, n_cols=df.shape[1], columns=columns, warnings=table_warnings)


def _profile_column(s: pd.Series, name: str, n: int) -> ColumnProfile:
    n_missing = int(s.isna().sum())
    present = n - n_missing
    if pd.api.types.is_bool_dtype(s.dtype):
        prof = _profile_categorical(s, name, present, force_categorical=True)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        prof = _profile_datetime(s)
    elif pd.api.types.is_numeric_dtype(s.dtype):
        prof = _profile_numeric(s, name)
    else:
        prof = _profile_categorical(s, name, present)
    kind, n_unique, stats, counts, labels, col_warnings = prof
    finding = detect_personal(s)
    if finding is not None:
        # Nothing of the values is kept: no summary, no histogram labels, no warning quoting a cell.
        stats, labels = {}, []
        col_warnings = [_personal_warning(name, finding)] + [
            w for w in col_warnings if "mixes numbers and words" not in w]
    if n_unique == 0:
        col_warnings.insert(0, f"Column '{name}' is empty in every row; it will be ignored.")
    elif n_unique == 1 and n_missing == 0:
        col_warnings.insert(
            0, f"Column '{name}' has the same value in every row; it will be ignored."
        )
    elif n and n_missing / n > 0.5:
        col_warnings.append(
            f"Column '{name}' is mostly missing ({_pct(n_missing / n)} of rows are empty); "
            "it may add little. Fill it in or remove it if the gaps are not meaningful."
        )
    return ColumnProfile(
        name=name,
        kind=kind,
        dtype=str(s.dtype),
        n_missing=n_missing,
        missing_share=float(n_missing / n) if n else 0.0,
        n_unique=int(n_unique),
        stats=stats,
        hist_counts=[int(c) for c in counts],
        hist_labels=[str(label) for label in labels],
        warnings=col_warnings,
        personal=finding.to_dict() if finding is not None else None,
    )


def _personal_warning(name: str, finding: Finding) -> str:
    return (
        f"Column '{name}' holds personal data: {describe(finding)} in {_pct(finding.share)} of the rows looked at. "
        "It is left out of the model inputs, kept out of reports and bundles, and masked for viewers; put it "
        "back on the Train page only if the model needs it and you may use it for this."
    )


_ProfileParts = tuple[str, int, dict[str, Any], list[int], list[str], list[str]]


def _profile_numeric(s: pd.Series, name: str) -> _ProfileParts:
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    # One sort gives the distinct count, median, range and histogram; it is several times
    # faster on a million rows than hashing for pd.unique plus np.histogram. NaN sorts last, so
    # the column is sorted as it is and the present values are the slice before the gaps: no
    # mask and no filtered copy beside the sorted one (two threads at a time: -18 MB at the peak).
    ordered = np.sort(values)
    if ordered.size and np.isnan(ordered[-1]):
        ordered = ordered[: np.searchsorted(ordered, np.nan, side="left")]
    if ordered.size == 0:
        return "numeric", 0, {}, [], [], []
    changes = ordered[1:] != ordered[:-1]
    n_unique = int(np.count_nonzero(changes)) + 1
    # Infinities sort to the ends; the finite values are the slice between them.
    finite = ordered[
        np.searchsorted(ordered, -np.inf, side="right") : np.searchsorted(ordered, np.inf)
    ]
    starts: np.ndarray | None = None

    def distinct_starts() -> np.ndarray:
        nonlocal starts
        if starts is None:
            starts = np.flatnonzero(np.r_[True, changes])
        return starts

    def whole() -> bool:
        """Whole numbers: every distinct value is (checked only where the answer is used)."""
        if pd.api.types.is_integer_dtype(s.dtype):
            return True
        if finite.size != ordered.size:
            return False
        distinct = finite if n_unique == finite.size else finite[distinct_starts()]
        return bool(np.all(distinct == np.round(distinct)))

    stats: dict[str, Any] = {}
    if finite.size:
        mid = finite.size // 2
        median = finite[mid] if finite.size % 2 else (finite[mid - 1] + finite[mid]) / 2
        stats = {
            "min": float(finite[0]),
            "max": float(finite[-1]),
            "mean": float(finite.mean()),
            "median": float(median),
            "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        }
    col_warnings: list[str] = []
    kind = "numeric"
    if n_unique == ordered.size and n_unique > 1 and whole():
        lo, hi = float(ordered[0]), float(ordered[-1])
        row_number = lo in (0.0, 1.0) and hi - lo == n_unique - 1 and n_unique >= MIN_ROWS
        # Customer or order numbers under any name: unique whole numbers that fill most of
        # their range (1000..1299). Amounts or incomes that happen to be unique spread thinly.
        dense_code = n_unique >= 50 and hi - lo + 1 <= 2 * n_unique
        if _ID_NAME_RE.search(name) or row_number or dense_code:
            kind = "identifier"
            col_warnings.append(_identifier_warning(name))
    if kind == "identifier" or finite.size == 0:
        return kind, n_unique, stats, [], [], col_warnings
    if n_unique <= 20 and whole():
        counts = np.diff(np.r_[distinct_starts(), ordered.size])
        labels = [_fmt_num(v) for v in ordered[distinct_starts()]]
        return kind, n_unique, stats, counts.tolist(), labels, col_warnings
    bins = min(20, n_unique)
    edges = np.linspace(finite[0], finite[-1], bins + 1)
    # Bins are [left, right) like np.histogram, the last one closed on the right.
    cuts = np.searchsorted(finite, edges[1:-1], side="left")
    counts = np.diff(np.r_[0, cuts, finite.size])
    labels = [f"{_fmt_num(a)} to {_fmt_num(b)}" for a, b in itertools.pairwise(edges)]
    return kind, n_unique, stats, counts.tolist(), labels, col_warnings


def _profile_datetime(s: pd.Series) -> _ProfileParts:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert(None)
    present = s.dropna()
    if present.empty:
        return "datetime", 0, {}, [], [], []
    counts = present.value_counts()  # one pass gives the distinct count and the top values
    n_unique = len(counts)
    ms = present.to_numpy().astype("datetime64[ms]").astype("int64")
    lo, hi = int(ms.min()), int(ms.max())
    # Day labels unless the whole range is within two days; numpy formats any year, where
    # Timestamp.strftime fails outside years 1-9999 (seen in damaged files).
    width = 10 if hi - lo > 2 * 86_400_000 else 16
    stats: dict[str, Any] = {
        "min": str(np.datetime64(lo, "ms")),
        "max": str(np.datetime64(hi, "ms")),
        "top": _top_values(counts.head(5)),
    }
    hist, edges = np.histogram(ms, bins=min(20, max(1, n_unique)))
    labels = [str(np.datetime64(int(e), "ms"))[:width].replace("T", " ") for e in edges[:-1]]
    return "datetime", n_unique, stats, hist.tolist(), labels, []


def _profile_categorical(
    s: pd.Series, name: str, present: int, force_categorical: bool = False
) -> _ProfileParts:
    try:
        counts = s.value_counts(dropna=True)
    except TypeError:
        # Unhashable cells (lists from a Parquet file) are compared by their text.
        s = s.map(lambda v: v if _missing(v) else str(v))
        counts = s.value_counts(dropna=True)
    n_unique = len(counts)
    stats = {"top": _top_values(counts.head(5))}
    if n_unique == 0:
        return "categorical", 0, stats, [], [], []
    col_warnings: list[str] = []
    kind = "categorical"
    if not force_categorical:
        sample = _sample(s.dropna(), 10_000)
        text = sample.astype("str")
        mean_len = float(text.str.len().mean())
        spaced = float(text.str.contains(" ", regex=False).mean())
        unique_share = n_unique / present
        # Chinese and Japanese write sentences without spaces: their characters say "text".
        written = float(text.str.contains(_CJK_RE).mean()) if mean_len > 10 else 0.0
        if (mean_len > 30 and spaced >= 0.5 or written >= 0.5) and unique_share >= 0.5:
            kind = "text"
            col_warnings.append(
                f"Column '{name}' holds free text (sentences, comments); the models read its words "
                "(leave it out of the inputs on the Train page if it should not be used)."
            )
        elif (
            unique_share >= 0.95
            and n_unique > 1
            and mean_len <= 40
            and spaced < 0.5
            and (present >= MIN_ROWS or _ID_NAME_RE.search(name))
        ):
            kind = "identifier"
            col_warnings.append(_identifier_warning(name))
        else:
            if n_unique > 100 and unique_share > 0.5:
                col_warnings.append(
                    f"Column '{name}' has {n_unique:,} different values, most of them seen "
                    "only once or twice; the models will learn little from it. Group rare "
                    "values or remove it."
                )
            mixed = _mixed_warning(text, name)
            if mixed:
                col_warnings.append(mixed)
    if kind != "categorical":
        return kind, n_unique, stats, [], [], col_warnings
    top = counts.head(20)
    return kind, n_unique, stats, top.tolist(), [str(v) for v in top.index], col_warnings


def _mixed_warning(text: pd.Series, name: str) -> str | None:
    numbers = _to_number(text, ".")
    share = float(numbers.notna().mean())
    if share < 0.2 or share >= 0.95:
        return None
    example = text[numbers.isna()].iloc[0]
    return (
        f"Column '{name}' mixes numbers and words (for example '{example}'); it is treated "
        "as categories. If it should be numbers, fix or clear the values that are not."
    )


def _identifier_warning(name: str) -> str:
    return (
        f"Column '{name}' looks like an identifier (a different value in every row); it "
        "will be ignored because it cannot help predict new rows."
    )


def _top_values(counts: pd.Series) -> list[dict[str, Any]]:
    return [{"value": _label(v), "count": int(c)} for v, c in counts.items()]


def _label(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value if isinstance(value, (int, float)) else str(value)


def _fmt_num(x: float) -> str:
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _pct(share: float) -> str:
    if 0 < share < 0.01:
        return f"{share * 100:.1f}%"
    return f"{share * 100:.0f}%"


def _few_names(names: list[Any], limit: int = 8) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------------------
# Target
# --------------------------------------------------------------------------------------


def infer_task(y: pd.Series) -> str:
    """Guess the task for a target column: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Numbers with more than 20 distinct values (or non-whole numbers with more than 10) are a
    regression; otherwise 2 values is binary and 3 to 50 is multiclass. Raises ``DataError``
    for an empty or one-value column, dates, or text with more than 50 distinct values.
    """
    name = y.name
    present = y.dropna()
    if present.empty:
        raise _empty_target(name)
    if pd.api.types.is_datetime64_any_dtype(present.dtype):
        raise DataError(
            f"The target column '{name}' holds dates, which cannot be predicted here. Pick "
            "a column of numbers or categories as the target."
        )
    n_unique = int(present.nunique())
    if n_unique == 1:
        raise _one_value_target(name, present.iloc[0])
    if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(
        present.dtype
    ):
        values = present.to_numpy(dtype="float64")
        whole = bool(np.all(values == np.round(values)))
        if n_unique > 20 or (not whole and n_unique > 10):
            return "regression"
        return "binary" if n_unique == 2 else "multiclass"
    if n_unique == 2:
        return "binary"
    if n_unique <= 50:
        return "multiclass"
    raise DataError(
        f"The target column '{name}' holds {n_unique:,} different values, too many to "
        "predict as categories (50 at most). If they are amounts, make the column numbers "
        "and predict it as a regression; otherwise pick another target."
    )


def check_target(df: pd.DataFrame, target: str, task: str) -> list[str]:
    """Check that ``target`` can be learned as ``task``; return warnings, raise on blockers.

    Raises ``DataError`` when the column is missing, empty, has one value, has fewer than
    ``MIN_ROWS`` rows with a value, is not numbers for a regression, or has a class seen in
    only one row. Returns plain-language warnings (rows without a target, strong imbalance).
    """
    _check_task(task)
    y = _target_column(df, target)
    n_missing = int(y.isna().sum())
    present = y.dropna()
    if present.empty:
        raise _empty_target(target)
    if len(present) < MIN_ROWS:
        raise DataError(
            f"Only {len(present)} {'rows have' if len(present) != 1 else 'row has'} a value in the "
            f"target column '{target}'; at least {MIN_ROWS} are needed to train and test a "
            "model. Add more rows or pick another target."
        )
    out: list[str] = []
    if task == "regression":
        numbers = _target_numbers(present, target)
        _check_target_size(numbers, np.flatnonzero(y.notna().to_numpy()), target)
        if numbers.nunique() == 1:
            raise _one_value_target(target, present.iloc[0])
        n_distinct = int(numbers.nunique())
        if n_distinct <= 10:
            out.append(
                f"The target '{target}' has only {n_distinct} different values; predicting "
                "it as categories (binary or multiclass) may fit better."
            )
    else:
        counts = present.value_counts()
        if len(counts) == 1:
            raise _one_value_target(target, counts.index[0])
        if task == "binary" and len(counts) > 2:
            raise DataError(
                f"A two-value (binary) prediction needs exactly two values in '{target}', but "
                f"it has {len(counts)}: {_few_names(list(counts.index), 5)}. Choose "
                "multiclass instead, or pick another target."
            )
        if len(counts) > 50:
            raise DataError(
                f"The target '{target}' has {len(counts):,} different values, too many to "
                "predict as categories (50 at most). Predict it as a regression if it holds "
                "amounts, or pick another target."
            )
        rare = counts[counts < 2]
        if len(rare):
            which = (
                f"The value {_few_names(list(rare.index), 5)} of the target '{target}' appears"
                if len(rare) == 1
                else f"The values {_few_names(list(rare.index), 5)} of the target '{target}' "
                "each appear"
            )
            raise DataError(
                f"{which} in only one row; every value needs at least 2 rows so it can be in "
                "both the training and the test data. Remove those rows, merge the value "
                "with a similar one, or add more rows."
            )
        smallest, share = counts.index[-1], counts.iloc[-1] / len(present)
        limit = 0.10 if task == "binary" else 0.05
        if share < limit:
            out.append(
                f"The target is imbalanced: only {_pct(share)} of rows are '{smallest}'. "
                f"Accuracy will look good even for a model that never predicts '{smallest}'; "
                "compare the models on ROC AUC or balanced accuracy."
            )
    if n_missing:
        out.insert(
            0,
            f"{n_missing:,} row{'s have' if n_missing != 1 else ' has'} no target value and "
            "will be left out.",
        )
    return out


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise SpecError(f"The task '{task}' is not one of {', '.join(TASKS)}. Pick one of them.")


def _target_column(df: pd.DataFrame, target: str) -> pd.Series:
    if target not in df.columns:
        raise DataError(
            f"There is no column named '{target}' to use as the target. Available columns: "
            f"{_few_names(list(df.columns))}. Pick one of them."
        )
    y = df[target]
    return y.iloc[:, 0] if isinstance(y, pd.DataFrame) else y


def _empty_target(name: Any) -> DataError:
    return DataError(
        f"The target column '{name}' is empty in every row. Pick a column that has values, "
        "or fill it in and upload again."
    )


def _one_value_target(name: Any, value: Any) -> DataError:
    return DataError(
        f"The target column '{name}' has the same value ('{value}') in every row, so there "
        "is nothing to predict. Pick another target, or add rows with other values."
    )


def _target_numbers(present: pd.Series, target: str) -> pd.Series:
    """The target as floats for a regression, or a DataError naming a value that is not."""
    if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(
        present.dtype
    ):
        return present.astype("float64")
    if pd.api.types.is_bool_dtype(present.dtype) or pd.api.types.is_datetime64_any_dtype(
        present.dtype
    ):
        bad = present
    else:
        numbers = pd.to_numeric(present.astype("str"), errors="coerce")
        bad = present[numbers.isna()]
        if bad.empty:
            # Numbers stored as text (a frame not read by read_table) are still numbers.
            return numbers.astype("float64")
    example = bad.iloc[0]
    raise DataError(
        f"A regression needs numbers in the target column '{target}', but it holds "
        f"'{example}' ({len(bad):,} value{'s' if len(bad) != 1 else ''} are not numbers). "
        "Predict it as categories (binary or multiclass) instead, or fix those values."
    )


def _check_target_size(numbers: pd.Series, rows: np.ndarray, target: str) -> None:
    """Refuse infinite targets and targets too large to train on, naming the rows (``rows``: the
    position of each number in the table, shown counted from 1, the first row under the header)
    and their values."""
    values = numbers.to_numpy(dtype="float64")
    infinite = np.isinf(values)
    huge = ~infinite & (np.abs(values) > MAX_TARGET)
    if not infinite.any() and not huge.any():
        return

    def which(mask: np.ndarray) -> str:
        shown = [f"{r + 1} ({v:g})" for r, v in zip(rows[mask][:5].tolist(), values[mask][:5], strict=True)]
        if mask.sum() > 5:
            shown.append(f"{int(mask.sum()) - 5:,} more")
        listed = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"
        return f"row{'s' if mask.sum() > 1 else ''} {listed}"

    problems = []
    if infinite.any():
        plural = "s" if infinite.sum() > 1 else ""
        problems.append(f"{int(infinite.sum()):,} infinite value{plural} ({which(infinite)})")
    if huge.any():
        problems.append(f"{int(huge.sum()):,} value{'s' if huge.sum() > 1 else ''} larger than {MAX_TARGET:g} in "
                        f"size ({which(huge)}), beyond what training in 32-bit numbers can hold")
    raise DataError(
        f"The target column '{target}' holds {' and '.join(problems)}; rows are counted from 1, the "
        "first row under the header. Correct those cells, or clear them (rows with an empty target "
        "are left out of training), and upload the file again. If such amounts are real, predict "
        "them in a larger unit (thousands, millions) or as their logarithm."
    )


def leakage_warnings(df: pd.DataFrame, target: str, task: str) -> list[str]:
    """Warn about columns that give the target away (a copy, or a near-perfect predictor).

    Such a column makes every model look far better than it will be on new data, typically
    because its value is only known after the outcome. Runs on at most 50,000 rows (seeded).
    """
    _check_task(task)
    y_all = _target_column(df, target)
    keep = y_all.notna().to_numpy()
    data = df.loc[keep]
    if len(data) > 50_000:
        data = data.sample(50_000, random_state=_SEED)
    y = _target_column(data, target)
    if y.nunique() < 2:
        return []
    out = []
    for i, col in enumerate(data.columns):
        if col == target:
            continue
        reason = _leak_reason(data.iloc[:, i], y, task)
        if reason:
            out.append(
                f"Column '{col}' {reason}, so it gives the target away. It will likely make "
                "the model look better than it is; remove it if its value is only known after "
                "the outcome."
            )
    return out


def _leak_reason(x: pd.Series, y: pd.Series, task: str) -> str | None:
    mask = x.notna().to_numpy()
    if mask.sum() < 10:
        return None
    numeric_x = pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(x.dtype)
    numeric_y = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    xs, ys = x[mask], y[mask]
    if numeric_x and numeric_y:
        same = np.isclose(xs.to_numpy(dtype="float64"), ys.to_numpy(dtype="float64")).mean()
    else:
        same = (xs.astype("str").to_numpy() == ys.astype("str").to_numpy()).mean()
    if same >= 0.99 and mask.mean() >= 0.5:
        return (
            "is a copy of the target"
            if same == 1
            else (f"is almost a copy of the target (the same in {_pct(same)} of rows)")
        )
    if numeric_x and task == "binary":
        auc = _single_feature_auc(xs.to_numpy(dtype="float64"), ys)
        if auc is not None and auc > 0.99:
            return f"on its own predicts the target almost perfectly (ROC AUC {auc:.3f})"
    if numeric_x and task == "regression" and numeric_y:
        a, b = xs.to_numpy(dtype="float64"), ys.to_numpy(dtype="float64")
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 10 and a[ok].std() > 0 and b[ok].std() > 0:
            corr = float(np.corrcoef(a[ok], b[ok])[0, 1])
            if abs(corr) > 0.99:
                return f"moves almost exactly with the target (correlation {corr:.3f})"
    groups = x.astype("str").where(x.notna(), "(empty)")
    n_groups = groups.nunique()
    if 1 < n_groups <= min(1000, len(x) / 10):
        if task == "regression":
            if numeric_y and _eta_squared(groups, y.astype("float64")) > 0.99:
                return "fixes the target almost exactly (each value goes with one target value)"
        else:
            purity, baseline = _purity(groups, y)
            # Compare with always guessing the commonest class, so a 99%-one-class target
            # does not flag every column.
            if purity >= 0.99 and (1 - purity) <= 0.1 * (1 - baseline):
                return (
                    "maps almost one-to-one onto the target values (its value fixes the "
                    f"target in {_pct(purity)} of rows)"
                )
    return None


def _single_feature_auc(x: np.ndarray, y: pd.Series) -> float | None:
    """ROC AUC of one column on its own, from its ranks (the Mann-Whitney U, ties averaged:
    the same value as scikit-learn's ``roc_auc_score``). It runs once per column: the input
    checks of ``roc_auc_score`` took over 10 s on a file of 1,000 columns and 40 rows."""
    ok = np.isfinite(x)
    labels = y.to_numpy()[ok]
    classes = pd.unique(labels)
    if len(classes) != 2 or ok.sum() < 10:
        return None
    positive = labels == classes[0]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = pd.Series(x[ok]).rank().to_numpy()
    auc = float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return max(auc, 1 - auc)


def _purity(groups: pd.Series, y: pd.Series) -> tuple[float, float]:
    table = pd.crosstab(groups.to_numpy(), y.astype("str").to_numpy())
    n = table.to_numpy().sum()
    return float(table.max(axis=1).sum() / n), float(table.sum(axis=0).max() / n)


def _eta_squared(groups: pd.Series, y: pd.Series) -> float:
    ok = y.notna().to_numpy() & np.isfinite(y.to_numpy(dtype="float64", na_value=np.nan))
    values = y.to_numpy(dtype="float64", na_value=np.nan)[ok]
    g = groups.to_numpy()[ok]
    total = ((values - values.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    means = pd.Series(values).groupby(g).transform("mean").to_numpy()
    return float(1 - ((values - means) ** 2).sum() / total)


_CJK_RE = "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"


def usable_features(profile: DatasetProfile, target: str) -> list[str]:
    """Columns a model can learn from: all but the target, identifiers, constant and
    fully-missing columns, and columns of personal data (free text is read: its words). An
    analyst may put a personal column back by naming the inputs (``DataSpec.features``)."""
    return [
        c.name
        for c in profile.columns
        if c.name != target
        and c.kind in ("numeric", "categorical", "datetime", "text")
        and not _constant(c)
        and not c.personal
    ]


# Words that name what a table is kept to predict, whole words of a column's name (any case,
# with _ - . or spaces between words). Only a guess to offer the analyst, never chosen for them.
_TARGET_WORDS = {"target", "label", "labels", "class", "outcome", "y", "churn", "churned", "survived", "default",
                 "fraud", "diagnosis", "species", "response", "result", "converted", "approved", "attrition"}


def guess_target(columns: list[dict[str, Any]]) -> tuple[str, str] | None:
    """A column that looks like the one to predict, and why in words, from its name and its values: a
    name word such as 'target', 'label', 'outcome' or 'churn', and a column a model could learn (not an
    identifier, free text, personal data, constant or mostly missing), few distinct values preferred;
    None when no name says so (the last column is no guess: it is often a price or a date).

    >>> guess_target([{"name": "Id", "kind": "identifier", "n_unique": 9}, {"name": "Churn", "kind": "categorical",
    ...               "n_unique": 2, "missing_share": 0.0}, {"name": "Prix (€)", "kind": "numeric", "n_unique": 9}])
    ('Churn', 'its name, and it has 2 distinct values')
    """
    found = []
    for i, c in enumerate(columns):
        words = {w for w in re.split(r"[^a-z0-9]+", str(c.get("name", "")).lower()) if w}
        if not words & _TARGET_WORDS or c.get("personal") or c.get("kind") not in ("numeric", "categorical"):
            continue
        distinct = int(c.get("n_unique") or 0)
        if distinct < 2 or float(c.get("missing_share") or 0.0) > 0.5:
            continue
        found.append((distinct > 20, i, c["name"], distinct))
    if not found:
        return None
    _, _, name, distinct = min(found)
    return name, f"its name, and it has {distinct} distinct values"


def personal_columns(profile: DatasetProfile | dict[str, Any]) -> list[str]:
    """The names of the columns that hold personal data, from a profile or its stored dict."""
    columns = profile.get("columns", []) if isinstance(profile, dict) else [c.to_dict() for c in profile.columns]
    return [c["name"] for c in columns if c.get("personal")]


def _constant(col: ColumnProfile) -> bool:
    """Empty, or one value in every row. One value plus gaps is kept: a column of "x" marks
    and blanks, as Excel check lists are often written, says something in each row."""
    return col.n_unique == 0 or (col.n_unique == 1 and col.n_missing == 0)


def profile_of(record: Any) -> DatasetProfile:
    """The profile a dataset record was stored with."""
    return DatasetProfile.from_dict(record.profile)
