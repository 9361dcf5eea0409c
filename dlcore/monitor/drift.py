"""Does a scored file look like the training rows? Column by column, and the model's own answers.

``Reference.from_frame`` summarises the training rows once (bins, shares, a sample, the words
seen), small enough to keep as JSON beside the run; ``compare(reference, current)`` measures a
scored file against it and returns a ``DriftReport``: one plain sentence first, then per column
the statistics and the shares behind a chart (``dlcore.monitor.charts``).

A column drifts only when the change is both *large* and *not chance*: the population stability
index (PSI, an effect size; 0.2 is the usual "significant shift") must reach ``PSI_DRIFT`` and a
scipy test (Kolmogorov-Smirnov for numbers and text lengths, chi-square for categories) must give
``p < P_DRIFT``. The effect size keeps a million-row file from flagging every tiny difference as
significant; the test keeps a 50-row file's noisy PSI from crying wolf on a plain resample.

>>> import pandas as pd
>>> train = pd.DataFrame({"x": range(1000), "c": ["a", "b"] * 500})
>>> compare(Reference.from_frame(train), train.sample(300, random_state=1)).drifted_columns
[]
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dlcore.errors import DataError
from dlcore.formats import number

__all__ = ["PSI_DRIFT", "P_DRIFT", "SCHEMA_VERSION", "ColumnDrift", "DriftReport", "Reference", "compare", "psi"]

SCHEMA_VERSION = 1
PSI_DRIFT = 0.2  # population stability index from which a shift is "significant" (industry usage)
P_DRIFT = 0.001  # and the two-sample test must find it this unlikely under "same distribution"
MISSING_DRIFT = 0.10  # missing share up (or down) by at least 10 points, and significant
UNKNOWN_DRIFT = 0.10  # share of unknown words up by at least 10 points
N_BINS = 10
MAX_CATEGORIES = 200  # values kept per category column; beyond, the rest is "other"
SAMPLE = 5000  # values kept (reference) or drawn (current) for the two-sample tests
TEXT_ROWS = 20000  # rows of a text column read for lengths and words (a seeded sample of a big file)
MAX_VOCAB = 50000
_EPS = 1e-4
_WORD = re.compile(r"\w+", re.UNICODE)
KINDS = ("number", "date", "category", "text")


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins (smoothed, so an empty
    bin on one side counts as a big change, not an infinite one)."""
    e = np.clip(np.asarray(expected, dtype=float), _EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), _EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class ColumnDrift:
    """One column's (or the model's predictions') comparison with the training rows."""

    name: str
    kind: str  # number, date, category, text, prediction, confidence
    drifted: bool
    psi: float
    p_value: float | None
    words: str  # what changed, in the column's units: "2,000 higher on average (6,200 against 4,200)"
    labels: list[str]  # the bins or values behind the chart
    reference: list[float]  # share of training rows in each
    current: list[float]  # share of this file's rows in each
    missing_reference: float = 0.0
    missing_current: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["psi"] = _finite(self.psi)
        out["p_value"] = _finite(self.p_value)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ColumnDrift:
        raw = dict(raw)
        raw["psi"] = float(raw["psi"]) if raw.get("psi") is not None else math.nan
        return cls(**raw)


@dataclass
class DriftReport:
    """A scored file against the training rows: the sentence first, then every column."""

    columns: list[ColumnDrift]
    n_reference: int
    n_current: int
    schema_version: int = SCHEMA_VERSION

    @property
    def drifted(self) -> list[ColumnDrift]:
        """The columns that drifted, the biggest change first (predictions last)."""
        found = [c for c in self.columns if c.drifted]
        return sorted(found, key=lambda c: (c.kind in ("prediction", "confidence"), -c.psi))

    @property
    def drifted_columns(self) -> list[str]:
        """Names of the input columns that drifted (the model's own outputs are not inputs)."""
        return [c.name for c in self.drifted if c.kind not in ("prediction", "confidence")]

    @property
    def sentence(self) -> str:
        """One sentence in plain words, with figures: what differs, or that nothing does."""
        inputs = [c for c in self.drifted if c.kind not in ("prediction", "confidence")]
        outputs = [c for c in self.drifted if c.kind in ("prediction", "confidence")]
        checked = sum(1 for c in self.columns if c.kind not in ("prediction", "confidence"))
        if not inputs and not outputs:
            return (f"This file ({self.n_current:,} rows) looks like the training data: none of the {checked} "
                    "columns checked differs by more than chance.")
        parts = [f"{c.name} ({c.words})" for c in inputs[:4]]
        if len(inputs) > 4:
            parts.append(f"{len(inputs) - 4} more column(s)")
        text = f"This file differs from the training data in {_join(parts)}" if parts else ""
        if outputs:
            said = _join([c.words for c in outputs])
            text = (f"{text}, and the model answers differently ({said})" if text
                    else f"The model answers differently on this file than on its test rows ({said})")
        return text + ": the scores may be less reliable."

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "n_reference": self.n_reference, "n_current": self.n_current,
                "sentence": self.sentence, "drifted_columns": self.drifted_columns,
                "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriftReport:
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(f"This drift report has schema version {version!r}; this version of the app reads "
                            f"version {SCHEMA_VERSION}. Score the file again to get a new report.")
        return cls([ColumnDrift.from_dict(c) for c in raw["columns"]], int(raw["n_reference"]),
                   int(raw["n_current"]))


