"""Match the columns of a file to score to the columns a model was trained on, when the file names
them differently (next month's export from another tool, another language, another habit).

``propose`` is pure: the model's columns (``expected_columns``: each one's kind, the training
rows' range and typical value, the categories the model knows) and the new file's rows give, for
each of the model's columns, a column of the file and the reason in words. A column is matched
automatically only when that is clear:

1. a column the analyst chose (on the Predict page, or ``--map`` in the command line);
2. the same name;
3. the matching saved with the run for a file with these column names (``save_mapping``);
4. the same name once case, accents, spaces, punctuation and units are set aside
   ("Bill length (mm)" and "bill_length_mm");
5. values of the same kind and range, or the same categories, where one column of the file
   fits clearly better than any other (the best assignment of file columns to model columns
   beats every assignment without that pair by a margin).

The last is a proposal for the analyst to confirm; the rest score without asking. A column
left unmatched is never scored blank on our suggestion: ``reliance`` says how much the model
relies on it, from its permutation importance when one was worked out.

>>> proposal = propose(expected_columns(run.result["features"], run.result["input_defaults"]), frame)
>>> proposal.mapping  # {"Espèce": "species", "Masse (g)": "body_mass_g", ...}
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cached_property
from typing import Any, Iterable

import numpy as np
import pandas as pd

from dlcore import formats
from dlcore.errors import SchemaError
from dlcore.store import Store, atomic_write
from dlcore.tables.preprocess import _as_category

__all__ = ["Expected", "Match", "Proposal", "Reliance", "Values", "expected_columns", "name_key", "fit", "propose",
           "parse_map", "check_map", "save_mapping", "load_mappings", "reliance", "unmatched_message", "matched_notes",
           "MAX_ROWS", "CLEAR"]

MAX_ROWS = 20_000  # rows of the file looked at (a seeded sample beyond this): enough to tell ranges apart
CLEAR = 0.5  # a value match needs at least this fit (0..1)...
MARGIN = 0.2  # ...and to beat the best assignment without it by this much
_FILE = "columns.json"
_KEEP = 20  # saved matchings kept per run (one per layout of file names)
_UNITS = {
    "g", "kg", "mg", "t", "lb", "lbs", "oz", "mm", "cm", "m", "km", "in", "ft", "mi", "ml", "l", "s", "sec", "secs",
    "ms", "min", "mins", "h", "hr", "hrs", "kw", "kwh", "w", "pct", "percent", "eur", "usd", "gbp", "chf", "jpy",
    "cad", "aud", "inr", "sek", "nok", "dkk", "pln",
}
_BRACKETS = re.compile(r"[(\[{][^)\]}]*[)\]}]")
_WORDS = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\s*[-+]?\d+(?:[.,]\d+)?\s*")


# ---- what the model expects ------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """One column a model was trained on, as the run saved it."""

    name: str
    kind: str  # "numeric", "datetime" or "categorical"
    low: float | None = None  # numbers: the training rows' range and median,
    high: float | None = None
    typical: float | None = None
    spread: float | None = None  # and standard deviation (from the dataset's profile, when known)
    choices: tuple[str, ...] = ()  # categories: the ones the model knows, most common first

    def describe(self) -> str:
        """What the column holds, in words: "numbers from 32.1 to 59.6"."""
        if self.kind == "numeric" and self.low is not None and self.high is not None:
            return f"numbers from {_num(self.low)} to {_num(self.high)}"
        if self.kind == "categorical" and self.choices:
            return "categories: " + _few(self.choices, 4)
        return {"numeric": "numbers", "datetime": "dates", "categorical": "categories",
                "text": "free text"}.get(self.kind, self.kind)


def expected_columns(features: dict[str, list[str]], defaults: dict[str, Any],
                     profile: dict[str, Any] | None = None) -> list[Expected]:
    """The model's columns in training order, from the run's ``result["features"]`` and
    ``result["input_defaults"]``, with each number's spread from the dataset's profile."""
    spreads = {c["name"]: (c.get("stats") or {}).get("std") for c in (profile or {}).get("columns", [])}
    out = []
    for kind, names in (("numeric", features.get("numeric", [])), ("datetime", features.get("datetime", [])),
                        ("categorical", features.get("categorical", [])), ("text", features.get("text", []))):
        for name in names:
            spec = defaults.get(name, {})
            out.append(Expected(name, kind, low=spec.get("min"), high=spec.get("max"), typical=spec.get("default"),
                                spread=spreads.get(name), choices=tuple(spec.get("choices") or ())))
    return out


# ---- names -----------------------------------------------------------------------------------
def name_key(name: str) -> str:
    """A column name with case, accents, spaces, punctuation and units set aside:
    "Masse (g)" -> "masse", "body_mass_g" -> "bodymass", "Bill Length [mm]" -> "billlength"."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    words = _WORDS.findall(_BRACKETS.sub(" ", text)) or _WORDS.findall(text)
    if len(words) > 1 and words[-1] in _UNITS:
        words = words[:-1]
    return "".join(words)


