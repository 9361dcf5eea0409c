"""Explanations on the page: started as worker jobs (TensorFlow stays out of this process),
waited for with a spinner or a polling fragment, and drawn from what the worker saved."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dlcore import charts, evaluate, explain, jobs
from dlcore.store import ExplanationRecord, RunRecord
from ui import common, scoring, views

__all__ = ["global_result", "wait_for", "importance_view", "dependence_view", "row_view", "row_form", "image_view",
           "series_view", "test_row_choices"]

STALE_SECONDS = 600  # a global job older than this that never finished is started again (its worker died)


def wait_for(explanation_id: str, timeout: float = 180.0) -> ExplanationRecord:
    """Poll the store until the explanation job ends (or ``timeout``), with a spinner."""
    return scoring.poll(common.store().explanation, explanation_id, timeout,
                        "Working out what moved this prediction…")


def global_result(run: RunRecord, model: str, what: str) -> dict[str, Any] | None:
    """The saved global explanation of ``model``; when there is none yet, start one (once) and
    show its progress until it is ready, then redraw the page."""
    store = common.store()
    saved = explain.load_global(store, run.id, model)
    if saved is not None:
        return saved
    latest = store.latest_explanation(run.id, model, "global")
    if latest is not None and latest.status == "failed":
        st.error(latest.message or "Working out the explanation failed.", icon=":material/error:")
        if st.button("Try again", key=f"retry-{model}"):
            with common.guard():
                jobs.submit_explanation(store, run.id, model)
                st.rerun()
        return None
    if latest is None or latest.status == "done" or time.time() - latest.created_at > STALE_SECONDS:
        with common.guard():
            jobs.submit_explanation(store, run.id, model)
    common.ensure_workers()

    @st.fragment(run_every=1.5)
    def waiting() -> None:
        if explain.load_global(store, run.id, model) is not None:
            st.rerun()
        job = store.latest_explanation(run.id, model, "global")
        if job is not None and job.status == "failed":
            st.rerun()
        state = ("Waiting for a free worker" if job is None or job.status == "queued"
                 else f"Working it out ({job.message})" if job.message else "Working it out")
        st.info(f"{state}: {what}. This takes from seconds to a few minutes and is kept with the run, so it is "
                "done once.", icon=":material/hourglass_top:")

    waiting()
    return None


def importance_view(result: dict[str, Any]) -> None:
    """Permutation importance as a chart and in words."""
    model = evaluate.display_name(result["model"])
    items = result["importance"]
    st.plotly_chart(charts.importance_chart(items, result["metric_title"], model), width="stretch")
    clear = [d for d in items if d["mean"] > 2 * d["std"] and d["mean"] > 0]
    unclear = [d["feature"] for d in items if d not in clear]
    words = []
    if clear:
        top = clear[0]
        words.append(f"Shuffling **{top['feature']}** costs {top['mean']:.3f} of {result['metric_title']} "
                     f"(± {top['std']:.3f}): {model} leans on it most.")
        if len(clear) > 1:
            words.append("Then " + ", ".join(f"**{d['feature']}** ({d['mean']:.3f})" for d in clear[1:4]) + ".")
    else:
        words.append(f"No single column clearly matters to {model}: shuffling any one barely changes its score.")
    if unclear:
        shown = ", ".join(unclear[:8]) + (" …" if len(unclear) > 8 else "")
        words.append(f"{len(unclear)} column(s) make no clear difference: {shown}.")
    st.markdown(" ".join(words))
    st.caption(f"Permutation importance on {result['n_rows']:,} test rows, {result['n_repeats']} shuffles per column "
               f"(bars show the spread). Its score there: {result['metric_title']} {result['score']:.4f}. Columns that "
               "carry the same information share the credit, so each may look less important than the pair is.")


def dependence_view(result: dict[str, Any], target: str) -> None:
    """Partial dependence with individual curves, for the top columns."""
    items = result["dependence"]
    if not items:
        return
    st.markdown("**How the prediction moves with the top columns** (everything else about each row kept as it is)")
    classes = result["classes"]
    k = 0
    title = f"Predicted {target}"
    if result["task"] == "binary":
        k, title = 0, f"Probability of “{classes[1]}”"
    elif result["task"] == "multiclass":
        label = st.selectbox("Probability of which class?", classes, key=f"pdp-class-{result['model']}")
        k = classes.index(label)
        title = f"Probability of “{label}”"
    cols = st.columns(2)
    for i, item in enumerate(items):
        average = item["average"][min(k, len(item["average"]) - 1)]
        individual = item["individual"][min(k, len(item["individual"]) - 1)]
        with cols[i % 2]:
            st.plotly_chart(charts.dependence_chart({**item, "average": average, "individual": individual}, title),
                            width="stretch", key=f"pdp-{result['model']}-{i}")


def row_view(result: dict[str, Any], target: str) -> None:
    """One row's explanation: the sentence, the waterfall, and the numbers."""
    st.success(result["sentence"], icon=":material/lightbulb:")
    if "actual" in result:
        st.caption(f"Test row {result['test_row']}: its real {target} is {result['actual']}.")
    percent = result["task"] != "regression"
    value_title = (f"Probability of “{result['class']}”" if percent else f"Predicted {target}")
    st.plotly_chart(charts.contributions_chart(result["contributions"], result["base"], result["prediction"],
                                               value_title, percent=percent), width="stretch")
    table = pd.DataFrame(result["contributions"])
    if percent:
        table["contribution"] = table["contribution"] * 100
    st.dataframe(table.rename(columns={"feature": "Column", "value": "Value",
                                       "contribution": "Push (points)" if percent else "Push"}),
                 hide_index=True, width="stretch",
                 column_config={"Push (points)": st.column_config.NumberColumn(format="%+.1f"),
                                "Push": st.column_config.NumberColumn(format="%+.4g")})
    st.caption("Shapley values (SHAP's permutation explainer against 100 training rows): each column's fair share of "
               "the difference between this row's prediction and the average one. They add up exactly.")
    for note in result.get("notes", []):
        st.caption(note)


