"""Monitor: a run's model at work. Every scoring with its drift and, once the outcomes came back,
the realized score beside the promised interval; retraining, champion and challenger."""

import pandas as pd
import streamlit as st

import ui
from dlcore import access, evaluate, monitor
from dlcore.errors import DlcoreError
from dlcore.monitor import charts as monitor_charts
from dlcore.monitor.challenge import start_challenge
from ui import common, scoring, team, text, urls, views

ui.route_through_app()

st.title("Monitor")
store = common.store()

run_id = urls.get_id(urls.RUN)
if not run_id:
    views.pick_finished_run("monitor", "Which run's model at work do you want to watch?")
run, dataset = views.open_finished_run(store, run_id, "monitor", "only a finished run's model is at work.")

try:
    use = monitor.model_in_use(store, run)
except DlcoreError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
where = f" of the retrained run {use.run_id}" if use.run_id != run.id else ""
st.markdown(f"**Model in use: {evaluate.display_name(use.model)}**{where}, {use.why}. Predict and scoring jobs use it.")
for alert in monitor.alerts(store, run.id):
    st.error(alert, icon=":material/notification_important:")

rows = monitor.scorings_report(store, run.id)
board = run.result["leaderboard"]
if not rows:
    st.info("No file has been scored with this run yet. Score one on Predict: each scoring is listed here with how "
            "the file differs from the training data.", icon=":material/info:")
    urls.link("predict", "Score a file", run=run.id)
else:
    team_mode = access.team_mode()
    table = pd.DataFrame([{
        "Scoring": urls.href("monitor", run=run.id, scoring=r["scoring_id"]),
        "Scored": common.when(r["created_at"]),
        "File": r["input_name"],
        "Rows": f"{r['rows']:,}" if r["rows"] is not None else common.STATUS_WORDS.get(r["status"], r["status"]),
        "Drift": ", ".join(r["drifted_columns"]) or ("none" if r["drift_sentence"] else "-"),
        f"Realized {board.get('metric_title', '')}": views.score_text(r["realized_score"]),
        "Promised": (f"{views.score_text(r['promised_interval'][0])}–{views.score_text(r['promised_interval'][1])}"
                     if r["promised_interval"] else "-"),
        **({"By": r["created_by"] or "-"} if team_mode else {}),
    } for r in rows])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Scoring": st.column_config.LinkColumn("Scoring", display_text=r"scoring=([^&]+)", width=150,
                                               help="Open this scoring: its drift, charts and outcomes"),
        "Drift": st.column_config.TextColumn(help="The columns that differ from the training data"),
    })
    points = [{"at": r["created_at"], "score": r["realized_score"], "outside": r["outside"], "label": r["input_name"]}
              for r in rows if r["realized_score"] is not None]
    if points:
        promised = monitor.promised_interval(store, use.run_id, use.model)
        st.plotly_chart(monitor_charts.realized_chart(points, board.get("metric_title", "score"),
                                                      tuple(promised) if promised else None), width="stretch")

chosen = urls.get_id(urls.SCORING)
picked = next((r for r in rows if r["scoring_id"] == chosen), None)
if chosen and picked is None:
    st.error(access.not_found("scoring", chosen), icon=":material/error:")
