"""Charts of series: every model's backtest forecasts against what happened, the forecast after
the last date with its band, and each series over time with its missing steps marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dlcore.charts import (
    _MARGIN,
    ACCENT_COLOR,
    DATA_COLOR,
    DEEP_COLORS,
    OTHER_COLORS,
    REFERENCE_COLOR,
    _base_layout,
    _family_of,
    _message_figure,
    _model_styles,
    _thin_index,
)

__all__ = ["forecast_chart", "series_overview_chart", "fit_curves", "ERROR_IN_WORDS", "MAX_SERIES_LINES"]

# What a forecast's live metric is: the mean absolute error of windows scaled by the training
# part's mean and standard deviation, so an error of 1 is one standard deviation of the series.
ERROR_IN_WORDS = "Average error, in standard deviations of the series"


def fit_curves(history: pd.DataFrame, per_fit: int, n_fits: int) -> go.Figure:
    """A forecast's training curves, one line per fit (each backtest window's, then the final
    fit on the whole history) against the epoch within that fit: the fits are separate
    trainings, so one line across them would jump back up at every new fit.

    ``history`` has the columns of ``dlcore.charts.training_curves`` with epochs numbered as a
    forecasting run numbers them (``run.epoch_in_fit``). Validation solid, training dotted.
    """
    from plotly.subplots import make_subplots

    from dlcore.series.run import epoch_in_fit, fit_name

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Loss (lower is better)",
                                        "Average error (lower is better)<br>in standard deviations of the series"))
    if history.empty:
        fig.add_annotation(text="Waiting for the first epoch…", x=0.5, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font={"size": 16, "color": "#555555"})
    h = history.sort_values("epoch")
    placed = [epoch_in_fit(int(e), per_fit) for e in h["epoch"]]
    fits = np.array([f for f, _ in placed], dtype=int)
    within = np.array([w for _, w in placed], dtype=int)
    for k in sorted(set(fits.tolist())):
        name = fit_name(k, n_fits)
        # The final fit (the model that forecasts) in the deep models' blue; the backtests in other hues.
        color = DEEP_COLORS[0] if k >= n_fits else OTHER_COLORS[k % len(OTHER_COLORS)]
        part = h[fits == k]
        x = within[fits == k]
        mode = "lines+markers" if per_fit <= 30 else "lines"
        for col, (train_col, val_col, what) in enumerate((("loss", "val_loss", "loss"),
                                                         ("metric", "val_metric", "average error")), start=1):
            for kind, column, dash, width in (("validation", val_col, "solid", 3), ("training", train_col, "dot", 1.5)):
                fig.add_trace(go.Scatter(
                    x=x, y=part[column].to_numpy(dtype=float), mode=mode,
                    name=name if kind == "validation" else f"{name} (training)", legendgroup=name,
                    showlegend=col == 1 and kind == "validation", line={"color": color, "width": width, "dash": dash},
                    marker={"size": 5},
                    hovertemplate=f"{name}, epoch %{{x}} of {per_fit}<br>{kind.capitalize()} {what}: "
                                  "%{y:.4g}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text="Epoch within each fit", tickformat="d", range=[1, max(per_fit, 2)],
                     **({"tick0": 1, "dtick": 1} if per_fit <= 12 else {}))
    return _base_layout(
        fig, None, uirevision="training-curves",
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.22, "yanchor": "top"},
        margin=dict(_MARGIN, t=40, b=90),
    )


def forecast_chart(
    history_times: Sequence[Any],
    history: np.ndarray,
    window_times: np.ndarray,
    backtest: Mapping[str, np.ndarray],
    future: pd.DataFrame | None = None,
    families: Mapping[str, str] | None = None,
    title: str = "Backtest and forecast",
    show_last: int = 400,
) -> go.Figure:
    """The series with each model's backtest forecasts over the windows they were tested on,
    and (optionally) one model's forecast after the last date with its interval band.

    ``window_times`` and every ``backtest`` array are ``(windows, horizon)``; ``future`` has
    columns ``time``, ``forecast``, and one ``lower …``/``upper …`` pair.
    """
    times = pd.DatetimeIndex(history_times)
    values = np.asarray(history, dtype=np.float64).reshape(-1)
    start = max(0, len(times) - show_last)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=times[start:], y=values[start:], mode="lines", name="actual",
                             line={"color": "#222222", "width": 1.6}))
    styles = _model_styles(list(backtest), families)
    for name, forecasts in backtest.items():
        f = np.asarray(forecasts, dtype=np.float64)
        xs: list[Any] = []
        ys: list[Any] = []
        for w in range(f.shape[0]):  # one segment per window, with a break between windows
            xs += list(pd.DatetimeIndex(np.asarray(window_times[w]).ravel().astype("datetime64[ns]"))) + [None]
            ys += list(f[w]) + [None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{name} (backtest)",
                                 line={"color": styles[name]["color"], "dash": styles[name].get("dash", "solid"),
                                       "width": 2 if _family_of(name, families) == "deep" else 1.3},
                                 hovertemplate=f"<b>{name}</b><br>%{{x}}<br>%{{y:,.4g}}<extra></extra>"))
    for w in range(np.asarray(window_times).shape[0]):
        first = pd.Timestamp(np.asarray(window_times[w]).ravel().astype("datetime64[ns]")[0])
        fig.add_vline(x=first, line={"color": REFERENCE_COLOR, "width": 1, "dash": "dot"})
    if future is not None and len(future):
        lower = next(c for c in future.columns if str(c).startswith("lower"))
        upper = next(c for c in future.columns if str(c).startswith("upper"))
        ft = pd.DatetimeIndex(future["time"])
        fig.add_trace(go.Scatter(x=list(ft) + list(ft[::-1]),
                                 y=list(future[upper]) + list(future[lower][::-1]),
                                 mode="lines", fill="toself", fillcolor="rgba(232,113,10,0.18)", line={"width": 0},
                                 name=f"interval ({lower.split(' ', 1)[1]})", hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=ft, y=future["forecast"], mode="lines", name="forecast",
                                 line={"color": ACCENT_COLOR, "width": 2.2}))
    fig.update_xaxes(title_text="Time")
    fig.update_yaxes(title_text="Value")
    return _base_layout(fig, title, subtitle="Dotted lines mark where each backtest window starts: every model "
                        "forecast it from the values before that line only", height=460)


MAX_SERIES_LINES = 12  # lines on the overview; more series are listed, not drawn


def series_overview_chart(values: pd.DataFrame, missing: pd.DataFrame, target: str, unit: str) -> go.Figure:
    """Each series over time as it came in the file, with its missing steps marked below it.

    ``values`` has columns ``series, time, value``; ``missing`` has ``series, time`` (see
    ``timeseries.overview``). Long series are thinned for the browser; the first
    ``MAX_SERIES_LINES`` series are drawn.
    """
    if values.empty:
        return _message_figure(f"'{target}' has no values to draw.")
    names = list(dict.fromkeys(values["series"]))
    shown = names[:MAX_SERIES_LINES]
    several = len(names) > 1
    fig = go.Figure()
    for i, name in enumerate(shown):
        part = values[values["series"] == name]
        keep = _thin_index(len(part), cap=3000)
        fig.add_trace(go.Scatter(x=part["time"].to_numpy()[keep], y=part["value"].to_numpy()[keep], mode="lines",
                                 name=str(name) if several else target,
                                 line={"color": OTHER_COLORS[i % len(OTHER_COLORS)] if several else DATA_COLOR,
                                       "width": 1.4}))
    gaps = missing[missing["series"].isin(shown)]
    if len(gaps):
        low = float(values["value"].min())
        fig.add_trace(go.Scatter(x=gaps["time"], y=np.full(len(gaps), low), mode="markers",
                                 name=f"missing {unit} ({len(missing):,})",
                                 marker={"symbol": "line-ns-open", "size": 12, "color": "#d62728"},
                                 text=gaps["series"].astype(str) if several else None,
                                 hovertemplate="no value: %{x}" + (" (%{text})" if several else "") + "<extra></extra>"))
    more = f"; the first {len(shown)} of {len(names)} series are drawn" if len(names) > len(shown) else ""
    fig.update_xaxes(title_text="Time")
    fig.update_yaxes(title_text=target)
    return _base_layout(fig, f"{target} over time",
                        subtitle=("Red ticks at the bottom mark steps with no value" if len(missing) else
                                  "No missing steps") + more, height=380,
                        showlegend=several or bool(len(missing)))