def _name_likeness(a: str, b: str) -> float:
    return SequenceMatcher(None, name_key(a), name_key(b)).ratio()


# ---- values ----------------------------------------------------------------------------------
class Values:
    """What one column of the file holds, worked out once and compared with every model column:
    its numbers (sorted), its categories (counted) and, when asked, whether it holds dates."""

    def __init__(self, values: pd.Series) -> None:
        self.values = values
        self.filled = int(values.notna().sum())
        self.numbers = _numbers(values, self.filled)
        if self.numbers is not None:
            self.median, self.std = float(np.median(self.numbers)), float(self.numbers.std())

    @cached_property
    def categories(self) -> dict[str, int]:
        """Its values as the model's categories are compared (trimmed text), counted on at most
        5,000 cells: enough to tell which categories a column holds."""
        filled = self.values.dropna()
        if len(filled) > 5_000:
            filled = filled.sample(5_000, random_state=0)
        return {str(k): int(v) for k, v in _as_category(filled).value_counts().items()}

    @cached_property
    def folded(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for value, count in self.categories.items():
            out[value.casefold()] = out.get(value.casefold(), 0) + count
        return out

    @cached_property
    def dates(self) -> bool:
        values = self.values
        if pd.api.types.is_datetime64_any_dtype(values):
            return True
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values) or not self.filled:
            return False
        sample = values.dropna().astype("string").head(2000)
        return bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().mean() >= 0.9)


def _numbers(values: pd.Series, filled: int) -> np.ndarray | None:
    """The column's finite numbers, sorted; None when under 90% of its filled cells are numbers."""
    if not filled or pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return None
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    else:
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy("float64", na_value=np.nan)
    numbers = np.sort(numbers[np.isfinite(numbers)])
    return numbers if len(numbers) and len(numbers) >= 0.9 * filled else None


