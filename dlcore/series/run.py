"""Execute a forecasting run: a rolling-origin backtest of a deep template and the baselines,
then the forecast after the last date, with prediction intervals.

Called by ``runner.execute_run`` for runs whose spec has a ``forecast`` part. For every
backtest window the deep model is trained afresh on the values before that window only (its
scaler too) and forecasts the window's whole horizon at once; the baselines do the same
through ``forecast.backtest``; one metric path scores all of them. The models that forecast
the future are then fitted on the whole series; their intervals come from the errors each
model made in the backtest, step by step ahead (empirical quantiles, see
``forecast.forecast_intervals``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from dlcore import base, evaluate
from dlcore.budget import longer_budget, still_improving
from dlcore.errors import DataError, RunError
from dlcore.series import backtest as fc
from dlcore.series import checks, frequency, leaderboard
from dlcore.series.templates import TEMPLATES
from dlcore.spec import RunSpec
from dlcore.store import EVALUATED as EVALUATED_STATUSES
from dlcore.store import Store, atomic_write
from dlcore.tables.reader import load_frame

__all__ = ["Panel", "MAX_SERIES", "ID_COLUMN", "NEEDS", "check", "epochs_per_fit", "epoch_in_fit", "fit_name",
           "score_upload", "load_series", "execute_forecast", "future_table", "forecast_frame",
           "series_ids", "load_backtest", "load_future", "VALIDATION_SHARE"]

VALIDATION_SHARE = 0.15  # of each fit's windows, the most recent, for early stopping
# Within a budget: seconds (and a share of the budget) kept for the end of the run (the future's
# table, saving, the board), and the share of the rest the lag baselines may use before the deep model.
END_TAIL, END_SHARE = 1.5, 0.03
BASELINE_SHARE = 0.2
# Backtested whatever the budget: the floor, and ridge on lags (a second or so, and often the one to
# beat: leaving it out to save that second would flatter the deep model).
ALWAYS_ON_BOARD = ("naive", "seasonal_naive", "ridge_lags")
MAX_SERIES = 100  # per run: every baseline is backtested on each series, one at a time


@dataclass
class Panel:
    """One series, or several with the same columns and frequency (a file with an id column),
    each regular and ready for the models: values hold the target first, then covariates.
    ``ids`` is ``[""]`` for a file with one series."""

    ids: list[str]
    times: list[pd.DatetimeIndex]
    values: list[np.ndarray]  # per series (n_i, 1 + covariates), float
    freq: frequency.Frequency
    settings: checks.Settings
    notes: list[str]
    id_col: str | None = None

    @property
    def n_steps(self) -> int:
        return int(sum(len(v) for v in self.values))


NEEDS = ("A forecast needs a table with a time column and a sequence template "
         f"({', '.join(t.title for t in TEMPLATES)}); choose both.")


def check(store: Store, spec: RunSpec, record: Any) -> None:
    """Read, fix and size the series now, so a bad date or a too-short series is said at once."""
    if spec.forecast is None:
        raise DataError(NEEDS)
    load_series(load_frame(store, record.id), spec)


def score_upload(store: Store, run: Any, model: str | None, content: bytes, name: str) -> base.Scored:
    """Newer values of the run's series (or new series): the forecast after the file's last date."""
    from dlcore.tables.reader import read_table

    frame, report = read_table(content, name=name)
    table = forecast_frame(store, run.id, frame, model)
    summary = base.ScoreSummary(n_rows=len(table), model=model or str(table["model"].iloc[0]))
    return base.Scored(table, summary, report.delimiter, report.decimal,
                       described=f"a {len(table)}-step forecast after {frame.shape[0]} rows")


def _settings(spec: RunSpec, freq: frequency.Frequency, lengths: list[int]) -> checks.Settings:
    """The spec's settings, with the ones it leaves open suggested from a typical series."""
    fs = spec.forecast
    try:
        suggested = checks.suggest_settings(freq, int(np.median(lengths)))
    except DataError:
        suggested = checks.suggest_settings(freq, max(lengths))  # most series are short: fit the longest
    return checks.Settings(
        horizon=fs.horizon or suggested.horizon,
        lookback=fs.lookback or suggested.lookback,
        season_length=fs.season_length or suggested.season_length,
        windows=fs.windows or suggested.windows,
        notes=suggested.notes if not (fs.horizon or fs.lookback or fs.windows) else (),
    )