def row_form(run: RunRecord) -> dict[str, Any] | None:
    """A typed-in row, starting from typical values; None until submitted."""
    with st.form("explain-row"):
        values = views.row_inputs(run)
        asked = st.form_submit_button("Explain this row", type="primary")
    return values if asked else None


def image_view(run_id: str, result: dict[str, Any]) -> None:
    """Grad-CAM overlays: where the deep model looked for the class it predicted."""
    items = result.get("items", [])
    if not items:
        st.info("There were no test images to explain.")
        return
    folder = common.store().run_dir(run_id) / "explain"
    st.markdown(f"**Where the model looked** ({result.get('method', 'Grad-CAM')}): warm colours mark the parts of each "
                "picture that pushed the model towards the class it said. Mistakes first, then confident right answers.")
    cols = st.columns(4)
    for i, item in enumerate(items):
        path = folder / item["png"]
        with cols[i % 4]:
            if path.exists():
                st.image(path.read_bytes(), width="stretch")
            mark = "✓" if item["correct"] else "✗"
            st.caption(f"{mark} is {item['true']} · said {item['predicted']} ({item['confidence']:.0%})")


def series_view(result: dict[str, Any]) -> None:
    """Which lags and which columns the forecast leans on."""
    from dlcore import explain_series

    if result.get("sentence"):
        st.success(result["sentence"], icon=":material/lightbulb:")
    st.plotly_chart(explain_series.lag_importance_chart(result), width="stretch")
    if len(result.get("channels", [])) > 1:
        st.plotly_chart(explain_series.channel_importance_chart(result), width="stretch")
    st.caption(f"Permutation importance on {result.get('n_windows', 0):,} look-back windows of the history: how much "
               f"worse ({result.get('metric', 'MAE')}) the forecast gets when one part of its input is scrambled.")


def test_row_choices(y_true: np.ndarray, output: np.ndarray, task: str, classes: list[str]) -> pd.DataFrame:
    """The test rows with what the model said, to pick one to explain (worst misses first)."""
    y = np.asarray(y_true)
    out = np.asarray(output)
    if task == "regression":
        pred = out.reshape(-1)
        frame = pd.DataFrame({"row": np.arange(len(y)), "actual": y, "predicted": pred, "error": np.abs(pred - y)})
        return frame.sort_values("error", ascending=False)
    codes = y.astype(int)
    pred = out.argmax(axis=1)
    frame = pd.DataFrame({"row": np.arange(len(y)), "actual": np.asarray(classes, dtype=object)[codes],
                          "predicted": np.asarray(classes, dtype=object)[pred],
                          "confidence": out.max(axis=1), "right": pred == codes})
    return frame.sort_values(["right", "confidence"], ascending=[True, False])
