"""A forecast within a time budget: a search for the look-back, the template and the learning
rate, then the backtest windows as the folds.

The search (Optuna, seeded TPE, the median pruner after a few epochs, as ``dlcore.search``)
trains each trial on the training part of the first backtest window and scores it on that
part's own most recent windows (the validation windows of ``_fit_windows``), never on a
backtest window: the windows stay an honest measure. The first trial is the run's own
settings. The best trial is the first window's model (it learned from exactly that window's
training part), so the search keeps back the time the rest needs: one fit per later window and
one on the whole history, each about as long as the best trial; the first trial gets an equal
share of the time with those fits, and every fit stops at its deadline after the current batch. Every
model's cross-validated score is its mean over the windows, with the fold interval; the naive
and seasonal naive are backtested whatever the search finds.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from dlcore import base
from dlcore.budget import Clock, still_improving
from dlcore.search import MAX_EPOCHS, TRIAL_SHARE, Trial, _Record, _say_progress, _study, _trial_callback, best_words
from dlcore.series import backtest as fc
from dlcore.series.templates import TEMPLATES
from dlcore.spec import RunSpec
from dlcore.store import Store

__all__ = ["lookback_choices", "forecast_space", "floor_points", "search_forecast", "window_cv", "SPACE_WORDS"]

SPACE_WORDS = "template (LSTM, GRU, 1-D CNN), look-back (the suggested one, half of it, one season), learning rate 3e-4-1e-2"


def lookback_choices(lookback: int, season: int | None) -> list[int]:
    """The look-backs the search may try: the run's, half of it and one season, never longer than
    the run's (its backtest was checked for that length)."""
    out = {lookback, max(2, lookback // 2)}
    if season and 2 <= season <= lookback:
        out.add(int(season))
    return sorted(out)


def forecast_space(trial: Any, lookbacks: list[int]) -> tuple[str, int, float]:
    """One trial's template, look-back and learning rate."""
    return (trial.suggest_categorical("template", [t.name for t in TEMPLATES]),
            int(trial.suggest_categorical("lookback", lookbacks)),
            trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True))


def window_cv(per_window: list[float], n_series: int, windows: int) -> list[float | None]:
    """One score per backtest window: the mean over the series of that window's score (the
    per-window list runs series by series, each window oldest first)."""
    values = np.asarray(per_window, dtype=float).reshape(n_series, windows)
    out: list[float | None] = []
    for k in range(windows):
        col = values[:, k][np.isfinite(values[:, k])]
        out.append(float(col.mean()) if col.size else None)
    return out


def floor_points(store: Store, run_id: str, spec: RunSpec, parts: list[np.ndarray], horizon: int, lookback: int,
                 season: int | None, clock: Clock, fit_windows: Callable[..., tuple[np.ndarray, ...]]) -> Any:
    """The search's record, started with the naive and seasonal naive forecasts scored as a trial is:
    on the validation windows of the first backtest window's training part, scaled and relative to each
    window's last value as the deep model sees them. They cost nothing, so the trials chart has points
    within a second of the series being read, while the baselines' backtest runs before the first deep
    trial (a forecast's first point once came 75 s after Train). Returns the record for ``search_forecast``."""
    record = _Record(store, run_id, clock, float(spec.train.budget), "mase", "validation MAE (scaled)", False)
    t0 = time.perf_counter()
    pieces = [fit_windows(fc.Scaler().fit(p).transform(p), lookback, horizon) for p in parts]
    x_val, y_val = np.concatenate([p[2] for p in pieces]), np.concatenate([p[3] for p in pieces])
    guesses = {"naive": np.zeros_like(y_val)}  # relative to the last value: "no change"
    if season and 2 <= season <= lookback:  # the same step one season before, from the window itself
        guesses["seasonal_naive"] = x_val[:, lookback - season + (np.arange(horizon) % season), 0]
    for name, guess in guesses.items():
        value = float(np.mean(np.abs(guess - y_val)))
        record.add(Trial(name, "baseline", 0, "complete" if math.isfinite(value) else "failed",
                         value if math.isfinite(value) else None, clock.elapsed(), time.perf_counter() - t0, {}))
    return record


def search_forecast(store: Store, run_id: str, spec: RunSpec, parts: list[np.ndarray], horizon: int,
                    lookback: int, season: int | None, fits: int, clock: Clock, tail: float,
                    fit_windows: Callable[..., tuple[np.ndarray, ...]], say: base.Say,
                    record: Any = None) -> dict[str, Any]:
    """Search on ``parts`` (each series' training part of the first backtest window), keeping time
    for the ``fits`` fits still to come after it (the later windows and the final fit) and ``tail``
    seconds for the end of the run; returns the chosen ``template``, ``lookback``, ``train``
    settings, ``trials``, ``seconds``, ``params``, ``epochs`` (the epoch numbers the trials used in
    the live chart), and the best trial's ``model`` with its ``scalers``, ``fit_seconds``,
    ``epochs_run``, whether the budget ``cut`` it short, and ``least_fit_seconds`` (the least a fit
    took to build and train one epoch: below that a fit learns next to nothing)."""
    import keras
    import optuna

    from dlcore.training import fit_deep

    budget, seed = float(spec.train.budget), spec.train.seed
    if record is None:  # else started by ``floor_points``, whose trials stay on the chart
        record = _Record(store, run_id, clock, budget, "mase", "validation MAE (scaled)", False)
        record.save()
    lookbacks = lookback_choices(lookback, season)
    study = _study(seed, False, prune=True)
    study.enqueue_trial({"template": spec.template, "lookback": lookback,
                         "learning_rate": min(1e-2, max(3e-4, spec.train.learning_rate))})
    scalers = [fc.Scaler().fit(p) for p in parts]
    scaled = [s.transform(p) for s, p in zip(scalers, parts)]
    windows: dict[int, tuple[np.ndarray, ...]] = {}
    n_features = int(parts[0].shape[1])
    ready = clock.elapsed()
    usable = max(1.0, budget - tail - ready)
    best: dict[str, Any] = {}
    epoch_offset = [0]
    durations: list[float] = []
    least: list[float] = []
    trial_started = [0.0]
    started = time.perf_counter()

    def backtest_cost() -> float:
        """The rest of the backtest: ``fits`` fits, each about as long as the best trial (the whole
        history is a little longer than the first window's part)."""
        return 0.0 if not best else fits * 1.3 * best["seconds"]

    def deadline() -> float:
        if not best:  # the run's own settings: an equal share with the fits still to come
            return ready + usable / (fits + 1)
        return min(budget - tail - backtest_cost(), trial_started[0] + max(TRIAL_SHARE * usable, 10.0))

    number = 0
    while True:
        trial_started[0] = clock.elapsed()
        if number and (store.stop_requested(run_id)
                       or clock.elapsed() + (float(np.median(durations)) if durations else 0.0) * 0.5 > deadline()):
            break
        trial = study.ask()
        name, lb, lr = forecast_space(trial, lookbacks)
        template = next(t for t in TEMPLATES if t.name == name)
        if lb not in windows:
            pieces = [fit_windows(s, lb, horizon) for s in scaled]
            windows[lb] = tuple(np.concatenate([p[i] for p in pieces]) for i in range(4))
        x_tr, y_tr, x_val, y_val = windows[lb]
        settings = replace(spec.train, learning_rate=lr, epochs=MAX_EPOCHS)
        _say_progress(store, run_id, clock, f"Searching the forecast: trial {number + 1}")
        trial_started[0] = clock.elapsed()
        keras.utils.set_random_seed(seed + number)
        model = template.build(settings, base.InputInfo(window_shape=(lb, n_features)), "forecast", horizon)
        callback = _trial_callback(store, run_id, clock, trial, deadline, "mae", 1.0, epoch_offset)
        t0 = time.perf_counter()
        fit = fit_deep(model, "forecast", settings, x_tr, y_tr, x_val, y_val, callback)
        seconds = time.perf_counter() - t0
        durations.append(seconds)
        value = math.nan
        if fit.nan_epoch is None:
            value = float(np.mean(np.abs(fc.eager_predict(model, x_val) - y_val)))
        if not math.isfinite(value):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            state = "failed"
        elif callback.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            state = "pruned"
        else:
            study.tell(trial, value)
            state = "complete"
        params = dict(trial.params)
        record.add(Trial(spec.template, "deep", number, state, value if math.isfinite(value) else None,
                         clock.elapsed(), seconds, params, fit.epochs_run))
        if fit.epoch_seconds:  # building, tracing and the first epoch: what any fit costs at least
            least.append(seconds - sum(fit.epoch_seconds) + fit.epoch_seconds[0])
        if math.isfinite(value) and (not best or (state == "complete" and value < best["score"])):
            best = {"template": name, "lookback": lb, "learning_rate": lr, "score": value, "seconds": seconds,
                    "epochs": max(1, fit.epochs_run), "params": params, "model": model,
                    "cut": still_improving(bool(callback.out_of_time) and not callback.pruned, fit.epochs_run,
                                           fit.best_epoch, spec.train.patience)}
        say(f"trial {number + 1}: {state}, {fit.epochs_run} epoch(s) in {seconds:.1f} s (at {clock.elapsed():.1f} s)")
        number += 1
        if callback.stopped_by_user:
            break
    if not best:  # every trial unstable: the run's own settings, which the backtest reports in words
        best = {"template": spec.template, "lookback": lookback, "learning_rate": spec.train.learning_rate,
                "epochs": spec.train.epochs, "params": {}, "seconds": 0.0, "model": None, "cut": False}
    say(f"search: {number} trial(s), best {best_words(best['params'])} ({clock.elapsed():.1f} s)")
    record.save()
    return {"template": best["template"], "lookback": best["lookback"],
            # A best trial the budget cut short gives no measure of the epochs needed: the fits run to
            # early stopping or their deadline.
            "train": replace(spec.train, learning_rate=best["learning_rate"],
                             epochs=MAX_EPOCHS if best["cut"] else min(MAX_EPOCHS, best["epochs"])),
            "trials": number, "seconds": time.perf_counter() - started, "params": best["params"],
            "epochs": epoch_offset[0], "pruned": sum(1 for t in record.trials if t.state == "pruned"),
            "stopped": store.stop_requested(run_id), "model": best["model"],
            "scalers": scalers if best["model"] is not None else None, "fit_seconds": best["seconds"],
            "epochs_run": best["epochs"] if best["model"] is not None else 0, "cut": best["cut"],
            "least_fit_seconds": min(least) if least else 0.0}