if picked is not None:
    st.divider()
    st.subheader(f"{picked['input_name']}, scored {common.when(picked['created_at'])}")
    report = monitor.load_drift(store, picked["scoring_id"])
    if report is None:
        st.info("No drift report for this scoring (only tables are compared with their training rows).")
    elif report.drifted:
        st.warning(report.sentence, icon=":material/difference:")
        for column in report.drifted:
            st.plotly_chart(monitor_charts.drift_chart(column), width="stretch",
                            key=f"drift-{picked['scoring_id']}-{column.name}")
    else:
        st.success(report.sentence, icon=":material/check_circle:")
    if picked["outcome_sentence"]:
        show = st.error if picked["outside"] else st.info
        show(picked["outcome_sentence"], icon=":material/fact_check:")
    if team.can("score", run.workspace_id) and not picked["input_name"].startswith(monitor.CHALLENGE_PREFIX):
        st.markdown("**The true outcomes came back?**")
        upload = st.file_uploader(f"A file with the true “{run.target}” and a column shared with the scored file",
                                  type=["csv", "tsv", "txt", "xlsx", "xls", "parquet"], key="outcomes-file")
        if upload is not None:
            from dlcore.tables.reader import read_table

            with common.guard():
                given, _ = read_table(upload.getvalue(), name=upload.name)
                keys = [c for c in given.columns if c != run.target]
                key = st.selectbox("Key column (the same ids as in the scored file)", keys, key="outcomes-key")
                if st.button("Compare with the predictions", type="primary", icon=":material/fact_check:"):
                    monitor.record_outcomes(store, run.id, scoring_id=picked["scoring_id"], content=upload.getvalue(),
                                            name=upload.name, key=key)
                    st.rerun()
        elif st.button("The scored file held the true outcomes: compare them", icon=":material/fact_check:",
                       help=f"For a labelled file: its own “{run.target}” column is compared with the predictions."):
            with common.guard():
                monitor.record_outcomes(store, run.id, scoring_id=picked["scoring_id"])
                st.rerun()

# ---- retraining: champion and challenger ------------------------------------------------
st.divider()
st.subheader("Retrain on newer data")
found = monitor.challengers(store, run.id)
if team.can("train", run.workspace_id) and (run.result or {}).get("kind", "tabular") == "tabular":
    listed = store.as_actor(store.actor, run.workspace_id) if store.actor is not None else store
    choices = [d for d in listed.list_datasets(limit=50) if d.kind == "tabular" and d.workspace_id == run.workspace_id]
    with st.form("retrain"):
        new = st.selectbox("Newer data (upload it on the Data page first)", choices,
                           format_func=lambda d: f"{d.name} · {d.n_rows:,} rows · {common.when(d.created_at)}")
        combine = st.checkbox("Train on the old rows plus the new", value=False)
        if st.form_submit_button("Retrain on newer data", icon=":material/replay:", type="primary") and new is not None:
            with common.guard():
                monitor.retrain(store, run.id, new.id, combine=combine)
                st.rerun()
for entry in reversed(found):
    try:
        challenger = store.run(entry["run_id"])
    except DlcoreError:
        continue
    st.markdown(f"**Challenger {challenger.id}** on {text.md(store.dataset_names([entry['dataset_id']]).get(entry['dataset_id'], '?'))}"
                f"{' (old rows plus new)' if entry.get('combined') else ''}: {common.status_label(challenger.status)}")
    if challenger.status not in ("done", "stopped"):
        urls.link("train", "Watch it train", run=challenger.id)
        continue
    result = None
    if "challenge" in entry:
        for side in ("champion", "challenger"):
            scoring.poll(store.scoring, entry["challenge"][f"{side}_scoring"], 120, f"Scoring the {side}…")
        with common.guard():
            result = monitor.challenge_result(store, run.id, challenger.id)
    if result is not None:
        (st.success if result["outcome"] == "better" else st.info)(result["sentence"], icon=":material/gavel:")
    c1, c2 = st.columns(2)
    if team.can("score", run.workspace_id) and c1.button("Compare with the model in use on the newest labelled rows",
                                                         key=f"challenge-{challenger.id}", icon=":material/compare:"):
        with common.guard():
            start_challenge(store, run.id, challenger.id)
            st.rerun()
    if team.can("decide", run.workspace_id) and use.run_id != challenger.id and c2.button(
            "Promote: use the challenger", key=f"promote-{challenger.id}", icon=":material/military_tech:"):
        with common.guard():
            monitor.promote(store, run.id, challenger.id)
            st.rerun()
changes = store.model_changes(run.id)
if changes and team.can("decide", run.workspace_id):
    if st.button("Undo the last change of the model in use", icon=":material/undo:"):
        with common.guard():
            monitor.revert(store, run.id)
            st.rerun()
    st.caption("Changes of the model in use: " + "; ".join(
        f"{common.when(c['created_at'])} {evaluate.display_name(c['use_model'])} of run {c['use_run_id']} by "
        f"{c['created_by']}" for c in changes[:5]))