def load_series(frame: pd.DataFrame, spec: RunSpec) -> Panel:
    """Check, fix and size the series as the spec says (the same steps for training and scoring).

    With an id column every series is regularised on its own; a series too short for the
    backtest is left out with a note (all of them too short: the error says what would fit).
    """
    fs, target = spec.forecast, spec.data.target
    id_col = fs.id_col
    covariates = [c for c in (spec.data.features or ()) if c not in (target, fs.time_col, id_col)]
    for col in [fs.time_col, target, *covariates, *([id_col] if id_col else [])]:
        if col not in frame.columns:
            raise DataError(f"The file has no column {col!r}; the columns are: "
                            f"{', '.join(map(repr, list(frame.columns)[:15]))}.")
    if id_col:
        n_ids = int(frame[id_col].nunique(dropna=False))
        if n_ids > MAX_SERIES:
            raise DataError(f"The column {id_col!r} names {n_ids:,} series; one run forecasts up to {MAX_SERIES}. "
                            "Filter the file to the series you need, or pick a coarser id column "
                            "(a region rather than a store).")
    clean, notes = checks.regularise(frame, fs.time_col, target, id_col, covariates=covariates,
                                 duplicates=fs.duplicates, gaps=fs.gaps, freq=fs.freq)
    freq = frequency.frequency_for(fs.freq) if fs.freq else frequency.infer_frequency(clean[fs.time_col])
    groups = ([(str(k), g) for k, g in clean.groupby(id_col, sort=False)] if id_col else [("", clean)])
    ids, times, values = [], [], []
    for sid, part in groups:
        v = part[[target, *covariates]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(v).any():
            bad = [c for c, n in zip([target, *covariates], np.isnan(v).sum(axis=0)) if n]
            raise DataError(f"The column(s) {', '.join(map(repr, bad))} still have values that are not numbers after "
                            "filling gaps. Use only numeric columns as the target and covariates.")
        ids.append(sid)
        times.append(pd.DatetimeIndex(part[fs.time_col]))
        values.append(v)
    settings = _settings(spec, freq, [len(v) for v in values])
    st = settings
    fits = [j for j, v in enumerate(values) if len(v) >= _needed(st)]
    if not fits:
        longest = int(np.argmax([len(v) for v in values]))
        checks.check_settings(len(values[longest]), st.horizon, st.lookback, st.windows, unit=freq.unit)
    if len(fits) < len(values):
        short = [ids[j] for j in range(len(ids)) if j not in fits]
        notes.append(f"Left out {len(short)} of {len(ids)} series shorter than the backtest needs "
                     f"({_needed(st)} {freq.unit}): {', '.join(short[:8])}{'…' if len(short) > 8 else ''}.")
    checks.check_settings(min(len(values[j]) for j in fits), st.horizon, st.lookback, st.windows, unit=freq.unit)
    return Panel([ids[j] for j in fits], [times[j] for j in fits], [values[j] for j in fits], freq, settings,
                 [*notes, *settings.notes], id_col)


def _needed(settings: checks.Settings) -> int:
    """The fewest steps a series needs for these settings' backtest."""
    return checks.needed_steps(settings.horizon, settings.lookback, settings.windows)


def _anchor(x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Make each window relative to its own last value of the target: the model learns how the
    series moves from where it stands, not where it stands. A trending series (CO₂, prices)
    leaves the range seen in training; relative windows keep it in range, as the lag
    baselines do with their changes from the last value. Returns the shifted copies and the anchors."""
    anchor = x[:, -1, 0].copy()
    x = x.copy()
    x[:, :, 0] -= anchor[:, None]
    return x, (y - anchor[:, None]) if y is not None else None, anchor


def _fit_windows(train: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, ...]:
    """Training and validation windows from scaled values, each relative to its last value;
    validation windows are the most recent ones, and no training window's targets reach into them."""
    x, y, _ = _anchor(*fc.make_windows(train, lookback, horizon))
    n_val = max(1, int(round(len(x) * VALIDATION_SHARE)))
    cut = len(x) - n_val - (horizon - 1)  # a gap: training targets end before validation targets start
    if cut < max(4, n_val):
        cut = len(x) - n_val  # a short series: accept the overlap rather than train on nothing
    return x[:cut], y[:cut], x[-n_val:], y[-n_val:]


def execute_forecast(store: Store, run_id: str, spec: RunSpec, say: Callable[[str], None]) -> None:
    """Backtest the deep template and the baselines on every series, then forecast after the last date.

    Several series (an id column) train one deep model on the windows of all of them, each
    series scaled by its own training part (a global model: it learns the shapes the series
    share); the baselines are fitted on each series alone. Every (series, window) pair is one
    unit of the leaderboard's interval and of the paired verdict.
    """
    import keras

    from dlcore.training import fit_deep, library_versions, make_store_callback

    clock = None
    if spec.train.budget is not None:  # baselines, a search, then the windows as folds, all within the budget
        from dlcore.budget import Clock

        # The budget counts from when the run started (the worker's import of Keras included).
        started_at = store.run(run_id).started_at
        clock = Clock(spec.train.budget, start=time.monotonic() - max(0.0, time.time() - (started_at or time.time())))
    store.update_run(run_id, phase="Preparing the series", versions=library_versions())
    frame = load_frame(store, spec.data.dataset_id)
    panel = load_series(frame, spec)
    st = panel.settings
    h, lookback, season = st.horizon, st.lookback, st.season_length
    values, times, ids = panel.values, panel.times, panel.ids
    splits = [fc.backtest_splits(len(v), h, st.windows, lookback) for v in values]
    fits = st.windows + 1  # one per backtest window, then one on the whole history, for the forecast
    found: dict[str, Any] | None = None
    budget_notes: list[str] = []  # what the budget cut short, said on the board, in the report and the card
    baseline_lookback = lookback  # the baselines keep the run's look-back whatever the search picks
    done_baselines: _Baselines | None = None
    end_tail = 0.0
    if clock is not None:
        from dlcore.series.search import floor_points, search_forecast

        store.update_run(run_id, task="forecast", metric="mase", higher_is_better=False)
        end_tail = END_TAIL + END_SHARE * clock.budget  # the future's table, saving, the board
        first_parts = [v[sp[0].train] for v, sp in zip(values, splits)]
        record = floor_points(store, run_id, spec, first_parts, h, lookback, season, clock, _fit_windows)
        if spec.baselines:  # first: they are the floor, and the deep model then has what they left
            say(f"series ready at {clock.elapsed():.1f} s")
            until = clock.elapsed() + BASELINE_SHARE * max(0.0, clock.left() - end_tail)
            done_baselines = _backtest_baselines(store, run_id, values, times, ids, splits, lookback, season, h,
                                                 clock, until, say)
            budget_notes += done_baselines.notes
        say(f"baselines done at {clock.elapsed():.1f} s of {clock.budget:.0f} s")
        found = search_forecast(store, run_id, spec, first_parts, h, lookback, season, st.windows, clock, end_tail,
                                _fit_windows, say, record=record)
        asked = spec.template
        spec = replace(spec, template=found["template"], train=found["train"])
        lookback = found["lookback"]
        if found["template"] != asked:  # the search chose another template: the run's model is that one
            store.update_run(run_id, template=found["template"])
    template = next(t for t in TEMPLATES if t.name == spec.template)
    epochs_total = fits * spec.train.epochs
    store.update_run(run_id, task="forecast", metric="mase", higher_is_better=False, epochs_total=epochs_total)
    several = f"{len(ids)} series, " if panel.id_col else ""
    say(f"{several}{panel.n_steps} steps ({panel.freq.words}), horizon {h}, look-back {lookback}, season {season}, "
        f"{st.windows} backtest windows; training {template.name}")

    fit_epochs: list[int] = []  # epochs each fit ran, in order: the backtest windows, then the final fit
    fit_cut: list[bool] = []  # whether the budget ended each fit before early stopping did
    info = base.InputInfo(window_shape=(lookback, values[0].shape[1]))
    running_epoch = [found["epochs"] if found else 0]  # within a budget: epochs numbered on across the fits

    def fit_deadline(fits_left: int) -> float:
        """A fit's share of what is left: the rest of the time, less the end, over the fits still to run."""
        assert clock is not None
        return clock.elapsed() + max(0.0, clock.budget - end_tail - clock.elapsed()) / max(1, fits_left)

    def train_on(parts: list[np.ndarray], label: str, deadline: float | None = None) -> tuple[Any, list[fc.Scaler], Any]:
        store.update_run(run_id, phase=f"Training {template.title}: {label}"
                         + (f" · {max(0.0, clock.left()):.0f} s left" if clock is not None else ""),
                         heartbeat_at=time.time())
        scalers = [fc.Scaler().fit(part) for part in parts]
        pieces = [_fit_windows(s.transform(part), lookback, h) for s, part in zip(scalers, parts)]
        x_tr, y_tr, x_val, y_val = (np.concatenate([p[i] for p in pieces]) for i in range(4))
        keras.utils.set_random_seed(spec.train.seed)
        model = template.build(spec.train, info, "forecast", h)
        if clock is not None and deadline is not None:
            # Within a budget: the fit ends at its deadline after the current batch (a watcher thread),
            # its epochs numbered on after the search's for the live chart.
            from dlcore.search import _trial_callback

            callback = _trial_callback(store, run_id, clock, None, lambda: deadline, "mae", 1.0, running_epoch)
        else:
            # Fit k numbers its epochs from k × epochs + 1, even when early stopping ended the fit
            # before it: the epochs table alone tells which fit an epoch belongs to (``epoch_in_fit``).
            callback = make_store_callback(store, run_id, "forecast", epochs_total,
                                           epoch_offset=len(fit_epochs) * spec.train.epochs
                                           + (found["epochs"] if found else 0))
        fit = fit_deep(model, "forecast", spec.train, x_tr, y_tr, x_val, y_val, callback)
        fit_epochs.append(fit.epochs_run)
        fit_cut.append(still_improving(bool(getattr(callback, "out_of_time", False)), fit.epochs_run, fit.best_epoch,
                                       spec.train.patience))
        if clock is not None:
            say(f"{label}: {fit.epochs_run} epoch(s) in {fit.fit_seconds:.1f} s"
                f"{', cut by the budget' if fit_cut[-1] else ''} (at {clock.elapsed():.1f} s)")
        if fit.nan_epoch is not None:
            raise RunError(f"Training became unstable ({label}): the loss turned into 'not a number'. Lower the "
                           f"learning rate (now {spec.train.learning_rate:g}) or use a smaller model, then run it again.")
        return model, scalers, fit

    deep_forecasts: list[np.ndarray] = []  # per window: (series, horizon)
    fit_seconds, epochs_run, stopped = 0.0, 0, False
    first_window = 0
    latest: tuple[Any, list[fc.Scaler]] | None = None  # the most recent window's model, for a budget too short to refit
    if found is not None and found.get("model") is not None:
        # The best trial learned from the first window's training part, scaled as a fit of that window
        # is: it is the first window's model (as a table's best trial is its first fold's), no refit.
        parts = [v[sp[0].train] for v, sp in zip(values, splits)]
        deep_forecasts.append(_predict(found["model"], found["scalers"], parts, lookback))
        fit_seconds += found["fit_seconds"]
        epochs_run += found["epochs_run"]
        fit_epochs.append(found["epochs_run"])
        fit_cut.append(found["cut"])
        first_window = 1
        latest = (found["model"], found["scalers"])
    skipped_windows = 0
    for k in range(first_window, st.windows):
        deadline = None
        if clock is not None:
            # A fit costs at least ``least`` (building, tracing, one epoch). The time left is shared among
            # the fits it can pay for (this window, the later ones, the final fit); when it cannot pay for
            # this window and the final fit, the backtest ends here and every model is compared on the
            # windows done.
            least = found["least_fit_seconds"] if found else 0.0
            fits_left = st.windows - k + 1
            affordable = int((clock.budget - end_tail - clock.elapsed()) // least) if least > 0 else fits_left
            if deep_forecasts and affordable < 2:
                skipped_windows = st.windows - k
                break
            deadline = fit_deadline(max(2, min(fits_left, affordable)))
        parts = [v[sp[k].train] for v, sp in zip(values, splits)]
        model, scalers, fit = train_on(parts, f"backtest window {k + 1} of {st.windows}", deadline)
        deep_forecasts.append(_predict(model, scalers, parts, lookback))
        latest = (model, scalers)
        fit_seconds += fit.fit_seconds
        epochs_run += fit.epochs_run
        if fit.stopped_by_user:
            stopped = True
            break
    if stopped or skipped_windows:  # evaluate only what every model did: the windows the deep model finished
        splits = [sp[:len(deep_forecasts)] for sp in splits]
    if skipped_windows:
        budget_notes.append(
            f"The time budget ({clock.budget:.0f} s) left room for {len(deep_forecasts)} of the {st.windows} backtest "
            f"windows of the deep model; every model is compared on {'that window' if len(deep_forecasts) == 1 else 'those windows'} only. "
            f"{longer_budget(clock.budget)}")
    results: dict[str, list[fc.BacktestResult]] = {spec.template: [
        fc.score_forecasts(np.stack([d[j] for d in deep_forecasts]), values[j], times[j], splits[j], season)
        for j in range(len(ids))]}
    families, seconds = {spec.template: "deep"}, {spec.template: fit_seconds}
    say(f"deep model: backtest in {fit_seconds:.1f}s" + (f" ({clock.elapsed():.1f} s of {clock.budget:.0f} s)" if clock else ""))

    future: dict[str, np.ndarray] = {}  # per model: (series, horizon)
    if done_baselines is not None:
        windows_done = len(splits[0])
        for name, rs in done_baselines.results.items():
            results[name] = [r if len(r.splits) == windows_done else
                             fc.score_forecasts(r.forecasts[:windows_done], values[j], times[j], splits[j], season)
                             for j, r in enumerate(rs)]
            seconds[name], families[name] = done_baselines.seconds[name], "baseline"
        future.update(done_baselines.future)
    elif spec.baselines:
        done_baselines = _backtest_baselines(store, run_id, values, times, ids, splits, baseline_lookback, season, h,
                                             None, None, say)
        results.update(done_baselines.results)
        seconds.update(done_baselines.seconds)
        families.update({name: "baseline" for name in done_baselines.results})
        future.update(done_baselines.future)

    # The future: the deep model fitted on the whole history (the baselines were, beside their backtest).
    folder = store.run_dir(run_id)
    scaler_state = None
    final_fit = not stopped
    if not stopped:
        least = found["least_fit_seconds"] if found else 0.0
        if clock is not None and latest is not None and clock.elapsed() + least > clock.budget - end_tail:
            # No time left to train on the whole history: the most recent window's model forecasts the
            # future (it read every value up to that window; its scaling is that part's).
            final, scalers = latest
            final_fit = False
            budget_notes.append(
                f"The time budget ({clock.budget:.0f} s) left no room to train the deep model once more on the "
                f"whole history: its forecast after the last date comes from the model of backtest window "
                f"{len(deep_forecasts)} of {st.windows}, which learned from the values before that window. "
                f"{longer_budget(clock.budget)}")
        else:
            final, scalers, fit = train_on(values, "the whole history, for the forecast",
                                           fit_deadline(1) if clock is not None else None)
        future[spec.template] = _predict(final, scalers, values, lookback)
        with atomic_write(folder / f"{spec.template}.keras") as tmp:
            final.save(tmp)
        scaler_state = {sid: {"mean": s.mean_.tolist(), "scale": s.scale_.tolist()} for sid, s in zip(ids, scalers)}
    if clock is not None and any(fit_cut):
        budget_notes.append(_cut_note(fit_cut, fit_epochs, st.windows, clock.budget, final_fit))
    future = {m: future[m] for m in results if m in future}  # the board's order: the deep model first
    tables = []
    for j, sid in enumerate(ids):
        table = future_table({m: future[m][j] for m in future}, {m: results[m][j].residuals for m in future},
                             panel.freq.future(times[j][-1], h), spec.forecast.interval)
        if panel.id_col:
            table.insert(0, ID_COLUMN, sid)
        tables.append(table)
    with atomic_write(folder / "forecast.csv") as tmp:
        pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
    _save_backtest(folder, results, ids, times, values)

    per_window = {m: {k: np.concatenate([r.per_window(k) for r in rs]).tolist() for k in fc.METRICS}
                  for m, rs in results.items()}
    n_points = int(sum(s.horizon for sp in splits for s in sp))
    board = leaderboard.forecast_leaderboard(per_window, families, seconds, n_points=n_points)
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({
            "kind": "series", "task": "forecast", "template": spec.template, "target_column": spec.data.target,
            "input_format": "window", "scalers": scaler_state,
            "input_info": {"window_shape": [lookback, int(values[0].shape[1])]},
            # The typical size of each series' target, to put the errors of several series on one scale.
            "target_scale": {sid: float(fc.Scaler().fit(v).scale_[0]) for sid, v in zip(ids, values)},
            "residuals": {m: {sid: r.residuals.tolist() for sid, r in zip(ids, rs)} for m, rs in results.items()},
        }))
    first, last = min(t[0] for t in times), max(t[-1] for t in times)
    result = {
        "leaderboard": board.to_dict(),
        "kind": "series",
        "classes": [],
        "rows": {"train": int(sum(sp[0].origin for sp in splits)), "validation": 0, "test": n_points,
                 "dropped_missing_target": 0},
        "series": {"time_col": spec.forecast.time_col, "target": spec.data.target,
                   "covariates": [c for c in (spec.data.features or ())], "n_steps": panel.n_steps,
                   "id_col": panel.id_col, "ids": ids, "n_series": len(ids),
                   "first": str(first), "last": str(last), "frequency": panel.freq.words,
                   "alias": panel.freq.alias, "horizon": h, "lookback": lookback, "season_length": season,
                   "baseline_lookback": baseline_lookback,
                   "windows": len(splits[0]), "origins": [str(times[0][s.origin]) for s in splits[0]],
                   "interval": spec.forecast.interval, "notes": panel.notes,
                   # Mean MASE per series and model: where the deep model wins and where it loses.
                   "per_series_mase": {m: [_mean(r.per_window("mase")) for r in rs] for m, rs in results.items()}},
        "warnings": [*panel.notes, *budget_notes],
        "deep": {"epochs_run": epochs_run, "best_epoch": None, "stopped_by_user": stopped,
                 "epoch_seconds_median": None, "fit_epochs": fit_epochs, "epochs_per_fit": spec.train.epochs,
                 **({"fit_cut_by_budget": fit_cut, "final_fit": final_fit} if clock is not None else {})},
        "models": {name: {"family": families[name], "fit_seconds": seconds[name]} for name in results},
    }
    if clock is not None:
        result["budget_notes"] = budget_notes
    if found is not None:
        _windows_as_folds(board, results, families, found, result, clock, h, splits, len(ids), spec)
    deep_row = next(r for r in board.rows if r.model == spec.template)
    status = "stopped" if stopped else "done"
    store.update_run(run_id, status=status, finished_at=time.time(), result=result, test_score=deep_row.test_score,
                     progress=1.0, phase="Stopped early by request; evaluated" if stopped
                     else "Finished" if clock is None else f"Finished in {clock.elapsed():.0f} s of {clock.budget:.0f} s")
    say(f"{status}: MASE {deep_row.test_score:.4f}")


@dataclass
class _Baselines:
    """The baselines' backtest per model and series, their seconds, their forecast of the future, and
    the notes on what a budget left out."""

    results: dict[str, list[fc.BacktestResult]]
    seconds: dict[str, float]
    future: dict[str, np.ndarray]
    notes: list[str]


def _backtest_baselines(store: Store, run_id: str, values: list[np.ndarray], times: list[pd.DatetimeIndex],
                        ids: list[str], splits: list[list[fc.Split]], lookback: int, season: int, h: int,
                        clock: Any, until: float | None, say: Callable[[str], None]) -> _Baselines:
    """Backtest every baseline on every series (one fresh fit per window, as ``fc.backtest``), then fit
    each on the whole history for the future.

    With a clock, a lag baseline whose fits would run past ``until`` (judged from its own first fits) is
    left out with a note; the naive and seasonal naive, which take no time, are always on the board."""
    out = _Baselines({}, {}, {}, [])
    for name, factory in fc.baselines(lookback, season).items():
        started = time.perf_counter()
        units = len(ids) * (len(splits[0]) + 1)  # every window of every series, then the future of each
        done, left_out = 0, False
        per_series: list[fc.BacktestResult] = []
        points: list[np.ndarray] = []

        def over() -> bool:
            if clock is None or until is None or name in ALWAYS_ON_BOARD:
                return False
            per_unit = (time.perf_counter() - started) / done if done else 0.0
            return clock.elapsed() + per_unit * (units - done) > until

        for j in range(len(ids)):
            store.update_run(run_id, phase=f"Backtesting baseline: {evaluate.display_name(name)}"
                             + (f" (series {j + 1} of {len(ids)})" if len(ids) > 1 else "")
                             + (f" · {max(0.0, clock.left()):.0f} s left" if clock is not None else ""),
                             heartbeat_at=time.time(), **({"step_started_at": time.time()} if j == 0 else {}))
            forecasts = []
            for s in splits[j]:
                if over():
                    left_out = True
                    break
                model = factory().fit(values[j][s.train].copy(), times[j][s.train])
                forecasts.append(np.asarray(model.predict(s.horizon), dtype="float64").reshape(-1))
                done += 1
            if left_out or over():
                left_out = True
                break
            per_series.append(fc.score_forecasts(np.stack(forecasts), values[j], times[j], splits[j], season))
            points.append(np.asarray(factory().fit(values[j].copy(), times[j]).predict(h), dtype=np.float64))
            done += 1
        seconds = time.perf_counter() - started
        if left_out:
            assert clock is not None
            title = evaluate.display_name(name).capitalize()
            if done:
                need = seconds / done * units
                why = (f"its backtest would have taken about {need:.0f} s, more than the baselines' share of the "
                       f"{clock.budget:.0f} s budget ({done} of {units} fits done)")
            else:
                why = f"the baselines' share of the {clock.budget:.0f} s budget was spent before it could start"
            out.notes.append(f"{title} was left off the board: {why}. {longer_budget(clock.budget)}")
            say(f"baseline {name}: left out ({why})")
            continue
        out.results[name], out.seconds[name] = per_series, seconds
        out.future[name] = np.stack(points)
        say(f"baseline {name}: MASE {np.nanmean([r.overall['mase'] for r in per_series]):.3f} ({seconds:.1f} s)")
    return out


def _cut_note(cut: list[bool], epochs: list[int], windows: int, budget: float, final_fit: bool = True) -> str:
    """The warning for a deep model the budget stopped before it stopped improving: ``cut`` and
    ``epochs`` per fit (the backtest windows done, then the final fit when there was one), of
    ``windows`` planned."""
    n_windows = len(cut) - (1 if final_fit else 0)
    names = [f"backtest window {k} of {windows}" for k in range(1, n_windows + 1)] + (["final fit"] if final_fit else [])
    which = [f"{n} after {e} epoch{'s' if e != 1 else ''}" for n, e, c in zip(names, epochs, cut) if c]
    return (f"The time budget ({budget:.0f} s) stopped {len(which)} of the deep model's {len(cut)} fits before they "
            f"stopped improving ({', '.join(which)}): the deep model is likely under-trained, and its scores "
            f"understate what it can do. {longer_budget(budget)}")


def _windows_as_folds(board: Any, results: dict[str, list[fc.BacktestResult]], families: dict[str, str],
                      found: dict[str, Any], result: dict[str, Any], clock: Any, h: int, splits: list, n_series: int,
                      spec: RunSpec) -> None:
    """A forecast within a budget: each row's cross-validated MASE over the backtest windows (the
    mean over the series of each window's MASE) with the fold interval; the search in the result."""
    from dlcore.folds import fold_interval
    from dlcore.search import best_words
    from dlcore.series.search import SPACE_WORDS, window_cv

    windows = len(splits[0])
    held = float(np.mean([s.horizon / (s.origin + s.horizon) for sp in splits for s in sp]))
    for row in board.rows:
        per = np.concatenate([r.per_window("mase") for r in results[row.model]])
        folds = window_cv(per, n_series, windows)
        present = [v for v in folds if v is not None]
        row.cv_folds = folds
        row.cv_score = float(np.mean(present)) if present else None
        row.cv_ci = fold_interval(present, held) if len(present) > 1 else None
        row.trials = found["trials"] if families[row.model] == "deep" else 1
        row.search_seconds = round(found["seconds"], 2) if families[row.model] == "deep" else None
    result["leaderboard"] = board.to_dict()
    result["search"] = {
        "budget_s": clock.budget, "k_folds": windows, "repeats": 1, "validation": "backtest windows",
        "folds": [{"repeat": 0, "index": k, "fit_rows": int(splits[0][k].origin), "held_rows": int(h)}
                  for k in range(windows)],
        "space": {spec.template: SPACE_WORDS, **{m: "none (fitted per window)" for m in families if families[m] == "baseline"}},
        "chosen": {spec.template: {"params": found["params"], "words": best_words(found["params"])},
                   **{m: {"params": {}, "words": "its defaults"} for m in families if families[m] == "baseline"}},
        "trials": {m: (found["trials"] if families[m] == "deep" else 1) for m in families},
        "pruned": found.get("pruned", 0), "stopped_early": bool(found.get("stopped")),
    }
    result["budget_s"] = clock.budget
    result["elapsed_s"] = round(clock.elapsed(), 2)


ID_COLUMN = "series"  # the column naming each series in forecast.csv (renamed to the id column on the way out)


def epochs_per_fit(run: Any) -> int | None:
    """How many epochs each fit of a forecasting run numbers (its spec's epochs), or None for a
    run finished by a version that numbered the fits' epochs on, one after the other."""
    deep = (run.result or {}).get("deep") or {}
    if deep.get("epochs_per_fit"):
        return int(deep["epochs_per_fit"])
    if run.status in EVALUATED_STATUSES:
        return None
    return int(run.spec["train"]["epochs"])


def epoch_in_fit(epoch: int, per_fit: int) -> tuple[int, int]:
    """The fit (from 1) and the epoch within it of a forecasting run's epoch number.

    >>> epoch_in_fit(43, 40)   # the second fit's third epoch
    (2, 3)
    """
    return (epoch - 1) // per_fit + 1, (epoch - 1) % per_fit + 1


def fit_name(fit: int, n_fits: int) -> str:
    """'Backtest 2 of 3' for a backtest window's fit; 'Final fit' for the last, on the whole history."""
    return "Final fit" if fit >= n_fits else f"Backtest {fit} of {n_fits - 1}"


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _predict(model: Any, scalers: list[fc.Scaler], histories: list[np.ndarray], lookback: int) -> np.ndarray:
    """The next horizon after each history, in each series' own units: ``(series, horizon)``."""
    windows, anchors = [], []
    for scaler, history in zip(scalers, histories):
        window, _, anchor = _anchor(fc.last_window(scaler.transform(history), lookback))
        windows.append(window)
        anchors.append(anchor[0])
    out = fc.eager_predict(model, np.concatenate(windows))
    return np.stack([s.inverse_column(out[j] + anchors[j], 0) for j, s in enumerate(scalers)])


def future_table(points: dict[str, np.ndarray], residuals: dict[str, np.ndarray], times: pd.DatetimeIndex,
                 level: float) -> pd.DataFrame:
    """One row per future step and model: the forecast and its interval from backtest errors."""
    frames = []
    for model, point in points.items():
        lower, upper = fc.forecast_intervals(residuals[model], point, level)
        frames.append(pd.DataFrame({"time": times, "model": model, "forecast": point,
                                    f"lower {level:.0%}": lower, f"upper {level:.0%}": upper}))
    return pd.concat(frames, ignore_index=True)


def _save_backtest(folder: Any, results: dict[str, list[fc.BacktestResult]], ids: list[str],
                   times: list[pd.DatetimeIndex], values: list[np.ndarray]) -> None:
    """Each model's forecasts for each backtest window beside the actual values, and each
    series as the models saw it, under ``s{j}_`` (no pickle)."""
    def stamps(t: Any) -> np.ndarray:
        return np.asarray(t).astype("datetime64[ns]").astype(np.int64)

    arrays: dict[str, np.ndarray] = {"names": np.array(list(results), dtype=np.str_),
                                     "series_ids": np.array(ids, dtype=np.str_)}
    for j in range(len(ids)):
        first = next(iter(results.values()))[j]
        arrays.update({f"s{j}_actuals": first.actuals, f"s{j}_times": stamps(first.times),
                       f"s{j}_history": np.asarray(values[j][:, 0], dtype=np.float64),
                       f"s{j}_history_times": stamps(times[j].to_numpy())})
        for i, rs in enumerate(results.values()):
            arrays[f"s{j}_model_{i}"] = rs[j].forecasts
    with atomic_write(folder / "backtest.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def _saved_by_series(meta: dict[str, Any], model: str) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """The deep model's scaler per series and ``model``'s backtest errors per series, from
    preprocess.json (also as written before runs could hold several series)."""
    scalers = meta.get("scalers", {"": meta["scaler"]} if meta.get("scaler") else None)
    residuals = meta["residuals"][model]
    if isinstance(residuals, list):
        residuals = {"": residuals}
    return scalers, {sid: np.asarray(r, dtype=np.float64) for sid, r in residuals.items()}


def forecast_frame(store: Store, run_id: str, frame: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    """The forecast after the last date of ``frame`` (the training file, or the same series
    with newer values) by one model of a finished run, with its interval.

    The deep model is the run's final model (trained on its whole history) reading the last
    look-back window of each series; a baseline is refitted on ``frame`` (they learn in
    seconds). The interval is built from the errors the model made on that series in the
    run's backtest; a series the run has not seen (a new id) gets its scaling from its own
    history and the errors of all series, each put on the scale of its series.
    """
    from dataclasses import replace

    from dlcore.outputs import best_model, check_model
    from dlcore.store import EVALUATED

    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; only a finished run can forecast.")
    if (run.result or {}).get("kind") != "series":
        raise DataError(f"Run {run_id!r} is not a forecast; score a table or images with it instead.")
    model = model or best_model(run.result)
    check_model(run, model)
    spec = RunSpec.from_dict(run.spec)
    info = run.result["series"]
    spec = replace(spec, forecast=replace(spec.forecast, horizon=info["horizon"], lookback=info["lookback"],
                                          season_length=info["season_length"], windows=1))
    panel = load_series(frame, spec)
    h, lookback = info["horizon"], info["lookback"]
    folder = store.run_dir(run_id)
    meta = json.loads((folder / "preprocess.json").read_text())
    saved_scalers, residuals = _saved_by_series(meta, model)
    scales = meta.get("target_scale", {})
    unit_errors = [r / scales[sid] for sid, r in residuals.items() if scales.get(sid)]
    if model == run.template:
        import keras

        if saved_scalers is None:
            raise RunError("This run was stopped before its final model was trained; use one of its baselines, "
                           "or rerun it to the end.")
        keras_model = keras.saving.load_model(folder / f"{model}.keras", safe_mode=True)
        scalers = []
        for sid, v in zip(panel.ids, panel.values):
            scaler = fc.Scaler()
            if sid in saved_scalers:
                scaler.mean_ = np.asarray(saved_scalers[sid]["mean"])
                scaler.scale_ = np.asarray(saved_scalers[sid]["scale"])
            else:
                scaler.fit(v)
            if v.shape[1] != len(scaler.mean_):
                raise DataError("The file does not have the columns the model was trained on; use the same columns.")
            scalers.append(scaler)
        points = _predict(keras_model, scalers, panel.values, lookback)
    else:
        factory = fc.baselines(int(info.get("baseline_lookback", lookback)), info["season_length"])[model]
        points = np.stack([np.asarray(factory().fit(v.copy(), t).predict(h), dtype=np.float64)
                           for v, t in zip(panel.values, panel.times)])
    tables = []
    for j, (sid, v, t) in enumerate(zip(panel.ids, panel.values, panel.times)):
        if sid in residuals:
            errors = residuals[sid]
        elif unit_errors:  # a series the run has not seen: the errors of all, on this series' scale
            errors = np.concatenate(unit_errors) * float(fc.Scaler().fit(v).scale_[0])
        else:
            errors = np.concatenate(list(residuals.values()))
        table = future_table({model: points[j]}, {model: errors}, panel.freq.future(t[-1], h), info["interval"])
        if panel.id_col:
            table.insert(0, panel.id_col, sid)
        tables.append(table)
    return pd.concat(tables, ignore_index=True).rename(columns={"time": info["time_col"]})


def series_ids(store: Store, run_id: str) -> list[str]:
    """The series of a forecasting run, as its backtest saved them (``[""]`` for one series)."""
    with np.load(store.run_dir(run_id) / "backtest.npz", allow_pickle=False) as data:
        return [str(s) for s in data["series_ids"]] if "series_ids" in data else [""]


def load_backtest(store: Store, run_id: str, series: str | None = None) -> dict[str, Any]:
    """What ``_save_backtest`` wrote for one series (the first unless ``series`` names one):
    ``history`` and ``history_times``, ``window_times`` and ``actuals`` ``(windows, horizon)``,
    and ``forecasts`` per model."""
    with np.load(store.run_dir(run_id) / "backtest.npz", allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        prefix = ""
        if "series_ids" in data:
            ids = [str(s) for s in data["series_ids"]]
            prefix = f"s{ids.index(series) if series in ids else 0}_"
        return {
            "history": data[f"{prefix}history"],
            "history_times": pd.DatetimeIndex(data[f"{prefix}history_times"].astype("datetime64[ns]")),
            "window_times": data[f"{prefix}times"].astype("datetime64[ns]"),
            "actuals": data[f"{prefix}actuals"],
            "forecasts": {name: data[f"{prefix}model_{i}"] for i, name in enumerate(names)},
        }


def load_future(store: Store, run_id: str) -> pd.DataFrame:
    """The forecast after the last date, every model (and series), as the run saved it."""
    return pd.read_csv(store.run_dir(run_id) / "forecast.csv", parse_dates=["time"],
                       dtype={ID_COLUMN: "string"})
