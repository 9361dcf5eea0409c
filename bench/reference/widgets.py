"""Constant widgets the reference pages share: a runs table, a small chart, links."""

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st


def runs_table(n: int) -> None:
    rows = [{"Run": f"/compare?run={i:024x}", "Started": "2026-01-01 10:00", "Status": "finished", "Dataset": "big.csv",
             "Target": "segment_0", "Template": "MLP", "Metric": "Accuracy", "Test score": "0.1700",
             "Against the baselines": "not clearly better", "Duration": "1m 40s"} for i in range(n)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "Run": st.column_config.LinkColumn("Run", display_text=r"run=([^&]+)", width=150),
        "Test score": st.column_config.TextColumn("Score", width=60)})


def chart(traces: int = 2, points: int = 10) -> go.Figure:
    fig = go.Figure()
    for t in range(traces):
        fig.add_trace(go.Scatter(x=list(range(points)), y=[(i * (t + 1)) % 7 for i in range(points)], name=f"t{t}"))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def link(page: str, label: str) -> None:
    st.page_link(f"ref_{page}.py", label=label)


def when() -> str:
    return time.strftime("%Y-%m-%d %H:%M")
