"""The live view of a run: polls the store from a fragment and redraws chart and progress.

Nothing here holds the run: the worker writes to the store, and this only reads it, so a
refresh, a closed tab or another user's click never touches the training.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dlcore import charts, formats
from dlcore.series.charts import ERROR_IN_WORDS, fit_curves
from dlcore.series.run import epoch_in_fit, epochs_per_fit, fit_name
from dlcore.store import EVALUATED, RunRecord
from ui import common

__all__ = ["run_view", "eta_seconds", "history_frame", "history_rows", "progress_text", "live_payload", "clock_words",
           "step_words"]

LIVE_METRIC = {"binary": "AUC", "multiclass": "Accuracy", "regression": "RMSE", "forecast": ERROR_IN_WORDS}


HISTORY_COLUMNS = ["epoch", "loss", "val_loss", "metric", "val_metric", "seconds"]


def history_frame(epochs: list[dict]) -> pd.DataFrame:
    return (pd.DataFrame(epochs, columns=HISTORY_COLUMNS + ["run_id", "created_at"])[HISTORY_COLUMNS]
            .astype("float64").astype({"epoch": "int64"}))


def history_rows(epochs: list[dict]) -> tuple[tuple, ...]:
    """The epochs as rows of ``HISTORY_COLUMNS`` (a gap as NaN): the same values as
    ``history_frame`` without building a DataFrame, which was most of a live redraw's time
    under load (78 ms a redraw in cProfile while two runs trained and eight sessions were open)."""
    def num(value: Any) -> float:
        return math.nan if value is None else float(value)

    return tuple((int(e["epoch"]), *(num(e[c]) for c in HISTORY_COLUMNS[1:])) for e in epochs)


def eta_seconds(run: RunRecord, epoch_seconds: list[float]) -> float | None:
    """Time left if the run goes to its last epoch (early stopping may end it sooner)."""
    if not epoch_seconds or not run.epochs_total:
        return None
    per_epoch = float(pd.Series(epoch_seconds).median())
    done = max(run.progress * run.epochs_total, run.epochs_done)
    return max(0.0, (run.epochs_total - done) * per_epoch)


def progress_text(run: RunRecord, epoch_seconds: list[float]) -> str:
    """One line on where the run is, in words: epochs, time left, early stopping."""
    if run.status == "queued":
        return "Waiting for a free worker: it starts when the runs before it finish."
    if _budget(run) is not None:
        return _search_progress(run)
    if _task(run) == "forecast":
        return _forecast_progress(run, epoch_seconds)
    deep = (run.result or {}).get("deep") or {}
    if run.finished:
        text = f"Trained {run.epochs_done} of {run.epochs_total} epochs"
        if deep.get("stopped_by_user"):
            return text + ": stopped by request; the best epoch so far is kept."
        if deep and run.epochs_done < run.epochs_total:
            kept = (f"the best epoch ({deep['best_epoch']}) is kept" if deep.get("best_epoch")
                    else "its best weights are kept")
            return text + f": stopped early because the validation loss stopped improving; {kept}."
        return text + (f"; the best epoch ({deep['best_epoch']}) is kept." if deep.get("best_epoch") else ".")
    if run.phase and not run.phase.startswith("Training"):
        return f"Epoch {run.epochs_done} of {run.epochs_total} · {run.phase}"
    label = f"Epoch {run.epochs_done} of {run.epochs_total}"
    eta = eta_seconds(run, epoch_seconds)
    if eta is not None:
        label += f" · about {common.duration(eta)} left at most (early stopping may finish sooner)"
    return label


def load_trials_of(store, run: RunRecord) -> dict | None:  # type: ignore[no-untyped-def]
    from dlcore.search import load_trials

    return load_trials(store, run.id)


def best_trial_epochs(trials: dict | None) -> tuple[int, int, int] | None:
    """The chosen deep trial's number and its first and last epoch in the run's epochs table, where
    the deep trials' epochs follow one another in the order they trained (an epoch whose loss was
    not a number is not recorded); None without a chosen deep trial."""
    if not trials:
        return None
    deep = [t for t in trials.get("trials", []) if t.get("family") == "deep"]
    best = trials.get("best") or {}
    chosen = next((best[t["candidate"]]["number"] for t in deep if t["candidate"] in best), None)
    if chosen is None:
        return None
    start = 0
    for t in deep:
        recorded = max(0, (t.get("epochs") or 0) - (1 if t.get("state") == "failed" else 0))
        if t["number"] == chosen:
            return (chosen, start + 1, start + recorded) if recorded else None
        start += recorded
    return None


def _budget(run: RunRecord) -> float | None:
    """The run's time budget in seconds; None for a run of fixed settings."""
    budget = ((run.spec or {}).get("train") or {}).get("budget")
    return None if budget is None else float(budget)


