"""Check and fix a series: gaps and duplicate times found and filled as the analyst chooses, one
row per regular step per series, said in plain words; forecasting settings (horizon, look-back,
season, backtest windows) suggested from the frequency and checked against the length.

Example::

    report = check_series(df, "date", "sales")           # report.notes, report.gaps ...
    clean, notes = regularise(df, "date", "sales", duplicates="sum", gaps="zero")
    settings = suggest_settings(report.frequency, report.n_steps)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import DataError, SpecError
from dlcore.series.frequency import Frequency, _infer, frequency_for
from dlcore.series.times import _N_EXAMPLES, parse_times

DUPLICATE_FIXES = ("mean", "sum", "last")
GAP_FIXES = ("interpolate", "ffill", "zero")
# The earliest backtest origin must leave at least this many (look-back, horizon) training
# examples; fewer and no model, not even ridge regression, has anything to learn from.
MIN_TRAIN_WINDOWS = 10


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