def fit(expected: Expected, column: Values | pd.Series) -> tuple[float, str]:
    """How well a file's column fits a model's column by its values (0: not at all, 1: as in
    training), and why, in words."""
    found = column if isinstance(column, Values) else Values(column)
    if not found.filled:
        return 0.0, "it is empty"
    if expected.kind == "numeric":
        numbers = found.numbers
        if numbers is None or expected.low is None or expected.high is None:
            return 0.0, "it does not hold numbers"
        low, high = float(expected.low), float(expected.high)
        span = high - low if high > low else max(abs(high), 1.0) * 0.1
        first = np.searchsorted(numbers, low - 0.1 * span, side="left")
        last = np.searchsorted(numbers, high + 0.1 * span, side="right")
        inside = (last - first) / len(numbers)
        typical = float(expected.typical) if expected.typical is not None else (low + high) / 2
        spread = float(expected.spread) if expected.spread else span / 4
        centre = 1.0 / (1.0 + abs(found.median - typical) / spread)
        own = found.std
        scale = min(own / spread, spread / own) if own > 0 else 0.5
        why = (f"numbers from {_num(numbers[0])} to {_num(numbers[-1])}, where training had "
               f"{_num(low)} to {_num(high)}")
        return float(inside * centre * scale ** 0.5), why
    if expected.kind == "text":
        # Free text is matched by its name, or by the analyst: any column of words could hold it,
        # so a text column ranks high in the pick-list but is never proposed on its values alone.
        return (0.0, "it holds numbers") if found.numbers is not None else (min(0.45, CLEAR - 0.05), "text")
    if expected.kind == "categorical":
        if found.numbers is not None and not any(_NUMBER.fullmatch(c) for c in expected.choices[:20]):
            return 0.0, "it holds numbers"
        if not expected.choices or not found.categories:
            return 0.0, "none of the model's categories"
        total = float(sum(found.categories.values()))
        share = sum(found.categories.get(c, 0) for c in expected.choices) / total
        folded = set(c.casefold() for c in expected.choices)
        share = max(share, 0.9 * sum(found.folded.get(c, 0) for c in folded) / total)
        shared = [c for c in expected.choices if c.casefold() in found.folded]
        coverage = len(shared) / len(expected.choices)
        why = f"the same categories: {_few(shared, 3)}" if shared else "none of the model's categories"
        return share * (0.75 + 0.25 * coverage), why
    if found.dates:
        return 0.6, "dates"
    return 0.0, "it does not hold dates"


# ---- the proposal ----------------------------------------------------------------------------
@dataclass
class Match:
    """The file's column proposed for one of the model's columns."""

    column: str  # the model's
    source: str | None  # the file's; None: not matched (or, with how == "blank", scored as missing)
    how: str  # "chosen", "name", "saved", "similar name", "values", "blank", or "" when not matched
    reason: str
    candidates: list[str] = field(default_factory=list)  # the file's columns, best fit first
    fits: dict[str, float] = field(default_factory=dict)  # candidate -> how well its values fit (0..1)

    @property
    def settled(self) -> bool:
        """Scored as it is, without asking the analyst (a value match is only a proposal)."""
        return self.how in ("chosen", "name", "saved", "similar name", "blank")


@dataclass
class Proposal:
    """A column of the file (or none) for each of the model's columns, in the model's order."""

    matches: list[Match]

    @property
    def mapping(self) -> dict[str, str | None]:
        """Model column -> file column (None: scored as missing), for every matched column."""
        return {m.column: m.source for m in self.matches if m.source is not None or m.how == "blank"}

    @property
    def identical(self) -> bool:
        """Every column of the model is in the file under its own name: nothing to match."""
        return all(m.how == "name" for m in self.matches)

    @property
    def settled(self) -> bool:
        return all(m.settled for m in self.matches)

    @property
    def missing(self) -> list[str]:
        return [m.column for m in self.matches if m.source is None and m.how != "blank"]

    def match(self, column: str) -> Match:
        return next(m for m in self.matches if m.column == column)


