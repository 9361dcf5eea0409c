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
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from dlcore import datasets, evaluate, templates
from dlcore import forecast as fc
from dlcore.data import timeseries as ts
from dlcore.errors import DataError, RunError
from dlcore.spec import RunSpec
from dlcore.store import Store, atomic_write

__all__ = ["Series", "load_series", "execute_forecast", "future_table", "forecast_frame", "load_backtest", "load_future", "VALIDATION_SHARE"]

VALIDATION_SHARE = 0.15  # of each fit's windows, the most recent, for early stopping


@dataclass
class Series:
    """One regular series, ready for the models: values (target first, then covariates)."""

    times: pd.DatetimeIndex
    values: np.ndarray  # (n, 1 + covariates), float
    freq: ts.Frequency
    settings: ts.Settings
    notes: list[str]


def load_series(frame: pd.DataFrame, spec: RunSpec) -> Series:
    """Check, fix and size the series as the spec says (the same steps for training and scoring)."""
    fs, target = spec.forecast, spec.data.target
    covariates = [c for c in (spec.data.features or ()) if c not in (target, fs.time_col)]
    for col in [fs.time_col, target, *covariates]:
        if col not in frame.columns:
            raise DataError(f"The file has no column {col!r}; the columns are: "
                            f"{', '.join(map(repr, list(frame.columns)[:15]))}.")
    clean, notes = ts.regularise(frame, fs.time_col, target, None, covariates=covariates,
                                 duplicates=fs.duplicates, gaps=fs.gaps, freq=fs.freq)
    times = pd.DatetimeIndex(clean[fs.time_col])
    freq = ts.frequency_for(fs.freq) if fs.freq else ts.infer_frequency(clean[fs.time_col])
    values = clean[[target, *covariates]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        bad = [c for c, n in zip([target, *covariates], np.isnan(values).sum(axis=0)) if n]
        raise DataError(f"The column(s) {', '.join(map(repr, bad))} still have values that are not numbers after "
                        "filling gaps. Use only numeric columns as the target and covariates.")
    suggested = ts.suggest_settings(freq, len(values))
    settings = ts.Settings(
        horizon=fs.horizon or suggested.horizon,
        lookback=fs.lookback or suggested.lookback,
        season_length=fs.season_length or suggested.season_length,
        windows=fs.windows or suggested.windows,
        notes=suggested.notes if not (fs.horizon or fs.lookback or fs.windows) else [],
    )
    ts.check_settings(len(values), settings.horizon, settings.lookback, settings.windows, unit=freq.unit)
    return Series(times, values, freq, settings, [*notes, *settings.notes])


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
    import keras

    from dlcore.runner import library_versions
    from dlcore.train import fit_deep, make_store_callback

    template = templates.get(spec.template)
    store.update_run(run_id, phase="Preparing the series", versions=library_versions())
    frame = datasets.load_frame(store, spec.data.dataset_id)
    series = load_series(frame, spec)
    st = series.settings
    h, lookback, season = st.horizon, st.lookback, st.season_length
    values, times = series.values, series.times
    splits = fc.backtest_splits(len(values), h, st.windows, lookback)
    fits = len(splits) + 1  # one per backtest window, then one on the whole series
    store.update_run(run_id, task="forecast", metric="mase", higher_is_better=False,
                     epochs_total=fits * spec.train.epochs)
    say(f"{len(values)} steps ({series.freq.words}), horizon {h}, look-back {lookback}, season {season}, "
        f"{len(splits)} backtest windows; training {template.name}")

    epochs_total = fits * spec.train.epochs
    offset = 0
    info = templates.InputInfo(window_shape=(lookback, values.shape[1]))

    def train_on(part: np.ndarray, label: str) -> tuple[Any, fc.Scaler, Any]:
        nonlocal offset
        store.update_run(run_id, phase=f"Training {template.title}: {label}", heartbeat_at=time.time())
        scaler = fc.Scaler().fit(part)
        x_tr, y_tr, x_val, y_val = _fit_windows(scaler.transform(part), lookback, h)
        keras.utils.set_random_seed(spec.train.seed)
        model = template.build(spec.train, info, "forecast", h)
        callback = make_store_callback(store, run_id, "forecast", epochs_total, epoch_offset=offset)
        fit = fit_deep(model, "forecast", spec.train, x_tr, y_tr, x_val, y_val, callback)
        offset += fit.epochs_run
        if fit.nan_epoch is not None:
            raise RunError(f"Training became unstable ({label}): the loss turned into 'not a number'. Lower the "
                           f"learning rate (now {spec.train.learning_rate:g}) or use a smaller model, then run it again.")
        return model, scaler, fit

    def forecast_from(model: Any, scaler: fc.Scaler, history: np.ndarray) -> np.ndarray:
        return _predict(model, scaler, history, lookback)

    deep_forecasts, fit_seconds, epochs_run, stopped = [], 0.0, 0, False
    for i, split in enumerate(splits, start=1):
        model, scaler, fit = train_on(values[split.train], f"backtest window {i} of {len(splits)}")
        deep_forecasts.append(forecast_from(model, scaler, values[split.train]))
        fit_seconds += fit.fit_seconds
        epochs_run += fit.epochs_run
        if fit.stopped_by_user:
            stopped = True
            break
    if stopped:  # evaluate only what every model did: the windows the deep model finished
        splits = splits[:len(deep_forecasts)]
    results = {spec.template: fc.score_forecasts(np.stack(deep_forecasts), values, times, splits, season)}
    families, seconds = {spec.template: "deep"}, {spec.template: fit_seconds}
    say(f"deep model: backtest in {fit_seconds:.1f}s")

    if spec.baselines:
        for name, factory in fc.baselines(lookback, season).items():
            store.update_run(run_id, phase=f"Backtesting baseline: {evaluate.display_name(name)}", heartbeat_at=time.time())
            started = time.perf_counter()
            results[name] = fc.backtest(factory, values, times, splits, season)
            seconds[name], families[name] = time.perf_counter() - started, "baseline"
            say(f"baseline {name}: MASE {results[name].overall['mase']:.3f}")

    # The future: every model fitted on the whole series.
    future_times = series.freq.future(times[-1], h)
    folder = store.run_dir(run_id)
    future: dict[str, np.ndarray] = {}
    if not stopped:
        final, scaler, fit = train_on(values, "the whole series, for the forecast")
        future[spec.template] = forecast_from(final, scaler, values)
        with atomic_write(folder / f"{spec.template}.keras") as tmp:
            final.save(tmp)
        scaler_state = {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}
    else:
        scaler_state = None
    for name in families:
        if families[name] == "baseline":
            future[name] = np.asarray(fc.baselines(lookback, season)[name]().fit(values.copy(), times).predict(h),
                                      dtype=np.float64)
    table = future_table(future, {m: results[m].residuals for m in future}, future_times, spec.forecast.interval)
    with atomic_write(folder / "forecast.csv") as tmp:
        table.to_csv(tmp, index=False)
    _save_backtest(folder, results, times, values[:, 0])

    per_window = {m: {k: r.per_window(k).tolist() for k in fc.METRICS} for m, r in results.items()}
    board = evaluate.forecast_leaderboard(per_window, families, seconds,
                                          n_points=int(sum(s.horizon for s in splits)))
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({
            "kind": "series", "task": "forecast", "template": spec.template, "target_column": spec.data.target,
            "input_format": "window", "scaler": scaler_state,
            "input_info": {"window_shape": [lookback, int(values.shape[1])]},
            "residuals": {m: results[m].residuals.tolist() for m in results},
        }))
    result = {
        "leaderboard": board.to_dict(),
        "kind": "series",
        "classes": [],
        "rows": {"train": int(splits[0].origin), "validation": 0, "test": int(sum(s.horizon for s in splits)),
                 "dropped_missing_target": 0},
        "series": {"time_col": spec.forecast.time_col, "target": spec.data.target,
                   "covariates": [c for c in (spec.data.features or ())], "n_steps": int(len(values)),
                   "first": str(times[0]), "last": str(times[-1]), "frequency": series.freq.words,
                   "alias": series.freq.alias, "horizon": h, "lookback": lookback, "season_length": season,
                   "windows": len(splits), "origins": [str(times[s.origin]) for s in splits],
                   "interval": spec.forecast.interval, "notes": series.notes},
        "warnings": series.notes,
        "deep": {"epochs_run": epochs_run, "best_epoch": None, "stopped_by_user": stopped,
                 "epoch_seconds_median": None},
        "models": {name: {"family": families[name], "fit_seconds": seconds[name]} for name in results},
    }
    deep_row = next(r for r in board.rows if r.model == spec.template)
    status = "stopped" if stopped else "done"
    store.update_run(run_id, status=status, finished_at=time.time(), result=result, test_score=deep_row.test_score,
                     progress=1.0, phase="Stopped early by request; evaluated" if stopped else "Finished")
    say(f"{status}: MASE {deep_row.test_score:.4f}")


