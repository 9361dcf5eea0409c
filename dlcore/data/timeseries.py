"""Time series: read a time column, infer its frequency, find and fix gaps and duplicates.

An analyst's series arrives as a table from ``read_table``: a time column (ISO dates,
European ``31.12.2024``, US ``12/31/2024``, ``Jan 2024``, ``2024-W05``, plain years...), one
or more value columns and, for several series in one file, an id column. This module turns
that into one row per regular step per series, and says in plain words what it found and
what it changed. It also suggests forecasting settings from the frequency and ships sample
series that load from installed packages (no network).

Every problem the analyst can fix is raised as ``DataError`` (``SpecError`` for a setting
outside the allowed values), with a message that names the problem and the fix.

Example::

    times, note = parse_times(df["date"])
    report = check_series(df, "date", "sales")           # report.notes, report.gaps ...
    clean, notes = regularise(df, "date", "sales", duplicates="sum", gaps="zero")
    settings = suggest_settings(report.frequency, report.n_steps)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from dlcore.errors import DataError, SpecError

__all__ = [
    "DUPLICATE_FIXES",
    "GAP_FIXES",
    "MIN_TRAIN_WINDOWS",
    "SERIES_SAMPLES",
    "Frequency",
    "SeriesReport",
    "SeriesSample",
    "Settings",
    "check_series",
    "check_settings",
    "frequency_for",
    "id_columns",
    "infer_frequency",
    "load_series_sample",
    "looks_like_id",
    "needed_steps",
    "overview",
    "parse_times",
    "regularise",
    "series_sample_csv_bytes",
    "suggest_settings",
    "time_columns",
]

DUPLICATE_FIXES = ("mean", "sum", "last")
GAP_FIXES = ("interpolate", "ffill", "zero")
# The earliest backtest origin must leave at least this many (look-back, horizon) training
# examples; fewer and no model, not even ridge regression, has anything to learn from.
MIN_TRAIN_WINDOWS = 10

_N_EXAMPLES = 3
_MIN_SHARE_PARSED = 0.95  # time_columns: share of cells that must read as times
_MIN_SHARE_REGULAR = 0.9  # infer_frequency: share of steps that must fit the grid
_DAY = pd.Timedelta(days=1)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAY_CODES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_TIME_NAME_RE = re.compile(
    r"(?i)date|time|year|month|week|day|period|quarter|^ds$|^dt$|stamp"
    r"|datum|zeit|jahr|monat|fecha|año|mes|jour|mois|ann[eé]e|periode"
)

# --------------------------------------------------------------------------------------
# Parsing times
# --------------------------------------------------------------------------------------

# Month names an analyst's export may hold: English, German, French and Spanish, full and
# abbreviated, matched lower-case without a trailing dot. Only unambiguous words are here
# (French "jui" could be June or July, so only "juin" and "juil" are).
_MONTHS: dict[str, int] = {}
for _number, _words in enumerate(
    (
        "jan january januar janv janvier ene enero gen gennaio",
        "feb february februar fev fevr févr fevrier février febrero febbraio",
        "mar march mär märz maerz mrz mars marzo",
        "apr april avr avril abr abril aprile",
        "may mai mayo mag maggio",
        "jun june juni juin junio giu giugno",
        "jul july juli juil juillet julio lug luglio",
        "aug august aout août ago agosto",
        "sep sept september septembre septiembre setiembre set settembre",
        "oct october okt oktober octobre octubre ott ottobre",
        "nov november novembre noviembre",
        "dec december dez dezember déc décembre dic diciembre dicembre",
    ),
    start=1,
):
    _MONTHS.update(dict.fromkeys(_words.split(), _number))

_TIME = (
    r"(?:(?:T|\s+)(?P<hour>\d{1,2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?)?"
)
_TZ = r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
_MONTH_WORD = r"(?P<mon>[^\W\d_]{3,9})\.?"

# (kind, pattern); the first layout that matches a value reads it. Kinds name how the
# matched groups become a date (see _assemble) and the note the analyst gets.
_LAYOUTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            "iso",
            r"(?P<year>\d{4})(?P<sep>[-/.])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})"
            + _TIME
            + _TZ,
        ),
        (
            "dmy",
            r"(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})"
            + _TIME
            + _TZ,
        ),
        ("week", r"(?P<year>\d{4})[- ]?[Ww](?P<week>\d{1,2})(?:-?(?P<wday>[1-7]))?"),
        ("quarter", r"(?P<year>\d{4})[- ]?[Qq](?P<q>[1-4])"),
        ("quarter", r"[Qq](?P<q>[1-4])[- /]?(?P<year>\d{4})"),
        ("month", r"(?P<year>\d{4})[-/.](?P<month>\d{1,2})"),
        ("month", r"(?P<month>\d{1,2})[-/.](?P<year>\d{4})"),
        (
            "named",
            r"(?:(?P<day>\d{1,2})\.?[ \-/]*)?" + _MONTH_WORD + r"[ \-/,.]*(?P<year>\d{4}|\d{2})",
        ),
        ("named", _MONTH_WORD + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})"),
        ("named", r"(?P<year>\d{4})[ \-/]*" + _MONTH_WORD),
        ("iso", r"(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})"),
        ("year", r"(?P<year>\d{4})(?:\.0+)?"),
    )
)
_KIND_NOTES = {
    "week": "Read weeks like '2024-W05' as the Monday that starts each week.",
    "quarter": "Read quarters like '2024-Q1' as the first day of each quarter.",
    "month": "Read months like '2024-01' as the first day of each month.",
    "year": "Read years like '2024' as 1 January of each year.",
}


@dataclass
class _Parsed:
    """Times read from distinct text values: ``wall`` (clock time as written, NaT where
    unreadable) and ``offset`` (minutes east of UTC where the value named a zone, else nan)."""

    wall: pd.DatetimeIndex
    offset: np.ndarray
    notes: list[str]


def parse_times(values: pd.Series, dayfirst: bool | None = None) -> tuple[pd.Series, str]:
    """Read a time column in the formats analysts have; return (datetimes, a plain note).

    Accepts datetime columns as they are, whole-number years (``1749``) and ``YYYYMMDD``
    numbers, and text: ISO dates and datetimes, ``31/12/2024``, ``31.12.2024``,
    ``12/31/2024`` (with an optional time and AM/PM), ``2024-01``, ``Jan 2024``,
    ``12 März 2024``, ``2024-W05``, ``2024-Q1``. Whether ``01/02/2024`` is day/month or
    month/day is decided by the data (any first field above 12 means day first); when every
    date could be read both ways, ``dayfirst`` decides, and without it dates with dots or
    dashes are read day-first (European) and with slashes month-first (US). The note says
    which was chosen. Time zones are dropped (see the note). Missing cells stay NaT.

    Raises ``DataError`` naming how many cells could not be read, with examples.

    Example::

        times, note = parse_times(pd.Series(["31.12.2024", "01.01.2025"], name="Datum"))
        # note: "Read 'Datum' as day.month.year (European), because of dates like '31.12.2024'."
    """
    name = "time" if values.name is None else str(values.name)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        wall = values.dt.tz_localize(None)
        utc = values.dt.tz_convert(None)
        return _drop_zone(wall, utc, name, str(values.dt.tz))
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.copy(), ""
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DataError(
            f"Column '{name}' holds yes/no values, not times. Pick the column that holds the dates."
        )
    if pd.api.types.is_numeric_dtype(values.dtype):
        return _numbers_as_times(values, name)

    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    present = text.dropna()
    if present.empty:
        raise DataError(f"Column '{name}' is empty. Pick the column that holds the dates.")
    uniq = pd.unique(present.to_numpy(dtype=object))
    parsed = _parse_text(np.asarray(uniq, dtype=object), name, dayfirst)
    bad = parsed.wall.isna()
    if bad.any():
        n_bad = int(present.isin(set(uniq[bad])).sum())
        examples = ", ".join(f"'{v}'" for v in uniq[bad][:_N_EXAMPLES])
        if n_bad == len(present):
            raise DataError(
                f"Column '{name}' does not look like dates or times (for example {examples}). "
                "Pick the column that holds the dates."
            )
        raise DataError(
            f"{n_bad:,} of {len(present):,} values in '{name}' could not be read as dates or "
            f"times, for example {examples}. Correct them (write dates like 2024-12-31 or "
            "31/12/2024) or delete those rows, and upload the file again."
        )
    notes = list(parsed.notes)
    times = parsed.wall
    if not np.isnan(parsed.offset).all():
        utc = parsed.wall - pd.to_timedelta(np.nan_to_num(parsed.offset), unit="min")
        as_series, note = _drop_zone(pd.Series(parsed.wall), pd.Series(utc), name, None)
        times = pd.DatetimeIndex(as_series)
        notes.append(note)
    lookup = pd.Series(times, index=pd.Index(uniq, dtype=object))
    out = pd.Series(
        lookup.reindex(text.to_numpy(dtype=object)).to_numpy(), index=values.index, name=values.name
    )
    n_missing = int(text.isna().sum())
    if n_missing:
        notes.append(
            f"{n_missing:,} row{'s' if n_missing != 1 else ''} of '{name}' have no time and "
            "are left out."
        )
    return out, " ".join(notes)


def _drop_zone(
    wall: pd.Series, utc: pd.Series, name: str, zone: str | None
) -> tuple[pd.Series, str]:
    """Keep clock times as written unless mixed UTC offsets (daylight saving) would make the
    steps uneven; then use UTC. Either way the result has no time zone."""
    offsets = (wall - utc).dropna().unique()
    if zone is None and len(offsets) == 1:
        minutes = int(pd.Timedelta(offsets[0]).total_seconds() // 60)
        zone = f"UTC{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    where = f" ({zone})" if zone else ""
    if len(offsets) <= 1:
        return (
            wall,
            f"The times in '{name}' carry a time zone{where}; it was dropped and the clock times kept as written.",
        )
    clock = (wall - wall.dt.normalize()).dropna().unique()
    if len(clock) <= 1:
        return wall, (
            f"The times in '{name}' carry a time zone{where} that changes with daylight saving; "
            "it was dropped and the dates kept as written."
        )
    return utc, (
        f"The times in '{name}' carry a time zone{where} that changes with daylight saving; "
        "they were converted to UTC so the steps stay even, and the zone dropped."
    )


def _numbers_as_times(values: pd.Series, name: str) -> tuple[pd.Series, str]:
    present = values.dropna().astype("float64")
    if present.empty:
        raise DataError(f"Column '{name}' is empty. Pick the column that holds the dates.")
    whole = bool(np.all(present == np.round(present)))
    example = present.iloc[0]
    example_text = f"{example:.0f}" if whole else f"{example:g}"
    if whole and present.between(1000, 2999).all():
        years = values.astype("float64")
        out = pd.to_datetime(
            pd.DataFrame({"year": years, "month": 1, "day": 1}), errors="coerce"
        ).rename(values.name)
        return (
            out,
            f"Read '{name}' as years ({present.min():.0f} to {present.max():.0f}), each dated 1 January.",
        )
    if whole and present.between(1000_01_01, 2999_12_31).all():
        digits = values.astype("Int64").astype("string")
        out = pd.to_datetime(digits, format="%Y%m%d", errors="coerce").rename(values.name)
        bad = values.notna() & out.isna()
        if bad.any():
            examples = ", ".join(f"'{v:.0f}'" for v in values[bad].iloc[:_N_EXAMPLES])
            raise DataError(
                f"{int(bad.sum()):,} numbers in '{name}' are not real dates written as "
                f"YYYYMMDD, for example {examples}. Correct or delete those rows."
            )
        return out, f"Read '{name}' as dates written YYYYMMDD."
    raise DataError(
        f"Column '{name}' holds numbers such as {example_text} that are not years or dates. "
        "Pick the column that holds the dates; if these are dates stored as numbers by "
        "Excel, format that column as dates in Excel and save the file again."
    )


def _parse_text(uniq: np.ndarray, name: str, dayfirst: bool | None) -> _Parsed:
    """Read each distinct text value with the first layout that matches it."""
    s = pd.Series(uniq, dtype=object)
    wall = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    offset = np.full(len(s), np.nan)
    notes: list[str] = []
    todo = pd.Series(True, index=s.index)
    kinds_used: list[str] = []
    for kind, pattern in _LAYOUTS:
        if not todo.any():
            break
        cand = s[todo]
        groups = cand.str.extract(r"\A(?:" + pattern.pattern + r")\Z")
        hit = groups.iloc[:, 0].notna() | groups.notna().any(axis=1)
        if not hit.any():
            continue
        groups = groups[hit]
        times, note = _assemble(kind, groups, name, dayfirst, cand[hit])
        wall[groups.index] = times
        if "tz" in groups:
            offset[groups.index.to_numpy()] = _tz_minutes(groups["tz"])
        todo[groups.index] = False
        if note:
            notes.append(note)
        if kind not in kinds_used:
            kinds_used.append(kind)
    notes.extend(_KIND_NOTES[k] for k in kinds_used if k in _KIND_NOTES)
    return _Parsed(pd.DatetimeIndex(wall), offset, notes)


def _field(col: pd.Series | None, default: int, index: pd.Index) -> pd.Series:
    """A matched number group as floats (nan where not a number), ``default`` where absent."""
    if col is None:
        return pd.Series(default, index=index, dtype="float64")
    return pd.to_numeric(col, errors="coerce").fillna(default).astype("float64")


def _assemble(
    kind: str, g: pd.DataFrame, name: str, dayfirst: bool | None, raw: pd.Series
) -> tuple[pd.Series, str]:
    """Turn the groups one layout matched into datetimes (NaT where not a real date)."""
    idx = g.index
    note = ""
    year = pd.to_numeric(g["year"], errors="coerce")
    if kind == "dmy":
        a = pd.to_numeric(g["a"]).astype(int)
        b = pd.to_numeric(g["b"]).astype(int)
        day_first = _decide_dayfirst(a, b, g["sep"], raw, name, dayfirst)
        day, month = (a, b) if day_first else (b, a)
        seps = set(g["sep"])
        layout = (
            "day{0}month{0}year (European)" if day_first else "month{0}day{0}year (US)"
        ).format(seps.pop() if len(seps) == 1 else "/")
        proof = ((a > 12) & (b <= 12)) if day_first else ((b > 12) & (a <= 12))
        if proof.any():
            note = f"Read '{name}' as {layout}, because of dates like '{raw[proof].iloc[0]}'."
        else:
            note = (
                f"The dates in '{name}' could be read day first or month first; they were read "
                f"as {layout}. If that is wrong, switch the date order."
            )
    elif kind == "week":
        week = pd.to_numeric(g["week"]).astype(int)
        wday = g["wday"].fillna("1")
        text = year.astype(int).astype(str) + "-W" + week.map("{:02d}".format) + "-" + wday
        return pd.to_datetime(text, format="%G-W%V-%u", errors="coerce"), ""
    elif kind == "quarter":
        month = pd.to_numeric(g["q"]).astype(int) * 3 - 2
        day = pd.Series(1, index=idx)
    elif kind == "month":
        month = pd.to_numeric(g["month"])
        day = pd.Series(1, index=idx)
    elif kind == "named":
        month = g["mon"].str.lower().map(_MONTHS)
        day = _field(g.get("day"), 1, idx)
        if g.get("day") is None or g["day"].isna().all():
            note = f"Read months like '{raw.iloc[0]}' as the first day of each month."
    elif kind == "year":
        month = pd.Series(1, index=idx)
        day = pd.Series(1, index=idx)
    else:  # iso
        month = pd.to_numeric(g["month"])
        day = pd.to_numeric(g["day"])
    if kind in ("dmy", "named"):
        two_digit = g["year"].str.len() == 2
        # strptime's rule for %y: 69-99 are 1900s, 00-68 are 2000s.
        year = year.where(~two_digit, np.where(year < 69, 2000 + year, 1900 + year))
    hour = _field(g.get("hour"), 0, idx)
    if "ampm" in g:
        pm = g["ampm"].str.lower().str.startswith("p").fillna(False).astype(bool)
        am = g["ampm"].str.lower().str.startswith("a").fillna(False).astype(bool)
        hour = hour.mask((am | pm) & (hour > 12), np.nan)
        hour = hour.mask(am & (hour == 12), 0).mask(pm & (hour < 12), hour + 12)
    parts = pd.DataFrame(
        {
            "year": year,
            "month": month,
            "day": day,
            "hour": hour,
            "minute": _field(g.get("minute"), 0, idx),
            "second": _field(g.get("second"), 0, idx),
        },
        index=idx,
    ).astype("float64")
    ok = (
        parts.notna().all(axis=1)
        & (parts["hour"] < 24)
        & (parts["minute"] < 60)
        & (parts["second"] < 60)
    )
    times = pd.Series(pd.NaT, index=idx, dtype="datetime64[us]")
    if ok.any():
        times[ok] = pd.to_datetime(parts[ok].astype("int64"), errors="coerce")
    if "frac" in g and g["frac"].notna().any():
        frac = g["frac"].fillna("0")
        micros = pd.to_numeric(frac.str.ljust(6, "0").str[:6])
        times = times + pd.to_timedelta(micros, unit="us")
    return times, note


def _decide_dayfirst(
    a: pd.Series, b: pd.Series, sep: pd.Series, raw: pd.Series, name: str, dayfirst: bool | None
) -> bool:
    """The data decide when a field is above 12; else ``dayfirst``; else the separator."""
    # A value with both fields above 12 is no date at all; _assemble leaves it NaT.
    first_is_day, second_is_day = (a > 12) & (b <= 12), (b > 12) & (a <= 12)
    if first_is_day.any() and second_is_day.any():
        raise DataError(
            f"The dates in '{name}' mix day-first and month-first order: '{raw[first_is_day].iloc[0]}' "
            f"has the day first but '{raw[second_is_day].iloc[0]}' has the month first. Write "
            "all dates the same way (best as 2024-12-31) and upload the file again."
        )
    if first_is_day.any():
        return True
    if second_is_day.any():
        return False
    if dayfirst is not None:
        return bool(dayfirst)
    return sep.iloc[0] != "/"


def _tz_minutes(tz: pd.Series) -> np.ndarray:
    out = np.full(len(tz), np.nan)
    for i, value in enumerate(tz.to_numpy(dtype=object)):
        if not isinstance(value, str):
            continue
        if value in ("Z", "UTC", "GMT"):
            out[i] = 0.0
            continue
        digits = value[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
        out[i] = minutes if value[0] == "+" else -minutes
    return out


def _as_times(values: pd.Series | pd.DatetimeIndex, dayfirst: bool | None = None) -> pd.Series:
    if isinstance(values, pd.DatetimeIndex):
        values = pd.Series(values)
    times, _ = parse_times(values, dayfirst=dayfirst)
    return times


def time_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that could be the time axis (at least 95% of cells read as times), best first.

    Datetime columns come first, then text that reads as dates, then whole numbers that are
    years; within each group a name like ``date`` or ``year`` comes first.
    """
    ranked: list[tuple[int, int, float, int, str]] = []
    for position, col in enumerate(frame.columns):
        s = frame[col]
        present = s.dropna()
        if present.empty:
            continue
        named = 0 if _TIME_NAME_RE.search(str(col)) else 1
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            ranked.append((0, named, 0.0, position, str(col)))
        elif pd.api.types.is_bool_dtype(s.dtype):
            continue
        elif pd.api.types.is_numeric_dtype(s.dtype):
            values = present.astype("float64")
            if not np.all(values == np.round(values)):
                continue
            years = values.between(1000, 2999).all()
            ymd = values.between(1000_01_01, 2999_12_31).all()
            steps = np.diff(np.unique(values.to_numpy()))
            even = steps.size > 1 and np.all(steps == steps[0])
            if (years and (named == 0 or even)) or (ymd and named == 0):
                ranked.append((2, named, 0.0, position, str(col)))
        else:
            text = present.astype("string").str.strip()
            uniq = pd.unique(text.to_numpy(dtype=object))[:500]
            if len(uniq) == 0 or not any(ch.isdigit() for ch in str(uniq[0])):
                continue
            try:
                wall = _parse_text(np.asarray(uniq, dtype=object), str(col), None).wall
                share = float(wall.notna().mean())
            except DataError:
                share = 1.0  # dates written two ways: still the time column, with a problem
            if share >= _MIN_SHARE_PARSED:
                ranked.append((1, named, -share, position, str(col)))
    return [item[-1] for item in sorted(ranked)]


