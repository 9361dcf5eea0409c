"""A run on a table: which rows learn, the preprocessing fitted on the training rows only, and
what the deep model and the baselines are fed (one matrix for both, or split inputs for the
embedding template).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlcore import base, ready
from dlcore.errors import DataError
from dlcore.rows import RowMatrix, release_freed_memory
from dlcore.spec import RunSpec
from dlcore.splits import split_indices
from dlcore.store import DatasetRecord, Store
from dlcore.tables import profile as tabular
from dlcore.tables import text
from dlcore.tables.preprocess import TabularPreprocessor
from dlcore.tables.reader import load_frame, rebuild_copy
from dlcore.targets import TargetEncoder

__all__ = ["Prepared", "prepare", "prepare_inputs", "resolve_task", "check", "personal_input_warnings"]


def check(store: Store, spec: RunSpec, record: DatasetRecord) -> None:
    """Refuse a target that cannot be learned now, not minutes later in a worker: only the
    target column is read, so this stays quick on big tables."""
    if spec.data.target not in {c["name"] for c in record.profile["columns"]}:
        raise DataError(
            f"The dataset has no column {spec.data.target!r}; pick the target among its columns."
        )
    from dlcore.tables.templates import TEMPLATES

    if any(t.name == spec.template and t.input_format == "text" for t in TEMPLATES):
        profile = tabular.profile_of(record)
        features = spec.data.features if spec.data.features is not None else tabular.usable_features(profile, spec.data.target)
        if not any(c.kind == "text" and c.name in features for c in profile.columns):
            raise DataError("The text model reads free-text columns (descriptions, tickets, reviews), and this run's "
                            "inputs have none; choose an MLP template, or a table with a text column.")
    held = ready.fresh(record.id)
    if held is not None:
        target = held[[spec.data.target]]
    elif ready.is_ready(store, record.id):
        target = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet", columns=[spec.data.target])
    else:  # uploaded to another process and still being written: the worker checks it before training
        return
    tabular.check_target(target, spec.data.target, resolve_task(spec.data.task, target[spec.data.target]))


def personal_input_warnings(profile: tabular.DatasetProfile, features: list[str] | tuple[str, ...]) -> list[str]:
    """One line per input column that holds personal data: only an analyst who named the inputs
    can have put one back, and the run, its report and its model card say so."""
    from dlcore.tables.personal import Finding, describe

    return [f"Input column '{c.name}' holds personal data ({describe(Finding.from_dict(c.personal))}); the analyst "
            "put it back as a model input, so the model and its bundle learn from it."
            for c in profile.columns if c.personal and c.name in features]


def resolve_task(requested: str, y: pd.Series) -> str:
    inferred = tabular.infer_task(y) if requested in ("auto", "classification") else requested
    if requested == "classification" and inferred == "regression":
        n = y.nunique()
        if n > 50:
            raise DataError(
                f"The target {y.name!r} has {n} different values, too many to treat as classes. "
                "Choose regression, or a target with fewer values."
            )
        inferred = "binary" if n == 2 else "multiclass"
    if inferred in ("binary", "multiclass"):
        n = _labels_count(y)
        inferred = "binary" if n == 2 else "multiclass"
    return inferred


def _labels_count(y: pd.Series) -> int:
    return int(y.dropna().astype("string").str.strip().nunique())


@dataclass
class Prepared:
    """Everything the candidates share: rows, split, preprocessing, encoded target."""

    task: str
    frame: pd.DataFrame  # rows with a target, in dataset order
    pre: TabularPreprocessor
    target_enc: TargetEncoder
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    y: np.ndarray  # encoded target for every row of frame
    y_raw: np.ndarray  # float target (regression) or class codes (classification)
    dropped_missing_target: int
    warnings: list[str]


def prepare(store: Store, spec: RunSpec) -> Prepared:
    return _prepare(store, spec, load_frame(store, spec.data.dataset_id))


def _prepare(store: Store, spec: RunSpec, frame: "pd.DataFrame | StoredTable") -> Prepared:
    """``prepare`` on a table held whole or read from its Parquet copy a column at a time."""
    data = spec.data
    record = store.dataset(data.dataset_id)
    profile = tabular.profile_of(record)
    if data.target not in frame.columns:
        raise DataError(f"The dataset has no column {data.target!r}; pick the target among: "
                        f"{', '.join(map(repr, list(frame.columns)[:12]))}.")
    task = resolve_task(data.task, frame[data.target])
    warnings = tabular.check_target(frame, data.target, task)
    has_target = frame[data.target].notna() & (frame[data.target].astype("string").str.strip() != "")
    dropped = int((~has_target).sum())
    if dropped or not frame.index.equals(pd.RangeIndex(len(frame))):  # else as it is: a copy is its size again
        frame = _keep_rows(frame, has_target)
    if task == "regression":
        target = pd.to_numeric(frame[data.target], errors="coerce")
        frame = frame.assign(**{data.target: target})  # the other columns are not copied
        if target.isna().any():
            frame = _keep_rows(frame, target.notna())

    features = list(data.features) if data.features is not None else tabular.usable_features(profile, data.target)
    unknown = [c for c in features if c not in frame.columns]
    if unknown:
        raise DataError(f"The input column(s) {', '.join(map(repr, unknown))} are not in the dataset; "
                        "choose inputs among its columns.")
    if not features:
        raise DataError(
            "No usable input columns are left besides the target (identifiers, free text and constant "
            "columns are left out). Add columns that could explain the target."
        )
    warnings += personal_input_warnings(profile, features)
    kinds = {c.name: c.kind for c in profile.columns}
    numeric = [c for c in features if kinds.get(c) == "numeric"]
    dates = [c for c in features if kinds.get(c) == "datetime"]
    texts = [c for c in features if kinds.get(c) == "text"]
    categorical = [c for c in features if c not in numeric and c not in dates and c not in texts]

    target_enc = TargetEncoder(task)
    y_all = frame[data.target]
    if task == "regression":
        y_raw = y_all.to_numpy(dtype=np.float64)
    else:
        # Class codes are fixed from every row with a target, so a class seen only in test is known.
        y_raw = target_enc.fit(y_all).encode(y_all)
    train, val, test = split_indices(y_raw, task, data.test_share, data.validation_share, spec.train.seed)
    if task == "regression":
        target_enc.fit(y_all.iloc[train])  # scaling learned from training rows only
    y = target_enc.encode(y_all)
    pre = TabularPreprocessor(numeric, categorical, dates, text=texts).fit(frame, rows=train)
    return Prepared(task, frame, pre, target_enc, train, val, test, y, y_raw, dropped, warnings)


# Rows transformed at a time: the model matrix is filled block by block, so no second copy of
# the whole table's features is ever held (see ``prepare_inputs``).
CHUNK_ROWS = 100_000
# A model matrix at least this big (written out as float32) is kept compact: numbers and
# category codes, each row's one-hot written out only when a model reads the row
# (``dlcore.rows.RowMatrix``). A run with a search reads whole arrays and keeps the matrix.
COMPACT_BYTES = 64 * 1024 * 1024


def prepare_inputs(store: Store, run_id: str, spec: RunSpec, record: DatasetRecord, template: base.Template) -> base.Inputs:
    """The run's rows, split and preprocessed, as the generic run feeds them to every model.

    The matrix every model reads (one float32 array, shared by the deep model and the
    baselines) holds the training rows first, then validation, then test, each in the order of
    its split: asking for a split's rows gives a view of that block, never a copy, and the same
    rows in the same order as indexing the table by the split would. It is filled a block of
    the table's rows at a time, read from the Parquet copy as they are needed (the table is
    never held whole); a big one is kept compact (``COMPACT_BYTES``)."""
    prep = _prepare(store, spec, _open_table(store, spec.data.dataset_id))
    pre = prep.pre
    order = np.concatenate([prep.train, prep.val, prep.test])
    position = np.full(len(prep.frame), -1, dtype=np.int64)
    position[order] = np.arange(len(order))
    n, width = len(order), pre.n_numeric + sum(pre.cardinalities)
    keep_split = template.input_format == "split"  # numbers and codes apart, for embedding templates
    compact = (not pre.text and template.input_format in ("dense", "split") and spec.train.budget is None
               and n * width * 4 >= COMPACT_BYTES)
    small_codes = compact and not keep_split and max(pre.cardinalities, default=0) <= 256
    dense_all = None if compact else np.empty((n, width), dtype=np.float32)
    feat_numeric = np.empty((n, pre.n_numeric), dtype=np.float32) if compact or keep_split else None
    feat_codes = (np.empty((n, len(pre.categorical)), dtype=np.uint8 if small_codes else np.int32)
                  if compact or keep_split else None)
    feat_text = np.empty((n, len(pre.text)), dtype=object) if pre.text else None
    for start, block in _blocks(prep.frame, pre.columns, CHUNK_ROWS):
        part = pre.transform(block)
        where = position[start:start + len(block)]
        if dense_all is not None:
            dense_all[where] = pre.dense(part)
        if feat_numeric is not None:
            feat_numeric[where] = part.numeric
            feat_codes[where] = part.codes
        if feat_text is not None:
            feat_text[where] = part.text
    if template.input_format == "text" and not pre.text:
        raise DataError(f"The template {template.title!r} reads free text, and none of the chosen input columns "
                        "holds text; pick a table template (MLP), or add a text column.")
    n_train = len(prep.train)
    info = base.InputInfo(n_dense=width, n_numeric=pre.n_numeric,
                          cardinalities=tuple(pre.cardinalities), n_text=len(pre.text),
                          text_vocab=text.vocabularies(feat_text[:n_train]) if pre.text else ())
    matrix = RowMatrix(feat_numeric, feat_codes, pre.cardinalities) if compact else dense_all

    def where_of(rows: np.ndarray) -> slice | np.ndarray:
        """Where ``rows`` (the table's row numbers) lie in the arrays laid out by split: a slice
        for a block."""
        where = position[rows]
        if len(where) and where[0] >= 0 and where[-1] - where[0] + 1 == len(where) and bool((np.diff(where) == 1).all()):
            return slice(int(where[0]), int(where[-1]) + 1)
        return where

    def at(array: Any, rows: np.ndarray) -> Any:
        """``rows`` of an array laid out by split: a view for a block (a compact matrix stays compact)."""
        if array is None:
            return None
        if isinstance(array, RowMatrix):
            return array.rows(where_of(rows))
        return array[where_of(rows)]

    def deep_x(rows: np.ndarray) -> Any:
        return base.model_inputs(template, info, lambda: at(matrix, rows), at(feat_numeric, rows),
                                 at(feat_codes, rows), at(feat_text, rows))

    meta = {"kind": "tabular", "preprocessor": pre.to_dict(), "input_format": template.input_format,
            "input_info": {"n_dense": info.n_dense, "n_numeric": info.n_numeric,
                           "cardinalities": list(info.cardinalities)}}
    result = {"features": {"numeric": pre.numeric, "categorical": pre.categorical, "datetime": pre.datetime},
              "input_defaults": _input_defaults(prep.frame, prep.train, pre)}
    baseline_x: Any = lambda rows: at(matrix, rows)  # noqa: E731
    offer = None
    if pre.text:
        meta["input_info"]["n_text"] = info.n_text
        result["features"]["text"] = pre.text
        baseline_x = lambda rows: text.baseline_frame(at(dense_all, rows), at(feat_text, rows))  # noqa: E731
        offer = text.baselines_for(width, len(pre.text))
    n_rows = len(prep.frame)
    prep.frame = None  # type: ignore[assignment]  # every model reads the matrix from here on
    _release_table_memory()
    return base.Inputs(prep.task, prep.target_enc, prep.train, prep.val, prep.test, prep.y, prep.y_raw, info,
                       deep_x, baseline_x, meta, result, prep.dropped_missing_target,
                       prep.warnings, n_rows, baselines=offer)


class StoredTable:
    """A stored table read from its Parquet copy as it is needed: a column at a time
    (``table[name]``, the rows kept so far, numbered from 0) or a block of rows at a time
    (``_blocks``), with the types ``pandas.read_parquet`` gives; the table is never held whole.
    Stands in for the DataFrame in ``_prepare`` (the few things it asks of one)."""

    def __init__(self, path: Path, keep: np.ndarray | None = None, replaced: dict[str, pd.Series] | None = None) -> None:
        import pyarrow.parquet as pq

        self.path, self._keep, self._replaced = path, keep, dict(replaced or {})
        self._file = pq.ParquetFile(path)
        schema = self._file.schema_arrow
        stored_index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        self.columns = pd.Index([c for c in schema.names if c not in stored_index])
        self._rows = self._file.metadata.num_rows if keep is None else len(keep)
        self._last: tuple[str, pd.Series] | None = None  # the column read last (the target is asked for often)

    def __len__(self) -> int:
        return self._rows

    @property
    def index(self) -> pd.RangeIndex:
        return pd.RangeIndex(self._rows)

    def __getitem__(self, name: str) -> pd.Series:
        if name in self._replaced:
            return self._replaced[name]
        if self._last is None or self._last[0] != name:
            values = pd.read_parquet(self.path, columns=[name])[name]
            if self._keep is not None:
                values = values.iloc[self._keep].reset_index(drop=True)
            self._last = (name, values)
        return self._last[1]

    def keep(self, mask: pd.Series | np.ndarray) -> "StoredTable":
        """The rows where ``mask`` (over this table's rows) is true, numbered afresh from 0."""
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask) if self._keep is None else self._keep[mask]
        replaced = {k: v[mask].reset_index(drop=True) for k, v in self._replaced.items()}
        return StoredTable(self.path, rows, replaced)

    def assign(self, **columns: pd.Series) -> "StoredTable":
        return StoredTable(self.path, self._keep, {**self._replaced, **columns})

    def blocks(self, columns: list[str], size: int) -> Any:
        """(first row, DataFrame of ``columns``) for the kept rows, about ``size`` at a time, in order."""
        import pyarrow as pa

        read = [c for c in columns if c not in self._replaced]
        kept = None
        if self._keep is not None:
            kept = np.zeros(self._file.metadata.num_rows, dtype=bool)
            kept[self._keep] = True
        metadata = self._file.schema_arrow.metadata
        first = seen = 0
        for batch in self._file.iter_batches(batch_size=size, columns=read):
            part = pa.Table.from_batches([batch]).replace_schema_metadata(metadata).to_pandas()
            if kept is not None:
                part = part.loc[kept[seen:seen + len(part)]].reset_index(drop=True)
            seen += batch.num_rows
            for name, values in self._replaced.items():
                if name in columns:
                    part[name] = values.iloc[first:first + len(part)].to_numpy()
            yield first, part[list(columns)]
            first += len(part)


def _keep_rows(frame: "pd.DataFrame | StoredTable", mask: pd.Series) -> "pd.DataFrame | StoredTable":
    if isinstance(frame, StoredTable):
        return frame.keep(mask)
    return frame.loc[mask].reset_index(drop=True)


def _blocks(frame: "pd.DataFrame | StoredTable", columns: list[str], size: int) -> Any:
    """(first row, the rows' ``columns``) of a table, ``size`` rows at a time, in order."""
    if isinstance(frame, StoredTable):
        yield from frame.blocks(columns, size)
        return
    for start in range(0, len(frame), size):
        yield start, frame.iloc[start:start + size]


def _open_table(store: Store, dataset_id: str) -> "pd.DataFrame | StoredTable":
    """A stored table as ``load_frame`` gives it, but read from its Parquet copy only as needed
    (a table uploaded to this process and still being written is held already: that one)."""
    store.dataset(dataset_id)  # a clear NotFoundError first
    held = ready.fresh(dataset_id)
    if held is not None:
        return held
    ready.wait(store, dataset_id, rebuild_copy)
    return StoredTable(store.dataset_dir(dataset_id) / "data.parquet")


def _release_table_memory() -> None:
    """Hand back to the system what Arrow's memory pool kept of the table as it was read (its
    text columns live there): freed, the pool would hold it for the rest of the run."""
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
    release_freed_memory()


def _input_defaults(frame: pd.DataFrame, rows: np.ndarray, pre: TabularPreprocessor) -> dict[str, Any]:
    """A typical value per input column (median or most common) over the training ``rows``, for
    the what-if form; a column at a time, never a copy of the training rows whole."""
    out: dict[str, Any] = {}
    for col in pre.numeric:
        values = pd.to_numeric(frame[col].iloc[rows], errors="coerce")
        out[col] = {"kind": "numeric", "default": _num(values.median()), "min": _num(values.min()),
                    "max": _num(values.max())}
    for col in pre.datetime:
        stamp = pd.to_datetime(frame[col].iloc[rows], errors="coerce", format="mixed")
        out[col] = {"kind": "datetime", "default": str(stamp.median()) if stamp.notna().any() else None}
    for col in pre.categorical:
        out[col] = {"kind": "categorical", "default": pre.vocab_[col][0] if pre.vocab_[col] else None,
                    "choices": pre.vocab_[col]}
    for col in pre.text:
        out[col] = {"kind": "text", "default": ""}
    return out


def _num(value: Any) -> float | None:
    return float(value) if pd.notna(value) else None