def _predict(model: Any, scaler: fc.Scaler, history: np.ndarray, lookback: int) -> np.ndarray:
    """The next horizon after ``history``, in the series' own units."""
    window, _, anchor = _anchor(fc.last_window(scaler.transform(history), lookback))
    return scaler.inverse_column(model.predict(window, verbose=0)[0] + anchor[0], 0)


def future_table(points: dict[str, np.ndarray], residuals: dict[str, np.ndarray], times: pd.DatetimeIndex,
                 level: float) -> pd.DataFrame:
    """One row per future step and model: the forecast and its interval from backtest errors."""
    frames = []
    for model, point in points.items():
        lower, upper = fc.forecast_intervals(residuals[model], point, level)
        frames.append(pd.DataFrame({"time": times, "model": model, "forecast": point,
                                    f"lower {level:.0%}": lower, f"upper {level:.0%}": upper}))
    return pd.concat(frames, ignore_index=True)


def _save_backtest(folder: Any, results: dict[str, fc.BacktestResult], times: pd.DatetimeIndex,
                   history: np.ndarray) -> None:
    """Each model's forecasts for each backtest window beside the actual values, and the
    series as the models saw it (no pickle)."""
    first = next(iter(results.values()))
    arrays = {"actuals": first.actuals, "times": first.times.astype("datetime64[ns]").astype(np.int64),
              "names": np.array(list(results), dtype=np.str_),
              "history": np.asarray(history, dtype=np.float64),
              "history_times": times.to_numpy().astype("datetime64[ns]").astype(np.int64)}
    for i, r in enumerate(results.values()):
        arrays[f"model_{i}"] = r.forecasts
    with atomic_write(folder / "backtest.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def forecast_frame(store: Store, run_id: str, frame: pd.DataFrame, model: str | None = None) -> pd.DataFrame:
    """The forecast after the last date of ``frame`` (the training file, or the same series
    with newer values) by one model of a finished run, with its interval.

    The deep model is the run's final model (trained on its whole series) reading the last
    look-back window of ``frame``; a baseline is refitted on ``frame`` (they learn in seconds).
    The interval is built from the errors the model made in the run's backtest.
    """
    from dataclasses import replace

    from dlcore.scoring import best_model, check_model
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
    series = load_series(frame, spec)
    h, lookback = info["horizon"], info["lookback"]
    folder = store.run_dir(run_id)
    meta = json.loads((folder / "preprocess.json").read_text())
    if model == run.template:
        import keras

        if meta.get("scaler") is None:
            raise RunError("This run was stopped before its final model was trained; use one of its baselines, "
                           "or rerun it to the end.")
        keras_model = keras.saving.load_model(folder / f"{model}.keras", safe_mode=True)
        scaler = fc.Scaler()
        scaler.mean_, scaler.scale_ = np.asarray(meta["scaler"]["mean"]), np.asarray(meta["scaler"]["scale"])
        if series.values.shape[1] != len(scaler.mean_):
            raise DataError("The file does not have the columns the model was trained on; use the same columns.")
        point = _predict(keras_model, scaler, series.values, lookback)
    else:
        factory = fc.baselines(lookback, info["season_length"])[model]
        point = np.asarray(factory().fit(series.values.copy(), series.times).predict(h), dtype=np.float64)
    residuals = np.asarray(meta["residuals"][model], dtype=np.float64)
    table = future_table({model: point}, {model: residuals}, series.freq.future(series.times[-1], h), info["interval"])
    return table.rename(columns={"time": info["time_col"]})


def load_backtest(store: Store, run_id: str) -> dict[str, Any]:
    """What ``_save_backtest`` wrote: ``history`` and ``history_times``, ``window_times`` and
    ``actuals`` ``(windows, horizon)``, and ``forecasts`` per model."""
    with np.load(store.run_dir(run_id) / "backtest.npz", allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        return {
            "history": data["history"],
            "history_times": pd.DatetimeIndex(data["history_times"].astype("datetime64[ns]")),
            "window_times": data["times"].astype("datetime64[ns]"),
            "actuals": data["actuals"],
            "forecasts": {name: data[f"model_{i}"] for i, name in enumerate(names)},
        }


def load_future(store: Store, run_id: str) -> pd.DataFrame:
    """The forecast after the last date, every model, as the run saved it."""
    return pd.read_csv(store.run_dir(run_id) / "forecast.csv", parse_dates=["time"])
