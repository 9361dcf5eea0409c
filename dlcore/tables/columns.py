"""Type every column of a table as people write values: numbers with decimal commas, thousands
separators, currencies and percent signs; dates in the common formats, day-first European ones
too; text left as text. Shared by every format the reader takes, after the cells are read.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import DataError

_SEED = 0
_SAMPLE = 2000

# Number patterns are built from [0-9] and literal characters (no \d, \s, lookarounds) so
# that pandas can run them in pyarrow's RE2 engine instead of falling back to Python.
_SPACES = " \u00a0\u202f"
_CURRENCY_SYMBOLS = "$€£¥₹"
_CURRENCY_CODES = "usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk|pln"
_THOUSANDS = {".": ",'" + _SPACES, ",": ".'" + _SPACES}


def _number_pattern(decimal: str) -> str:
    """Regex for one number written the way people do: `$1,200.50`, `€ 3,50`, `(12)`, `12%`."""
    thou = "[" + _THOUSANDS[decimal] + "]"
    dec = re.escape(decimal)
    exp = "(?:[eE][-+]?[0-9]+)?" if decimal == "." else ""
    num = f"(?:[0-9]{{1,3}}(?:{thou}[0-9]{{3}})+|[0-9]+)(?:{dec}[0-9]*)?{exp}|{dec}[0-9]+{exp}"
    cur = f"(?:[{_CURRENCY_SYMBOLS}]|(?i:{_CURRENCY_CODES}))"
    sp = f"[{_SPACES}]*"
    return f"(?:[-+]?\\(?[-+]?(?:{cur}{sp})?[-+]?(?:{num})(?:{sp}{cur})?{sp}%?\\)?)"


_NUMBER_PATTERNS = {d: _number_pattern(d) for d in (".", ",")}
_NUMBER_RES = {d: re.compile(p) for d, p in _NUMBER_PATTERNS.items()}
_CODES_PATTERN = f"(?i:{_CURRENCY_CODES})"
_ID_NAME_RE = re.compile(
    r"(?i:^(?:id|key|uuid|guid|index|row_?id|row_?number|unnamed: ?[0-9]+)$"
    r"|(?:^|[_ .-])(?:id|key|uuid|guid)$|^id[_ .-])"
    r"|[a-z0-9]I[dD]$"
)



# ---- cleaning shared by all formats ---------------------------------------------------


def _unique_names(raw: list[Any]) -> tuple[list[str], set[str], list[tuple[str, str]]]:
    """Strip header names, name blank ones ``column_N`` and make duplicates ``name_2``."""
    cleaned = [" ".join(str(r).split()) if r is not None else "" for r in raw]
    taken = {c for c in cleaned if c}
    names: list[str] = []
    blanks: set[str] = set()
    renames: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, base in enumerate(cleaned):
        if not base:
            new = f"column_{i + 1}"
            while new in taken or new in seen:
                new += "_"
            blanks.add(new)
        elif base in seen:
            k = 2
            while f"{base}_{k}" in taken or f"{base}_{k}" in seen:
                k += 1
            new = f"{base}_{k}"
            renames.append((base, new))
        else:
            new = base
        seen.add(new)
        names.append(new)
    return names, blanks, renames


def _strip_text(s: pd.Series) -> pd.Series:
    """Cells without their surrounding spaces, an empty cell as missing. Only the distinct values
    are looked at first: a column with nothing to strip (most are) is kept as it is, which saves
    stripping every cell (1 s for 5 text columns of a million rows)."""
    distinct = pd.Series(s.unique(), dtype=s.dtype).dropna()
    trimmed = distinct.str.strip()
    if not bool((trimmed.ne(distinct) | trimmed.eq("")).any()):
        return s
    s = s.str.strip()
    return s.mask(s.eq(""))


def _tidy(
    df: pd.DataFrame,
    name: str,
    decimal: str,
    dayfirst: bool | None,
    blanks: set[str],
    renames: list[tuple[str, str]],
) -> tuple[pd.DataFrame, list[str], str | None]:
    """Strip text, drop empty rows/columns, and turn number/date text into real types."""
    notes: list[str] = []
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            # Mixed cells: Excel numbers next to text, bools with gaps, or a CSV column the
            # parser typed chunk by chunk. One text column lets the inference below decide.
            s = _as_text(s, decimal)
        if isinstance(s.dtype, pd.StringDtype):
            df[col] = _strip_text(s)
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            # Models need one clock; UTC keeps the order of events from any time zone.
            df[col] = s.dt.tz_convert(None)

    empty_rows = _all_missing_rows(df)
    n_empty = int(empty_rows.sum())
    if n_empty:
        df = df.loc[~empty_rows]
        # Blank rows turned whole-number columns into floats; give them back their type.
        for col in df.columns:
            s = df[col]
            if s.dtype == np.float64 and _whole(s):
                df[col] = s.astype("int64")
        notes.append(f"Removed {n_empty:,} blank row{'s' if n_empty != 1 else ''}.")
    # Only unnamed empty columns (a trailing delimiter, an empty header) go: a named column
    # that is empty is kept, so choosing it as the target says so plainly.
    empty_cols = [c for c in df.columns if c in blanks and df[c].count() == 0]
    if empty_cols and len(empty_cols) < df.shape[1]:
        df = df.drop(columns=empty_cols)
        shown = ", ".join(f"'{c}'" for c in empty_cols if c not in blanks)
        notes.append(
            f"Removed {len(empty_cols)} empty column{'s' if len(empty_cols) != 1 else ''}"
            + (f" ({shown})" if shown else " (from a trailing delimiter or an empty header)")
            + "."
        )
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise DataError(
            f"The file '{name}' has a header but no data rows. Add rows below the header "
            "and upload again."
        )
    named = [c for c in df.columns if c in blanks]
    if named:
        notes.append(
            f"Named {len(named)} column{'s' if len(named) != 1 else ''} that had no header: "
            + ", ".join(f"'{c}'" for c in named)
            + "."
        )
    for old, new in renames:
        if new in df.columns:
            notes.append(f"Renamed duplicate column '{old}' to '{new}'.")

    thousands: str | None = None
    for col in df.columns:
        if isinstance(df[col].dtype, pd.StringDtype):
            converted, col_notes, thou = _infer_text_column(df[col], col, decimal, dayfirst)
            if converted is not None:
                df[col] = converted
            notes += col_notes
            thousands = thousands or thou
    return df.reset_index(drop=True), notes, thousands


def _as_text(s: pd.Series, decimal: str = ".") -> pd.Series:
    """An object column (mixed numbers and text, bools with gaps) as one text column.

    Floats are written back with the file's decimal mark so they parse like their
    neighbours that stayed text.
    """
    values = [None if _missing(v) else _cell_text(v, decimal) for v in s.to_numpy(dtype=object)]
    return pd.Series(values, index=s.index, dtype="str")


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _all_missing_rows(df: pd.DataFrame) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for col in df.columns:
        mask &= df[col].isna().to_numpy()
        if not mask.any():
            break
    return mask


def _to_number(s: pd.Series, decimal: str) -> pd.Series:
    """Parse numbers written as text (`1.234,56`, `$1,200`, `12%`, `(5)`); NaN elsewhere."""
    valid = s.str.fullmatch(_NUMBER_PATTERNS[decimal]).fillna(False).astype(bool)
    t = s.where(valid).str.replace(_CODES_PATTERN, "", regex=True)
    t = t.str.replace(f"[{_CURRENCY_SYMBOLS}{_THOUSANDS[decimal]}%()]", "", regex=True)
    if decimal == ",":
        t = t.str.replace(",", ".", regex=False)
    values = pd.to_numeric(t, errors="coerce").astype("float64")
    negative = s.str.contains("(", regex=False).fillna(False).astype(bool) & valid
    percent = s.str.endswith("%").fillna(False).astype(bool) & valid
    values = values.mask(negative, -values.abs())
    return values.mask(percent, values / 100)


def _infer_text_column(
    s: pd.Series, name: str, decimal: str, dayfirst: bool | None
) -> tuple[pd.Series | None, list[str], str | None]:
    """Decide if a text column is really numbers or dates.

    Returns (the converted column or None to keep it as text, notes, thousands separator).
    """
    present = s.dropna()
    if present.empty:
        return None, [], None
    sample = _sample(present, _SAMPLE)
    if not sample.str.contains("[0-9]", regex=True).any():
        # Words with no digit ("north", "yes") are neither numbers nor dates: most text
        # columns of a big file are categories, and this skips the number and date patterns.
        return None, [], None
    # The cheap sample decides whether the whole column is worth a full conversion.
    style, parsed = decimal, _to_number(sample, decimal)
    if parsed.notna().mean() < 0.95:
        other = _to_number(sample, "," if decimal == "." else ".")
        if other.notna().mean() > parsed.notna().mean():
            style, parsed = ("," if decimal == "." else "."), other
    share = float(parsed.notna().mean())
    if share >= 0.9:
        numbers = _to_number(s, style)
        bad = s.notna() & numbers.isna()
        share = 1 - bad.sum() / len(present)
        if share >= 0.95:
            notes = _number_notes(s, bad, sample, name)
            if _whole(numbers) and not s.str.contains(_fraction_pattern(style)).any():
                # "1", "1.234" (thousands) or "$12" are whole numbers: keep them integers,
                # as the parser would have if nothing had needed cleaning.
                numbers = numbers.astype("int64")
            return numbers, notes, _thousands_seen(sample, style)
        example = s[bad].iloc[0]
    elif share >= 0.2:
        example = sample[parsed.isna()].iloc[0]
    else:
        dates, notes = _to_dates(s, sample, name, dayfirst)
        return dates, notes, None
    return (
        None,
        [
            f"Column '{name}' mixes numbers and words (for example '{example}'), so it was "
            "kept as text. If it should be numbers, fix or clear the values that are not."
        ],
        None,
    )


def _whole(numbers: pd.Series) -> bool:
    """No gaps and only whole numbers small enough to be exact as integers."""
    values = numbers.to_numpy()
    return bool(
        numbers.notna().all()
        and np.all(np.abs(values) < 2**53)
        and np.all(values == np.round(values))
    )


def _fraction_pattern(decimal: str) -> str:
    """Text that makes a number non-whole: a decimal mark between digits, an exponent, %."""
    dec = re.escape(decimal)
    return f"[0-9]{dec}|{dec}[0-9]|[0-9][eE][-+]?[0-9]|%"


def _sample(s: pd.Series, k: int) -> pd.Series:
    """About ``k`` rows drawn with a fixed seed, in their original order.

    Drawing positions with replacement is O(k); ``Series.sample`` shuffles all n rows.
    """
    if len(s) <= k:
        return s
    positions = np.unique(np.random.default_rng(_SEED).integers(0, len(s), k))
    return s.iloc[positions]


def _number_notes(s: pd.Series, bad: pd.Series, sample: pd.Series, name: str) -> list[str]:
    notes = []
    if sample.str.contains(f"[{_CURRENCY_SYMBOLS}]|{_CODES_PATTERN}", regex=True).any():
        notes.append(f"Removed currency signs from '{name}' and read it as numbers.")
    if sample.str.endswith("%").any():
        notes.append(f"Read the percentages in '{name}' as fractions (12% becomes 0.12).")
    n_bad = int(bad.sum())
    if n_bad:
        example = s[bad].iloc[0]
        notes.append(
            f"Column '{name}': {n_bad:,} value{'s' if n_bad != 1 else ''} that are not "
            f"numbers (for example '{example}') were left empty."
        )
    return notes


def _thousands_seen(sample: pd.Series, style: str) -> str | None:
    for sep in _THOUSANDS[style]:
        pattern = f"[0-9]{re.escape(sep)}[0-9]{{3}}(?:[^0-9]|$)"
        if sample.str.contains(pattern, regex=True).any():
            return sep
    return None


_ISO_DATE = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_YMD_SLASH = re.compile(r"[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}(?: [0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?")
_DMY = re.compile(
    r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})"
    # Group 5: an optional time, after a space or a "T".
    r"([ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?"
)


def _to_dates(
    s: pd.Series, sample: pd.Series, name: str, dayfirst: bool | None
) -> tuple[pd.Series | None, list[str]]:
    """Parse a text column as dates when the sample is mostly in one known layout.

    Returns (the dates, or None to keep the column as text, notes). ``dayfirst`` is the
    file's hint for dates like 01/02/2024 (True in a decimal-comma file); the data decide
    whenever a day above 12 shows which field is the day.
    """
    values = [str(v) for v in sample.tolist()]
    notes: list[str] = []
    kwargs: dict[str, Any]
    if _share(values, _ISO_DATE) >= 0.95:
        fast = _iso_dates_fast(s)
        if fast is not None:
            return fast, notes
        # utc=True accepts mixed offsets ("Z", "+02:00"); naive times keep their clock.
        kwargs = {"format": "ISO8601", "utc": True}
    elif _share(values, _YMD_SLASH) >= 0.95:
        kwargs = {"format": "mixed", "dayfirst": False}
    elif _share(values, _DMY) >= 0.95:
        parts = [m for v in values if (m := _DMY.fullmatch(v))]
        first = max(int(m.group(1)) for m in parts)
        second = max(int(m.group(3)) for m in parts)
        if first > 12 and second > 12:
            return None, []
        if first > 12 or second > 12:
            day_first = first > 12
        else:
            day_first = parts[0].group(2) == "." or bool(dayfirst)
            notes.append(
                f"The dates in '{name}' could be day/month or month/day; read them as "
                + ("day/month (European style)." if day_first else "month/day (US style).")
            )
        kwargs = {"format": _dmy_format(parts, day_first) or "mixed", "dayfirst": day_first}
        if kwargs["format"] != "mixed":
            del kwargs["dayfirst"]
    else:
        return None, []
    try:
        dates = pd.to_datetime(s, errors="coerce", **kwargs)
    except (ValueError, TypeError, OverflowError):
        return None, []
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_convert(None)
    present = int(s.notna().sum())
    bad = s.notna() & dates.isna()
    n_bad = int(bad.sum())
    if n_bad > 0.05 * present:
        return None, []
    if n_bad:
        notes.append(
            f"Column '{name}': {n_bad:,} value{'s' if n_bad != 1 else ''} that are not dates "
            f"(for example '{s[bad].iloc[0]}') were left empty."
        )
    return dates, notes


def _dmy_format(parts: list[re.Match[str]], day_first: bool) -> str | None:
    """One strptime format for all sampled dates, or None if they vary (pandas then guesses
    per value, which is slower)."""
    seps = {m.group(2) for m in parts}
    years = {len(m.group(4)) for m in parts}
    times = {
        ""
        if not m.group(5)
        else m.group(5)[0] + ("%H:%M:%S" if m.group(5).count(":") == 2 else "%H:%M")
        for m in parts
    }
    if len(seps) != 1 or len(years) != 1 or len(times) != 1:
        return None
    sep = seps.pop()
    day, month = ("%d", "%m") if day_first else ("%m", "%d")
    return f"{day}{sep}{month}{sep}{'%Y' if years == {4} else '%y'}{times.pop()}"


def _iso_dates_fast(s: pd.Series) -> pd.Series | None:
    """ISO dates through pyarrow's cast, about ten times faster than ``pd.to_datetime``.

    The cast refuses the whole column on any odd value (a typo, a time zone); ``None`` then
    sends the column to pandas, which can leave the odd values empty.
    """
    import pyarrow as pa

    try:
        stamps = pa.array(s, from_pandas=True).cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return pd.Series(stamps.to_numpy(zero_copy_only=False), index=s.index, name=s.name)


def _share(values: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for v in values if pattern.fullmatch(v)) / max(1, len(values))


def _cell_text(value: Any, decimal: str = ".") -> str:
    """Text of one cell used as a header or in a mixed column."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value).replace(".", decimal)
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)
