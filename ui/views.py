"""Views drawn by more than one page: the runs table, a run's header, the leaderboard table."""

from __future__ import annotations

from typing import Callable, TypeVar

import pandas as pd
import streamlit as st

from dlcore import evaluate, formats
from dlcore.errors import DlcoreError, NotFoundError
from dlcore.store import RunRecord, RunRow
from ui import common, text, urls

__all__ = ["runs_table", "leaderboard_frame", "leaderboard_config", "metric_meaning", "metric_title", "score_text",
           "verdicts", "first_verdict", "no_model_to_use", "opened_on", "display_rows",
           "or_stop", "pick_finished_run", "pick_dataset", "scored_preview"]

T = TypeVar("T")

# Every score on a page has these decimals: leaderboards, the runs table, pickers and labels.
SCORE_DECIMALS = 4
SCORE_FORMAT = f"%.{SCORE_DECIMALS}f"


def goal(dataset, target: str, task: str | None = None) -> str:  # type: ignore[no-untyped-def]
    """What a run learns, in words: 'predicts “churn”', 'forecasts “sales”', or 'sorts images into 10 classes'."""
    if task == "forecast":
        return f"forecasts “{text.md(target)}”"
    if dataset.kind == "image":
        return f"sorts images into {len(dataset.report.get('classes', {}))} classes"
    return f"predicts “{text.md(target)}”"


def _kind_of(template: str) -> str:
    from dlcore import templates
    from dlcore.errors import SpecError

    try:
        return templates.get(template).kind
    except SpecError:
        return "tabular"


def metric_title(key: str | None) -> str:
    """A metric's display name ('MASE', 'ROC AUC') from its key ('mase', 'roc_auc')."""
    titles = {m.key: m.title for task in evaluate.TASKS for m in evaluate.metrics_for(task)}
    return titles.get(key or "", key or "-")


def score_text(value: float | None) -> str:
    """A score as every table shows it; '-' for a run that has none (failed, still training)."""
    return formats.number(value)


def runs_table(runs: list[RunRecord] | list[RunRow]) -> None:
    """A table of runs, each linking to its page (``Store.list_run_rows`` reads only what it shows)."""
    found = common.store().dataset_names(r.dataset_id for r in runs)
    names = {r.dataset_id: found.get(r.dataset_id, r.dataset_id) for r in runs}  # a removed dataset: its id
    outcomes = common.store().latest_outcomes(r.id for r in runs)
    rows = []
    for r in runs:
        page = "compare" if r.status in ("done", "stopped") else "train"
        rows.append({
            "Run": urls.href(page, run=r.id),
            "Started": common.when(r.created_at),
            "Status": common.STATUS_WORDS.get(r.status, r.status),
            "Dataset": names[r.dataset_id],
            "Target": "image class" if _kind_of(r.template) == "image" else r.target,
            "Template": evaluate.display_name(r.template),
            "Metric": metric_title(r.metric),
            # Text, so a run without a score reads "-" rather than the table's "None"; runs of
            # different metrics are not sorted against each other anyway.
            "Test score": score_text(r.test_score),
            "Against the baselines": _outcome(r),
            "Duration": common.duration(r.duration),
            "At work": _at_work(outcomes.get(r.id)),
        })
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={  # widths that fit the table beside the sidebar without scrolling sideways
            "Run": st.column_config.LinkColumn("Run", display_text=r"run=([^&]+)", help="Open the run", width=150),
            "Started": st.column_config.TextColumn(width=115),
            "Status": st.column_config.TextColumn(width=95),
            "Template": st.column_config.TextColumn(width=100),
            "Metric": st.column_config.TextColumn(width=70),
            "Test score": st.column_config.TextColumn("Score", width=60, help="The deep model's test score"),
            "Against the baselines": st.column_config.TextColumn(
                "Vs baselines", width=115, help="The verdict on the deep model against the best baseline"),
            "Duration": st.column_config.TextColumn(width=70),
            "At work": st.column_config.TextColumn(
                width=120, help="The newest realized score of the model at work, when outcomes came back (Monitor)"),
        },
    )


