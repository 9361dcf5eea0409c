"""Views drawn by more than one page: the runs table, a run's header, the leaderboard table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dlcore import evaluate
from dlcore.store import RunRecord
from ui import common, urls

__all__ = ["runs_table", "leaderboard_frame", "metric_title", "display_rows"]

METRIC_TITLES = {"roc_auc": "ROC AUC", "accuracy": "Accuracy", "rmse": "RMSE"}


def metric_title(key: str | None) -> str:
    return METRIC_TITLES.get(key or "", key or "-")


def runs_table(runs: list[RunRecord]) -> None:
    """A table of runs, each linking to its page."""
    store = common.store()
    names: dict[str, str] = {}
    rows = []
    for r in runs:
        if r.dataset_id not in names:
            try:
                names[r.dataset_id] = store.dataset(r.dataset_id).name
            except Exception:
                names[r.dataset_id] = r.dataset_id
        page = "compare" if r.status in ("done", "stopped") else "train"
        rows.append({
            "Run": urls.href(page, run=r.id),
            "Started": common.when(r.created_at),
            "Status": common.STATUS_WORDS.get(r.status, r.status),
            "Dataset": names[r.dataset_id],
            "Target": r.target,
            "Template": evaluate.display_name(r.template),
            "Metric": metric_title(r.metric),
            "Test score": r.test_score,
            "Duration": common.duration(r.duration),
        })
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "Run": st.column_config.LinkColumn("Run", display_text=r"run=([^&]+)", help="Open the run"),
            "Test score": st.column_config.NumberColumn(format="%.4f"),
        },
    )


def leaderboard_frame(board: dict) -> pd.DataFrame:
    """The leaderboard as a readable table: score with its interval, secondary metrics, time."""
    rows = []
    for rank, r in enumerate(board["rows"], start=1):
        low, high = r["ci"]
        row = {
            "Rank": rank,
            "Model": evaluate.display_name(r["model"]),
            "Kind": "deep" if r["family"] == "deep" else "baseline",
            board["metric_title"]: r["test_score"],
            "95% interval": f"{low:.4f} to {high:.4f}" if low is not None and high is not None else "-",
        }
        for metric in evaluate.metrics_for(board["task"])[1:]:
            row[metric.title] = r["metrics"].get(metric.key)
        row["Fit time"] = common.duration(r.get("fit_seconds"))
        rows.append(row)
    return pd.DataFrame(rows)


def display_rows(board: dict) -> list[dict]:
    """Leaderboard rows with the names an analyst reads, for charts."""
    return [{**r, "model": evaluate.display_name(r["model"])} for r in board["rows"]]
