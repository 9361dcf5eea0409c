"""Plotly figure builders: data in, ``go.Figure`` out.

Pages only place these figures; nothing here knows about Streamlit. Every chart shares one
look so an analyst learns it once: ``plotly_white``, plain titles, deep models in a strong
blue, scikit-learn baselines in muted tones, the Dummy floor light grey and dashed.

Figures stay small whatever the data: scatter charts show a seeded sample of at most
``MAX_SCATTER_POINTS`` rows, ROC / PR curves at most ``MAX_CURVE_POINTS`` points, and
histograms are binned here so the raw values never ship to the browser.

Example::

    fig = roc_chart(y_test, {"MLP": p_mlp, "Logistic regression": p_lr}, "churned",
                    families={"MLP": "deep", "Logistic regression": "baseline"})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

__all__ = [
    "MAX_SCATTER_POINTS",
    "MAX_CURVE_POINTS",
    "training_curves",
    "leaderboard_chart",
    "confusion_matrix_chart",
    "roc_chart",
    "pr_chart",
    "predicted_vs_actual_chart",
    "residuals_chart",
    "distribution_chart",
    "class_balance_chart",
    "profit_chart",
    "gains_chart",
    "trials_chart",
]

MAX_SCATTER_POINTS = 5_000
MAX_CURVE_POINTS = 500
TOP_CATEGORIES = 20
SAMPLE_SEED = 0

# One palette for the whole app. Deep models get the strong colour; baselines stay in the
# background so the question "did deep learning beat the baselines?" reads at a glance.
DEEP_COLORS = ("#1f4e9c", "#3b82d6", "#0b2e6b", "#6aa3e8")
BASELINE_COLORS = ("#7f7f7f", "#b39b77", "#8aa6a3", "#a58fb0", "#9c9c6e", "#5f5f5f")
DUMMY_COLOR = "#c4c4c4"
# Used when the caller does not say which model is which: distinct but calm hues.
OTHER_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d")
DATA_COLOR = "#4c78a8"
ACCENT_COLOR = "#e8710a"
REFERENCE_COLOR = "#9a9a9a"

_MARGIN = dict(l=60, r=20, t=70, b=50)
_FAMILY_LABELS = {
    "deep": "Deep learning model",
    "baseline": "scikit-learn baseline",
    "dummy": "Dummy floor (always guesses the same)",
}


# --- shared helpers -------------------------------------------------------------------


def _base_layout(fig: go.Figure, title: str | None, subtitle: str | None = None, **kw: Any) -> go.Figure:
    """Apply the shared look; ``kw`` goes straight to ``update_layout``."""
    title_dict: dict[str, Any] = {"text": title or "", "x": 0.0, "xanchor": "left"}
    if subtitle:
        title_dict["subtitle"] = {"text": subtitle}
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "title": title_dict,
        "margin": dict(_MARGIN, t=90 if subtitle else (_MARGIN["t"] if title else 40)),
        "hoverlabel": {"bgcolor": "white"},
    }
    layout.update(kw)
    fig.update_layout(**layout)
    return fig


def _message_figure(message: str, title: str | None = None) -> go.Figure:
    """An empty chart that says why there is nothing to draw, instead of a blank frame."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
        font={"size": 16, "color": "#555555"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _base_layout(fig, title)


def _d3_format(values: Any) -> str:
    """A d3 number format that suits the magnitude of ``values`` (also valid in Python)."""
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size and np.max(np.abs(arr)) >= 1000:
        return ",.0f"  # money, counts, RMSE in the thousands: no exponent, thousands separators
    return ".4g"  # losses and rates: four significant digits handle both 2.3 and 0.0004


def _fmt(x: Any, spec: str) -> str:
    """Format one number for hover text; missing values read as "n/a"."""
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(xf):
        return "n/a"
    return format(xf, spec)


def _sample_index(n: int, cap: int = MAX_SCATTER_POINTS, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Sorted row positions of a seeded sample of at most ``cap`` of ``n`` rows.

    Seeded so that a redraw shows the same points and a colleague sees the same chart.
    """
    if n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=cap, replace=False))


def _thin_index(n: int, cap: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Evenly spaced positions along a curve, always keeping its first and last point."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, cap).round().astype(int))


def _sample_note(shown: int, total: int) -> str | None:
    return f"{shown:,} of {total:,} rows shown (random sample)" if shown < total else None


def _family_of(name: str, families: Mapping[str, str] | None) -> str:
    """"deep", "baseline", "dummy" or "other" (when the caller did not say)."""
    fam = (families or {}).get(name)
    if fam == "dummy" or name.lower().startswith("dummy"):
        return "dummy"
    if fam in ("deep", "baseline"):
        return fam
    return "other"


def _model_styles(names: Sequence[str], families: Mapping[str, str] | None) -> dict[str, dict[str, Any]]:
    """Colour and dash for each model, following the app palette."""
    counters = {"deep": 0, "baseline": 0, "other": 0}
    palettes = {"deep": DEEP_COLORS, "baseline": BASELINE_COLORS, "other": OTHER_COLORS}
    styles: dict[str, dict[str, Any]] = {}
    for name in names:
        fam = _family_of(name, families)
        if fam == "dummy":
            styles[name] = {"color": DUMMY_COLOR, "dash": "dash", "width": 2}
            continue
        palette = palettes[fam]
        styles[name] = {"color": palette[counters[fam] % len(palette)], "dash": "solid",
                        "width": 3 if fam == "deep" else 2}
        counters[fam] += 1
    return styles


def _check_same_length(y_true: np.ndarray, others: Mapping[str, np.ndarray]) -> None:
    for name, arr in others.items():
        if len(arr) != len(y_true):
            raise ValueError(f"{name!r} has {len(arr)} values but y_true has {len(y_true)}; "
                             "pass predictions for the same rows.")


def _histogram(values: np.ndarray, max_bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges for finite ``values``; whole-number data gets one bar per value."""
    lo, hi = float(values.min()), float(values.max())
    if np.all(values == np.round(values)) and hi - lo <= max_bins:
        # Bins centred on integers avoid bars that straddle two values (e.g. ages, counts).
        edges = np.arange(lo - 0.5, hi + 1.5)
    else:
        edges = np.histogram_bin_edges(values, bins="auto")
        if len(edges) - 1 > max_bins:
            edges = np.histogram_bin_edges(values, bins=max_bins)
    counts, edges = np.histogram(values, bins=edges)
    return counts, edges


# --- training -------------------------------------------------------------------------


def training_curves(
    history: pd.DataFrame,
    metric_title: str,
    higher_is_better: bool,
    total_epochs: int | None = None,
) -> go.Figure:
    """Loss and metric per epoch, training vs validation, with the best epoch starred.

    ``history`` has columns ``epoch`` (1-based), ``loss``, ``val_loss``, ``metric``,
    ``val_metric``; values may be NaN. With ``total_epochs`` the x axis is fixed to
    ``[1, total_epochs]`` so a live chart fills up instead of rescaling each epoch.
    """
    direction = "higher" if higher_is_better else "lower"
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.1,
        subplot_titles=("Loss (lower is better)", f"{metric_title} ({direction} is better)"),
    )
    span = total_epochs or 10
    xaxis_kw: dict[str, Any] = {"title_text": "Epoch", "tickformat": "d"}
    if total_epochs is not None or history.empty:
        xaxis_kw["range"] = [1, span]
    if history.empty:
        fig.add_annotation(text="Waiting for the first epoch…", x=0.5, y=0.5, xref="paper",
                           yref="paper", showarrow=False, font={"size": 16, "color": "#555555"})
    else:
        h = history.sort_values("epoch")
        epochs = h["epoch"].to_numpy(dtype=int)
        span = total_epochs or int(epochs.max())
        mode = "lines+markers" if len(epochs) <= 30 else "lines"  # one epoch must still show
        panels = ((1, "loss", "val_loss", "loss"), (2, "metric", "val_metric", metric_title))
        for col, train_col, val_col, label in panels:
            fmt = _d3_format(h[[train_col, val_col]].to_numpy(dtype=float))
            for kind, column, color, width in (
                ("Training", train_col, "#8fb1dc", 2),
                ("Validation", val_col, DEEP_COLORS[0], 3),
            ):
                fig.add_trace(
                    go.Scatter(
                        x=epochs, y=h[column].to_numpy(dtype=float), mode=mode, name=kind,
                        legendgroup=kind, showlegend=col == 1,
                        line={"color": color, "width": width}, marker={"size": 6},
                        hovertemplate=f"Epoch %{{x}}<br>{kind} {label}: %{{y:{fmt}}}<extra></extra>",
                    ),
                    row=1, col=col,
                )
        _add_best_epoch(fig, h, epochs, metric_title)
    if span <= 12:
        xaxis_kw.update(tick0=1, dtick=1)  # few epochs: every epoch labelled, no half-epochs
    fig.update_xaxes(**xaxis_kw)
    return _base_layout(
        fig, None,
        uirevision="training-curves",  # a live redraw keeps the analyst's zoom and toggles
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.22, "yanchor": "top"},
        margin=dict(_MARGIN, t=40, b=90),
    )