def _at_work(outcome: dict | None) -> str:
    """The newest realized score in a few words, with an alert mark when it fell short of the promise."""
    if not outcome:
        return "-"
    text = score_text(outcome.get("realized_score"))
    if not outcome.get("outside"):
        return f"{text} as promised"
    return f"⚠ {text} worse than promised" if outcome.get("worse") else f"{text} better than promised"


OUTCOME_WORDS = {
    "better": "better",
    "worse": "worse",
    "not_clearly_better": "not clearly better",
}


def _outcome(run: RunRecord | RunRow) -> str:
    """The verdict of a finished run's deep model, in a word or three."""
    if isinstance(run, RunRow):
        return OUTCOME_WORDS.get(run.outcome or "", "-")
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
            "Kind": {"deep": "deep", "ensemble": "ensemble"}.get(r["family"], "baseline"),
        }
        if r.get("cv_score") is not None:  # a run within a budget: ranked by cross-validation
            cv_low, cv_high = r.get("cv_ci") or (None, None)
            row["Cross-validated"] = r["cv_score"]
            row["Folds interval"] = (f"{score_text(cv_low)} to {score_text(cv_high)}"
                                     if cv_low is not None and cv_high is not None else "-")
            planned = r.get("cv_folds") or []
            used = sum(v is not None for v in planned)
            row["Folds"] = f"{used} of {len(planned)}" if planned else "-"
            if r["family"] == "ensemble" and planned and used < len(planned):
                # Its weights are chosen on the models' out-of-fold outputs of the first repeat: only there.
                row["Folds"] += " (the first repeat, where its weights were chosen)"
        row[board["metric_title"]] = r["test_score"]
        row["95% interval"] = (f"{score_text(low)} to {score_text(high)}" if low is not None and high is not None
                               else "-")
        for metric in evaluate.metrics_for(board["task"])[1:]:
            row[metric.title] = r["metrics"].get(metric.key)
        row["Fit time"] = common.duration(r.get("fit_seconds"))
        if r["family"] == "ensemble" and r.get("cv_score") is not None:
            row["Trials"] = "none: weights over the models, chosen on their fold outputs"
        elif r.get("trials") is not None:
            row["Trials"] = f"{r['trials']} in {common.duration(r.get('search_seconds'))}" if r["trials"] else "-"
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in [m.title for m in evaluate.metrics_for(board["task"])] + ["Cross-validated"]:
        # A score that could not be worked out (a metric undefined on this test set) reads "-",
        # not the table's "None": the column is then text, with the same decimals.
        # Large-unit errors (RMSE 32,021) read as the verdict writes them: text in the shared format.
        if column in frame.columns and (frame[column].isna().any()
                                        or (pd.to_numeric(frame[column], errors="coerce").abs() > 1).any()):
            frame[column] = [score_text(None if pd.isna(v) else float(v)) for v in frame[column]]
    return frame


def leaderboard_config(board: dict, frame: pd.DataFrame) -> dict:
    """Column settings for ``leaderboard_frame``: every score with the same decimals, and each
    metric's plain meaning as the tooltip of its column."""
    config: dict = {}
    for metric in evaluate.metrics_for(board["task"]):
        # Written out as text (pandas 3 makes that a string dtype, not object): no number format over it.
        as_text = metric.title in frame.columns and not pd.api.types.is_numeric_dtype(frame[metric.title])
        config[metric.title] = (st.column_config.TextColumn(metric.title, help=metric.explain) if as_text else
                                st.column_config.NumberColumn(metric.title, format=SCORE_FORMAT, help=metric.explain))
    if "Cross-validated" in frame.columns:
        def column(title: str, label: str, words: str):  # text where the scores were written out as text
            if not pd.api.types.is_numeric_dtype(frame[title]):
                return st.column_config.TextColumn(label, help=words)
            return st.column_config.NumberColumn(label, format=SCORE_FORMAT, help=words)

        config["Cross-validated"] = column(
            "Cross-validated", f"{board['metric_title']} (folds)",
            "The mean score over the cross-validation folds of the training part: the board ranks by it.")
        config["Folds interval"] = st.column_config.TextColumn(
            help="95% interval of the cross-validated score across folds (corrected for folds sharing rows).")
        config[board["metric_title"]] = column(
            board["metric_title"], f"{board['metric_title']} (test)",
            "The score on the held-out test rows, which no fold and no search saw: it confirms the choice.")
        config["Folds"] = st.column_config.TextColumn(
            help="How many folds the cross-validated score is the mean of, of those planned: the time budget may "
                 "end the folds early. The ensemble is scored on the first repeat's folds only: its weights are "
                 "chosen on the models' outputs there.")
        config["Trials"] = st.column_config.TextColumn(
            help="How many settings the search tried, and in how long. The ensemble has no settings to search: it "
                 "weighs the models by their outputs on the folds.")
    config["95% interval"] = st.column_config.TextColumn(
        help=f"Where the {board['metric_title']} would likely fall on other data like this (95% of the time).")
    return config


