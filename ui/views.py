"""Views drawn by more than one page: the runs table, a run's header, the leaderboard table."""

from __future__ import annotations

from typing import Callable, TypeVar

import pandas as pd
import streamlit as st

from dlcore import evaluate
from dlcore.errors import DlcoreError, NotFoundError
from dlcore.store import RunRecord
from ui import common, urls

__all__ = ["runs_table", "leaderboard_frame", "metric_title", "display_rows", "or_stop", "pick_finished_run", "pick_dataset", "scored_preview"]

T = TypeVar("T")

METRIC_TITLES = {"roc_auc": "ROC AUC", "accuracy": "Accuracy", "rmse": "RMSE"}


def goal(dataset, target: str, task: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """What a run learns, in words: 'predicts “churn”', 'forecasts “sales”', or 'sorts images into 10 classes'."""
    if task == "forecast":
        return f"forecasts “{target}”"
    if dataset.kind == "image":
        return f"sorts images into {len(dataset.report.get('classes', {}))} classes"
    return f"predicts “{target}”"


def _kind_of(template: str) -> str:
    from dlcore import templates
    from dlcore.errors import SpecError

    try:
        return templates.get(template).kind
    except SpecError:
        return "tabular"


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
            except NotFoundError:  # a run whose dataset was removed still lists
                names[r.dataset_id] = r.dataset_id
        page = "compare" if r.status in ("done", "stopped") else "train"
        rows.append({
            "Run": urls.href(page, run=r.id),
            "Started": common.when(r.created_at),
            "Status": common.STATUS_WORDS.get(r.status, r.status),
            "Dataset": names[r.dataset_id],
            "Target": "image class" if _kind_of(r.template) == "image" else r.target,
            "Template": evaluate.display_name(r.template),
            "Metric": metric_title(r.metric),
            "Test score": r.test_score,
            "Against the baselines": _outcome(r),
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


OUTCOME_WORDS = {
    "better": "better",
    "worse": "worse",
    "not_clearly_better": "not clearly better",
}


def _outcome(run: RunRecord) -> str:
    """The verdict of a finished run's deep model, in a word or three."""
    verdicts = (run.result or {}).get("leaderboard", {}).get("verdicts") or []
    return OUTCOME_WORDS.get(verdicts[0]["outcome"], "-") if verdicts else "-"


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


def or_stop(load: Callable[..., T], *args: str) -> T:
    """Load a record for the page, or show why not (an unknown id in a link) and stop the page."""
    try:
        return load(*args)
    except DlcoreError as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()


def pick_finished_run(page: str, prompt: str) -> None:
    """List finished runs as links to ``page`` (for a page opened without ``?run=``), then stop."""
    finished = common.store().list_runs(statuses=("done", "stopped"), limit=20)
    if not finished:
        st.info("No finished run yet. Train a model first.", icon=":material/info:")
        urls.link("train", "Go to Train")
        st.stop()
    st.write(prompt)
    for r in finished:
        score = f" · {metric_title(r.metric)} {r.test_score:.4f}" if r.test_score is not None else ""
        urls.link(page, f"{evaluate.display_name(r.template)} → {r.target} · {common.when(r.created_at)}{score}", run=r.id)
    st.stop()


def pick_dataset(page: str, prompt: str) -> None:
    """List stored datasets as links to ``page`` (for a page opened without ``?dataset=``), then stop."""
    recent = common.store().list_datasets(limit=10)
    if recent:
        st.subheader(prompt)
        for d in recent:
            shape = (f"{d.n_rows:,} images in {len(d.report.get('classes', {}))} classes" if d.kind == "image"
                     else f"{d.n_rows:,} rows × {d.n_cols} columns")
            urls.link(page, f"{d.name} · {shape} · {common.when(d.created_at)}", dataset=d.id)
    elif page != "data":
        st.info("First bring some data: upload a file or pick a sample on the Data page.", icon=":material/info:")
        urls.link("data", "Go to Data")
    st.stop()


def scored_preview(data: bytes, rows: int = 200) -> pd.DataFrame:
    """The first rows of a scored CSV as an analyst should see them on screen: blanks for
    missing cells, and without the apostrophe that guards formulas in the download."""
    from dlcore import tables as tabular

    frame, _ = tabular.read_table(data, name="scored.csv")
    frame = frame.head(rows)
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            text = frame[col].astype("string")
            guarded = text.str.match(r"^'[=+\-@\t\r]", na=False)
            frame[col] = text.mask(guarded, text.str.slice(1)).fillna("")
    return frame


def hand_over(run: RunRecord) -> None:
    """The run as something to hand over: the report, the model bundle, and a rerun of its spec."""
    from dlcore import runner
    from dlcore.handover import report
    from dlcore.spec import RunSpec

    store = common.store()
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Report (HTML, opens offline)", data=lambda: report.build_report(store, run.id).encode("utf-8"),
        file_name=report.report_name(store, run.id), mime="text/html", icon=":material/summarize:",
        help="One file with the leaderboard, the verdict, the charts, the explanation, the threshold and how to "
             "reproduce the run. Its charts are interactive and need no network.", on_click="ignore")
    if (run.result or {}).get("kind") != "series":
        from dlcore.handover import bundle

        c2.download_button(
            "Model bundle (ZIP)", data=lambda: bundle.build_bundle(store, run.id),
            file_name=bundle.bundle_name(store, run.id, None), mime="application/zip", icon=":material/deployed_code:",
            help="The deep model (.keras), its preprocessing, a model card and predict.py: score a CSV with plain "
                 "Keras and pandas, outside this app.", on_click="ignore")
    if c3.button("Rerun exactly", icon=":material/replay:",
                 help="Train the same spec again: same data, split, seed and settings; on this machine the scores match."):
        with common.guard():
            urls.open_run(runner.submit(store, RunSpec.from_dict(run.spec)))
