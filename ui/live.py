"""The live view of a run: polls the store from a fragment and redraws chart and progress.

Nothing here holds the run: the worker writes to the store, and this only reads it, so a
refresh, a closed tab or another user's click never touches the training.
"""

from __future__ import annotations

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dlcore import charts
from dlcore.store import EVALUATED, RunRecord
from ui import common

__all__ = ["run_view", "eta_seconds", "history_frame", "progress_text"]

LIVE_METRIC = {"binary": "AUC", "multiclass": "Accuracy", "regression": "RMSE", "forecast": "MAE (scaled values)"}


HISTORY_COLUMNS = ["epoch", "loss", "val_loss", "metric", "val_metric", "seconds"]


def history_frame(epochs: list[dict]) -> pd.DataFrame:
    return (pd.DataFrame(epochs, columns=HISTORY_COLUMNS + ["run_id", "created_at"])[HISTORY_COLUMNS]
            .astype("float64").astype({"epoch": "int64"}))


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
    deep = (run.result or {}).get("deep") or {}
    if run.finished:
        text = f"Trained {run.epochs_done} of {run.epochs_total} epochs"
        if deep.get("stopped_by_user"):
            return text + ": stopped by request; the best epoch so far is kept."
        if deep and run.epochs_done < run.epochs_total:
            return (text + f": stopped early because the validation loss stopped improving; "
                    f"the best epoch ({deep.get('best_epoch')}) is kept.")
        return text + (f"; the best epoch ({deep['best_epoch']}) is kept." if deep.get("best_epoch") else ".")
    if run.phase and not run.phase.startswith("Training"):
        return f"Epoch {run.epochs_done} of {run.epochs_total} · {run.phase}"
    label = f"Epoch {run.epochs_done} of {run.epochs_total}"
    eta = eta_seconds(run, epoch_seconds)
    if eta is not None:
        label += f" · about {common.duration(eta)} left at most (early stopping may finish sooner)"
    return label


@st.cache_resource(max_entries=256, show_spinner=False)
def _curves(rows: tuple[tuple, ...], task: str, epochs_total: int | None) -> go.Figure:
    """The training curves for these epochs (rows of ``HISTORY_COLUMNS``), built once and shared
    by every session watching: a live page redraws every second, and building a Plotly figure
    (about 60 ms) was most of that redraw. Streamlit copies the figure to send it, never changes it."""
    history = history_frame([dict(zip(HISTORY_COLUMNS, row)) for row in rows])
    return charts.training_curves(history, LIVE_METRIC.get(task, "Metric"), task not in ("regression", "forecast"),
                                  epochs_total)


def _draw(run_id: str) -> None:
    common.ensure_workers()  # notices a worker that died mid-run, and starts a fresh one
    store = common.store()
    run = store.run(run_id)
    epochs = store.epochs(run_id)
    history = history_frame(epochs)
    task = run.task or "binary"
    status_col, stop_col = st.columns([4, 1])
    with status_col:
        st.markdown(f"**Status:** {common.status_label(run.status)}"
                    + (f" · {run.phase}" if run.phase and not run.finished else ""))
        # Full only when the run was evaluated: an interrupted or failed run shows how far it got.
        st.progress(1.0 if run.status in EVALUATED else min(1.0, max(0.0, run.progress)),
                    text=progress_text(run, history["seconds"].dropna().tolist()))
    with stop_col:
        if not run.finished:
            if run.stop_requested:
                st.button("Stopping…", disabled=True, key=f"stopping-{run_id}")
            elif st.button("Stop", icon=":material/stop_circle:", key=f"stop-{run_id}",
                           help="Stops after the current batch, keeps the best weights so far, and still evaluates the run."):
                store.request_stop(run_id)
                st.toast("Stop requested: the run finishes its current batch, then is evaluated.")
    metric_title = LIVE_METRIC.get(task, "Metric") + " (validation, live estimate)"
    st.plotly_chart(_curves(tuple(map(tuple, history.itertuples(index=False))), task, run.epochs_total),
                    width="stretch", key=f"curves-{run_id}")
    st.caption(f"Left: loss on training and validation rows. Right: {metric_title}. The star marks the best "
               "validation epoch; " + ("no model was saved from this run." if run.finished and run.status not in EVALUATED
                                       else "those weights are the ones kept."))
    if run.finished and st.session_state.get(f"seen-finished-{run_id}") is None:
        st.session_state[f"seen-finished-{run_id}"] = time.time()
        st.rerun()  # leave the live fragment: the page redraws once, without polling


def run_view(run: RunRecord) -> None:
    """Draw the run; while it is not finished, redraw every second."""
    if run.finished:
        _draw(run.id)
    else:
        st.fragment(run_every=1.0)(_draw)(run.id)
