"""Compare: the leaderboard of a run (deep model and baselines on the same test rows) and its charts."""

import numpy as np
import streamlit as st

import ui
from dlcore import cache, charts, evaluate, monitor, outputs
from dlcore.errors import DlcoreError
from dlcore.evaluate import collapse
from dlcore.handover import decision
from dlcore.search import first_verdict_words
from ui import common, team, text, urls, views
from ui import images as image_views
from ui import series as series_views

ui.route_through_app()

st.title("Compare")
store = common.store()

run_id = urls.get_id(urls.RUN)
dataset_id = urls.get_id(urls.DATASET)
if not run_id and dataset_id:
    finished = store.list_runs(dataset_id=dataset_id, statuses=("done", "stopped"), limit=1)
    if finished:
        run_id = finished[0].id
if not run_id:
    views.pick_finished_run("compare", "Pick a finished run:")

run = views.or_stop(store.run, run_id)
dataset = views.or_stop(store.dataset, run.dataset_id)
share, remove = st.columns([1, 1])
with share:
    team.share(run.id, "compare")
with remove:
    team.delete_run(run.id)

st.subheader(f"{text.md(dataset.name)} → {views.goal(dataset, run.target, run.task)}")
st.caption(f"Run {run.id} · {evaluate.display_name(run.template)} · {common.status_label(run.status)} · {common.when(run.created_at)}")
if run.status not in ("done", "stopped"):
    if not views.first_verdict(run):
        st.warning(f"This run is {common.status_label(run.status)}; its leaderboard appears when it finishes.")
    if run.message:
        st.caption(run.message)
    urls.link("train", "Watch the run", run=run.id)
    st.stop()

result = run.result
board = result["leaderboard"]
rows = result["rows"]
for alert in monitor.alerts(store, run.id):  # the model at work fell outside what the test rows promised
    st.error(alert, icon=":material/notification_important:")
    urls.link("monitor", "Monitor: the scorings, their drift and outcomes", run=run.id)
def _test_outputs():  # type: ignore[no-untyped-def]
    y, raw, rows_ = outputs.load_test_outputs(store, run.id)
    # Charts and pickers use the names an analyst reads ("random forest", not "random_forest").
    return y, {evaluate.display_name(m): out for m, out in raw.items()}, rows_


def built(name: str, build, *args):  # type: ignore[no-untyped-def]
    """A figure or table of this run, built once from its test outputs (read from disk only then)."""
    return cache.for_run(run, name, lambda *a: build(*test_outputs(), *a), *args)


def test_outputs():  # type: ignore[no-untyped-def]
    return cache.for_run(run, "test-outputs", _test_outputs, heavy=True)




def saved_positive(classes: list[str]) -> str | None:
    """The class of the threshold saved on Decide, if one is saved and readable."""
    try:
        saved = decision.load_decision(store, run.id)
    except (DlcoreError, ValueError, KeyError):
        return None
    return saved.positive if saved and saved.positive in classes else None


def acted_on(classes: list[str]) -> str:
    """The class the yes/no charts are drawn for: Decide's saved class, else the rarer one (as Decide preselects)."""
    return saved_positive(classes) or built("rarer-class", lambda y, out, _: decision.rarer_class(y, classes))


def one_class(model: str) -> None:
    """A plain warning when ``model`` (display name) says one class for every test row."""
    if run.task not in ("binary", "multiclass") or result.get("kind") == "series":
        return
    flat = built(f"one-class-{model}", lambda y, out, _, m: collapse.one_class_warning(
        y, out[m], result["classes"], m, out.get(evaluate.display_name("dummy")) if m != evaluate.display_name("dummy")
        else None), model)
    if flat:
        st.warning(flat, icon=":material/warning:")


views.verdicts(board)
if result.get("first_verdict_s") is not None:
    st.caption(first_verdict_words(result))
one_class(evaluate.display_name(evaluate.recommended(board)[0]))
if run.status == "stopped":
    st.caption("This run was stopped early by request: the deep model uses the best weights it reached.")
views.hand_over(run)
unit = "images" if result.get("kind") == "image" else "rows"
if result.get("kind") == "series":
    info = result["series"]
    windows = (f"{info['n_series']} series × {info['windows']} windows" if info.get("n_series", 1) > 1
               else f"{board.get('n_windows') or info['windows']} windows")
    st.caption(f"Every model was backtested on the same {windows} of {info['horizon']} steps; the 95% interval is a "
               "t-interval across those windows.")
else:
    st.caption(
        f"All models learned from the same {rows['train']:,} training {unit} and are scored on the same "
        f"{rows['test']:,} test {unit} they never saw. The 95% interval shows how much the score could move on "
        f"other {unit} like these (bootstrap, {board['n_boot']} resamples)."
        + (f" {rows['dropped_missing_target']:,} rows without a target were left out." if rows.get("dropped_missing_target") else "")
    )

# A finished run's tables and figures are built once and shared by every visit (``dlcore.cache``).
leaderboard = cache.for_run(run, "leaderboard-frame", lambda: views.leaderboard_frame(board))
st.dataframe(leaderboard, hide_index=True, width="stretch", column_config=views.leaderboard_config(board, leaderboard))
st.caption(views.metric_meaning(board) + " Point at a column's name for what its score means.")
for name, model in (result.get("models") or {}).items():
    if model.get("sample_rows"):
        st.caption(f"{evaluate.display_name(name).capitalize()} learned from a random sample of "
                   f"{model['sample_rows']:,} of the {model['train_rows']:,} training rows, to fit in the worker's "
                   "memory; it is scored on every test row like the others.")
