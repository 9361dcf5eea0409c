"""The frequency of a series (hourly to yearly, business days, month ends...), inferred from its
times even with gaps and several series in one file, and described in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from dlcore.errors import DataError, SpecError
from dlcore.series.times import _as_times

_MIN_SHARE_REGULAR = 0.9  # infer_frequency: share of steps that must fit the grid
_DAY = pd.Timedelta(days=1)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WEEKDAY_CODES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTH_CODES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

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