def _add_best_epoch(fig: go.Figure, h: pd.DataFrame, epochs: np.ndarray, metric_title: str) -> None:
    """Star the epoch with the lowest validation loss (the weights Keras keeps) on both panels."""
    val_loss = h["val_loss"].to_numpy(dtype=float)
    if not np.isfinite(val_loss).any():
        return
    i = int(np.nanargmin(val_loss))  # first minimum, as EarlyStopping counts improvement
    best_epoch = int(epochs[i])
    val_metric = float(h["val_metric"].to_numpy(dtype=float)[i])
    hover = (f"<b>Best so far</b>: epoch {best_epoch}<br>"
             f"Validation loss: {_fmt(val_loss[i], _d3_format(val_loss))}<br>"
             f"Validation {metric_title}: {_fmt(val_metric, _d3_format([val_metric]))}<extra></extra>")
    for col, y in ((1, float(val_loss[i])), (2, val_metric)):
        if not np.isfinite(y):
            continue
        fig.add_trace(
            go.Scatter(
                x=[best_epoch], y=[y], mode="markers", name="Best epoch (lowest validation loss)",
                legendgroup="best", showlegend=col == 1, cliponaxis=False,
                marker={"symbol": "star", "size": 16, "color": ACCENT_COLOR,
                        "line": {"color": "white", "width": 1}},
                hovertemplate=hover,
            ),
            row=1, col=col,
        )