def metric_meaning(board: dict) -> str:
    """One line on the ranking metric, to read beside the leaderboard."""
    metric = evaluate.metrics_for(board["task"])[0]
    return f"**{metric.title}** ({'higher' if metric.higher_is_better else 'lower'} is better): {metric.explain}"


def display_rows(board: dict) -> list[dict]:
    """Leaderboard rows with the names an analyst reads, for charts."""
    return [{**r, "model": evaluate.display_name(r["model"])} for r in board["rows"]]


def open_finished_run(store, run_id: str, page: str, why: str):  # type: ignore[no-untyped-def]
    """The opening of a page about one finished run: the run and its dataset (or the page's
    not-found answer), the share link, the heading (the dataset's name escaped, as every name a
    user chose), and for an unfinished run a warning ending in ``why`` and a link to watch it."""
    from ui import team

    run = or_stop(store.run, run_id)
    dataset = or_stop(store.dataset, run.dataset_id)
    team.share(run.id, page)
    st.subheader(f"{text.md(dataset.name)} → {goal(dataset, run.target, run.task)}")
    if run.status not in ("done", "stopped"):
        st.warning(f"This run is {common.status_label(run.status)}: {why}")
        urls.link("train", "Watch the run", run=run.id)
        st.stop()
    return run, dataset


def or_stop(load: Callable[..., T], *args: str) -> T:
    """Load a record for the page, or show why not (an unknown id in a link, or a record of a
    workspace the user is not in: the same answer) and stop the page."""
    try:
        record = load(*args)
    except DlcoreError as exc:
        st.error(str(exc), icon=":material/error:")
        if isinstance(exc, NotFoundError) and getattr(load, "__name__", "") in ("run", "dataset") and args:
            from ui import team

            team.ask_access(load.__name__, args[0])
        st.stop()
    workspace_id = getattr(record, "workspace_id", None)
    if workspace_id is not None:
        # Personal data is masked for a viewer of the record's workspace (the page may be opened
        # from a link into a workspace other than the one picked in the sidebar).
        from ui import privacy, team

        privacy.hide_personal_data(team.role(workspace_id) == "viewer")
    return record


def verdicts(board: dict) -> None:
    """A run's verdicts, in the same look on every page: green when the deep model is better,
    blue for every other finding. A deep model that loses to a baseline is a result worth
    knowing, not something that went wrong, so a verdict is never red."""
    for verdict in board["verdicts"]:
        show = st.success if verdict["outcome"] == "better" else st.info
        show(verdict["text"], icon=":material/gavel:")
    if board.get("rows"):
        use, why = evaluate.recommended(board)
        if evaluate.nothing_predicts(board):
            st.markdown(f"**No model to use**: none is clearly better than always guessing. The pages that use a "
                        f"model open on {evaluate.display_name(use)} only to show what it would do.")
        else:
            st.markdown(f"**The model to use: {evaluate.display_name(use)}**, {why}. The pages that use a model open "
                        "on it.")