def _search_progress(run: RunRecord) -> str:
    """A run within a budget: its phase, which ends with the seconds left; when done, the time used."""
    result = run.result or {}
    if run.finished:
        search = result.get("search") or {}
        trials = sum((search.get("trials") or {}).values())
        used = result.get("elapsed_s")
        text = f"Tried {trials} settings in all" + (f" in {used:.0f} s of the {_budget(run):.0f} s budget" if used else "")
        if search.get("stopped_early"):
            return text + ": stopped by request; the best trial so far is kept."
        if search.get("ended") in ("converged", "perfect", "settled") and run.status in EVALUATED:
            from dlcore.search import ended_words

            return f"{text}. {ended_words(search)}"
        return text + "." if run.status in EVALUATED else f"{common.STATUS_WORDS.get(run.status, run.status).capitalize()}."
    step = step_words(run)
    clock = clock_words(run)
    return " · ".join(w for w in (step or "Starting", clock) if w)


_STAMPED_CLOCK = re.compile(r" · \d+ s left$")


def clock_words(run: RunRecord, now: float | None = None) -> str | None:
    """'42 s used · 258 s left of 300 s': a run within a budget, counted from its own record (when
    its worker started it), so it ticks on every redraw and two viewers of one link read the same
    figure; None for a run of fixed settings, one not started yet, or a finished one.

    >>> from types import SimpleNamespace as R
    >>> clock_words(R(spec={"train": {"budget": 300}}, started_at=100.0, finished=False), now=142.4)
    '42 s used · 258 s left of 300 s'
    """
    budget = _budget(run)
    if budget is None or run.started_at is None or run.finished:
        return None
    used = max(0.0, (time.time() if now is None else now) - run.started_at)
    return f"{used:.0f} s used · {max(0.0, budget - used):.0f} s left of {budget:.0f} s"


def step_words(run: RunRecord, now: float | None = None) -> str | None:
    """What a searching run is doing, and for how long: its phase without the seconds left that were
    stamped into it when it was written (``clock_words`` says them afresh), then 'for 12 s' from when
    the step began. 'Fitting baseline 2 of 4: random forest · for 3 s'."""
    if not run.phase:
        return None
    step = _STAMPED_CLOCK.sub("", run.phase)
    since = getattr(run, "step_started_at", None)
    if since is not None and not run.finished:
        step += f" · for {max(0.0, (time.time() if now is None else now) - since):.0f} s"
    return step


def _trials(run: RunRecord, trials: dict | None) -> None:
    """The search's trials: score against time, best so far, and the best settings in words."""
    from dlcore.evaluate import display_name

    if trials is None:
        return
    unit = "images" if _is_image(run) else "rows"
    st.plotly_chart(charts.trials_chart(trials, display_name, unit), width="stretch", key=f"trials-{run.id}")
    best = trials.get("best") or {}
    counts: dict[str, int] = {}
    for t in trials.get("trials", []):
        counts[t["candidate"]] = counts.get(t["candidate"], 0) + 1
    lines = [f"- **{display_name(name)}**: {counts.get(name, 0)} trial(s); best {formats.number(b['score'])} with {b['words']}"
             for name, b in best.items()]
    if lines:
        then = ("every model is then backtested on the same windows" if (run.spec or {}).get("forecast")
                else "the best is then scored on the test images" if _is_image(run)
                else "the leaderboard then cross-validates them")
        st.markdown(f"Best settings so far (scored on the validation {unit}; {then}):\n" + "\n".join(lines))


