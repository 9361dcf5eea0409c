"""Predict: score a new file, or a single what-if row, with any model of a finished run."""

import pandas as pd
import streamlit as st

import ui
from dlcore import evaluate, jobs, monitor
from dlcore.handover import decision
from ui import common, privacy, scoring, team, text, urls, views
from ui import images as image_views
from ui import series as series_views
from ui import tables as table_views

ui.route_through_app()

st.title("Predict")
store = common.store()

run_id = urls.get_id(urls.RUN)
if not run_id:
    views.pick_finished_run("predict", "Which run's model should score your data?")
run = views.or_stop(store.run, run_id)
dataset = views.or_stop(store.dataset, run.dataset_id)
team.share(run.id, "predict")
if not team.can("score", run.workspace_id):
    st.info(f"You are a {team.role(run.workspace_id)} of this workspace: scoring new data needs the editor role. Ask an owner of the "
            "workspace to change your role.", icon=":material/lock:")
    st.stop()
if run.status not in ("done", "stopped"):
    st.warning(f"This run is {common.status_label(run.status)}: only a finished run's models can score new data.")
    urls.link("train", "Watch the run", run=run.id)
    st.stop()



@st.cache_data(max_entries=8, show_spinner=False)
def preview(scoring_id: str):  # a finished scoring never changes: read its file once
    return views.scored_preview((store.scoring_dir(scoring_id) / "scored.csv").read_bytes())


board = run.result["leaderboard"]
for alert in monitor.alerts(store, run.id):  # the realized score fell outside what the test rows promised
    st.error(alert, icon=":material/notification_important:")
urls.link("monitor", "Monitor: every scoring, its drift and the outcomes that came back", run=run.id)
if run.result.get("kind") == "series":
    series_views.forecast_view(run)
    st.stop()
if run.result.get("kind") == "image":
    image_views.predict_view(run, dataset, board)
    st.stop()
features = run.result["features"]
inputs = features["numeric"] + features["datetime"] + features["categorical"] + features.get("text", [])
st.subheader(f"Predict “{text.md(run.target)}” with a model trained on {text.md(dataset.name)}")
models = views.recommended_first(board, [r["model"] for r in board["rows"]])
# The test score beside each model (the board may rank by cross-validation: "best by" says which).
labels = {r["model"]: f"{evaluate.display_name(r['model'])} ({r['family'] if r['family'] in ('deep', 'ensemble') else 'baseline'}, "
          f"test {board['metric_title']} {views.score_text(r['test_score'])})" for r in board["rows"]}
in_use = monitor.model_in_use(store, run)
IN_USE = "(model in use)"  # a promoted model of a retrained run: scored by that run, for this one
if in_use.run_id != run.id:
    models = [IN_USE, *models]
    labels[IN_USE] = f"Model in use: {evaluate.display_name(in_use.model)} of the retrained run {in_use.run_id}"
elif in_use.promoted or in_use.model != models[0]:
    models = [in_use.model, *[m for m in models if m != in_use.model]]
marks = views.model_label(board, [m for m in models if m != IN_USE])
model = st.selectbox("Model", models, index=0, key="predict-model",
                     format_func=lambda m: labels[m] + ("" if m == IN_USE else marks(m)))
if model != IN_USE:
    views.opened_on(board, model, "predict-model")
model_run = store.run(in_use.run_id) if model == IN_USE else run
model = in_use.model if model == IN_USE else model
chosen = decision.load_decision(store, model_run.id) if run.task in ("binary", "multiclass") else None
if chosen is not None and chosen.model == model:
    st.info(f"Scored files get a “decision” column: “{text.md(chosen.positive)}” when the probability is at least "
            f"{chosen.threshold:.3f} (the threshold saved on the Decide page), else “{chosen.negative}”.",
            icon=":material/paid:")
elif run.task == "binary":
    st.caption("Predictions use a 50% cut-off. To set it from what right flags earn and mistakes cost, use Decide.")
with st.expander(f"The file needs these {len(inputs)} columns (others are ignored)"):
    st.write(", ".join(f"`{c}`" for c in inputs))

