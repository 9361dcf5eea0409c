"""Plotly figures of a model at work: a drifted column (training vs this file) and the realized
score over time beside the band the test rows promised. Data in, ``go.Figure`` out; pages
only place them."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from dlcore.charts import _base_layout, _message_figure
from dlcore.formats import number
from dlcore.monitor.drift import ColumnDrift

__all__ = ["drift_chart", "realized_chart"]

_TRAINING, _CURRENT = "#9aa5b1", "#1f5fbf"


def drift_chart(column: ColumnDrift, current_name: str = "this file") -> go.Figure:
    """Share of rows per bin (numbers, text lengths) or per value (categories): the training rows
    beside the scored file, so the shift the sentence names is seen at a glance."""
    if not column.labels:
        return _message_figure(f"No values of {column.name} to compare.", column.name)
    reference_name = "test rows" if column.kind in ("prediction", "confidence") else "training"
    fig = go.Figure()
    for name, shares, colour in ((reference_name, column.reference, _TRAINING),
                                 (current_name, column.current, _CURRENT)):
        fig.add_bar(x=column.labels, y=shares, name=name, marker_color=colour,
                    hovertemplate="%{x}: %{y:.1%} of rows<extra>" + name + "</extra>")
    missing = ""
    if column.missing_reference or column.missing_current:
        missing = (f"; missing in {column.missing_current:.0%} of rows "
                   f"({column.missing_reference:.0%} in {reference_name})")
    return _base_layout(fig, column.name, f"{column.words}{missing}", barmode="group",
                        yaxis={"tickformat": ".0%", "title": "share of rows"},
                        legend={"orientation": "h", "y": -0.2}, height=360)


def realized_chart(points: Sequence[dict[str, Any]], metric_title: str,
                   promised: tuple[float, float] | None) -> go.Figure:
    """The realized score of each scoring whose outcomes came back, in time order, with the
    interval the test rows promised as a band: a point outside the band is the alert."""
    shown = [p for p in points if p.get("score") is not None]
    if not shown:
        return _message_figure("No outcomes yet: upload the true outcomes of a scored file.", metric_title)
    shown = sorted(shown, key=lambda p: p["at"])

    x = [_dt.datetime.fromtimestamp(p["at"], tz=_dt.UTC) for p in shown]
    fig = go.Figure()
    if promised is not None:
        lo, hi = promised
        fig.add_hrect(y0=lo, y1=hi, fillcolor=_TRAINING, opacity=0.25, line_width=0,
                      annotation_text=f"promised {number(lo)}–{number(hi)}", annotation_position="top left")
    colours = ["#c0392b" if p.get("outside") else _CURRENT for p in shown]
    fig.add_scatter(x=x, y=[p["score"] for p in shown], mode="lines+markers", marker={"color": colours, "size": 10},
                    line={"color": _CURRENT}, name=metric_title,
                    text=[p.get("label", "") for p in shown],
                    hovertemplate="%{text}<br>" + metric_title + " %{y:.4f}<extra></extra>")
    return _base_layout(fig, f"{metric_title} on outcomes that came back", None,
                        yaxis={"title": metric_title}, showlegend=False, height=340)