# --- comparing models -----------------------------------------------------------------


def leaderboard_chart(rows: list[dict], metric_title: str, higher_is_better: bool) -> go.Figure:
    """Test score per model with its 95% confidence interval, best on top.

    ``rows``: dicts with ``model``, ``family`` ("deep" | "baseline"), ``test_score`` and
    ``ci`` ([low, high]). A baseline named ``Dummy…`` is drawn as the floor, with a
    dotted line at its score: a model left of (or near) it has learned nothing useful.
    """
    direction = "higher" if higher_is_better else "lower"
    title = f"Models ranked by test {metric_title} ({direction} is better)"
    if not rows:
        return _message_figure("No models have been scored yet.", title)

    def sort_key(row: dict) -> tuple[bool, float]:
        score = float(row["test_score"]) if row.get("test_score") is not None else np.nan
        if not np.isfinite(score):
            return (True, 0.0)  # unscored models go to the bottom
        return (False, -score if higher_is_better else score)

    ordered = sorted(rows, key=sort_key)  # stable: ties keep the caller's order
    fmt = _d3_format([r.get("test_score") for r in ordered])
    fig = go.Figure()
    for fam in ("deep", "baseline", "dummy"):
        members = [r for r in ordered if _row_family(r) == fam]
        if not members:
            continue
        scores = np.array([np.nan if r.get("test_score") is None else float(r["test_score"])
                           for r in members])
        ci = np.array([_ci_pair(r.get("ci")) for r in members], dtype=float).reshape(-1, 2)
        # A missing interval draws no bar rather than a misleading zero-width one.
        plus = np.where(np.isfinite(ci[:, 1]), ci[:, 1] - scores, 0.0)
        minus = np.where(np.isfinite(ci[:, 0]), scores - ci[:, 0], 0.0)
        color = {"deep": DEEP_COLORS[0], "baseline": BASELINE_COLORS[0], "dummy": DUMMY_COLOR}[fam]
        custom = [[_fmt(s, fmt), _fmt(lo, fmt), _fmt(hi, fmt)] for s, (lo, hi) in zip(scores, ci)]
        fig.add_trace(
            go.Scatter(
                x=scores, y=[str(r["model"]) for r in members], mode="markers",
                name=_FAMILY_LABELS[fam], customdata=custom,
                marker={"color": color, "size": 13 if fam == "deep" else 11,
                        "symbol": "circle" if fam != "dummy" else "circle-open",
                        "line": {"color": color, "width": 2}},
                error_x={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                         "color": color, "thickness": 2, "width": 6},
                hovertemplate=(f"<b>%{{y}}</b><br>Test {metric_title}: %{{customdata[0]}}<br>"
                               "95% CI: %{customdata[1]} – %{customdata[2]}<extra>%{fullData.name}</extra>"),
            )
        )
        if fam == "dummy" and np.isfinite(scores[0]):
            fig.add_vline(x=float(scores[0]), line={"color": DUMMY_COLOR, "dash": "dot", "width": 2},
                          annotation_text="Dummy floor", annotation_position="top",
                          annotation_font={"color": "#888888", "size": 11})
    fig.update_yaxes(type="category", categoryorder="array",
                     categoryarray=[str(r["model"]) for r in ordered],
                     autorange="reversed", title_text=None)
    fig.update_xaxes(title_text=f"Test {metric_title} (bars: 95% confidence interval)", zeroline=False)
    plot_px = 40 * len(ordered)  # each model gets a fixed row height, however many there are
    return _base_layout(
        fig, title, height=plot_px + 170,
        # Paper units scale with the plot, so place the legend a fixed ~55 px below the axis.
        legend={"orientation": "h", "x": 0.0, "y": -55 / plot_px, "yanchor": "top"},
        margin=dict(_MARGIN, b=100),
    )


def _row_family(row: dict) -> str:
    """A leaderboard row's group; an unknown family is drawn with the baselines."""
    fam = _family_of(str(row["model"]), {str(row["model"]): str(row.get("family", ""))})
    return "baseline" if fam == "other" else fam


def _ci_pair(ci: Any) -> tuple[float, float]:
    if ci is None or len(ci) != 2:
        return (np.nan, np.nan)
    return tuple(np.nan if v is None else float(v) for v in ci)  # type: ignore[return-value]


# --- classification -------------------------------------------------------------------