def propose(expected: list[Expected], frame: pd.DataFrame, saved: Iterable[dict[str, Any]] = (),
            chosen: dict[str, str | None] | None = None) -> Proposal:
    """A column of ``frame`` for each of the model's columns, with the reason (see the module's
    docstring for the order). ``saved``: matchings saved with the run, newest first; ``chosen``:
    model column -> file column (None: scored as missing) that the analyst gave."""
    columns = [str(c) for c in frame.columns]
    by_name = {e.name: e for e in expected}
    found: dict[str, Match] = {}
    used: set[str] = set()

    def take(column: str, source: str | None, how: str, reason: str) -> None:
        found[column] = Match(column, source, how, reason)
        if source is not None:
            used.add(source)

    for column, source in (chosen or {}).items():
        if column in by_name:
            take(column, source, "chosen" if source is not None else "blank",
                 "chosen" if source is not None else "chosen to be scored as missing")
    for e in expected:
        if e.name not in found and e.name in columns:  # even when also chosen for another column
            take(e.name, e.name, "name", "the same name")
    layout = _saved_for(saved, columns)
    if layout is not None:
        when = time.strftime("%Y-%m-%d", time.localtime(layout.get("saved_at", 0)))
        for column, source in layout["columns"].items():
            if column in by_name and column not in found and (source is None or source not in used):
                take(column, source, "saved" if source is not None else "blank",
                     f"as matched for a file with these column names on {when}" if source is not None
                     else f"scored as missing, as chosen for a file with these column names on {when}")
    keys: dict[str, list[str]] = {}
    for c in columns:
        if c not in used:
            keys.setdefault(name_key(c), []).append(c)
    model_keys: dict[str, int] = {}
    for e in expected:
        model_keys[name_key(e.name)] = model_keys.get(name_key(e.name), 0) + 1
    for e in expected:
        key = name_key(e.name)
        same = keys.get(key, [])
        if e.name not in found and key and len(same) == 1 and model_keys[key] == 1 and same[0] not in used:
            take(e.name, same[0], "similar name", "the same name once case, accents, spaces and units are set aside")

    left = [e for e in expected if e.name not in found]
    free = [c for c in columns if c not in used]
    scores = np.zeros((len(left), len(free)))
    whys: dict[tuple[int, int], str] = {}
    rows = frame.sample(MAX_ROWS, random_state=0) if left and len(frame) > MAX_ROWS else frame
    held = {c: Values(rows[c]) for c in free} if left else {}
    for i, e in enumerate(left):
        for j, c in enumerate(free):
            scores[i, j], whys[i, j] = fit(e, held[c])
    for i, j in _clear_pairs(scores):
        take(left[i].name, free[j], "values", whys[i, j])
    for e in left:
        if e.name not in found:
            found[e.name] = Match(e.name, None, "", f"no column of the file clearly holds {e.describe()}")
    for i, e in enumerate(left):
        order = sorted(range(len(free)), key=lambda j: (-round(scores[i, j], 2), -_name_likeness(e.name, free[j])))
        found[e.name].candidates = [free[j] for j in order]
        found[e.name].fits = {free[j]: round(float(scores[i, j]), 3) for j in order}
    return Proposal([found[e.name] for e in expected])


def _clear_pairs(scores: np.ndarray) -> list[tuple[int, int]]:
    """The pairs of the best assignment that fit well and that every assignment without them
    does clearly worse than (so no other file column could as well be the one)."""
    if scores.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment  # only when values decide: pages load this module

    useful = np.where(scores >= CLEAR, scores, 0.0)

    def best(matrix: np.ndarray) -> tuple[float, list[tuple[int, int]]]:
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        return float(matrix[rows, cols].sum()), list(zip(rows.tolist(), cols.tolist(), strict=True))

    total, pairs = best(useful)
    clear = []
    for i, j in pairs:
        if useful[i, j] <= 0:
            continue
        without = useful.copy()
        without[i, j] = 0.0
        if total - best(without)[0] >= MARGIN:
            clear.append((i, j))
    return clear


# ---- matchings saved with the run --------------------------------------------------------------
def _saved_for(saved: Iterable[dict[str, Any]], columns: list[str]) -> dict[str, Any] | None:
    """The newest saved matching whose file columns are all in this file."""
    present = set(columns)
    for layout in saved:
        names = [s for s in layout.get("columns", {}).values() if s is not None]
        if names and set(names) <= present:
            return layout
    return None


