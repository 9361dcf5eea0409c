"""Which look-back steps and which input columns a forecasting run's deep model relies on.

Permutation importance on the run's own history: the final model (trained on the whole
history) forecasts every look-back window of every series, built exactly as
``series.run`` built them for training (each series scaled by its saved scaler, the
target first, then the covariates); then one piece of the inputs is shuffled across windows
and the forecast's error rises by as much as the model needed that piece. The pieces are
each lag position (k steps back, every column at that step together) and each column over
its whole look-back (the target's own past, for reference, and each covariate).

The error is the MAE of the scaled target over the whole horizon. Inputs are shuffled
*before* each window is made relative to its last target value (``forecasting._anchor``):
the model forecasts ``anchor + net(window - anchor)``, so the anchor is part of the
forecast. Shuffled after anchoring, the target at lag 1 would always read 0 and the value
the forecast leans on most would look useless.

Example::

    summary = series_importance(store, run_id)
    summary["top_lags"], summary["sentence"]
    lag_importance_chart(summary), channel_importance_chart(summary)
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go

from dlcore.charts import (
    ACCENT_COLOR,
    DEEP_COLORS,
    DUMMY_COLOR,
    REFERENCE_COLOR,
    _base_layout,
    _message_figure,
)
from dlcore.errors import DataError, RunError, SpecError
from dlcore.series import backtest as fc
from dlcore.series.run import _anchor, _saved_by_series, load_series
from dlcore.spec import RunSpec
from dlcore.store import EVALUATED, RunRecord, Store
from dlcore.tables.reader import load_frame

__all__ = ["MAX_WINDOWS", "METRIC", "series_importance", "explain_model", "lag_importance_chart", "channel_importance_chart"]

MAX_WINDOWS = 2_000  # the most recent windows, shared among the series: enough for stable means
METRIC = "MAE (scaled)"
_BATCH = 2_048  # windows per forward pass
# The axis title: the scaled MAE is the error in standard deviations of each series.
_WORSE = "How much worse the forecast gets when this is scrambled"
_UNITS = "extra error, in standard deviations of the series"


def series_importance(store: Store, run_id: str, n_repeats: int = 5, seed: int = 0, *,
                      max_windows: int = MAX_WINDOWS,
                      progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Permutation importance of each lag and each input column for a finished forecasting run.

    Returns a JSON-able dict: ``metric``, ``baseline_error`` (the unshuffled MAE), ``lags``
    (``{"lag", "mean", "std"}`` for k = 1 .. look-back), ``channels`` (``{"name", "mean",
    "std"}``, the target first, then the covariates), ``lookback``, ``season``,
    ``n_windows``, ``top_lags`` (the 3 lags that matter most, largest first), ``sentence``
    (the answer in plain words), ``model`` and ``n_repeats``. Means and spreads are over
    ``n_repeats`` shuffles drawn from a generator seeded with ``seed``, on the most recent
    ``max_windows`` windows (shared equally among the series). ``progress``, when given, is
    called with the share of the forward passes done, for a job's progress bar.

    Each shuffle costs one forward pass over the windows: (look-back + columns) x n_repeats
    passes, about 0.7 s each for 2,000 windows of 104 steps on two CPU cores.
    """
    _check_whole("n_repeats", n_repeats, 1)
    _check_whole("max_windows", max_windows, 2)  # shuffling one window changes nothing
    run = store.run(run_id)
    if (run.result or {}).get("kind") != "series" and run.spec.get("forecast") is None:
        raise RunError(f"Run {run_id!r} is not a forecast; lags and covariates only exist for a time series. "
                       "Open a forecasting run, or explain this one on its own Explain page.")
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; only a finished forecasting run can be explained. "
                       "Wait for it to finish, or open one that has.")
    folder = store.run_dir(run_id)
    model_path = folder / f"{run.template}.keras"
    meta_path = folder / "preprocess.json"
    saved_scalers = _saved_by_series(json.loads(meta_path.read_text()), run.template)[0] if meta_path.exists() else None
    if saved_scalers is None or not model_path.exists():
        raise RunError(f"Run {run_id!r} was stopped before its final model was trained, so there is no model "
                       "to explain; rerun it to the end.")

    info = run.result["series"]
    h, lookback, season = int(info["horizon"]), int(info["lookback"]), int(info["season_length"])
    spec = RunSpec.from_dict(run.spec)
    spec = replace(spec, forecast=replace(spec.forecast, horizon=h, lookback=lookback, season_length=season,
                                          windows=int(info["windows"])))
    panel = load_series(load_frame(store, spec.data.dataset_id), spec)
    names = _channel_names(spec)

    xs, ys = [], []
    for sid, values in zip(panel.ids, panel.values):
        if sid not in saved_scalers:
            continue  # not among the series the model learnt from
        scaler = _scaler(saved_scalers[sid])
        if values.shape[1] != len(scaler.mean_) or values.shape[1] != len(names):
            raise DataError(f"The dataset no longer has the {len(scaler.mean_)} columns the model was trained on; "
                            "explain a run trained on this dataset as it is now.")
        x, y = fc.make_windows(scaler.transform(values), lookback, h)
        xs.append(x)
        ys.append(y)
    quotas = _quotas([len(x) for x in xs], max_windows)
    if sum(quotas) < 2:
        raise RunError(f"Run {run_id!r} leaves {sum(quotas)} look-back window(s) in the history of the series it "
                       "learnt from; shuffling needs at least two.")
    x = np.concatenate([x[len(x) - q:] for x, q in zip(xs, quotas)]).astype(np.float32)
    y = np.concatenate([y[len(y) - q:] for y, q in zip(ys, quotas)])

    import keras

    model = keras.saving.load_model(model_path, safe_mode=True)
    baseline = _error(model, x, y)
    rng = np.random.default_rng(seed)
    passes, done = n_repeats * (lookback + len(names)), 0

    def rise(shuffled: np.ndarray) -> float:
        nonlocal done
        worse = _error(model, shuffled, y) - baseline
        done += 1
        if progress is not None:
            progress(done / passes)
        return worse

    lag_rises = np.empty((lookback, n_repeats))
    channel_rises = np.empty((len(names), n_repeats))
    for r in range(n_repeats):
        for k in range(1, lookback + 1):
            shuffled = x.copy()
            shuffled[:, lookback - k, :] = x[rng.permutation(len(x)), lookback - k, :]
            lag_rises[k - 1, r] = rise(shuffled)
        for c in range(len(names)):
            shuffled = x.copy()
            shuffled[:, :, c] = x[rng.permutation(len(x)), :, c]
            channel_rises[c, r] = rise(shuffled)

    lags = [{"lag": k, "mean": float(lag_rises[k - 1].mean()), "std": float(lag_rises[k - 1].std())}
            for k in range(1, lookback + 1)]
    channels = [{"name": name, "mean": float(channel_rises[c].mean()), "std": float(channel_rises[c].std())}
                for c, name in enumerate(names)]
    top_lags = [d["lag"] for d in sorted(lags, key=lambda d: -d["mean"])[:3]]
    return {
        "metric": METRIC, "baseline_error": float(baseline), "lags": lags, "channels": channels,
        "lookback": lookback, "season": season, "n_windows": int(len(x)), "top_lags": top_lags,
        "sentence": _sentence(lags, channels, season), "model": run.template, "n_repeats": n_repeats,
    }