def confusion_matrix_chart(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> go.Figure:
    """Counts of actual (rows) vs predicted (columns) class, with row percentages in the cells.

    ``y_true`` and ``y_pred`` are integer codes into ``labels``. The row percentage answers
    the analyst's question "of the real X, how many did the model call X?".
    """
    yt = np.asarray(y_true).astype(int)
    yp = np.asarray(y_pred).astype(int)
    k = len(labels)
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} values but y_pred has {len(yp)}.")
    for name, arr in (("y_true", yt), ("y_pred", yp)):
        if arr.size and (arr.min() < 0 or arr.max() >= k):
            raise ValueError(f"{name} holds codes outside 0..{k - 1} for {k} labels.")
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (yt, yp), 1)
    row_totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(row_totals > 0, cm / row_totals, np.nan)
    pct = [[("–" if not np.isfinite(s) else f"{s:.1%}") for s in row] for row in share]
    text = [[f"{c:,}<br>{p}" for c, p in zip(crow, prow)] for crow, prow in zip(cm, pct)]
    names = [str(lab) for lab in labels]
    fig = go.Figure(
        go.Heatmap(
            z=cm, x=names, y=names, colorscale="Blues", customdata=pct,
            text=text, texttemplate="%{text}" if k <= 25 else None,  # too many cells to read
            colorbar={"title": {"text": "Rows"}},
            hovertemplate=("Actual: <b>%{y}</b><br>Predicted: <b>%{x}</b><br>Rows: %{z:,}<br>"
                           "Share of actual %{y}: %{customdata}<extra></extra>"),
        )
    )
    correct = np.trace(cm) / cm.sum() if cm.sum() else np.nan
    fig.update_xaxes(title_text="Predicted", type="category", side="bottom")
    fig.update_yaxes(title_text="Actual", type="category", autorange="reversed")
    return _base_layout(
        fig, "Confusion matrix: actual class vs predicted class",
        subtitle=f"{cm.sum():,} test rows, {_fmt(correct, '.1%')} on the diagonal (correct); "
                 "percentages are of each actual class",
    )


def _binary_truth(y_true: np.ndarray) -> np.ndarray:
    y = np.asarray(y_true)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1, False, True}:
        raise ValueError(f"y_true must be coded 0/1 (1 = the positive class); got values {sorted(values)[:5]}.")
    return y.astype(int)


def roc_chart(
    y_true: np.ndarray,
    scores: dict[str, np.ndarray],
    positive_label: str,
    families: Mapping[str, str] | None = None,
) -> go.Figure:
    """ROC curve per model (binary), AUC in the legend, best model first.

    ``y_true`` is 0/1 with 1 = ``positive_label``; ``scores`` maps a model name to its
    probability of the positive class. ``families`` (optional) maps a model name to
    "deep" or "baseline" for the app colours. Each trace's ``meta["auc"]`` holds the AUC.
    """
    title = f"ROC curve: how well each model picks out “{positive_label}”"
    y = _binary_truth(y_true)
    _check_same_length(y, scores)
    if len(np.unique(y)) < 2:
        return _message_figure("The test rows hold only one class, so a ROC curve cannot be drawn.", title)
    aucs = {name: float(roc_auc_score(y, s)) for name, s in scores.items()}
    ranked = sorted(scores, key=lambda n: -aucs[n])
    styles = _model_styles(ranked, families)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Coin flip (AUC 0.500)",
                             line={"color": REFERENCE_COLOR, "dash": "dot", "width": 1.5},
                             hoverinfo="skip"))
    for name in ranked:
        fpr, tpr, thr = roc_curve(y, np.asarray(scores[name], dtype=float))
        idx = _thin_index(len(fpr))
        st = styles[name]
        fig.add_trace(
            go.Scatter(
                x=fpr[idx], y=tpr[idx], mode="lines", name=f"{name} (AUC {aucs[name]:.3f})",
                meta={"auc": aucs[name]},
                line={"color": st["color"], "dash": st["dash"], "width": st["width"]},
                customdata=[_fmt(t, ".3f") if np.isfinite(t) else "above every score" for t in thr[idx]],
                hovertemplate=(f"<b>{name}</b><br>Flag when score ≥ %{{customdata}}<br>"
                               f"Finds %{{y:.1%}} of “{positive_label}”<br>"
                               "Wrongly flags %{x:.1%} of the others<extra></extra>"),
            )
        )
    fig.update_xaxes(title_text="False positive rate (share of others wrongly flagged)",
                     range=[0, 1], tickformat=".0%", constrain="domain")
    fig.update_yaxes(title_text=f"True positive rate (share of “{positive_label}” found)",
                     range=[0, 1.02], tickformat=".0%", scaleanchor="x", scaleratio=1, constrain="domain")
    return _base_layout(fig, title, subtitle="Curves closer to the top-left corner are better",
                        legend={"x": 0.98, "xanchor": "right", "y": 0.02, "yanchor": "bottom",
                                "bgcolor": "rgba(255,255,255,0.8)"})