tab_file, tab_row = st.tabs(["Score a file", "What if? (one row)"])
with tab_file:
    upload = st.file_uploader("A table to score: CSV (gzip-compressed too), Excel, Parquet or JSON records; columns "
                              "with other names are matched next",
                              type=["csv", "tsv", "txt", "xlsx", "xls", "parquet", "gz", "json", "jsonl"], key="score-file")
    remember = table_views.match_columns(model_run, model, upload) if upload is not None else None  # renamed columns
    still_open = getattr(remember, "open", [])  # model columns with no file column chosen yet
    if still_open:
        st.caption(f"Choose the file's column for {', '.join(f'“{text.md(c)}”' for c in still_open[:5])}"
                   + (f" and {len(still_open) - 5} more" if len(still_open) > 5 else "")
                   + " above (or “(none: score it as missing)”) to score the file.")
    if upload is not None and st.button("Score the file", type="primary", icon=":material/bolt:",
                                        disabled=bool(still_open)):
        with common.guard():
            if remember is not None:
                remember()
            scoring_id = jobs.submit_scoring(store, run.id, model, upload.getvalue(), upload.name,
                                             model_run_id=model_run.id)
            urls.set_ids(scoring=scoring_id)

    job = scoring.finished_job(run)
    if job is not None:
        summary = job.summary or {}
        st.success(f"Scored {summary.get('n_rows', 0):,} rows of {text.md(job.input_name)} with {evaluate.display_name(job.model)}.")
        for note in summary.get("notes", []):
            st.info(note, icon=":material/info:")
        drift = summary.get("drift")
        if drift:
            (st.warning if drift["drifted_columns"] else st.success)(text.md(drift["sentence"]), icon=":material/difference:")
            if drift["drifted_columns"]:
                from dlcore.monitor import charts as monitor_charts

                report = monitor.load_drift(store, job.id)
                for column in report.drifted[:6] if report else []:
                    st.plotly_chart(monitor_charts.drift_chart(column), width="stretch", key=f"drift-{column.name}")
            urls.link("monitor", "This scoring on Monitor: upload its true outcomes later", run=run.id,
                      scoring=job.id)
        st.dataframe(privacy.shown(preview(job.id), dataset.profile), hide_index=True, width="stretch")
        if summary.get("n_rows", 0) > 200:
            st.caption("The first 200 rows; the download has them all.")
        # Read when clicked, by the user as they stand then (a member removed meanwhile gets nothing).
        data = common.deferred(lambda s: (s.scoring_dir(s.scoring(job.id).id) / "scored.csv").read_bytes())
        st.download_button("Download the scored CSV", data, file_name=f"scored-{job.input_name.rsplit('.', 1)[0]}.csv",
                           mime="text/csv", icon=":material/download:", type="primary")

with tab_row:
    st.caption("Change a few values and see how the prediction moves. Fields start at a typical value from the training rows.")
    with st.form("what-if"):
        values = table_views.row_inputs(run)
        asked = st.form_submit_button("Predict", type="primary")
    if asked:
        row = pd.DataFrame([values])
        with common.guard():
            scoring_id = jobs.submit_scoring(store, run.id, model, row.to_csv(index=False).encode(), "what-if.csv",
                                             model_run_id=model_run.id)
            job = scoring.wait_for(scoring_id, timeout=120)
            if job.status != "done":
                st.error(job.message or "The prediction did not finish in time; try again.")
            else:
                result = (job.summary or {}).get("preview", [{}])[0]
                st.metric("Prediction", str(result.get("prediction")))
                if result.get("decision") is not None:
                    st.metric(f"Decision at {chosen.threshold:.3f}", str(result["decision"]))
                probs = {k.removeprefix("probability "): v for k, v in result.items() if k.startswith("probability ")}
                if probs:
                    st.bar_chart(pd.Series(probs, name="probability"), horizontal=True)
                for note in (job.summary or {}).get("notes", []):
                    st.caption(note)