for note in result.get("budget_notes") or []:  # what the time budget cut short or left out
    st.warning(note, icon=":material/timer:")
with st.expander("What the scores mean"):
    for metric in evaluate.metrics_for(run.task):
        st.markdown(f"**{metric.title}** ({'higher' if metric.higher_is_better else 'lower'} is better): {metric.explain}")
st.plotly_chart(cache.for_run(run, "leaderboard-chart", lambda: charts.leaderboard_chart(
    views.display_rows(board), board["metric_title"], board["higher_is_better"])), width="stretch")



def next_steps(use: str) -> None:
    c1, c2, c3 = st.columns(3)
    with c1:
        urls.link("predict", use, run=run.id)
    with c2:
        urls.link("explain", "Why the models predict what they do", run=run.id)
    with c3:
        urls.link("train", "Training curves of this run", run=run.id)
    urls.link("monitor", "Monitor the model at work: drift, outcomes, retraining", run=run.id)


if result.get("kind") == "series":
    series_views.compare_view(run)
    next_steps("See the forecast and download it")
    st.stop()


families = {evaluate.display_name(r["model"]): r["family"] for r in board["rows"]}
models = [evaluate.display_name(m) for m in views.recommended_first(board, [r["model"] for r in board["rows"]])]
task = run.task
st.subheader("How the models get it right and wrong")
if task in ("binary", "multiclass"):
    classes = result["classes"]
    chosen = st.selectbox("Model", models, index=0)
    if chosen != models[0]:
        one_class(chosen)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(built("confusion", lambda y, out, _, m: charts.confusion_matrix_chart(
            y.astype(int), out[m].argmax(axis=1), classes), chosen), width="stretch")
        st.caption("Each row is the actual class; each column what the model predicted. The diagonal is correct."
                   + (" A row is predicted as the class with the higher probability (a 0.5 cut-off): when one class "
                      "is rare, or missing it costs more than a false alarm, Decide finds the cut-off that earns most "
                      "and Predict applies it." if task == "binary" else ""))
    st.markdown("**Per class**: how often each class is found (recall) and how often the model is right when it "
                "says that class (precision).")
    per_class = built("per-class", lambda y, out, _, m: evaluate.per_class(y.astype(int), out[m], classes), chosen)
    st.dataframe(per_class, hide_index=True, width="stretch", column_config={
        "class": "Class",
        "precision": st.column_config.ProgressColumn("Precision: right when it says this class", format="percent",
                                                     min_value=0.0, max_value=1.0),
        "recall": st.column_config.ProgressColumn("Recall: share of this class found", format="percent",
                                                  min_value=0.0, max_value=1.0),
        "f1": st.column_config.NumberColumn("F1 (both in one)", format=views.SCORE_FORMAT),
        "support": st.column_config.NumberColumn("Test images" if result.get("kind") == "image" else "Test rows"),
    })
    if result.get("kind") == "image":
        y_true, outs, rows_of_test = test_outputs()
        image_views.mistakes(run.dataset_id, rows_of_test, y_true.astype(int), outs[chosen], classes, chosen)
    if task == "binary":
        positive = acted_on(classes)
        k = classes.index(positive)
        with right:
            st.plotly_chart(built(f"roc-{k}", lambda y, out, _: charts.roc_chart(
                (y.astype(int) == k).astype(int), {m: out[m][:, k] for m in models}, positive,
                families=families)), width="stretch")
        st.plotly_chart(built(f"pr-{k}", lambda y, out, _: charts.pr_chart(
            (y.astype(int) == k).astype(int), {m: out[m][:, k] for m in models}, positive,
            families=families)), width="stretch")
        st.caption(f"Precision: of the rows flagged “{text.md(positive)}”, the share that really are. Recall: of the real "
                   f"“{text.md(positive)}” rows, the share flagged. “{text.md(positive)}” is "
                   + ("the class the threshold saved on Decide acts on." if saved_positive(classes)
                      else "the rarer class, the one a yes/no decision usually acts on; Decide can choose the other."))
else:
    st.plotly_chart(built("predicted-vs-actual", lambda y, out, _: charts.predicted_vs_actual_chart(
        y, {m: np.asarray(out[m]).reshape(-1) for m in models}, families=families)), width="stretch")
    chosen = st.selectbox("Residuals of", models, index=0)
    st.plotly_chart(built("residuals", lambda y, out, _, m: charts.residuals_chart(
        y, np.asarray(out[m]).reshape(-1), m), chosen), width="stretch")

others = [r for r in store.list_runs(dataset_id=run.dataset_id, statuses=("done", "stopped"), limit=50)
          if r.id != run.id and r.spec["data"] == run.spec["data"] and r.spec["train"]["seed"] == run.spec["train"]["seed"]]
if others:
    st.subheader("Other runs on the same data and split")
    st.caption("Same target, same seed and same split: their test rows are these test rows, so the scores compare directly.")
    views.runs_table(others)

next_steps("Use a model on new data")