def pr_chart(
    y_true: np.ndarray,
    scores: dict[str, np.ndarray],
    positive_label: str,
    families: Mapping[str, str] | None = None,
) -> go.Figure:
    """Precision-recall curve per model (binary), average precision in the legend.

    The dashed base-rate line is what guessing scores: precision equal to the share of
    positives. Each trace's ``meta["average_precision"]`` holds the AP.
    """
    title = f"Precision vs recall for “{positive_label}”"
    y = _binary_truth(y_true)
    _check_same_length(y, scores)
    if len(np.unique(y)) < 2:
        return _message_figure("The test rows hold only one class, so a precision-recall curve "
                               "cannot be drawn.", title)
    aps = {name: float(average_precision_score(y, s)) for name, s in scores.items()}
    ranked = sorted(scores, key=lambda n: -aps[n])
    styles = _model_styles(ranked, families)
    base = float(y.mean())
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[base, base], mode="lines",
                             name=f"Base rate ({base:.1%} are “{positive_label}”)",
                             line={"color": REFERENCE_COLOR, "dash": "dot", "width": 1.5},
                             hoverinfo="skip"))
    for name in ranked:
        precision, recall, thr = precision_recall_curve(y, np.asarray(scores[name], dtype=float))
        thr = np.append(thr, np.nan)  # the last point (recall 0) has no threshold
        idx = _thin_index(len(precision))
        st = styles[name]
        fig.add_trace(
            go.Scatter(
                x=recall[idx], y=precision[idx], mode="lines", line_shape="hv",  # AP is a step sum
                name=f"{name} (AP {aps[name]:.3f})", meta={"average_precision": aps[name]},
                line={"color": st["color"], "dash": st["dash"], "width": st["width"]},
                customdata=[_fmt(t, ".3f") for t in thr[idx]],
                hovertemplate=(f"<b>{name}</b><br>Flag when score ≥ %{{customdata}}<br>"
                               f"Finds %{{x:.1%}} of “{positive_label}”<br>"
                               "%{y:.1%} of flagged rows are right<extra></extra>"),
            )
        )
    fig.update_xaxes(title_text=f"Recall (share of “{positive_label}” found)", range=[0, 1], tickformat=".0%")
    fig.update_yaxes(title_text="Precision (share of flagged rows that are right)", range=[0, 1.02],
                     tickformat=".0%")
    return _base_layout(fig, title, subtitle="Curves closer to the top-right corner are better",
                        legend={"x": 0.02, "xanchor": "left", "y": 0.02, "yanchor": "bottom",
                                "bgcolor": "rgba(255,255,255,0.8)"})


# --- regression -----------------------------------------------------------------------


def predicted_vs_actual_chart(
    y_true: np.ndarray,
    preds: dict[str, np.ndarray],
    families: Mapping[str, str] | None = None,
) -> go.Figure:
    """Predicted against actual value per model, with the ``y = x`` line of a perfect model.

    Large test sets show the same seeded sample of rows for every model.
    """
    yt = np.asarray(y_true, dtype=float)
    _check_same_length(yt, preds)
    idx = _sample_index(len(yt))
    arrays = [yt] + [np.asarray(p, dtype=float) for p in preds.values()]
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = (hi - lo) * 0.03 or 1.0
    fmt = _d3_format(finite)
    styles = _model_styles(list(preds), families)
    # Clouds of six models on one another hide each other: the first (best) model of each family
    # is drawn, the rest are a click on their legend entry away.
    shown: set[str] = set()
    seen: set[str] = set()
    for name in preds:
        fam = _family_of(name, families)
        if fam != "dummy" and fam not in seen:
            seen.add(fam)
            shown.add(name)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="Perfect prediction (y = x)",
                             line={"color": REFERENCE_COLOR, "dash": "dot", "width": 1.5},
                             hoverinfo="skip"))
    for name, p in preds.items():
        p = np.asarray(p, dtype=float)
        fig.add_trace(
            go.Scatter(
                x=yt[idx], y=p[idx], mode="markers", name=name,
                visible=True if name in shown or not shown else "legendonly",
                marker={"color": styles[name]["color"], "size": 5, "opacity": 0.5},
                hovertemplate=(f"<b>{name}</b><br>Actual: %{{x:{fmt}}}<br>"
                               f"Predicted: %{{y:{fmt}}}<extra></extra>"),
            )
        )
    fig.update_xaxes(title_text="Actual value", range=[lo - pad, hi + pad])
    fig.update_yaxes(title_text="Predicted value", range=[lo - pad, hi + pad])
    hidden = len(preds) - len(shown) if shown else 0
    note = " · ".join(n for n in (_sample_note(len(idx), len(yt)),
                                  f"the best of each kind of model drawn; click a name in the legend to add "
                                  f"the other {hidden}" if hidden else "") if n)
    return _base_layout(fig, "Predicted vs actual: points on the dotted line are perfect", subtitle=note or None)