# ---- the training rows, summarised --------------------------------------------------------
@dataclass
class Reference:
    """What drift needs of the training rows, per column: kept as JSON (``to_dict``) with the run.

    ``columns[name]`` holds the kind, the missing share and, by kind: bin edges and shares with
    a sample (numbers, dates, text lengths), value shares (categories), the words seen (text).
    ``predictions`` holds the same for the model's outputs on its test rows, when given.
    """

    n_rows: int
    columns: dict[str, dict[str, Any]]
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, kinds: dict[str, str] | None = None,
                   predictions: Any = None, classes: list[str] | None = None) -> Reference:
        """Summarise ``frame`` (the training rows). ``kinds``: column -> number, date, category or
        text (default: numbers by dtype, the rest categories). ``predictions``: the model's output on
        its test rows (probabilities (n, k) with ``classes``, or values (n,)) for the output check."""
        if len(frame) == 0:
            raise DataError("The training rows are empty: there is nothing to compare a scored file with.")
        kinds = kinds or {c: ("number" if pd.api.types.is_numeric_dtype(frame[c]) else "category") for c in frame}
        columns = {}
        for name, kind in kinds.items():
            if kind not in KINDS:
                raise DataError(f"Unknown kind {kind!r} for column {name!r}; use one of {', '.join(KINDS)}.")
            if name in frame.columns:
                columns[name] = _summarise(frame[name], kind)
        ref = cls(len(frame), columns)
        if predictions is not None:
            ref.predictions = _summarise_outputs(np.asarray(predictions, dtype=float), classes)
        return ref

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "n_rows": self.n_rows, "columns": self.columns,
                "predictions": self.predictions}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Reference:
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise DataError(f"The saved training summary has schema version {raw.get('schema_version')!r}, "
                            f"not {SCHEMA_VERSION}; it is worked out again.")
        return cls(int(raw["n_rows"]), raw["columns"], raw.get("predictions") or {})


def _summarise(values: pd.Series, kind: str) -> dict[str, Any]:
    missing = _missing(values)
    out: dict[str, Any] = {"kind": kind, "missing": float(missing.mean())}
    present = values[~missing]
    if kind in ("number", "date"):
        x = _as_numbers(present, kind)
        out.update(_numeric_summary(x))
    elif kind == "category":
        text = present.astype("string").str.strip()
        counts = text.value_counts()
        top = counts.iloc[:MAX_CATEGORIES]
        total = max(1, int(counts.sum()))
        out["values"] = [str(v) for v in top.index]
        out["shares"] = [float(n / total) for n in top.to_numpy()]
        out["complete"] = len(counts) <= MAX_CATEGORIES  # every value kept: a value not here is new
    else:  # text: lengths in words, and the words seen
        sample = _rows_sample(present.astype("string"), TEXT_ROWS)
        tokens = [_WORD.findall(str(t).lower()) for t in sample]
        out.update(_numeric_summary(np.array([len(t) for t in tokens], dtype=float)))
        counts = Counter(w for t in tokens for w in t)
        # Words seen twice or more are "known"; the share of words seen once measures, on the
        # training rows themselves, what "unknown" means for this vocabulary.
        known = [w for w, n in counts.most_common(MAX_VOCAB) if n >= 2]
        n_words = max(1, sum(counts.values()))
        out["vocab"] = known
        out["unknown"] = float(sum(n for w, n in counts.items() if n < 2) / n_words)
    return out


