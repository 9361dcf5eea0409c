"""Read a time column: ISO dates, European ``31.12.2024``, US ``12/31/2024``, ``Jan 2024``,
``2024-W05``, plain years, with or without zones; find the columns that hold times and the
columns that name several series in one file.

Example::

    times, note = parse_times(df["date"])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlcore.errors import DataError

_N_EXAMPLES = 3
_MIN_SHARE_PARSED = 0.95  # time_columns: share of cells that must read as times
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


def in_time_order(frame: pd.DataFrame, time_col: str, id_col: str | None = None, share: float = 0.9) -> bool:
    """True when the file lists its times in order (rising or falling; within each series for a
    long file), as a series is written: at least ``share`` of the steps from one row to the next go
    the same way. A table of customers with their sign-up days lists them in any order.

    >>> frame = pd.DataFrame({"day": ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-05"]})
    >>> in_time_order(frame, "day"), in_time_order(frame.sort_values("day"), "day")
    (False, True)
    """
    times = pd.Series(_as_times(frame[time_col]).to_numpy(), index=frame.index)
    valid = times.notna()
    values = times[valid].astype("datetime64[ns]").astype("int64")
    groups = [values] if id_col is None else [g for _, g in values.groupby(frame.loc[valid, id_col].to_numpy(),
                                                                          sort=False)]
    steps = np.concatenate([np.sign(np.diff(g.to_numpy())) for g in groups if len(g) > 1] or [np.zeros(0)])
    steps = steps[steps != 0]
    return bool(steps.size and max((steps > 0).mean(), (steps < 0).mean()) >= share)


MAX_IDS = 1000  # distinct values for a column to be offered as the series id