def residuals_chart(y_true: np.ndarray, y_pred: np.ndarray, model: str) -> go.Figure:
    """Residual (actual − predicted) against prediction, and a histogram of residuals.

    A good model's residuals scatter evenly around zero; a funnel or a curve shows where
    it is systematically wrong. The histogram uses every row, binned here.
    """
    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    _check_same_length(yt, {model: yp})
    resid = yt - yp
    idx = _sample_index(len(resid))
    fmt = _d3_format(np.concatenate([yp, resid]))
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35], horizontal_spacing=0.08,
                        subplot_titles=("Residual vs predicted", "How often each error size occurs"))
    fig.add_trace(
        go.Scatter(
            x=yp[idx], y=resid[idx], mode="markers", name=model, showlegend=False,
            marker={"color": DEEP_COLORS[0], "size": 5, "opacity": 0.5},
            hovertemplate=(f"Predicted: %{{x:{fmt}}}<br>Residual: %{{y:{fmt}}}<extra></extra>"),
        ),
        row=1, col=1,
    )
    fig.add_hline(y=0, line={"color": REFERENCE_COLOR, "dash": "dot"}, row=1, col=1)
    ok = resid[np.isfinite(resid)]
    if ok.size:
        counts, edges = _histogram(ok)
        fig.add_trace(
            go.Bar(
                x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), showlegend=False,
                marker={"color": DEEP_COLORS[0], "opacity": 0.75}, name="Residuals",
                customdata=np.column_stack([edges[:-1], edges[1:]]),
                hovertemplate=(f"Residual %{{customdata[0]:{fmt}}} to %{{customdata[1]:{fmt}}}"
                               "<br>Rows: %{y:,}<extra></extra>"),
            ),
            row=1, col=2,
        )
        fig.add_vline(x=0, line={"color": REFERENCE_COLOR, "dash": "dot"}, row=1, col=2)
    fig.update_xaxes(title_text="Predicted value", row=1, col=1)
    fig.update_yaxes(title_text="Residual (actual − predicted)", row=1, col=1)
    fig.update_xaxes(title_text="Residual", row=1, col=2)
    fig.update_yaxes(title_text="Rows", row=1, col=2)
    note = "Above zero: the model predicted too low; below zero: too high."
    sample = _sample_note(len(idx), len(resid))
    return _base_layout(fig, f"Residuals of {model}", subtitle=f"{note} {sample}." if sample else note,
                        bargap=0.02)


# --- data profile ---------------------------------------------------------------------


def distribution_chart(values: pd.Series, title: str) -> go.Figure:
    """Histogram for numbers and dates; bar of the top 20 values (plus "Other") for the rest.

    The title says how many values are missing, since that is the first thing to fix.
    """
    n = len(values)
    missing = int(values.isna().sum())
    note = (f"{missing:,} missing ({missing / n:.1%})" if missing else "no missing values") if n else "no rows"
    full_title = f"{title} — {note}"
    present = values.dropna()
    if present.empty:
        return _message_figure("No values to show: every value is missing.", full_title)
    if pd.api.types.is_datetime64_any_dtype(present):
        return _datetime_histogram(present, full_title)
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        return _numeric_histogram(present, full_title)
    return _category_bars(present.astype(str), full_title, TOP_CATEGORIES, n_total=n)


def _numeric_histogram(present: pd.Series, title: str) -> go.Figure:
    arr = present.to_numpy(dtype=float)
    finite = arr[np.isfinite(arr)]
    infinite = arr.size - finite.size
    subtitle = f"{infinite:,} infinite values not shown" if infinite else None
    if not finite.size:
        return _message_figure("No finite values to show.", title)
    counts, edges = _histogram(finite)
    fmt = _d3_format(edges)
    share = counts / arr.size
    fig = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
            marker={"color": DATA_COLOR}, name=present.name if present.name is not None else "values",
            customdata=np.column_stack([edges[:-1], edges[1:], share]),
            hovertemplate=(f"%{{customdata[0]:{fmt}}} to %{{customdata[1]:{fmt}}}<br>"
                           "Rows: %{y:,} (%{customdata[2]:.1%})<extra></extra>"),
        )
    )
    fig.update_xaxes(title_text="Value")
    fig.update_yaxes(title_text="Rows")
    return _base_layout(fig, title, subtitle=subtitle, bargap=0.02)