def first_verdict(run: RunRecord) -> bool:
    """While a run within a budget still searches: the board and verdict it has so far (the first
    verdict, then each better one), with what it is still trying; True when there was one to show."""
    first = (run.result or {}).get("first_verdict")
    if run.finished or not first:
        return False
    st.markdown(f"**First verdict, {first['at_s']:.0f} s into the run** (every model cross-validated, with "
                "intervals); it is replaced as the search finds better settings.")
    verdicts(first["leaderboard"])
    st.dataframe(leaderboard_frame(first["leaderboard"]), hide_index=True, width="stretch")
    st.caption(f"Still trying: {first['still']}, until more trials cannot change the verdict or the budget ends.")
    return True


def no_model_to_use(board: dict) -> bool:
    """Where a page would name the model to use: a warning that nothing here predicts the target
    (``evaluate.nothing_predicts``), so no model is recommended; True when it was shown."""
    nothing = evaluate.nothing_predicts(board)
    if nothing:
        st.warning(nothing, icon=":material/block:")
    return bool(nothing)


def recommended_first(board: dict, models: list[str]) -> list[str]:
    """``models`` with the one the run recommends (``evaluate.recommended``) first, so a page's
    picker opens on it; the rest in the board's order."""
    use = _recommended(board, models)[0]
    return sorted(models, key=lambda m: m != use)


def _recommended(board: dict, models: list[str]) -> tuple[str, str]:
    use, why = evaluate.recommended(board)
    if use in models:
        return use, why
    first = next(r["model"] for r in board["rows"] if r["model"] in models)  # e.g. a stopped forecast's
    return first, f"the best {evaluate.best_by(board)} of the models offered here"


def model_label(board: dict, models: list[str], where: str | None = None) -> Callable[[str], str]:
    """A picker's words after a model's name: which one the run recommends, and which scored best
    when that is another."""
    use = _recommended(board, models)[0]
    top = next(r["model"] for r in board["rows"] if r["model"] in models)
    where = where or evaluate.best_by(board)
    if evaluate.nothing_predicts(board):  # none is recommended: the first is only the best of no use
        use = ""

    def label(model: str) -> str:
        return ("  ← recommended" if model == use else f"  ← best {where}" if model == top else "")

    return label


def opened_on(board: dict, chosen: str, key: str, where: str | None = None,
              choices: list[str] | None = None) -> None:
    """Under a page's model picker: which model it shows and why (the one the run recommends
    first), and the deep model one click away when that is another. ``key`` is the picker's key;
    ``choices`` the models it offers (all of the board's by default)."""
    rows = [r for r in board["rows"] if choices is None or r["model"] in choices]
    use, why = _recommended(board, [r["model"] for r in rows])
    if where is not None and why == f"the best {evaluate.best_by(board)}":
        why = f"the best {where}"
    deep = next((r["model"] for r in rows if r["family"] == "deep"), None)
    if no_model_to_use(board):
        st.caption(f"Showing {evaluate.display_name(chosen)}, only to show what it would do: no model is recommended.")
    elif chosen == use:
        st.caption(f"Showing {evaluate.display_name(use)}, {why}.")
    else:
        st.caption(f"Showing {evaluate.display_name(chosen)}; the run recommends {evaluate.display_name(use)}, {why}.")
    if deep is not None and chosen != deep:
        st.button(f"Show the deep model ({evaluate.display_name(deep)}) instead", key=f"{key}-deep",
                  icon=":material/neurology:", on_click=lambda: st.session_state.update({key: deep}))


def pick_finished_run(page: str, prompt: str, can: Callable[[RunRecord], bool] | None = None,
                      none_yet: str = "No finished run yet. Train a model first.") -> None:
    """List finished runs as links to ``page`` (for a page opened without ``?run=``), then stop.
    ``can`` keeps only the runs the page can handle, so no link leads to a dead end."""
    finished = common.store().list_runs(statuses=("done", "stopped"), limit=200 if can else 20)
    finished = [r for r in finished if can is None or can(r)][:20]
    if not finished:
        st.info(none_yet, icon=":material/info:")
        urls.link("train", "Go to Train")
        st.stop()
    st.write(prompt)
    for r in finished:
        score = f" · {metric_title(r.metric)} {score_text(r.test_score)}" if r.test_score is not None else ""
        urls.link(page, f"{evaluate.display_name(r.template)} → {text.md(r.target)} · {common.when(r.created_at)}{score}", run=r.id)
    st.stop()


