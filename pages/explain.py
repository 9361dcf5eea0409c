"""Explain: what a model relies on overall, and why it said what it said about one row."""

import streamlit as st

import ui
from dlcore import evaluate, jobs, outputs
from dlcore.errors import DlcoreError
from ui import common, team, text, urls, views
from ui import explain as explain_views
from ui import images as image_views
from ui import series as series_views
from ui import tables as table_views

ui.route_through_app()

st.title("Explain")
store = common.store()

run_id = urls.get_id(urls.RUN)
if not run_id:
    views.pick_finished_run("explain", "Which run's model should be explained?")
run = views.or_stop(store.run, run_id)
dataset = views.or_stop(store.dataset, run.dataset_id)
team.share(run.id, "explain")
st.subheader(f"{text.md(dataset.name)} → {views.goal(dataset, run.target, run.task)}")
st.caption(f"Run {run.id} · {evaluate.display_name(run.template)} · share this page's link: a colleague sees the same "
           "explanations.")
if run.status not in ("done", "stopped"):
    st.warning(f"This run is {common.status_label(run.status)}: explanations need a finished run.")
    urls.link("train", "Watch the run", run=run.id)
    st.stop()

result = run.result
kind = result.get("kind", "tabular")
board = result["leaderboard"]

if kind == "image":
    st.caption("For pictures the page shows where the deep model looked; the baselines read raw pixels and have no "
               "such map.")
    found = explain_views.global_result(run, run.template, "Grad-CAM maps of test images")
    if found is not None:
        image_views.explain_view(run.id, found)
    urls.link("compare", "The leaderboard and the gallery of mistakes", run=run.id)
    st.stop()
if kind == "series":
    found = explain_views.global_result(run, run.template, "which past steps and columns the forecast reads")
    if found is not None:
        series_views.explain_view(found)
    urls.link("predict", "See the forecast", run=run.id)
    st.stop()

models = views.recommended_first(board, [r["model"] for r in board["rows"] if not r["model"].startswith("dummy")])
model = st.selectbox("Model", models, index=0, key="explain-model",
                     format_func=lambda m, mark=views.model_label(board, models): evaluate.display_name(m) + mark(m))
views.opened_on(board, model, "explain-model", choices=models)

tab_global, tab_row = st.tabs(["What it relies on", "Why this prediction? (one row)"])
with tab_global:
    found = explain_views.global_result(run, model, f"how much {evaluate.display_name(model)} relies on each column")
    if found is not None:
        table_views.importance_view(found)
        table_views.class_words_view(found)
        rarer = None
        if run.task == "binary":
            from dlcore.handover import decision

            rarer = decision.rarer_class(outputs.load_test_outputs(store, run.id)[0], result["classes"])
        table_views.dependence_view(found, run.target, prefer=rarer)

with tab_row:
    shown_id = urls.get_id(urls.EXPLANATION)
    y_true, outputs, _ = outputs.load_test_outputs(store, run.id)
    source = st.radio("Which row?", ["test", "typed"], horizontal=True,
                      format_func={"test": "A row from the test set", "typed": "Type one in"}.get)
    asked = None
    if source == "test":
        choices = table_views.test_row_choices(y_true, outputs[model], run.task, result["classes"])
        st.caption("Test rows the model has not seen in training; the biggest mistakes are listed first.")
        st.dataframe(choices.head(200), hide_index=True, width="stretch", height=210,
                     column_config={"confidence": st.column_config.NumberColumn(format="percent")})
        with st.form("explain-test-row"):
            number = st.number_input("Test row number", 0, len(choices) - 1, int(choices["row"].iloc[0]))
            if st.form_submit_button("Explain this row", type="primary"):
                asked = {"test_row": int(number)}
    else:
        typed = table_views.row_form(run)
        if typed is not None:
            asked = {"row": typed}
    if asked is not None:
        with common.guard():
            shown_id = jobs.submit_explanation(store, run.id, model, **asked)
            urls.set_ids(explanation=shown_id)
    if shown_id:
        try:
            job = store.explanation(shown_id)
        except DlcoreError as exc:
            st.error(str(exc))
            job = None
        if job is not None and job.run_id == run.id and job.kind == "row":
            if job.status in ("queued", "running"):
                job = explain_views.wait_for(job.id)
            if job.status == "done":
                if job.model != model:
                    st.caption(f"Explained with {evaluate.display_name(job.model)}.")
                table_views.row_view(job.summary, run.target, dataset.profile)
            elif job.status == "failed":
                st.error(job.message or "The explanation failed.", icon=":material/error:")
            else:
                st.info("Still working on it: reload this page in a moment.")

c1, c2 = st.columns(2)
with c1:
    if run.task == "binary":
        urls.link("decide", "Set the threshold from money", run=run.id)
with c2:
    urls.link("predict", "Use the model on new data", run=run.id)