def _current_trial(store, run: RunRecord, task: str, trials: dict | None) -> None:  # type: ignore[no-untyped-def]
    """The deep model's trial training now, epoch by epoch as each ends (the live chart of a run of
    fixed settings); before its first epoch, what the search is doing instead."""
    number, epochs = store.trial_epochs(run.id)
    unit = "images" if _is_image(run) else "rows"
    if number is None:
        st.markdown("**The deep model's current trial**")
        _live_curves(f"{run.id}-trial", (), task, None)
        st.caption(f"Its training and validation curves appear here as each epoch ends. Now: {step_words(run) or 'starting'}.")
        return
    ended = next((t for t in (trials or {}).get("trials", [])
                  if t.get("family") == "deep" and t.get("number") == number), None)
    st.markdown(f"**Trial {number + 1} of the deep model, epoch by epoch**"
                + (f" · ended ({ended['state']}); the search goes on" if ended else " · training now"))
    _live_curves(f"{run.id}-trial{number}", history_rows(epochs), task, None)
    st.caption(f"Left: loss on the training and validation {unit}. Right: {LIVE_METRIC.get(task, 'Metric')} "
               "(validation, live estimate). Each epoch is drawn as it ends; the star marks the trial's best "
               "validation epoch, whose weights it keeps. A new trial starts a new chart.")


def _is_image(run: RunRecord) -> bool:
    from dlcore import templates

    try:
        return templates.get(run.template).kind == "image"
    except Exception:  # noqa: BLE001 (a template no longer offered: the table's words)
        return False


def _task(run: RunRecord) -> str:
    """The run's task; before its worker has set it, what its spec says (a forecast, or a table's)."""
    if run.task:
        return run.task
    return "forecast" if (run.spec or {}).get("forecast") else "binary"