def id_columns(frame: pd.DataFrame, time_col: str, exclude: Iterable[str] = ()) -> list[str]:
    """Columns that could name several series in a long file, most likely first.

    A candidate has from 2 to ``MAX_IDS`` distinct values, each repeated many times. It is
    *likely* (put first) when the times repeat across rows but hardly ever repeat within one
    of its values: one row per series and time, the shape of a long file. Text columns are
    offered either way; whole-number columns (a store number) only when likely.
    """
    skip = {time_col, *exclude}
    n = len(frame)
    ranked: list[tuple[int, int, str]] = []
    for position, col in enumerate(frame.columns):
        if col in skip:
            continue
        s = frame[col]
        if pd.api.types.is_float_dtype(s.dtype) and not np.all(s.dropna() == np.round(s.dropna())):
            continue
        n_ids = int(s.nunique())
        if not 2 <= n_ids <= MAX_IDS or n_ids * 5 > n:
            continue
        likely = looks_like_id(frame, time_col, str(col))
        if not likely and pd.api.types.is_numeric_dtype(s.dtype):
            continue  # a number column (a 0/1 flag, a count) is offered only when the file's shape says id
        ranked.append((0 if likely else 1, position, str(col)))
    return [item[-1] for item in sorted(ranked)]


def looks_like_id(frame: pd.DataFrame, time_col: str, column: str) -> bool:
    """True when ``column`` tells series apart: the times repeat across rows, but hardly ever
    within one of its values (one row per series and time)."""
    if len(frame) == 0 or time_col not in frame.columns or column not in frame.columns:
        return False
    return bool(frame[time_col].duplicated().mean() >= 0.5 and frame.duplicated([column, time_col]).mean() < 0.05)