def _datetime_histogram(present: pd.Series, title: str) -> go.Figure:
    if getattr(present.dt, "tz", None) is not None:
        present = present.dt.tz_localize(None)  # keep the wall-clock times the analyst knows
    # pandas 3 infers second/ms/us resolutions; binning in one fixed unit keeps edges right.
    ns = present.to_numpy().astype("datetime64[ns]").astype(np.int64)
    counts, edges = np.histogram(ns, bins=min(50, max(1, len(np.unique(ns)))))
    left = edges[:-1].astype(np.int64).astype("datetime64[ns]")
    right = edges[1:].astype(np.int64).astype("datetime64[ns]")
    centers = ((edges[:-1] + edges[1:]) / 2).astype(np.int64).astype("datetime64[ns]")
    width_ms = np.diff(edges) / 1e6  # a date axis measures bar widths in milliseconds
    fmt = "%Y-%m-%d %H:%M" if (edges[-1] - edges[0]) < 3 * 86_400e9 else "%Y-%m-%d"
    labels = np.column_stack([pd.DatetimeIndex(left).strftime(fmt), pd.DatetimeIndex(right).strftime(fmt),
                              [f"{c / len(ns):.1%}" for c in counts]])
    fig = go.Figure(
        go.Bar(
            x=pd.DatetimeIndex(centers), y=counts, width=width_ms, marker={"color": DATA_COLOR},
            customdata=labels, name="values",
            hovertemplate="%{customdata[0]} to %{customdata[1]}<br>Rows: %{y:,} (%{customdata[2]})<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="Date", type="date")
    fig.update_yaxes(title_text="Rows")
    return _base_layout(fig, title, bargap=0.02)


def _category_bars(labels: pd.Series, title: str, top: int, n_total: int,
                   subtitle: str | None = None, unit: str = "rows") -> go.Figure:
    """Horizontal bars of the most common values, the rest folded into one "Other" bar."""
    counts = labels.value_counts()
    distinct = len(counts)
    if distinct > top:
        rest = counts.iloc[top:]
        counts = pd.concat([counts.iloc[:top],
                            pd.Series([rest.sum()], index=[f"Other ({len(rest):,} values)"])])
    share = counts.to_numpy() / max(n_total, 1)
    names = [str(i) for i in counts.index]
    fig = go.Figure(
        go.Bar(
            x=counts.to_numpy(), y=names, orientation="h", marker={"color": DATA_COLOR},
            text=[f"{c:,} ({s:.1%})" for c, s in zip(counts.to_numpy(), share)], textposition="auto",
            customdata=share, name=unit,
            hovertemplate="<b>%{y}</b><br>" + unit.capitalize() + ": %{x:,} (%{customdata:.1%})<extra></extra>",
        )
    )
    if distinct > top and subtitle is None:
        subtitle = f"Top {top} of {distinct:,} distinct values"
    fig.update_yaxes(type="category", autorange="reversed", automargin=True)
    fig.update_xaxes(title_text=unit.capitalize())
    return _base_layout(fig, title, subtitle=subtitle, height=max(260, 120 + 26 * len(names)))


def class_balance_chart(y: pd.Series, unit: str = "rows") -> go.Figure:
    """Rows (or images: ``unit``) per class with percentages, largest first; warns when classes are
    very uneven. Rows without a value are not a class (a run leaves them out): they are counted in
    the subtitle, not drawn as a bar."""
    text = y.astype(object).where(y.notna(), None)
    present = text.map(lambda v: v is not None and str(v).strip() != "")
    missing = int((~present).sum())
    labels = text[present].astype(str)
    n = len(labels)
    if n == 0:
        return _message_figure(f"No {unit} with a value to count.", f"{unit.capitalize()} per class")
    counts = labels.value_counts()
    ratio = counts.iloc[0] / counts.iloc[-1]
    notes = []
    if len(counts) > 1 and ratio >= 5:
        # Accuracy is misleading here: always guessing the big class already scores high.
        notes.append(f"The largest class has {ratio:,.0f}× the {unit} of the smallest: "
                     "look at per-class results, not only accuracy")
    if missing:
        notes.append(f"{missing:,} {unit} without a value are left out of training")
    subtitle = "; ".join(notes) or None
    title = f"{unit.capitalize()} per class ({n:,} {unit}, {len(counts):,} class{'es' if len(counts) != 1 else ''})"
    return _category_bars(labels, title, top=50, n_total=n, subtitle=subtitle, unit=unit)


# ---- decisions: thresholds from money -------------------------------------------------------
def profit_chart(curve: pd.DataFrame, currency: str, best: float, chosen: float | None = None,
                 positive_label: str = "yes") -> go.Figure:
    """Expected profit on the test rows against the threshold, the best one marked.

    ``curve`` is ``decision.profit_curve``'s frame (threshold falling, profit per threshold)."""
    c = curve[curve["threshold"] <= 1.0].sort_values("threshold")
    idx = _thin_index(len(c))
    c = c.iloc[idx]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=c["threshold"], y=c["profit"], mode="lines", name="Profit on the test rows",
        line={"color": DEEP_COLORS[0], "width": 2.5, "shape": "hv"},
        customdata=np.column_stack([c["flagged"], c["tp"], c["fp"], c["fn"]]),
        hovertemplate=(f"Flag “{positive_label}” when probability ≥ %{{x:.3f}}<br>Profit: {currency}%{{y:,.0f}}<br>"
                       "Rows flagged: %{customdata[0]:.1%}<br>Right flags %{customdata[1]:,.0f} · false alarms "
                       "%{customdata[2]:,.0f} · missed %{customdata[3]:,.0f}<extra></extra>"),
    ))
    fig.add_hline(y=0, line={"color": REFERENCE_COLOR, "width": 1})
    # Each label on the side away from the other line, so "best" and "chosen" never overlap.
    chosen_left = chosen is not None and min(chosen, 1.0) < min(best, 1.0)
    fig.add_vline(x=min(best, 1.0), line={"color": ACCENT_COLOR, "dash": "dash"},
                  annotation_text=f"best {min(best, 1.0):.3f}",
                  annotation_position="top right" if chosen_left else "top left")
    if chosen is not None and abs(min(chosen, 1.0) - min(best, 1.0)) >= 0.0005:
        fig.add_vline(x=min(chosen, 1.0), line={"color": "#444444", "dash": "dot"},
                      annotation_text=f"chosen {min(chosen, 1.0):.3f}",
                      annotation_position="top left" if chosen_left else "top right")
    fig.update_xaxes(title_text=f"Threshold: flag a row “{positive_label}” when its probability is at least this",
                     range=[0, 1])
    fig.update_yaxes(title_text=f"Profit on the test rows ({currency})", tickformat=",.0f")
    return _base_layout(fig, "Expected profit at each threshold",
                        subtitle="Every right flag earns, every false alarm and miss costs; the dashed line is the best",
                        showlegend=False)