def load_mappings(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The matchings saved with a run, newest first: ``{"columns": {model: file or None}, "saved_at"}``."""
    path = store.run_dir(run_id) / _FILE
    return json.loads(path.read_text())["mappings"] if path.exists() else []


def save_mapping(store: Store, run_id: str, mapping: dict[str, str | None]) -> None:
    """Keep a matching with the run, so the next file with these column names scores at once. It
    replaces one saved for the same file names."""
    names = sorted(s for s in mapping.values() if s is not None)
    kept = [m for m in load_mappings(store, run_id)
            if sorted(s for s in m["columns"].values() if s is not None) != names]
    layouts = [{"columns": dict(mapping), "saved_at": time.time()}, *kept][:_KEEP]
    with atomic_write(store.run_dir(run_id) / _FILE) as tmp:
        tmp.write_text(json.dumps({"mappings": layouts}, ensure_ascii=False, indent=1))


# ---- the command line's --map ------------------------------------------------------------------
def parse_map(texts: str | list[str]) -> list[tuple[str, str]]:
    """``'Espèce=species,Masse (g)=body_mass_g'`` -> pairs; a name holding a comma is quoted
    (``'"Revenue, net"=revenue'``); ``'Île='`` names a column to score as missing."""
    pairs = []
    for text in [texts] if isinstance(texts, str) else texts:
        for item in next(csv.reader(io.StringIO(text), skipinitialspace=True), []):
            if not item.strip():
                continue
            if "=" not in item:
                raise SchemaError(f"--map takes MODEL_COLUMN=FILE_COLUMN pairs separated by commas; {item!r} has "
                                  "no '='. Example: --map 'Espèce=species,Masse (g)=body_mass_g'.")
            left, right = item.split("=", 1)
            pairs.append((left.strip(), right.strip()))
    return pairs


def check_map(pairs: list[tuple[str, str]], model_columns: list[str], file_columns: list[str]) -> dict[str, str | None]:
    """``--map`` pairs as model column -> file column (None: scored as missing). Each pair names
    a column of the model and a column of the file, in either order."""
    model, present = set(model_columns), set(file_columns)
    out: dict[str, str | None] = {}
    for left, right in pairs:
        if left in model and (right in present or right == ""):
            out[left] = right or None
        elif right in model and left in present:
            out[right] = left
        elif left not in model and right not in model:
            raise SchemaError(f"--map names {left!r}={right!r}, but neither is a column the model was trained on "
                              f"({_few(model_columns, 12)}). Put the model's name first: MODEL_COLUMN=FILE_COLUMN.")
        else:
            raise SchemaError(f"--map matches {left if left in model else right!r} to "
                              f"{right if left in model else left!r}, which is not a column of the file "
                              f"({_few(file_columns, 12)}). Check the name (spaces and case count).")
    return out


# ---- how much a model relies on a column -------------------------------------------------------
@dataclass(frozen=True)
class Reliance:
    """How much a model relies on one column: ``important`` is None when not known (no explanation
    worked out yet); ``sentence`` says it before scoring (with what to do), ``after`` in the notes
    of a scoring that left the column blank."""

    important: bool | None
    sentence: str
    after: str


def reliance(explanation: dict[str, Any] | None, column: str, model_title: str) -> Reliance:
    """How much a model relies on ``column``, in words, from its permutation importance: a column
    whose shuffling clearly costs score (more than twice its spread) is one it relies on."""
    model = model_title[:1].upper() + model_title[1:]
    items = (explanation or {}).get("importance") or []
    item = next((d for d in items if d["feature"] == column), None)
    if item is None:
        return Reliance(None, f"How much {model_title} relies on {column!r} is not known yet (the Explain page works "
                              "it out): find the column in the file or add it, rather than score it blank.",
                        f"How much {model_title} relies on it is not known (the Explain page works it out).")
    metric = explanation.get("metric_title", "the score")
    mean, std = float(item["mean"]), float(item["std"])
    if mean > 2 * std and mean > 0:
        rank = 1 + sum(float(d["mean"]) > mean for d in items)
        place = "the most" if rank == 1 else f"the {_ordinal(rank)} most"
        fact = (f"shuffling it costs {formats.number(mean)} of {metric} (± {formats.number(std)}), {place} of its "
                f"{len(items)} columns")
        return Reliance(True, f"{model} relies on {column!r}: {fact}. Scored blank, its predictions would be worse: "
                              "find the column in the file or add it.",
                        f"{model} relies on it ({fact}): these predictions are less reliable than its test score says.")
    fact = f"shuffling it changes {metric} by {formats.number(mean)} (± {formats.number(std)})"
    return Reliance(False, f"{model} barely relies on {column!r}: {fact}, so scoring it blank (as missing) changes "
                           "its predictions little.",
                    f"{model} barely relies on it ({fact}).")


# ---- what the scoring says ---------------------------------------------------------------------
def unmatched_message(proposal: Proposal, relied: dict[str, Reliance]) -> str:
    """Why a file cannot be scored yet and what to do: the model's columns it lacks, the file's
    columns that look like them (to confirm), and, for a column nothing fits, how much the model
    relies on it. Scoring such a column blank is never the advice."""
    lacking = [m for m in proposal.matches if not m.settled]
    shown = ", ".join(repr(m.column) for m in lacking[:10]) + (" …" if len(lacking) > 10 else "")
    words = [f"The file lacks {len(lacking)} column(s) the model was trained on: {shown}."]
    proposed = [m for m in lacking if m.how == "values"]
    if proposed:
        shown = "; ".join(f"{m.source!r} for {m.column!r} ({m.reason})" for m in proposed[:10])
        words.append(f"Its columns seem to name them differently: {shown}{'; …' if len(proposed) > 10 else ''}.")
    for m in lacking:
        several = [c for c in m.candidates if m.fits.get(c, 0) >= CLEAR]
        if m.how == "" and len(several) > 1:
            words.append(f"{' and '.join(repr(c) for c in several[:3])} could each be {m.column!r}: choose one.")
    pairs = [(m.column, m.source if m.how == "values" else "FILE_COLUMN") for m in lacking]
    line = ",".join(f"{_quoted(a)}={_quoted(b)}" for a, b in pairs)
    words.append(f"Add them with their values, or match the file's columns to the model's on the Predict page, or "
                 f"in the command line with --map '{line}' (MODEL_COLUMN=FILE_COLUMN); the matching is kept with "
                 "the run, so the next file with these column names scores at once.")
    for m in lacking:
        if m.how != "values" and m.column in relied:
            words.append(relied[m.column].sentence)
    return " ".join(words)


def matched_notes(proposal: Proposal, relied: dict[str, Reliance], saved: bool) -> list[str]:
    """What a scoring says about the columns it matched: which file column stood for which of the
    model's, and how much the model relies on any scored blank."""
    renamed = [m for m in proposal.matches if m.source is not None and m.source != m.column]
    notes = []
    if renamed:
        pairs = ", ".join(f"{m.source!r} as {m.column!r}" for m in renamed[:8]) + (" …" if len(renamed) > 8 else "")
        kept = (" The matching is kept with the run: the next file with these column names scores the same way."
                if saved or any(m.how == "saved" for m in renamed) else "")
        notes.append(f"{len(renamed)} column(s) of the file have other names and were read as the model's: "
                     f"{pairs}.{kept}")
    for m in proposal.matches:
        if m.how == "blank":
            said = relied[m.column].after if m.column in relied else ""
            notes.append(f"{m.column!r} was scored as missing in every row, as chosen. {said}".strip())
    return notes


def _quoted(name: str) -> str:
    return f'"{name}"' if "," in name or '"' in name else name


# ---- words -----------------------------------------------------------------------------------
def _num(value: float) -> str:
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))  # years stay 2009
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:.3g}"


def _few(names: Iterable[Any], limit: int) -> str:
    names = list(names)
    shown = ", ".join(str(n) for n in names[:limit])
    return shown + (" …" if len(names) > limit else "")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
