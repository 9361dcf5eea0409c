"""Charts of a table model's explanation: what each column is worth (permutation importance),
how the prediction moves with a column (partial dependence with individual rows), and one row's
push up or down per column (a waterfall).
"""

from __future__ import annotations

import plotly.graph_objects as go

from dlcore.charts import (
    ACCENT_COLOR,
    DEEP_COLORS,
    DUMMY_COLOR,
    REFERENCE_COLOR,
    _base_layout,
    _message_figure,
)

__all__ = ["importance_chart", "dependence_chart", "contributions_chart"]


def importance_chart(items: list[dict], metric_title: str, model: str, top: int = 15) -> go.Figure:
    """Permutation importance per input column, largest first, with its spread across repeats.

    ``items``: dicts with ``feature``, ``mean`` and ``std`` (drop of the score when the
    column is shuffled)."""
    shown = sorted(items, key=lambda d: -d["mean"])[:top][::-1]
    if not shown:
        return _message_figure("No input columns to rank.")
    colors = [DEEP_COLORS[0] if d["mean"] > 2 * d["std"] and d["mean"] > 0 else DUMMY_COLOR for d in shown]
    fig = go.Figure(go.Bar(
        x=[d["mean"] for d in shown], y=[str(d["feature"]) for d in shown], orientation="h",
        error_x={"type": "data", "array": [d["std"] for d in shown], "color": "#555555"},
        marker={"color": colors},
        hovertemplate=f"Shuffling <b>%{{y}}</b> costs %{{x:.4f}} of {metric_title}<extra></extra>",
    ))
    fig.add_vline(x=0, line={"color": REFERENCE_COLOR, "width": 1})
    fig.update_xaxes(title_text=f"How much worse the {metric_title} gets when this column is shuffled")
    return _base_layout(fig, f"What {model} relies on", showlegend=False,
                        subtitle="Grey bars are within the noise of shuffling (less than twice their spread)",
                        height=max(320, 60 + 28 * len(shown)))


def dependence_chart(item: dict, target_title: str) -> go.Figure:
    """Partial dependence of one column (thick line) with individual rows' curves (thin lines)."""
    grid = item["grid"]
    categorical = item.get("categorical", False)
    fig = go.Figure()
    for curve in item.get("individual", [])[:50]:
        fig.add_trace(go.Scatter(x=grid, y=curve, mode="lines", line={"color": "rgba(59,130,214,0.15)", "width": 1},
                                 hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=grid, y=item["average"], mode="lines+markers" if categorical or len(grid) < 12 else "lines",
                             name="Average over the rows", line={"color": ACCENT_COLOR, "width": 3},
                             hovertemplate=f"{item['feature']} = %{{x}}<br>{target_title}: %{{y:.4g}}<extra></extra>"))
    fig.update_xaxes(title_text=str(item["feature"]), type="category" if categorical else None)
    fig.update_yaxes(title_text=target_title)
    return _base_layout(fig, f"{item['feature']}: how the prediction moves with it",
                        subtitle="Thin lines: single rows, with only this column changed; thick: their average",
                        showlegend=False, height=360)


def contributions_chart(items: list[dict], base: float, prediction: float, value_title: str,
                        percent: bool = False, top: int = 12) -> go.Figure:
    """A waterfall from the average prediction to this row's, one step per input column."""
    ranked = sorted(items, key=lambda d: -abs(d["contribution"]))
    shown, rest = ranked[:top], ranked[top:]
    scale = 100.0 if percent else 1.0
    unit = " pts" if percent else ""
    labels = [f"{d['feature']} = {d['value']}" for d in shown]
    values = [d["contribution"] * scale for d in shown]
    if rest:
        labels.append(f"{len(rest)} other columns")
        values.append(sum(d["contribution"] for d in rest) * scale)
    fig = go.Figure(go.Waterfall(
        orientation="h", measure=["absolute"] + ["relative"] * len(values) + ["total"],
        y=["Average prediction"] + labels + ["This row"],
        x=[base * scale] + values + [prediction * scale],
        increasing={"marker": {"color": "#c0392b"}}, decreasing={"marker": {"color": "#2e7d32"}},
        totals={"marker": {"color": DEEP_COLORS[0]}},
        connector={"line": {"color": "#bbbbbb"}},
        hovertemplate=f"%{{y}}: %{{x:+.3g}}{unit}<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text=value_title + (" (percentage points)" if percent else ""))
    return _base_layout(fig, "What pushed this prediction up or down", showlegend=False,
                        subtitle="Red pushes up, green pushes down; the steps add up from the average to this row",
                        height=max(360, 80 + 30 * (len(values) + 2)))