def _fits(run: RunRecord) -> tuple[int, int] | None:
    """A forecast's epochs per fit and number of fits (its backtest windows and the final fit);
    None for a run that is no forecast, or whose epochs were numbered on across its fits."""
    if _task(run) != "forecast":
        return None
    per_fit = epochs_per_fit(run)
    if not per_fit or not run.epochs_total:
        return None
    return per_fit, max(1, run.epochs_total // per_fit)


def _forecast_progress(run: RunRecord, epoch_seconds: list[float]) -> str:
    """Where a forecast is, in words: 'Backtest 1 of 3, epoch 3 of 40', and time left."""
    fits = _fits(run)
    deep = (run.result or {}).get("deep") or {}
    if run.finished:
        done = deep.get("fit_epochs")
        if fits and done:
            per_fit, n_fits = fits
            trained = ", ".join(f"{fit_name(k, n_fits).lower()}: {n} of {per_fit} epochs"
                                for k, n in enumerate(done, start=1))
            text = f"Trained {len(done)} of {n_fits} fits ({trained})"
            if deep.get("stopped_by_user"):
                return text + ": stopped by request; the backtest covers the windows finished before the stop."
            return text + ("; a fit that stopped early kept the weights of its best epoch."
                           if any(n < per_fit for n in done) else ".")
        if fits and run.epochs_done and run.status not in EVALUATED:  # failed or interrupted on the way
            fit, epoch = epoch_in_fit(run.epochs_done, fits[0])
            return (f"{common.STATUS_WORDS.get(run.status, run.status).capitalize()} in "
                    f"{fit_name(fit, fits[1]).lower()}, after epoch {epoch} of {fits[0]}.")
        if run.status not in EVALUATED:
            return f"{common.STATUS_WORDS.get(run.status, run.status).capitalize()} before the first epoch ended."
        return f"Trained {run.epochs_done} epochs over the backtest windows and the final fit."
    if not fits or not run.epochs_done:
        return run.phase or "Starting"
    per_fit, n_fits = fits
    fit, epoch = epoch_in_fit(run.epochs_done, per_fit)
    label = f"{fit_name(fit, n_fits)}{' on the whole history' if fit >= n_fits else ''}, epoch {epoch} of {per_fit}"
    if run.phase and not run.phase.startswith("Training"):
        return run.phase  # the baselines' backtest, between the deep model's fits
    eta = eta_seconds(run, epoch_seconds)
    if eta is not None:
        label += f" · about {common.duration(eta)} left at most (early stopping may finish sooner)"
    return label


@st.cache_resource(max_entries=256, show_spinner=False)
def _fit_curves(rows: tuple[tuple, ...], per_fit: int, n_fits: int) -> go.Figure:
    """A forecast's curves, one line per fit; built once per new epoch like ``_curves``."""
    return fit_curves(history_frame([dict(zip(HISTORY_COLUMNS, row)) for row in rows]), per_fit, n_fits)


@st.cache_resource(max_entries=256, show_spinner=False)
def _curves(rows: tuple[tuple, ...], task: str, epochs_total: int | None) -> go.Figure:
    """The training curves for these epochs (rows of ``HISTORY_COLUMNS``), built once and shared
    by every session watching: a live page redraws every second, and building a Plotly figure
    (about 60 ms) was most of that redraw. Streamlit copies the figure to send it, never changes it."""
    history = history_frame([dict(zip(HISTORY_COLUMNS, row)) for row in rows])
    return charts.training_curves(history, LIVE_METRIC.get(task, "Metric"), task not in ("regression", "forecast"),
                                  epochs_total)


_LIVE_HTML = '<div class="dl-live"><div class="plot"></div><div class="legend"><span class="tr">━ Training</span> ' \
             '<span class="va">━ Validation</span> <span>★ best validation epoch</span></div></div>'
_LIVE_CSS = """.dl-live .plot svg text { font: 13px sans-serif; fill: #444; } .dl-live .plot svg text.t { font-size: 15px; fill: #222; }
.dl-live .ax { stroke: #999; } .dl-live .g { stroke: #eee; } .dl-live .plot svg text.s { font-size: 18px; fill: #d62728; }
.dl-live .plot svg text.w { font-size: 16px; fill: #555; } .dl-live .legend { font: 13px sans-serif; color: #444; }
.dl-live .tr { color: #8fb1dc; margin-right: 1em; } .dl-live .va { color: #1f4e9c; margin-right: 1em; }"""


@st.cache_resource(show_spinner=False)
def _live_chart() -> Any:
    """The live curves' component, registered once per server (``ui/live_chart.js``)."""
    js = (Path(__file__).with_name("live_chart.js")).read_text()
    return st.components.v2.component("dlcore_live_curves", html=_LIVE_HTML, css=_LIVE_CSS, js=js,
                                      isolate_styles=False)


def _sent_key(run_id: str) -> str:
    return f"live-epochs-sent-{run_id}"


def live_payload(rows: tuple[tuple, ...], start: int, task: str, epochs_total: int | None) -> dict:
    """What the live chart is sent: the epochs from ``start`` on (the browser has those before),
    as [epoch, loss, val_loss, metric, val_metric] with gaps as null."""
    def clean(v: Any) -> float | None:
        return None if v is None or not math.isfinite(float(v)) else float(v)

    return {"start": start, "rows": [[int(r[0]), *map(clean, r[1:5])] for r in rows[start:]],
            "epochs_total": epochs_total, "metric": LIVE_METRIC.get(task, "Metric") + " (validation, live estimate)",
            "higher": task not in ("regression", "forecast")}


def _live_curves(run_id: str, rows: tuple[tuple, ...], task: str, epochs_total: int | None) -> None:
    """The curves of a run that trains: each redraw sends only the epochs since the last one."""
    start = st.session_state.get(_sent_key(run_id), 0)
    if start > len(rows):
        start = 0
    _live_chart()(key=f"live-{run_id}", data=live_payload(rows, start, task, epochs_total))
    st.session_state[_sent_key(run_id)] = len(rows)


def _draw(run_id: str) -> None:
    common.ensure_workers()  # notices a worker that died mid-run, and starts a fresh one
    store = common.store()
    run = store.run(run_id)
    rows = history_rows(store.epochs(run_id))
    seconds = [r[5] for r in rows if not math.isnan(r[5])]
    task = _task(run)
    budget = _budget(run)
    status_col, stop_col = st.columns([4, 1])
    with status_col:
        st.markdown(f"**Status:** {common.status_label(run.status)}"
                    + (f" · {run.phase}" if run.phase and not run.finished and budget is None else ""))
        # Full only when the run was evaluated: an interrupted or failed run shows how far it got. Within a
        # budget, the share of it used, from the record's start: it moves every second with the clock.
        done = run.progress
        if budget is not None and run.started_at is not None and not run.finished:
            done = max(done, min(0.99, (time.time() - run.started_at) / budget))
        st.progress(1.0 if run.status in EVALUATED else min(1.0, max(0.0, done)),
                    text=progress_text(run, seconds))
    with stop_col:
        if not run.finished:
            if run.stop_requested:
                st.button("Stopping…", disabled=True, key=f"stopping-{run_id}")
            elif st.button("Stop", icon=":material/stop_circle:", key=f"stop-{run_id}",
                           help="Stops after the current batch, keeps the best weights so far, and still evaluates the run."):
                with common.guard():  # a viewer's Stop is refused by the store, in words
                    store.request_stop(run_id)
                    st.toast("Stop requested: the run finishes its current batch, then is evaluated.")
    trials = load_trials_of(store, run) if budget is not None else None
    if budget is not None and run.finished:
        _trials(run, trials)
    elif budget is not None:  # searching: the trials as they end, beside the trial training now
        left, right = st.columns(2)
        with left:
            _trials(run, trials)
        with right:
            _current_trial(store, run, task, trials)
    fits = _fits(run) if _budget(run) is None else None  # within a budget: the trials chart, not fit curves
    kept = ("no model was saved from this run." if run.finished and run.status not in EVALUATED
            else "those weights are the ones kept.")
    if fits:
        done = ((run.result or {}).get("deep") or {}).get("fit_epochs")
        kept = (kept if run.finished and run.status not in EVALUATED else
                "it was stopped before the final fit, so its forecasts come from the baselines."
                if done is not None and len(done) < fits[1] else "the final fit's weights make the forecast.")
        st.plotly_chart(_fit_curves(rows, *fits), width="stretch", key=f"curves-{run_id}")
        st.caption("The deep model is trained afresh for each backtest window, on the values before it, and "
                   "once more on the whole history for the forecast: one line per fit, solid on the validation "
                   "windows, dotted on the training windows. Left: loss. Right: the average forecast error, in "
                   "standard deviations of the series (0.5 is half of one). Each fit keeps the weights of its "
                   "own lowest validation loss; " + kept.replace("no model was saved", "no model was kept"))
    elif _budget(run) is not None:
        image = _is_image(run)
        st.caption(f"Each point is one setting tried, scored on the validation {'images' if image else 'rows'} "
                   "(hollow: pruned, stopped early because it was clearly behind). The line is the deep model's "
                   "best so far; the leaderboard then scores "
                   + ("the best settings on the test images, which no trial saw." if image
                      else "every model's best settings on every fold."))
        chosen = best_trial_epochs(trials) if run.status in EVALUATED else None
        if chosen is not None:
            number, first, last = chosen
            # The trial's own epochs; a run recorded before they were kept apart: its stretch of the run's epochs.
            curve = history_rows(store.trial_epochs(run_id, number)[1])
            if not curve:
                curve = tuple((i, *r[1:]) for i, r in enumerate((r for r in rows if first <= r[0] <= last), start=1))
            if curve:
                st.plotly_chart(_curves(curve, task, len(curve)), width="stretch", key=f"best-curves-{run_id}")
                st.caption(f"The learning curve of the chosen settings (trial {number + 1}), epoch by epoch. Left: "
                           f"loss on training and validation rows. Right: {LIVE_METRIC.get(task, 'Metric')} "
                           "(validation, live estimate). The star marks the best validation epoch, whose weights "
                           "the model keeps.")
    else:
        metric_title = LIVE_METRIC.get(task, "Metric") + " (validation, live estimate)"
        if run.finished:
            st.plotly_chart(_curves(rows, task, run.epochs_total), width="stretch", key=f"curves-{run_id}")
        else:
            _live_curves(run_id, rows, task, run.epochs_total)
        st.caption(f"Left: loss on training and validation {'images' if _is_image(run) else 'rows'}. Right: "
                   f"{metric_title}. The star marks the best "
                   "validation epoch; " + kept)
    if run.finished and st.session_state.get(f"seen-finished-{run_id}") is None:
        st.session_state[f"seen-finished-{run_id}"] = time.time()
        st.rerun()  # leave the live fragment: the page redraws once, without polling


def run_view(run: RunRecord) -> None:
    """Draw the run; while it is not finished, redraw every second."""
    if run.finished:
        _draw(run.id)
    else:
        for key in [k for k in st.session_state if str(k).startswith(_sent_key(run.id))]:
            st.session_state[key] = 0  # a page run draws the charts afresh: every epoch is sent
        st.session_state[_sent_key(run.id)] = 0
        st.fragment(run_every=1.0)(_draw)(run.id)