MAX_IDS = 1000  # distinct values for a column to be offered as the series id


# --------------------------------------------------------------------------------------
# Frequency
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frequency:
    """How often a series has a value, with words for the page.

    ``alias`` is the pandas offset alias ("D", "W-SAT", "MS", "QS", "YS", "h", "15min"...).
    ``anchor`` is how far every step sits after the alias' own grid point: 9 hours for daily
    values stamped 09:00, 14 days for monthly values on the 15th. ``season_length`` is the
    number of steps in one cycle (7 for daily, 52 weekly, 12 monthly; 1 when there is none).
    ``confidence`` is the share of steps that have the usual length (1.0: perfectly regular).
    """

    alias: str
    words: str
    unit: str
    season_length: int
    confidence: float = 1.0
    anchor: pd.Timedelta = pd.Timedelta(0)
    note: str = ""

    @property
    def offset(self) -> pd.DateOffset:
        return to_offset(self.alias)

    def grid(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        """Every step from ``start`` to ``end`` (both on the grid)."""
        return (
            pd.date_range(
                pd.Timestamp(start) - self.anchor, pd.Timestamp(end) - self.anchor, freq=self.alias
            )
            + self.anchor
        )

    def future(self, last: pd.Timestamp, horizon: int) -> pd.DatetimeIndex:
        """The ``horizon`` steps right after ``last``."""
        base = pd.Timestamp(last) - self.anchor
        off = self.offset
        return pd.DatetimeIndex([base + off * i + self.anchor for i in range(1, horizon + 1)])

    def label(self, times: pd.Series) -> pd.Series:
        """The grid step each time belongs to, the way ``DataFrame.resample`` bins it: the
        step at or before it, or at or after it for period ends ("ME", "QE", "YE") and weeks."""
        shifted = times - self.anchor
        present = shifted.dropna()
        if present.empty:
            return times.copy()
        off = self.offset
        lo, hi = present.min(), present.max()
        if isinstance(off, pd.offsets.Tick):
            start, end = lo.floor(off), hi.ceil(off) + off
        else:
            start = off.rollback(lo.normalize()) - off
            end = off.rollforward(hi.normalize()) + off
        grid = pd.date_range(start, end, freq=off)
        values = shifted.to_numpy()
        if _closed_right(off):
            pos = np.searchsorted(grid.to_numpy(), values, side="left")
        else:
            pos = np.searchsorted(grid.to_numpy(), values, side="right") - 1
        pos = np.clip(pos, 0, len(grid) - 1)
        out = pd.Series(grid.to_numpy()[pos], index=times.index, name=times.name) + self.anchor
        return out.where(times.notna())

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "words": self.words,
            "unit": self.unit,
            "season_length": self.season_length,
            "confidence": self.confidence,
            "anchor": self.anchor.isoformat(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frequency:
        return cls(
            alias=data["alias"],
            words=data["words"],
            unit=data["unit"],
            season_length=int(data["season_length"]),
            confidence=float(data.get("confidence", 1.0)),
            anchor=pd.Timedelta(data.get("anchor", 0)),
            note=data.get("note", ""),
        )


def _closed_right(off: pd.DateOffset) -> bool:
    return isinstance(
        off, (pd.offsets.Week, pd.offsets.MonthEnd, pd.offsets.QuarterEnd, pd.offsets.YearEnd)
    )


def _describe(alias: str) -> tuple[str, str, int]:
    """(words, unit, season length) for a pandas alias; SpecError for unsupported ones."""
    try:
        off = to_offset(alias)
    except (ValueError, TypeError) as exc:
        raise SpecError(
            f"'{alias}' is not a frequency. Use one of: h (hourly), D (daily), B (business "
            "days), W-MON ... W-SUN (weekly), MS (monthly), QS (quarterly), YS (yearly)."
        ) from exc
    n = off.n

    def every(one: str, many: str) -> str:
        return one if n == 1 else f"every {n} {many}"

    def per(total: int) -> int:
        return total // n if total % n == 0 and total // n >= 2 else 1

    if isinstance(off, pd.offsets.Second):
        return every("every second", "seconds"), every("seconds", f"{n}-second steps"), per(60)
    if isinstance(off, pd.offsets.Minute):
        season = per(1440) if 1440 % n == 0 and 1440 // n <= 288 else per(60)
        return (
            every("every minute", "minutes"),
            "minutes" if n == 1 else f"{n}-minute steps",
            season,
        )
    if isinstance(off, pd.offsets.Hour):
        return every("hourly", "hours"), "hours" if n == 1 else f"{n}-hour steps", per(24)
    if isinstance(off, pd.offsets.BusinessDay) and n == 1:
        return "business days (Monday to Friday)", "business days", 5
    if isinstance(off, pd.offsets.Day):
        return every("daily", "days"), "days" if n == 1 else f"{n}-day steps", 7 if n == 1 else 1
    if isinstance(off, pd.offsets.Week) and off.weekday is not None:
        day = _WEEKDAYS[off.weekday]
        words = f"weekly ({day}s)" if n == 1 else f"every {n} weeks ({day}s)"
        return (
            words,
            "weeks" if n == 1 else f"{n}-week steps",
            52 if n == 1 else max(1, round(52 / n)),
        )
    if isinstance(off, (pd.offsets.MonthBegin, pd.offsets.MonthEnd)):
        end = " (month ends)" if isinstance(off, pd.offsets.MonthEnd) else ""
        return every("monthly", "months") + end, "months" if n == 1 else f"{n}-month steps", per(12)
    if isinstance(off, (pd.offsets.QuarterBegin, pd.offsets.QuarterEnd)):
        end = " (quarter ends)" if isinstance(off, pd.offsets.QuarterEnd) else ""
        return (
            every("quarterly", "quarters") + end,
            "quarters" if n == 1 else f"{n}-quarter steps",
            per(4),
        )
    if isinstance(off, (pd.offsets.YearBegin, pd.offsets.YearEnd)):
        return every("yearly", "years"), "years" if n == 1 else f"{n}-year steps", 1
    raise SpecError(
        f"The frequency '{alias}' is not supported. Use one of: h (hourly), D (daily), "
        "B (business days), W-MON ... W-SUN (weekly), MS (monthly), QS (quarterly), YS (yearly)."
    )


def frequency_for(alias: str) -> Frequency:
    """The ``Frequency`` for a pandas alias the analyst chose, e.g. to add up an irregular
    series per day ("D"), week ("W-MON") or month ("MS")."""
    words, unit, season = _describe(alias)
    return Frequency(alias=alias, words=words, unit=unit, season_length=season)


def infer_frequency(times: pd.Series | pd.DatetimeIndex) -> Frequency:
    """The regular step of a time column: daily, weekly (on Saturdays), monthly...

    Missing steps (gaps) are fine: a step that is a whole multiple of the usual one counts
    as regular. Raises ``DataError`` when fewer than three distinct times are given or when
    the steps are irregular, with the fix (add the values up per day, week or month).

    Example::

        infer_frequency(pd.Series(pd.date_range("2024-01-06", periods=10, freq="W-SAT"))).alias
        # 'W-SAT'
    """
    t = _as_times(times)
    return _infer([np.sort(pd.unique(t.dropna().to_numpy()))])


def _mode(values: np.ndarray) -> Any:
    uniq, counts = np.unique(values, return_counts=True)
    return uniq[np.argmax(counts)]


def _pretty_step(step: pd.Timedelta) -> str:
    seconds = step.total_seconds()
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size and seconds % size == 0:
            k = int(seconds // size)
            return f"{k} {unit}{'s' if k != 1 else ''}"
    return str(step)


def _infer(groups: Sequence[np.ndarray]) -> Frequency:
    """Infer one frequency from several series' sorted distinct times (pooled steps)."""
    groups = [g.astype("datetime64[ns]") for g in groups if len(g)]
    diffs = np.concatenate([np.diff(g) for g in groups]) if groups else np.array([], "m8[ns]")
    if diffs.size < 2:
        raise DataError(
            "A series needs at least three different times to find how often it has a value. "
            "Check that the right time column is chosen and that the file holds the history."
        )
    times = pd.DatetimeIndex(np.concatenate(groups))
    step = pd.Timedelta(_mode(diffs))
    days = step / _DAY
    months = {1: (28, 31), 2: (59, 62), 3: (89, 92), 6: (181, 184), 12: (365, 366)}
    if any(lo <= days <= hi for lo, hi in months.values()):
        return _infer_months(groups, times)
    if (
        step == _DAY
        and not (times.day_of_week >= 5).any()
        and (diffs == np.timedelta64(3, "D")).any()
    ):
        days_only = [g.astype("datetime64[D]") for g in groups]
        busy = np.concatenate([np.busday_count(d[:-1], d[1:]) for d in days_only])
        clock = times - times.normalize()
        return _frequency("B", float(np.mean(busy == 1)), pd.Timedelta(_mode(clock.to_numpy())), "")
    # Regular: the share of times a whole number of steps from their series' usual phase
    # (a gap keeps the phase; a time between steps does not).
    tick = step.to_timedelta64()
    on_phase = 0
    for g in groups:
        phase = (g - g[0]) % tick
        on_phase += int(np.sum(phase == _mode(phase)))
    regular = on_phase / sum(len(g) for g in groups)
    confidence = float(np.mean(diffs == step.to_timedelta64()))
    # Whole multiples are gaps, but a grid mostly made of gaps (a step of one minute in
    # times that are minutes to hours apart) is no grid: at least half must hold values.
    coverage = diffs.size / max(1.0, float(np.sum(diffs / step.to_timedelta64())))
    if regular < _MIN_SHARE_REGULAR or coverage < 0.5:
        raise _irregular(step, confidence)
    clock = pd.Timedelta(_mode((times - times.normalize()).to_numpy()))
    if step % _DAY == pd.Timedelta(0):
        k = int(days)
        if k % 7 == 0:
            weekday = _WEEKDAY_CODES[int(_mode(times.day_of_week.to_numpy()))]
            alias = f"{'' if k == 7 else k // 7}W-{weekday}"
        else:
            alias = "D" if k == 1 else f"{k}D"
        return _frequency(alias, confidence, clock, "")
    seconds = int(step.total_seconds())
    if step < pd.Timedelta(seconds=1) or step.total_seconds() != seconds:
        raise DataError(
            f"The times are {step} apart, finer than one second. Add the values up per second, "
            "minute or hour before forecasting."
        )
    if seconds % 3600 == 0:
        alias = "h" if seconds == 3600 else f"{seconds // 3600}h"
    elif seconds % 60 == 0:
        alias = "min" if seconds == 60 else f"{seconds // 60}min"
    else:
        alias = "s" if seconds == 1 else f"{seconds}s"
    anchor = pd.Timedelta(_mode((times - times.floor(alias)).to_numpy()))
    return _frequency(alias, confidence, anchor, "")


def _irregular(step: pd.Timedelta, confidence: float) -> DataError:
    return DataError(
        f"The times are not evenly spaced: the most common step is {_pretty_step(step)}, but "
        f"only {confidence:.0%} of the steps are that long (or a whole number of them). "
        "Forecasting needs one value per regular step. Choose a frequency (for example daily, "
        "weekly or monthly) to add up the values per period, or fix the times in the file."
    )


def _infer_months(groups: Sequence[np.ndarray], times: pd.DatetimeIndex) -> Frequency:
    month_numbers = [pd.DatetimeIndex(g).year * 12 + pd.DatetimeIndex(g).month - 1 for g in groups]
    mdiffs = np.concatenate([np.diff(np.asarray(m)) for m in month_numbers])
    k = int(_mode(mdiffs[mdiffs > 0])) if (mdiffs > 0).any() else 1
    confidence = float(np.mean(mdiffs == k))
    if (
        k not in (1, 2, 3, 4, 6, 12)
        or float(np.mean((mdiffs > 0) & (mdiffs % k == 0))) < _MIN_SHARE_REGULAR
    ):
        raise _irregular(pd.Timedelta(days=round(30.44 * k)), confidence)
    clock = pd.Timedelta(_mode((times - times.normalize()).to_numpy()))
    day = times.day.to_numpy()
    note = ""
    if np.mean(day == 1) >= _MIN_SHARE_REGULAR:
        end, anchor = False, clock
    elif np.mean(times.is_month_end) >= _MIN_SHARE_REGULAR:
        end, anchor = True, clock
    else:
        usual = int(_mode(day))
        if np.mean(day == usual) >= _MIN_SHARE_REGULAR and usual <= 28:
            end, anchor = False, clock + pd.Timedelta(days=usual - 1)
        else:
            end, anchor = bool(np.median(day) >= 15), pd.Timedelta(0)
            note = (
                "The dates fall on different days of the month; each value is counted in its month."
            )
    first_month = int(_mode(times.month.to_numpy()))
    if k in (1, 2, 4, 6):
        alias = f"{'' if k == 1 else k}{'ME' if end else 'MS'}"
    elif k == 3:
        phase = (first_month - 1) % 3  # 0: quarters start Jan/Apr/Jul/Oct (end Mar/Jun/Sep/Dec)
        if end:
            alias = "QE" if phase == 2 else f"QE-{_MONTH_CODES[phase]}"
        else:
            alias = "QS" if phase == 0 else f"QS-{_MONTH_CODES[phase]}"
    else:
        if end:
            alias = "YE" if first_month == 12 else f"YE-{_MONTH_CODES[first_month - 1]}"
        else:
            alias = "YS" if first_month == 1 else f"YS-{_MONTH_CODES[first_month - 1]}"
    return _frequency(alias, confidence, anchor, note)


def _frequency(alias: str, confidence: float, anchor: pd.Timedelta, note: str) -> Frequency:
    words, unit, season = _describe(alias)
    return Frequency(alias, words, unit, season, round(confidence, 4), anchor, note)


# --------------------------------------------------------------------------------------
# Checking and fixing a series
# --------------------------------------------------------------------------------------


@dataclass
class SeriesReport:
    """What ``check_series`` found, counted, with a few examples of each problem.

    ``n_steps`` is the length of the shortest series on the regular grid (what the
    settings must fit). ``duplicates`` counts the rows beyond the first at the same step;
    ``gaps`` the steps missing from the grid; ``missing_values`` the rows with no target;
    ``off_grid`` the rows whose time falls between steps. ``notes`` says it all in words.
    """

    frequency: Frequency
    n_rows: int
    n_series: int
    n_steps: int
    start: pd.Timestamp
    end: pd.Timestamp
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    gaps: int = 0
    gap_examples: list[str] = field(default_factory=list)
    missing_values: int = 0
    missing_examples: list[str] = field(default_factory=list)
    off_grid: int = 0
    off_grid_examples: list[str] = field(default_factory=list)
    missing_times: int = 0
    notes: list[str] = field(default_factory=list)
    median_steps: int = 0  # the typical series' length on the grid (the one settings are suggested for)

    @property
    def needs_fixing(self) -> bool:
        """True when ``regularise`` would change something."""
        return bool(
            self.duplicates
            or self.gaps
            or self.missing_values
            or self.off_grid
            or self.missing_times
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            k: getattr(self, k)
            for k in self.__dataclass_fields__
            if k not in ("frequency", "start", "end")
        }
        out.update(
            frequency=self.frequency.to_dict(),
            start=self.start.isoformat(),
            end=self.end.isoformat(),
        )
        return out


@dataclass
class _Prepared:
    frame: pd.DataFrame  # columns: _id, _time (parsed), the value columns; no missing times
    freq: Frequency
    notes: list[str]
    missing_times: int


_ID, _T, _STEP = "__series__", "__time__", "__step__"


def _prepare(
    frame: pd.DataFrame,
    time_col: str,
    target: str,
    id_col: str | None,
    covariates: Iterable[str],
    freq: str | Frequency | None,
    dayfirst: bool | None,
) -> _Prepared:
    covariates = list(covariates)
    wanted = [time_col, target] + ([id_col] if id_col else []) + covariates
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(
            f"The table has no column called {', '.join(repr(c) for c in missing)}. "
            f"Pick from: {', '.join(map(str, frame.columns))}."
        )
    if time_col == target or target in covariates or (id_col and id_col in (time_col, target)):
        raise SpecError(
            "The time column, the target, the id column and the covariates must all be different columns."
        )
    for col in [target] + covariates:
        s = frame[col]
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            example = s.dropna().iloc[0] if s.notna().any() else ""
            role = "forecast" if col == target else "use as a covariate"
            raise DataError(
                f"Column '{col}' is not numbers (for example '{example}'). Pick a column of "
                f"numbers to {role}."
            )
    times, note = parse_times(frame[time_col], dayfirst=dayfirst)
    notes = [note] if note else []
    work = pd.DataFrame(
        {
            _ID: frame[id_col].astype("string").fillna("(blank)").to_numpy() if id_col else "",
            _T: times.to_numpy(),
        },
        index=frame.index,
    )
    for col in [target] + covariates:
        work[col] = frame[col].astype("float64").to_numpy()
    missing_times = int(work[_T].isna().sum())
    work = work[work[_T].notna()]
    if isinstance(freq, str):
        freq = frequency_for(freq)
    if freq is None:
        groups = [np.sort(pd.unique(g.to_numpy())) for _, g in work.groupby(_ID, sort=False)[_T]]
        freq = _infer(groups)
    if freq.note:
        notes.append(freq.note)
    work[_STEP] = freq.label(work[_T])
    return _Prepared(work, freq, notes, missing_times)


def _fmt(stamp: pd.Timestamp, series: str = "") -> str:
    text = (
        stamp.strftime("%Y-%m-%d")
        if stamp == stamp.normalize()
        else stamp.strftime("%Y-%m-%d %H:%M")
    )
    return f"{series}: {text}" if series else text


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def check_series(
    frame: pd.DataFrame,
    time_col: str,
    target: str,
    id_col: str | None = None,
    freq: str | Frequency | None = None,
    dayfirst: bool | None = None,
) -> SeriesReport:
    """Find duplicate times, gaps in the regular grid and missing target values.

    ``freq`` (an alias or a ``Frequency``) replaces the inferred frequency, e.g. to add up an
    irregular series per day; ``dayfirst`` settles dates that read both ways (see
    ``parse_times``). Raises ``DataError`` when the columns cannot be used.

    Example::

        report = check_series(df, "week", "co2")
        report.frequency.alias, report.missing_values   # ('W-SAT', 59)
    """
    prep = _prepare(frame, time_col, target, id_col, (), freq, dayfirst)
    work, f = prep.frame, prep.freq
    if work.empty:
        raise DataError(f"Column '{time_col}' has no times. Pick the column that holds the dates.")
    multi = id_col is not None
    notes = list(prep.notes)
    report = SeriesReport(
        frequency=f,
        n_rows=len(work),
        n_series=int(work[_ID].nunique()),
        n_steps=0,
        start=work[_STEP].min(),
        end=work[_STEP].max(),
        missing_times=prep.missing_times,
    )
    series_word = f" in {report.n_series:,} series" if multi else ""
    notes.insert(
        0,
        f"Found {_plural(report.n_rows, 'value')}{series_word}, {f.words}, from {_fmt(report.start)} "
        f"to {_fmt(report.end)}.",
    )

    off = work[_STEP] != work[_T]
    report.off_grid = int(off.sum())
    report.off_grid_examples = [_fmt(t) for t in work.loc[off, _T].iloc[:_N_EXAMPLES]]

    counts = work.groupby([_ID, _STEP], sort=False).size()
    dup = counts[counts > 1]
    report.duplicates = int((dup - 1).sum())
    report.duplicate_examples = [
        f"{_fmt(step, sid if multi else '')} ({n} rows)"
        for sid, step, n in dup.iloc[:_N_EXAMPLES].reset_index().itertuples(index=False)
    ]

    lengths, gap_examples, n_gaps = [], [], 0
    for sid, steps in work.groupby(_ID, sort=False)[_STEP]:
        grid = f.grid(steps.min(), steps.max())
        lengths.append(len(grid))
        absent = grid.difference(pd.DatetimeIndex(steps.unique()))
        n_gaps += len(absent)
        gap_examples.extend(
            _fmt(t, sid if multi else "") for t in absent[: _N_EXAMPLES - len(gap_examples)]
        )
    report.gaps, report.gap_examples, report.n_steps = n_gaps, gap_examples, min(lengths)
    report.median_steps = int(np.median(lengths))

    nan = work[target].isna()
    report.missing_values = int(nan.sum())
    report.missing_examples = [
        _fmt(t, sid if multi else "")
        for sid, t in work.loc[nan, [_ID, _STEP]].iloc[:_N_EXAMPLES].itertuples(index=False)
    ]

    if report.missing_values:
        notes.append(
            f"{_plural(report.missing_values, 'value')} of '{target}' "
            f"{'is' if report.missing_values == 1 else 'are'} missing, for example on "
            f"{', '.join(report.missing_examples)}."
        )
    if report.gaps:
        notes.append(
            f"{_plural(report.gaps, 'step')} {'is' if report.gaps == 1 else 'are'} missing from the "
            f"{f.words} grid ({f.unit}), for example {', '.join(report.gap_examples)}."
        )
    if report.missing_values or report.gaps:
        notes.append(
            "Fill them by a straight line between neighbours, by carrying the last value "
            "forward, or with zero (right for sales or counts where no row means none)."
        )
    if report.duplicates:
        notes.append(
            f"{_plural(len(dup), 'step')} {'has' if len(dup) == 1 else 'have'} more than one row "
            f"({_plural(report.duplicates, 'extra row')}), for example {', '.join(report.duplicate_examples)}. "
            "Combine them by their mean, their sum (for sales or counts), or keep the last one."
        )
    if report.off_grid:
        notes.append(
            f"{_plural(report.off_grid, 'row')} {'has a time' if report.off_grid == 1 else 'have times'} "
            f"between the {f.words} steps, for example {', '.join(report.off_grid_examples)}; "
            "fixing the series counts each in the step it belongs to."
        )
    if report.missing_times:
        notes.append(f"{_plural(report.missing_times, 'row')} without a time will be left out.")
    report.notes = notes
    return report


def overview(
    frame: pd.DataFrame,
    time_col: str,
    target: str,
    id_col: str | None = None,
    freq: str | Frequency | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The series as they are, for a chart before anything is fixed: ``(values, missing)``.

    ``values`` has columns ``series, time, value``: one row per series and step (rows at the
    same step averaged), sorted. ``missing`` has ``series, time``: the steps of each series'
    regular grid with no value (absent rows or empty cells), which a fix would fill.
    """
    prep = _prepare(frame, time_col, target, id_col, (), freq, None)
    work = prep.frame
    steps = (
        work.groupby([_ID, _STEP], sort=True)[target].mean().rename("value").reset_index()
        .rename(columns={_ID: "series", _STEP: "time"})
    )
    missing = []
    for sid, part in steps.groupby("series", sort=False):
        grid = prep.freq.grid(part["time"].min(), part["time"].max())
        present = pd.DatetimeIndex(part.loc[part["value"].notna(), "time"])
        absent = grid.difference(present)
        missing.append(pd.DataFrame({"series": sid, "time": absent}))
    gone = pd.concat(missing, ignore_index=True) if missing else pd.DataFrame(columns=["series", "time"])
    return steps[steps["value"].notna()].reset_index(drop=True), gone


def regularise(
    frame: pd.DataFrame,
    time_col: str,
    target: str,
    id_col: str | None = None,
    covariates: Sequence[str] = (),
    duplicates: str = "mean",
    gaps: str = "interpolate",
    freq: str | Frequency | None = None,
    dayfirst: bool | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """One row per step per series, on the regular grid, with gaps and duplicates fixed.

    ``duplicates``: rows at the same step are combined by their ``"mean"``, ``"sum"`` or
    ``"last"`` value (the last one given in the file). ``gaps``: missing steps and missing
    values are filled by ``"interpolate"`` (a straight line between the neighbours),
    ``"ffill"`` (the last value carried forward) or ``"zero"``. Target values missing at the
    very start or end of a series cannot be interpolated or carried, so those steps are
    dropped; covariates are carried to the ends. Rows with no time are dropped. The same
    rules apply to target and covariates. Returns the frame (columns: id if any, time,
    target, covariates; sorted) and notes saying what changed.
    """
    if duplicates not in DUPLICATE_FIXES:
        raise SpecError(
            f"duplicates={duplicates!r} is not allowed. Use one of: {', '.join(DUPLICATE_FIXES)}."
        )
    if gaps not in GAP_FIXES:
        raise SpecError(f"gaps={gaps!r} is not allowed. Use one of: {', '.join(GAP_FIXES)}.")
    covariates = list(covariates)
    prep = _prepare(frame, time_col, target, id_col, covariates, freq, dayfirst)
    work, f = prep.frame, prep.freq
    values = [target] + covariates
    notes = list(prep.notes)
    if prep.missing_times:
        notes.append(f"Left out {_plural(prep.missing_times, 'row')} with no time.")
    moved = int((work[_STEP] != work[_T]).sum())
    if moved:
        notes.append(
            f"Counted {_plural(moved, 'row')} whose time fell between steps in the step {'it belongs' if moved == 1 else 'they belong'} to."
        )

    grouped = work.groupby([_ID, _STEP], sort=True)[values]
    sizes = grouped.size()
    n_extra = int((sizes - 1).sum())
    if duplicates == "mean":
        combined = grouped.mean()
    elif duplicates == "sum":
        combined = grouped.sum(min_count=1)
    else:
        combined = grouped.last()
    if n_extra:
        how = {"mean": "their mean", "sum": "adding them up", "last": "keeping the last one"}[
            duplicates
        ]
        notes.append(
            f"Combined {_plural(n_extra + int((sizes > 1).sum()), 'row')} that shared a step into one each, by {how}."
        )

    pieces, n_new, n_nan, n_trimmed = [], 0, int(combined[target].isna().sum()), 0
    for sid, part in combined.groupby(level=0, sort=True):
        part = part.droplevel(0)
        grid = f.grid(part.index.min(), part.index.max())
        n_new += len(grid) - len(part)
        part = part.reindex(grid)
        if gaps == "interpolate":
            part = part.interpolate(method="linear", limit_area="inside")
        elif gaps == "ffill":
            part = part.ffill()
        else:
            part = part.fillna(0.0)
        keep = part[target].notna()
        if keep.any():
            first, last = keep.idxmax(), keep[::-1].idxmax()
            trimmed = part.loc[first:last]
        else:
            trimmed = part.iloc[0:0]
        n_trimmed += len(part) - len(trimmed)
        trimmed = trimmed.ffill().bfill() if covariates else trimmed
        trimmed = trimmed.rename_axis(time_col).reset_index()
        if id_col:
            trimmed.insert(0, id_col, sid)
        pieces.append(trimmed)
    out = (
        pd.concat(pieces, ignore_index=True)
        if pieces
        else pd.DataFrame(columns=[time_col] + values)
    )
    if out.empty:
        raise DataError(f"Column '{target}' has no values. Pick a column of numbers to forecast.")
    if n_new or n_nan:
        how = {
            "interpolate": "by a straight line between neighbouring values",
            "ffill": "by carrying the last value forward",
            "zero": "with zero",
        }[gaps]
        what = " and ".join(
            part
            for part in (
                f"{_plural(n_new, 'missing step')} ({f.unit})" if n_new else "",
                f"{_plural(n_nan, 'missing value')} of '{target}'" if n_nan else "",
            )
            if part
        )
        notes.append(f"Filled {what} {how}.")
    if n_trimmed:
        notes.append(
            f"Dropped {_plural(n_trimmed, 'step')} at the start or end of the series where "
            f"'{target}' has no value to fill from."
        )
    if id_col and frame[id_col].notna().all():
        # Ids were grouped as text; give them back their own type and order (2 before 10).
        out[id_col] = out[id_col].astype(frame[id_col].dtype)
        out = out.sort_values([id_col, time_col], kind="stable", ignore_index=True)
    return out, notes


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Forecasting settings in steps: how far ahead (``horizon``), how far back the models
    look (``lookback``), the season length and how many backtest windows; ``notes`` say in
    words why any was made smaller than usual."""

    horizon: int
    lookback: int
    season_length: int
    windows: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "lookback": self.lookback,
            "season_length": self.season_length,
            "windows": self.windows,
            "notes": list(self.notes),
        }


def _default_horizon(freq: Frequency) -> int:
    off = freq.offset
    table: tuple[tuple[type, int], ...] = (
        (pd.offsets.Hour, 48),
        (pd.offsets.BusinessDay, 10),
        (pd.offsets.Day, 14),
        (pd.offsets.Week, 13),
        (pd.offsets.MonthBegin, 12),
        (pd.offsets.MonthEnd, 12),
        (pd.offsets.QuarterBegin, 8),
        (pd.offsets.QuarterEnd, 8),
        (pd.offsets.YearBegin, 5),
        (pd.offsets.YearEnd, 5),
    )
    for kind, steps in table:
        if isinstance(off, kind) and off.n == 1:
            return steps
    # Multiples ("2h", "15min", "6MS") and seconds or minutes: one season, or ten steps.
    return freq.season_length if freq.season_length > 1 else 10


def _one(n: int, unit: str) -> str:
    """'1 day', not '1 days' (units are plural: days, weeks, business days)."""
    return unit[:-1] if n == 1 and unit.endswith("s") else unit


def needed_steps(horizon: int, lookback: int, windows: int) -> int:
    """The fewest steps a series needs for a backtest with these settings (see ``check_settings``)."""
    return windows * horizon + lookback + horizon + MIN_TRAIN_WINDOWS - 1


def check_settings(
    n_steps: int, horizon: int, lookback: int, windows: int, unit: str = "steps"
) -> None:
    """Raise when the settings do not fit a series of ``n_steps`` steps.

    The backtest tests ``windows`` blocks of ``horizon`` steps at the end of the series; the
    earliest of them must leave at least ``MIN_TRAIN_WINDOWS`` look-back-plus-horizon
    examples to learn from. ``SpecError`` for a setting that is not a positive whole number,
    ``DataError`` (with the fix) for a series that is too short.
    """
    for label, value in (
        ("horizon", horizon),
        ("look-back window", lookback),
        ("number of backtest windows", windows),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SpecError(f"The {label} must be a whole number of at least 1; got {value!r}.")
    need = needed_steps(horizon, lookback, windows)
    if n_steps < need:
        raise DataError(
            f"The series has {n_steps:,} {unit}, but a horizon of {horizon}, a look-back of "
            f"{lookback} and {windows} backtest window{'s' if windows != 1 else ''} need at least "
            f"{need:,} ({windows} × {horizon} to test, and {need - windows * horizon:,} before "
            "that to learn from). Shorten the horizon or the look-back, use fewer backtest "
            "windows, or bring a longer history."
        )


def suggest_settings(freq: Frequency, n_steps: int) -> Settings:
    """Defaults from the frequency, made smaller until the backtest fits ``n_steps``.

    Horizon: hourly 48, daily 14, business days 10, weekly 13, monthly 12, quarterly 8,
    yearly 5. Look-back: three horizons or two seasons, whichever is longer. Three backtest
    windows. When the series is short the look-back shrinks first (not below the horizon),
    then the windows (to two), then the horizon, and only then a single window.

    Example::

        suggest_settings(infer_frequency(weeks), 2284)   # horizon 13, lookback 104, windows 3
    """
    season = freq.season_length
    default_h = _default_horizon(freq)

    def lookback_for(h: int) -> int:
        return max(3 * h, 2 * season if season > 1 else 0)

    def fits(h: int, w: int) -> int | None:
        room = n_steps - w * h - h - MIN_TRAIN_WINDOWS + 1
        if room < h:
            return None
        return min(lookback_for(h), room)

    plan = [(default_h, w) for w in (3, 2)]
    plan += [(h, 2) for h in range(default_h - 1, 0, -1)]
    plan += [(h, 1) for h in range(default_h, 0, -1)]
    for h, w in plan:
        lookback = fits(h, w)
        if lookback is None:
            continue
        notes = []
        unit = freq.unit
        if h < default_h:
            notes.append(
                f"The horizon is {h} {_one(h, unit)} rather than the usual {default_h}, because the series has only {n_steps:,} {unit}."
            )
        if w < 3:
            notes.append(
                f"The backtest uses {w} window{'s' if w != 1 else ''} rather than 3, because the series is short."
            )
        if lookback < lookback_for(h):
            notes.append(
                f"The models look back {lookback} {_one(lookback, unit)} rather than {lookback_for(h)}, because the series is short."
            )
        return Settings(
            horizon=h, lookback=lookback, season_length=season, windows=w, notes=tuple(notes)
        )
    raise DataError(
        f"The series has only {n_steps:,} {freq.unit}; a forecast with a backtest needs at least "
        f"{needed_steps(1, 1, 1):,}. Bring a longer history, or choose a finer frequency."
    )


# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesSample:
    """One sample series: what it is, its time and target columns, and how to load it."""

    key: str
    title: str
    description: str
    loader: Callable[[], pd.DataFrame]
    time_col: str
    target: str
    id_col: str | None = None


def _co2() -> pd.DataFrame:
    from statsmodels.datasets import co2

    data = co2.load_pandas().data
    # The 59 missing weeks are kept as empty values, as they come, so the gap fix is shown.
    return pd.DataFrame({"week": data.index.to_numpy(), "co2": data["co2"].to_numpy()})


def _sunspots() -> pd.DataFrame:
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    return pd.DataFrame(
        {
            "year": data["YEAR"].astype("int64").to_numpy(),
            "sunspot_activity": data["SUNACTIVITY"].to_numpy(),
        }
    )


def _stocks() -> pd.DataFrame:
    # plotly.data reads a CSV bundled with Plotly; plotly.express would import far more.
    from plotly import data

    return data.stocks()


def _stocks_long() -> pd.DataFrame:
    wide = _stocks()
    return wide.melt(id_vars="date", var_name="company", value_name="price")


SERIES_SAMPLES: dict[str, SeriesSample] = {
    s.key: s
    for s in (
        SeriesSample(
            key="co2",
            title="CO₂ at Mauna Loa (weekly)",
            description="Weekly carbon dioxide in the air at Mauna Loa, Hawaii, in parts per "
            "million, March 1958 to December 2001: a rising trend with a yearly cycle, and 59 "
            "missing weeks (from statsmodels).",
            loader=_co2,
            time_col="week",
            target="co2",
        ),
        SeriesSample(
            key="sunspots",
            title="Sunspots (yearly)",
            description="Yearly sunspot activity from 1700 to 2008, which rises and falls in "
            "cycles of about 11 years (from statsmodels).",
            loader=_sunspots,
            time_col="year",
            target="sunspot_activity",
        ),
        SeriesSample(
            key="stocks",
            title="Tech stock prices (weekly)",
            description="Weekly share prices of Google, Apple, Amazon, Facebook, Netflix and "
            "Microsoft in 2018 and 2019, each divided by its first price (from Plotly); the "
            "other companies can be used as covariates.",
            loader=_stocks,
            time_col="date",
            target="GOOG",
        ),
        SeriesSample(
            key="stocks_long",
            title="Tech stock prices, one series per company",
            description="The same six weekly share prices in long form: one row per company "
            "and week, with the company in its own column, to forecast several series at once.",
            loader=_stocks_long,
            time_col="date",
            target="price",
            id_col="company",
        ),
    )
}


def load_series_sample(key: str) -> pd.DataFrame:
    """A fresh copy of the sample series called ``key`` (one of ``SERIES_SAMPLES``)."""
    from dlcore.data.samples import load_from

    return load_from(SERIES_SAMPLES, key, "series")


def series_sample_csv_bytes(key: str) -> bytes:
    """The sample as UTF-8 CSV bytes, so it can be stored and read exactly like an upload."""
    from dlcore.data.samples import csv_bytes

    return csv_bytes(load_series_sample(key))