def explain_model(store: Store, run: RunRecord, model: str,
                  progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Which past steps and which columns the run's deep model leans on. One forward pass per
    shuffle: (look-back + columns) x repeats passes, so fewer windows and repeats than the
    defaults keep a long look-back to about a minute."""
    return series_importance(store, run.id, n_repeats=3, max_windows=600, progress=progress)


def _check_whole(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SpecError(f"{name} is {value!r}; it must be a whole number, at least {least}.")


def _channel_names(spec: RunSpec) -> list[str]:
    """The model's input columns in order, chosen as ``forecasting.load_series`` chooses them."""
    target, fs = spec.data.target, spec.forecast
    return [target, *[c for c in (spec.data.features or ()) if c not in (target, fs.time_col, fs.id_col)]]


def _scaler(state: dict[str, Any]) -> fc.Scaler:
    scaler = fc.Scaler()
    scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
    scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
    return scaler


def _quotas(counts: list[int], cap: int) -> list[int]:
    """How many of each series' most recent windows to keep: an equal share of ``cap`` each,
    the share a short series cannot use passed on to the others."""
    take, left = [0] * len(counts), cap
    for i, j in enumerate(sorted(range(len(counts)), key=lambda j: counts[j])):
        take[j] = min(counts[j], left // (len(counts) - i))
        left -= take[j]
    return take


def _error(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """MAE of the model's scaled forecasts of ``y`` from the (unanchored) scaled windows ``x``."""
    relative, _, anchor = _anchor(x)
    out = np.concatenate([model.predict_on_batch(relative[i:i + _BATCH]) for i in range(0, len(x), _BATCH)])
    return float(np.mean(np.abs(out + anchor[:, None] - y)))


def _clear(d: dict[str, Any]) -> bool:
    """Above the noise of shuffling: positive and more than twice its spread."""
    return d["mean"] > 0 and d["mean"] > 2 * d["std"]


def _lag_words(k: int, season: int) -> str:
    if k == 1:
        return "the latest value"
    if season > 1 and k % season == 0:
        seasons = k // season
        ago = "one season ago" if seasons == 1 else f"{seasons} seasons ago"
        return f"the value {k} steps back ({ago})"
    return f"the value {k} steps back"


def _sentence(lags: list[dict[str, Any]], channels: list[dict[str, Any]], season: int) -> str:
    """The answer in one line: the lags that matter most, then how the covariates compare
    with the series' own past."""
    ranked = [d for d in sorted(lags, key=lambda d: -d["mean"]) if _clear(d)]
    if not ranked:
        said = ("No single step of the look-back stands out: scrambling any one of them changes the error "
                "by less than the noise of shuffling")
    else:
        # The second lag is named only when it matters about as much as the first.
        named = [ranked[0]] + [d for d in ranked[1:2] if d["mean"] >= 0.5 * ranked[0]["mean"]]
        said = "The forecast leans most on " + " and on ".join(_lag_words(d["lag"], season) for d in named)
    own, covariates = channels[0], channels[1:]
    if not covariates:
        return said + "."
    top = max(covariates, key=lambda d: d["mean"])
    if not _clear(top):
        tail = ("no covariate makes a clear difference" if len(covariates) > 1
                else f"the covariate {top['name']!r} makes no clear difference")
    else:
        than = "more" if top["mean"] > own["mean"] else "less"
        tail = (f"the covariate {top['name']!r} matters {than} than the series' own past" if len(covariates) == 1
                else f"of the {len(covariates)} covariates, {top['name']!r} matters most, {than} than the series' "
                     "own past")
    return f"{said}; {tail}."


def lag_importance_chart(summary: dict[str, Any]) -> go.Figure:
    """Bars of importance by lag, the latest step on the right as on a time axis; whiskers are
    the spread across shuffles, grey bars are within that noise, the season lag is marked."""
    lags = summary.get("lags") or []
    if not lags:
        return _message_figure("No look-back steps to rank.")
    season = int(summary.get("season") or 0)
    colors = [ACCENT_COLOR if season > 1 and d["lag"] == season else DEEP_COLORS[0] if _clear(d) else DUMMY_COLOR
              for d in lags]
    fig = go.Figure(go.Bar(
        x=[d["lag"] for d in lags], y=[d["mean"] for d in lags], marker={"color": colors},
        error_y={"type": "data", "array": [d["std"] for d in lags], "color": "#555555"},
        hovertemplate="Scrambling the value %{x} steps back adds %{y:.3f} standard deviations "
                      "to the average error<extra></extra>",
    ))
    if 1 < season <= len(lags):
        fig.add_vline(x=season, line={"color": ACCENT_COLOR, "width": 1, "dash": "dot"},
                      annotation_text="one season ago", annotation_position="top")
    fig.add_hline(y=0, line={"color": REFERENCE_COLOR, "width": 1})
    fig.update_xaxes(title_text="Steps back (1 = the latest value)", autorange="reversed",
                     dtick=max(1, len(lags) // 20))
    fig.update_yaxes(title_text=_WORSE.replace(" when", "<br>when"))
    return _base_layout(fig, "Which past steps the forecast relies on", showlegend=False, height=420,
                        margin={"l": 90, "r": 20, "t": 100, "b": 50},
                        subtitle=f"{_UNITS.capitalize()}. Each step shuffled across {summary['n_windows']:,} windows, "
                                 f"{summary.get('n_repeats', 'several')} times; grey bars are within the noise")


def channel_importance_chart(summary: dict[str, Any]) -> go.Figure:
    """Horizontal bars per input column, the target's own past first (at the top) for reference."""
    channels = summary.get("channels") or []
    if not channels:
        return _message_figure("No input columns to rank.")
    shown = channels[::-1]  # plotly draws the first bar at the bottom
    labels = [f"{d['name']} (its own past)" if d is channels[0] else str(d["name"]) for d in shown]
    colors = [DEEP_COLORS[0] if _clear(d) else DUMMY_COLOR for d in shown]
    fig = go.Figure(go.Bar(
        x=[d["mean"] for d in shown], y=labels, orientation="h", marker={"color": colors},
        error_x={"type": "data", "array": [d["std"] for d in shown], "color": "#555555"},
        hovertemplate="Scrambling <b>%{y}</b> adds %{x:.3f} standard deviations to the average error"
                      "<extra></extra>",
    ))
    fig.add_vline(x=0, line={"color": REFERENCE_COLOR, "width": 1})
    fig.update_xaxes(title_text=f"{_WORSE} ({_UNITS})")
    return _base_layout(fig, "Which input columns the forecast relies on", showlegend=False,
                        subtitle="Each column's whole look-back shuffled across windows; grey bars are within the noise",
                        height=max(300, 80 + 40 * len(shown)))