def _numeric_summary(x: np.ndarray) -> dict[str, Any]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"edges": [], "shares": [], "sample": [], "mean": None, "std": None}
    edges = np.unique(np.quantile(x, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    shares = _bin_shares(x, edges)
    rng = np.random.default_rng(0)
    sample = x if x.size <= SAMPLE else rng.choice(x, SAMPLE, replace=False)
    return {"edges": edges.tolist(), "shares": shares.tolist(), "sample": sample.tolist(), "mean": float(x.mean()),
            "std": float(x.std()), "median": float(np.median(x))}


def _summarise_outputs(out: np.ndarray, classes: list[str] | None) -> dict[str, dict[str, Any]]:
    if out.ndim == 2 and classes:
        labels = np.asarray(classes, dtype=object)[out.argmax(axis=1)]
        return {"prediction": _summarise(pd.Series(labels), "category"),
                "confidence": _summarise(pd.Series(out.max(axis=1)), "number")}
    return {"prediction": _summarise(pd.Series(out.reshape(-1)), "number")}


# ---- comparing ----------------------------------------------------------------------------
def compare(reference: Reference | pd.DataFrame, current: pd.DataFrame, *, kinds: dict[str, str] | None = None,
            predictions: Any = None, classes: list[str] | None = None) -> DriftReport:
    """``current`` (a scored file's input columns) against the training rows.

    ``reference``: a ``Reference``, or the training rows themselves (summarised here with
    ``kinds``). ``predictions``: the model's output on ``current`` (as for ``Reference.from_frame``),
    compared with its output on the test rows when the reference holds those."""
    if isinstance(reference, pd.DataFrame):
        reference = Reference.from_frame(reference, kinds)
    if len(current) == 0:
        raise DataError("The scored file has no rows: there is nothing to compare with the training data.")
    columns = []
    for name, ref in reference.columns.items():
        if name not in current.columns:
            continue
        columns.append(_compare_column(name, ref, current[name]))
    if predictions is not None and reference.predictions:
        out = np.asarray(predictions, dtype=float)
        if out.ndim == 2 and classes:
            answers = {"prediction": pd.Series(pd.Categorical.from_codes(out.argmax(axis=1), categories=list(classes))),
                       "confidence": pd.Series(out.max(axis=1))}
        else:
            answers = {"prediction": pd.Series(out.reshape(-1))}
        for name, values in answers.items():
            ref = reference.predictions.get(name)
            if ref is None:
                continue
            found = _compare_column(name, ref, values)
            found.kind = name
            found.words = _output_words(name, found)
            columns.append(found)
    return DriftReport(columns, reference.n_rows, len(current))


def _compare_column(name: str, ref: dict[str, Any], values: pd.Series) -> ColumnDrift:
    kind = ref["kind"]
    miss_ref = float(ref["missing"])
    if kind == "category":  # counted first: cleaning the few distinct values, not a million cells
        counts = _value_counts(values)
        blank = counts.pop("", 0) if "" in counts.index else 0
        miss_now = float(blank / max(1, len(values)))
        found = _compare_categories(name, ref, counts)
    else:
        missing = _missing(values)
        miss_now = float(missing.mean())
        present = values[~missing]
        if kind in ("number", "date"):
            found = _compare_numbers(name, kind, ref, _as_numbers(present, kind))
        else:
            found = _compare_text(name, ref, present.astype("string"))
    found.missing_reference, found.missing_current = miss_ref, miss_now
    if not found.drifted and _missing_shifted(miss_ref, miss_now, len(values), ref):
        found.drifted = True
        found.words = f"missing in {_pct(miss_now)} of rows against {_pct(miss_ref)} in training"
    return found


def _compare_numbers(name: str, kind: str, ref: dict[str, Any], x: np.ndarray) -> ColumnDrift:
    x = x[np.isfinite(x)]
    edges = np.asarray(ref["edges"], dtype=float)
    labels = _bin_labels(edges, kind)
    if x.size == 0 or ref.get("mean") is None:
        return ColumnDrift(name, kind, False, 0.0, None, "no values to compare", labels, ref["shares"],
                           [0.0] * len(ref["shares"]))
    shares = _bin_shares(x, edges)
    index = psi(np.asarray(ref["shares"]), shares)
    sample = _draw(x, SAMPLE)
    with warnings.catch_warnings():  # scipy notes when it switches to the asymptotic p-value: expected here
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ks_2samp(np.asarray(ref["sample"], dtype=float), sample).pvalue)
    drifted = index >= PSI_DRIFT and p < P_DRIFT
    mean, ref_mean, ref_std = float(x.mean()), float(ref["mean"]), float(ref["std"] or 0.0)
    details = {"mean_reference": ref_mean, "mean_current": mean, "std_reference": ref_std, "std_current": float(x.std())}
    return ColumnDrift(name, kind, drifted, index, p, _number_words(kind, details, index), labels,
                       list(ref["shares"]), shares.tolist(), details=details)


def _number_words(kind: str, d: dict[str, float], index: float) -> str:
    shift, spread = d["mean_current"] - d["mean_reference"], d["std_reference"]
    if kind == "date":
        days = shift
        return f"{number(abs(days))} days {'later' if days > 0 else 'earlier'} on average"
    if spread == 0 or abs(shift) >= 0.25 * spread:
        return (f"{number(abs(shift))} {'higher' if shift > 0 else 'lower'} on average: "
                f"{number(d['mean_current'])} against {number(d['mean_reference'])}")
    if d["std_current"] == 0:
        return f"every value is {number(d['mean_current'])}, where the training rows varied"
    ratio = d["std_current"] / spread if spread else math.inf
    if ratio >= 1.5 or ratio <= 1 / 1.5:
        return (f"spread {number(ratio)} times as wide" if ratio > 1
                else f"spread {number(1 / ratio)} times narrower")
    return f"its values are spread differently (stability index {index:.2f})"


def _value_counts(values: pd.Series) -> pd.Series:
    """Rows per value, the values as trimmed text; missing and blank cells counted under ""."""
    raw = values.value_counts(dropna=False)
    raw = raw[raw > 0]  # a categorical's values that no row has
    keys = pd.Series(raw.index, dtype=object)
    text = keys.astype("string").str.strip().fillna("")
    return pd.Series(raw.to_numpy(), index=text.to_numpy()).groupby(level=0, sort=False).sum().sort_values(
        ascending=False, kind="stable")


def _compare_categories(name: str, ref: dict[str, Any], counts: pd.Series) -> ColumnDrift:
    n = max(1, int(counts.sum()))
    known = list(ref["values"])
    ref_shares = np.asarray(ref["shares"], dtype=float)
    now = np.array([counts.get(v, 0) for v in known], dtype=float)
    other_ref = max(0.0, 1.0 - ref_shares.sum())
    seen = set(known)
    new = counts[[v not in seen for v in counts.index]]
    labels = [*known, "(new values)" if ref["complete"] else "(other values)"]
    ref_all = np.append(ref_shares, other_ref)
    now_all = np.append(now, float(new.sum())) / n
    index = psi(ref_all, now_all)
    p = _chi_square(ref_all, now_all * n)
    drifted = index >= PSI_DRIFT and p < P_DRIFT
    words = _category_words(ref, known, ref_shares, now / n, new, n)
    shown = _top_labels(labels, ref_all, now_all)
    return ColumnDrift(name, "category", drifted, index, p, words, [labels[i] for i in shown],
                       [float(ref_all[i]) for i in shown], [float(now_all[i]) for i in shown],
                       details={"new_values": {str(k): int(v) for k, v in new.iloc[:20].items()} if ref["complete"] else {},
                                "vanished_values": [v for v, s, c in zip(known, ref_shares, now)
                                                    if c == 0 and s * n >= 5]})


def _category_words(ref: dict[str, Any], known: list[str], ref_shares: np.ndarray, now: np.ndarray,
                    new: pd.Series, n: int) -> str:
    if ref["complete"] and len(new) and new.sum() / n >= 0.01:
        top, share = str(new.index[0]), new.iloc[0] / n
        more = f" and {len(new) - 1} other new value(s)" if len(new) > 1 else ""
        return f"a new value {top!r} in {_pct(share)} of rows{more}"
    gone = [(v, s) for v, s, c in zip(known, ref_shares, now) if c == 0 and s * n >= 5]
    if gone:
        v, s = max(gone, key=lambda t: t[1])
        return f"no {v!r} at all, against {_pct(s)} of training rows"
    if not len(known):
        return "no values seen in training"
    j = int(np.argmax(np.abs(now - ref_shares)))
    return f"{known[j]!r} in {_pct(now[j])} of rows against {_pct(ref_shares[j])} in training"


def _compare_text(name: str, ref: dict[str, Any], text: pd.Series) -> ColumnDrift:
    sample = _rows_sample(text, TEXT_ROWS)
    tokens = [_WORD.findall(str(t).lower()) for t in sample]
    lengths = np.array([len(t) for t in tokens], dtype=float)
    found = _compare_numbers(name, "number", ref, lengths)
    vocab = set(ref.get("vocab") or [])
    n_words = sum(len(t) for t in tokens)
    unknown = sum(1 for t in tokens for w in t if w not in vocab) / n_words if n_words else 0.0
    ref_unknown = float(ref.get("unknown") or 0.0)
    found.kind = "text"
    found.details.update(unknown_reference=ref_unknown, unknown_current=unknown)
    if found.drifted:
        d = found.details
        ratio = d["mean_current"] / d["mean_reference"] if d["mean_reference"] else math.inf
        found.words = (f"texts of {number(d['mean_current'])} words on average against {number(d['mean_reference'])}"
                       + (f" ({number(ratio)} times as long)" if ratio >= 1.5 else ""))
    if unknown - ref_unknown >= UNKNOWN_DRIFT and n_words >= 50:
        found.drifted = True
        found.words = f"{_pct(unknown)} of words never seen in training, against {_pct(ref_unknown)} there"
    found.labels = [f"{lab} words" for lab in found.labels]
    return found


def _output_words(name: str, c: ColumnDrift) -> str:
    if name == "confidence":
        d = c.details
        return (f"confidence {_pct(d['mean_current'])} on average against {_pct(d['mean_reference'])} "
                "on the test rows")
    if c.kind == "prediction" and c.details.get("mean_current") is not None:
        d = c.details
        return f"predictions {number(d['mean_current'])} on average against {number(d['mean_reference'])}"
    j = int(np.argmax(np.abs(np.asarray(c.current) - np.asarray(c.reference))))
    return f"{c.labels[j]!r} predicted for {_pct(c.current[j])} of rows against {_pct(c.reference[j])}"


# ---- small helpers ------------------------------------------------------------------------
def _missing(values: pd.Series) -> pd.Series:
    missing = values.isna()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        missing = missing | (values.astype("string").str.strip() == "").fillna(True)
    return missing.astype(bool)


def _as_numbers(values: pd.Series, kind: str) -> np.ndarray:
    if kind == "date":
        when = pd.Series(pd.to_datetime(values, errors="coerce", utc=True), index=values.index)
        days = (when - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0
        return days.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _bin_shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1).astype(float)
    return counts / max(1.0, counts.sum())


def _bin_labels(edges: np.ndarray, kind: str) -> list[str]:
    if kind == "date":
        shown = [str((pd.Timestamp("1970-01-01") + pd.Timedelta(days=float(e))).date()) for e in edges]
    else:
        shown = [number(e) for e in edges]
    if not shown:
        return ["all"]
    return [f"< {shown[0]}", *(f"{a} – {b}" for a, b in itertools.pairwise(shown)), f"≥ {shown[-1]}"]


def _draw(x: np.ndarray, n: int) -> np.ndarray:
    return x if x.size <= n else np.random.default_rng(0).choice(x, n, replace=False)


def _rows_sample(values: pd.Series, n: int) -> pd.Series:
    return values if len(values) <= n else values.sample(n, random_state=0)


def _chi_square(ref_shares: np.ndarray, observed: np.ndarray) -> float:
    """Chi-square goodness of fit of the observed counts to the training shares; cells expected
    under five rows are pooled (the test's usual condition)."""
    n = observed.sum()
    expected = np.clip(ref_shares, _EPS, None)
    expected = expected / expected.sum() * n
    small = expected < 5
    if small.any():
        expected = np.append(expected[~small], expected[small].sum())
        observed = np.append(observed[~small], observed[small].sum())
    if len(expected) < 2 or n == 0:
        return 1.0
    return float(stats.chisquare(observed, expected).pvalue)


def _missing_shifted(ref: float, now: float, n: int, summary: dict[str, Any]) -> bool:
    if abs(now - ref) < MISSING_DRIFT or n < 20:
        return False
    pooled = (ref + now) / 2
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n + 1 / max(1, _n_of(summary))))
    return 2 * stats.norm.sf(abs(now - ref) / se) < P_DRIFT


def _n_of(summary: dict[str, Any]) -> int:
    return len(summary.get("sample") or []) or 1000


def _top_labels(labels: list[str], ref: np.ndarray, now: np.ndarray, top: int = 12) -> list[int]:
    """The values a chart shows: the most common on either side, and the catch-all bucket."""
    order = np.argsort(-(np.maximum(ref, now)))
    keep = sorted(int(i) for i in order[:top])
    last = len(labels) - 1
    if last not in keep and (ref[last] > 0 or now[last] > 0):
        keep.append(last)
    return keep


def _pct(share: float) -> str:
    share = float(share)
    return f"{share * 100:.0f}%" if share >= 0.1 or share == 0 else f"{share * 100:.1f}%"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)