def gains_chart(frame: pd.DataFrame, positive_label: str) -> go.Figure:
    """Cumulative gain (left) and lift (right) of acting on the top rows by probability."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Cumulative gain", "Lift"), horizontal_spacing=0.12)
    fig.add_trace(go.Scatter(x=frame["share"], y=frame["gain"], mode="lines", name="Model",
                             line={"color": DEEP_COLORS[0], "width": 2.5},
                             hovertemplate=(f"Act on the top %{{x:.0%}} of rows: reach %{{y:.1%}} of all "
                                            f"“{positive_label}”<extra></extra>")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="Picking rows at random",
                             line={"color": REFERENCE_COLOR, "dash": "dot"}, hoverinfo="skip"), row=1, col=1)
    lift = frame[frame["share"] >= 0.05]
    fig.add_trace(go.Scatter(x=lift["share"], y=lift["lift"], mode="lines", name="Lift", showlegend=False,
                             line={"color": DEEP_COLORS[1], "width": 2.5},
                             hovertemplate=("Top %{x:.0%} of rows hold %{y:.2f}× as many “" + positive_label
                                            + "” as a random pick<extra></extra>")), row=1, col=2)
    fig.add_hline(y=1, line={"color": REFERENCE_COLOR, "dash": "dot"}, row=1, col=2)
    fig.update_xaxes(title_text="Rows acted on, highest first", tickformat=".0%")
    fig.update_yaxes(title_text=f"Share of all “{positive_label}” reached", tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title_text="Times better than random", row=1, col=2)
    return _base_layout(fig, None, height=420, legend={"orientation": "h", "x": 0.0, "y": -0.25})


def trials_chart(trials: Mapping[str, Any], display: Any = None, unit: str = "rows") -> go.Figure:
    """The search's trials: each one's validation score against the time it ended, one marker
    series per model (pruned trials hollow), and a line of the deep model's best so far.

    ``trials`` is what ``dlcore.search.load_trials`` returns; ``display`` names a model for a
    reader (``evaluate.display_name``)."""
    display = display or (lambda name: name)
    # The Dummy floor has nothing to search, and its one score would squash every other one.
    rows = [t for t in trials.get("trials", []) if t.get("score") is not None and t["candidate"] != "dummy"]
    title = f"Search: {trials.get('metric_title', 'score')} of each trial on the validation {unit}"
    if not rows:
        return _message_figure("Waiting for the first trial to end…", title)
    higher = bool(trials.get("higher_is_better", True))
    fig = go.Figure()
    names = list(dict.fromkeys(t["candidate"] for t in rows))
    families = {t["candidate"]: ("dummy" if t["candidate"] == "dummy" else t["family"]) for t in rows}
    styles = _model_styles(names, {n: families[n] for n in names})
    for name in names:
        mine = [t for t in rows if t["candidate"] == name]
        pruned = [t["state"] == "pruned" for t in mine]
        fig.add_trace(go.Scatter(
            x=[t["at"] for t in mine], y=[t["score"] for t in mine], mode="markers", name=display(name),
            marker=dict(color=styles[name]["color"], size=9 if families[name] == "deep" else 7,
                        symbol=["circle-open" if p else "circle" for p in pruned]),
            customdata=[[t["number"] + 1, t["state"], t["seconds"]] for t in mine],
            hovertemplate="trial %{customdata[0]} (%{customdata[1]}, %{customdata[2]:.1f} s)<br>"
                          "score %{y:.4g} at %{x:.0f} s<extra>" + display(name) + "</extra>",
        ))
        if families[name] == "deep":
            best, xs, ys = None, [], []
            for t in sorted((t for t in mine if t["state"] == "complete"), key=lambda t: t["at"]):
                if best is None or (t["score"] > best if higher else t["score"] < best):
                    best = t["score"]
                xs.append(t["at"])
                ys.append(best)
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=styles[name]["color"], shape="hv"),
                                         name=f"{display(name)}: best so far", hoverinfo="skip"))
    budget = trials.get("budget_s")
    if budget:
        fig.add_vline(x=float(budget), line=dict(color=REFERENCE_COLOR, dash="dot"),
                      annotation_text="budget", annotation_position="top left")
    fig.update_xaxes(title_text="seconds since the run started", rangemode="tozero")
    fig.update_yaxes(title_text=trials.get("metric_title", "score") + (" (higher is better)" if higher else " (lower is better)"))
    scores = [float(t["score"]) for t in rows]
    if higher and all(0.0 <= v <= 1.0 for v in scores):
        # A share or an AUC ends at 1: every trial at 1.0 drew an axis from 0 to 2, half of it impossible.
        pad = max(0.005, (1.0 - min(scores)) * 0.08)
        fig.update_yaxes(range=[max(0.0, min(scores) - pad), 1.0 + pad / 2])
    return _base_layout(fig, title, legend=dict(orientation="h", y=-0.2))