def pick_dataset(page: str, prompt: str) -> None:
    """List stored datasets as links to ``page`` (for a page opened without ``?dataset=``), then stop."""
    recent = common.store().list_datasets(limit=10)
    if recent:
        st.subheader(prompt)
        for d in recent:
            shape = (f"{d.n_rows:,} images in {len(d.report.get('classes', {}))} classes" if d.kind == "image"
                     else f"{d.n_rows:,} rows × {d.n_cols} columns")
            urls.link(page, f"{text.md(d.name)} · {shape} · {common.when(d.created_at)}", dataset=d.id)
    elif page != "data":
        st.info("First bring some data: upload a file or pick a sample on the Data page.", icon=":material/info:")
        urls.link("data", "Go to Data")
    st.stop()


def scored_preview(data: bytes, rows: int = 200) -> pd.DataFrame:
    """The first rows of a scored CSV as an analyst should see them on screen: blanks for
    missing cells, and without the apostrophe that guards formulas in the download."""
    import numpy as np

    from dlcore import tables as tabular

    frame, _ = tabular.read_table(data, name="scored.csv")
    frame = frame.head(rows)
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            text = frame[col].astype("string")
            guarded = text.str.match(r"^'[=+\-@\t\r]", na=False)
            frame[col] = text.mask(guarded, text.str.slice(1)).fillna("")
        elif frame[col].isna().any():  # a column of numbers with gaps: the numbers as written, blanks between
            frame[col] = ["" if pd.isna(v) else np.format_float_positional(float(v), precision=10, trim="-")
                          for v in frame[col]]
    return frame


def hand_over(run: RunRecord) -> None:
    """The run as something to hand over: the report, the model bundle, and a rerun of its spec."""
    from dlcore import runner
    from dlcore.handover import report
    from dlcore.spec import RunSpec
    from ui import team

    store = common.store()
    c1, c2, c3 = st.columns(3)
    c1.download_button(
        "Report (HTML, opens offline)", data=common.deferred(lambda s: report.build_report(s, run.id)),
        file_name=report.report_name(store, run.id), mime="text/html", icon=":material/summarize:",
        help="One file with the leaderboard, the verdict, the charts, the explanation, the threshold and how to "
             "reproduce the run. Its charts are interactive and need no network.", on_click="ignore")
    if (run.result or {}).get("kind") != "series" and team.can("download_model", run.workspace_id):
        from dlcore.handover import bundle

        # The bundle holds the model the run recommends (the board's first unless the verdict prefers a baseline),
        # unless the analyst picks another: the deep model, the ensemble or a scikit-learn baseline (skops file).
        names = [r["model"] for r in (run.result or {}).get("leaderboard", {}).get("rows", [])
                 if not r["model"].startswith("dummy") and r["model"] in (run.result or {}).get("models", {})]
        board = (run.result or {}).get("leaderboard", {})
        names = recommended_first(board, names) if names else [run.spec["template"]]
        marks = model_label(board, names) if board.get("rows") else (lambda m: "")
        model = c2.selectbox("Model to bundle", names, index=0, key=f"bundle-model-{run.id}",
                             format_func=lambda m: evaluate.display_name(m) + marks(m))
        what = ("a deep model (.keras)" if model == run.spec["template"] else "an ensemble of the run's models"
                if model == "ensemble" else "a scikit-learn model (.skops)")
        c2.download_button(
            f"Model bundle (ZIP): {evaluate.display_name(model)}",
            data=common.deferred(lambda s: bundle.build_bundle(s, run.id, model)),
            file_name=bundle.bundle_name(store, run.id, model), mime="application/zip", icon=":material/deployed_code:",
            help=f"{evaluate.display_name(model).capitalize()}, {what}, with its preprocessing, a model card and predict.py: "
                 "score a CSV outside this app with plain Python libraries.", on_click="ignore")
    if team.can("train", run.workspace_id) and c3.button("Rerun exactly", icon=":material/replay:",
                 help="Train the same spec again: same data, split, seed and settings; on this machine the scores match."):
        with common.guard():
            urls.open_run(runner.submit(store, RunSpec.from_dict(run.spec)))
