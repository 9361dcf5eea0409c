"""Forecasting runs on the page: the backtest chart, and the forecast after the last date."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dlcore import cache, evaluate
from dlcore.series import charts as series_charts
from dlcore.series.run import ID_COLUMN, load_backtest, load_future
from dlcore.store import RunRecord
from ui import common, text


def _families(board: dict) -> dict[str, str]:
    return {evaluate.display_name(r["model"]): r["family"] for r in board["rows"]}


def _series_choice(run: RunRecord, label: str) -> str | None:
    """With several series, the one to chart (None for a run on one series)."""
    info = run.result["series"]
    if info.get("n_series", 1) < 2:
        return None
    return st.selectbox(f"{label} ({info['id_col']})", info["ids"], key=f"series-{label}")


def _span(info: dict) -> str:
    if info.get("n_series", 1) > 1:
        return (f"{info['n_series']} series ({info['n_steps']:,} {info['frequency']} values in all) from "
                f"{info['first'][:10]} to {info['last'][:10]}; one deep model learnt from all of them, each baseline "
                "was fitted on each series alone.")
    return f"{info['n_steps']:,} {info['frequency']} values from {info['first'][:10]} to {info['last'][:10]}."


def compare_view(run: RunRecord) -> None:
    """Below the leaderboard of a forecast: every model's backtest forecasts against the actual values."""
    info = run.result["series"]
    board = run.result["leaderboard"]
    st.subheader("The backtest: each model's forecasts against what happened")
    st.caption(
        f"{_span(info)} Each of the last {info['windows']} blocks of {info['horizon']} steps was forecast by every "
        f"model trained only on the values before it (a rolling-origin backtest); look-back {info['lookback']} steps, "
        f"season {info['season_length']} steps. MASE divides a forecast's average error by the average error of "
        "'same time last season' on the training part: below 1 beats it."
    )
    if info.get("n_series", 1) > 1:
        _per_series_table(info, board)
    models = [r["model"] for r in board["rows"]]
    deep = [r["model"] for r in board["rows"] if r["family"] == "deep"]
    default = deep + [m for m in models if m not in deep][:2]  # the deep model and the two best baselines
    c1, c2 = st.columns([2, 1]) if info.get("n_series", 1) > 1 else (st.container(), None)
    shown = c1.multiselect("Models on the chart", models, default=default, format_func=evaluate.display_name)
    with c2 or st.container():
        series = _series_choice(run, "Series")
    data = load_backtest(common.store(), run.id, series)
    forecasts = {evaluate.display_name(m): data["forecasts"][m] for m in shown}
    st.plotly_chart(series_charts.forecast_chart(data["history_times"], data["history"], data["window_times"], forecasts,
                                          families=_families(board), show_last=max(60, 4 * info["horizon"] * info["windows"]),
                                          title=f"Backtest: {text.html(series)}" if series else "Backtest and forecast"),
                    width="stretch")
    for note in info.get("notes", []):
        st.info(note, icon=":material/info:")


def _per_series_table(info: dict, board: dict) -> None:
    """Where the deep model wins and where it loses: its MASE beside the best baseline's, per series."""
    per = info.get("per_series_mase") or {}
    deep = next((r["model"] for r in board["rows"] if r["family"] == "deep"), None)
    base = next((r["model"] for r in board["rows"] if r["family"] == "baseline"), None)
    if not (deep in per and base in per):
        return
    import pandas as pd

    table = pd.DataFrame({info["id_col"]: info["ids"], evaluate.display_name(deep): per[deep],
                          evaluate.display_name(base): per[base]})
    table["deep model better"] = table.iloc[:, 1] < table.iloc[:, 2]
    wins = int(table["deep model better"].sum())
    with st.expander(f"Per series: the deep model has the lower MASE on {wins} of {len(table)} series "
                     f"(against {evaluate.display_name(base)})"):
        st.dataframe(table.sort_values(table.columns[1]), hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(c, format="%.4f") for c in table.columns[1:3]})


def forecast_view(run: RunRecord) -> None:
    """The Predict page of a forecast: one model's forecast after the last date, charted and
    downloadable; and a forecast after newer data the analyst uploads."""
    info = run.result["series"]
    board = run.result["leaderboard"]
    future = load_future(common.store(), run.id)
    # A run stopped during its backtest has no final deep model: only the models with a forecast.
    models = [r["model"] for r in board["rows"] if r["model"] in set(future["model"])]
    several = info.get("n_series", 1) > 1
    st.subheader(f"Forecast “{text.md(run.target)}” for the next {info['horizon']} steps after the last date"
                 + ("" if several else f", {info['last'][:10]}"))
    c1, c2 = st.columns([2, 1]) if several else (st.container(), None)
    from ui import views

    scores = {r["model"]: views.score_text(r["test_score"]) for r in board["rows"]}
    with c1:
        models = views.recommended_first(board, models)
        mark = views.model_label(board, models, "in the backtest")
        model = st.selectbox("Model", models, index=0, key="forecast-model",
                             format_func=lambda m: f"{evaluate.display_name(m)} (MASE {scores[m]})" + mark(m))
        views.opened_on(board, model, "forecast-model", where="in the backtest", choices=models)
    with c2 or st.container():
        series = _series_choice(run, "Series to chart")
    chosen = future[future["model"] == model].drop(columns=["model"]).reset_index(drop=True)
    shown = chosen[chosen[ID_COLUMN] == series].drop(columns=[ID_COLUMN]) if series is not None else chosen
    data = load_backtest(common.store(), run.id, series)
    st.plotly_chart(series_charts.forecast_chart(data["history_times"], data["history"], data["window_times"],
                                          {evaluate.display_name(model): data["forecasts"][model]}, shown,
                                          families=_families(board),
                                          title=f"Forecast by {evaluate.display_name(model)}"
                                          + (f": {text.html(series)}" if series else ""),
                                          show_last=max(60, 4 * info["horizon"] * info["windows"])), width="stretch")
    level = f"{info['interval']:.0%}"
    st.caption(f"The band is a {level} interval built from the errors this model made in the backtest, step by step "
               f"ahead (the {level} quantile of their sizes). With {info['windows']} backtest windows it is only as wide "
               "as the errors seen there; more windows make it more trustworthy.")
    dates_only = bool((shown["time"] == shown["time"].dt.normalize()).all())
    # The columns carry the file's own names, on screen as in the download ("Datum", not "time").
    names = {"time": info["time_col"], ID_COLUMN: info.get("id_col") or ID_COLUMN}
    st.dataframe(shown.rename(columns=names), hide_index=True, width="stretch", column_config={
        info["time_col"]: st.column_config.DatetimeColumn(format="YYYY-MM-DD" if dates_only else "YYYY-MM-DD HH:mm")})
    from dlcore.scoring import to_safe_csv

    out = chosen.rename(columns=names)
    st.download_button("Download the forecast (CSV)" + (f", all {info['n_series']} series" if several else ""),
                       common.deferred(lambda s: (s.run(run.id), to_safe_csv(out))[1]),
                       file_name=f"forecast-{run.target}-{model}.csv", mime="text/csv",
                       type="primary", icon=":material/download:")
    _newer_data(run, model)


def _newer_data(run: RunRecord, model: str) -> None:
    """Forecast after newer values: the same columns up to a later date (in a scorer worker)."""
    from dlcore import jobs
    from ui import scoring, urls

    info = run.result["series"]
    st.subheader("Forecast after newer data")
    columns = [info["time_col"], *([info["id_col"]] if info.get("id_col") else []), info["target"], *info["covariates"]]
    st.caption(f"Upload the series again with its latest values (columns {text.names(columns)}); "
               f"the model forecasts {info['horizon']} steps after its last date. The deep model is not retrained; "
               "the baselines are refitted on the file (seconds).")
    with st.expander("For automation: the same forecast from a script"):
        st.caption("On the server, this command forecasts after a newer file with the run's best model (add "
                   "`--model NAME` for another) and writes the same CSV as the download:")
        st.code(f"python -m dlcore predict {run.id} NEW.csv -o forecast.csv", language="bash")
    upload = st.file_uploader("The series up to its latest date (CSV, Excel or Parquet)",
                              type=["csv", "tsv", "txt", "xlsx", "xls", "parquet"], key="newer-series")
    if upload is not None and st.button("Forecast", type="primary", icon=":material/bolt:"):
        with common.guard():
            urls.set_ids(scoring=jobs.submit_scoring(common.store(), run.id, model, upload.getvalue(), upload.name))
    job = scoring.finished_job(run, "forecast")
    if job is None:
        return
    data = (common.store().scoring_dir(job.id) / "scored.csv").read_bytes()
    st.success(f"Forecast {info['horizon']} steps after the last date of {text.md(job.input_name)} with "
               f"{evaluate.display_name(job.model)}.")
    for note in (job.summary or {}).get("notes", []):
        st.info(note, icon=":material/info:")
    from ui import views

    st.dataframe(views.scored_preview(data), hide_index=True, width="stretch")
    st.download_button("Download this forecast (CSV)",
                       common.deferred(lambda s: (s.scoring_dir(s.scoring(job.id).id) / "scored.csv").read_bytes()),
                       file_name=f"forecast-{job.input_name.rsplit('.', 1)[0]}.csv",
                       mime="text/csv", icon=":material/download:", key="newer-download")


@st.cache_data(max_entries=8, show_spinner="Looking for dates…")
def time_columns(dataset_id: str) -> list[str]:
    """The columns that can carry a series: they read as times and hold enough distinct steps for
    the shortest useful backtest. A column of three years (the year of each field trip) reads
    as times but is no time axis, so no forecast is offered for it."""
    from dlcore import series as timeseries

    frame = common.frame(dataset_id)
    shortest = timeseries.needed_steps(horizon=1, lookback=1, windows=1)
    return [c for c in timeseries.time_columns(frame) if frame[c].nunique() >= shortest]


@st.cache_data(max_entries=8, show_spinner="Looking for series ids…")
def id_columns(dataset_id: str, time_col: str) -> list[str]:
    from dlcore import series as timeseries

    return timeseries.id_columns(common.frame(dataset_id), time_col)


@st.cache_data(max_entries=16, show_spinner="Checking the series…")
def series_check(dataset_id: str, time_col: str, target: str,
                 id_col: str | None = None) -> tuple[dict | None, str | None]:
    """What the series looks like (frequency, gaps, duplicates, suggested settings), or why it cannot be used."""
    from dlcore import series as timeseries
    from dlcore.errors import DlcoreError

    frame = common.frame(dataset_id)
    try:
        report = timeseries.check_series(frame, time_col, target, id_col)
        settings = timeseries.suggest_settings(report.frequency, report.median_steps or report.n_steps)
    except DlcoreError as exc:
        return None, str(exc)
    return {"words": report.frequency.words, "unit": report.frequency.unit, "n_steps": report.n_steps,
            "median_steps": report.median_steps, "n_series": report.n_series, "n_rows": report.n_rows,
            "start": str(report.start)[:10], "end": str(report.end)[:10], "notes": report.notes,
            "needs_fixing": report.needs_fixing, "duplicates": report.duplicates, "gaps": report.gaps,
            "missing_values": report.missing_values,
            "horizon": settings.horizon, "lookback": settings.lookback, "season": settings.season_length,
            "windows": settings.windows, "setting_notes": settings.notes}, None


def describe(info: dict) -> str:
    """One line about the series: how many steps, how often, from when to when."""
    if info["n_series"] > 1:
        return (f"{info['n_series']:,} series, {info['words']}, from {info['start']} to {info['end']}; a typical one "
                f"has {info['median_steps']:,} steps, the shortest {info['n_steps']:,}.")
    return f"{info['n_steps']:,} {info['words']} steps from {info['start']} to {info['end']}."


@st.cache_data(max_entries=8, show_spinner=False)
def in_order(dataset_id: str, time_col: str, id_col: str | None) -> bool:
    """Whether the file lists its times in order, as a series is written (customers' sign-up days come in any order)."""
    from dlcore import series as timeseries

    return timeseries.in_time_order(common.frame(dataset_id), time_col, id_col)


@st.cache_data(max_entries=8, show_spinner=False)
def likely_id(dataset_id: str, time_col: str) -> str | None:
    """The id column the file's shape points to (one row per series and time), if any."""
    from dlcore import series as timeseries

    ids = id_columns(dataset_id, time_col)
    return ids[0] if ids and timeseries.looks_like_id(common.frame(dataset_id), time_col, ids[0]) else None


ONE_SERIES = "(one series: no id column)"


def id_choice(dataset_id: str, time_col: str, target: str | None, key: str | None = None) -> str | None:
    """The column that names each series in a long file (None: the file is one series);
    a column the file's shape points to is chosen already."""
    options = [c for c in id_columns(dataset_id, time_col) if c != target]
    default = likely_id(dataset_id, time_col)
    chosen = st.selectbox(
        "Several series in one file? The column that names each one", [ONE_SERIES, *options],
        index=1 + options.index(default) if default in options else 0, key=key,
        help="For a long file with one row per shop (or product, or sensor) and date: the deep model learns "
             "from all the series at once, and every series is backtested and forecast on its own.")
    return None if chosen == ONE_SERIES else chosen


@st.cache_data(max_entries=8, show_spinner="Drawing the series…")
def _overview(dataset_id: str, time_col: str, target: str, id_col: str | None):  # type: ignore[no-untyped-def]
    from dlcore import series as timeseries

    return timeseries.overview(common.frame(dataset_id), time_col, target, id_col)


def data_view(dataset, numeric: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The Data page for a table with dates: each series over time, its frequency, gaps and
    duplicates, before any model, with the way to a forecast. Open at once when the table
    reads as a series; folded away when its dates are, say, sign-up days of customers."""
    times = time_columns(dataset.id)
    values = [c for c in numeric if c not in times]
    if not values:
        return
    default = dataset.target if dataset.target in values else values[0]
    info, _ = series_check(dataset.id, times[0], default, likely_id(dataset.id, times[0]))
    # Folded when the dates are not a series' steps: many rows a day (orders), most of the grid's steps
    # missing (customers' sign-up days scattered over years), or unreadable.
    series_like = (info is not None and info["duplicates"] <= 0.1 * info["n_rows"]
                   and info["gaps"] <= 0.25 * info["median_steps"] * info["n_series"]
                   and in_order(dataset.id, times[0], likely_id(dataset.id, times[0])))
    with st.expander("Over time: this table has dates, so a column of numbers can be forecast",
                     expanded=dataset.task == "forecast" or series_like, icon=":material/timeline:"):
        _over_time(dataset, times, values, default)


def _over_time(dataset, times: list[str], values: list[str], default: str) -> None:  # type: ignore[no-untyped-def]
    from ui import urls

    st.caption("Each series as it is in the file: how often it has a value, and where values are missing.")
    c1, c2, c3 = st.columns(3)
    time_col = c1.selectbox("Time column", times, key=f"over-time-{dataset.id}")
    target = c2.selectbox("Values", values, index=values.index(default), key=f"over-values-{dataset.id}")
    with c3:
        id_col = id_choice(dataset.id, time_col, target, key=f"over-id-{dataset.id}")
    info, problem = series_check(dataset.id, time_col, target, id_col)
    if problem:  # the analyst is looking, not asking for a forecast: a note, not an error
        st.info(f"These values cannot be forecast as they are: {problem}", icon=":material/info:")
        return
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Steps" if info["n_series"] == 1 else "Series", f"{info['n_steps']:,}" if info["n_series"] == 1
              else f"{info['n_series']:,}", help=describe(info))
    m2.metric("Frequency", info["words"].split(" (")[0], help=info["words"])
    steps, missing = _overview(dataset.id, time_col, target, id_col)
    m3.metric("Missing steps", f"{len(missing):,}", help="Steps of the regular grid with no value: no row, or only empty cells")
    m4.metric("Repeated times", f"{info['duplicates']:,}", help="Rows beyond the first at the same step")
    st.plotly_chart(cache.for_dataset(dataset.id, "series-overview", lambda *_: series_charts.series_overview_chart(
        steps, missing, target, info["unit"]), time_col, target, id_col), width="stretch")
    for note in info["notes"]:
        st.info(note, icon=":material/info:")
    st.caption(f"Suggested for a forecast: {info['horizon']} {info['unit']} ahead, reading the last {info['lookback']}, "
               f"a season of {info['season']}, tested on the last {info['windows']} periods. Gaps and repeated "
               "times are fixed on the Train page, where you choose how.")

    if st.button(f"Next: forecast {target}", icon=":material/arrow_forward:", key=f"forecast-{dataset.id}"):
        common.store().set_dataset_target(dataset.id, target, "forecast")  # the Train page opens on the forecast
        st.switch_page(urls.page("train"), query_params={urls.DATASET: dataset.id})


# How far ahead each frequency usually looks (``dlcore.series.checks``' defaults), and a season, in words.
_USUAL_HORIZON = {"hours": (48, "two days"), "days": (14, "two weeks"), "business days": (10, "two working weeks"),
                  "weeks": (13, "a quarter"), "months": (12, "a year"), "quarters": (8, "two years"),
                  "years": (5, "five years")}
_SEASON_WORDS = {("hours", 24): "a day", ("days", 7): "a week", ("business days", 5): "a working week",
                 ("weeks", 52): "a year", ("months", 12): "a year", ("quarters", 4): "a year"}


def why_suggested(info: dict) -> str:
    """Why the form starts from these settings, in words, so a suggestion of 14 days reads as a
    reason and not as a value the analyst has to accept."""
    unit, h, lookback, season = info["unit"], info["horizon"], info["lookback"], info["season"]
    words = info["words"].split(" (")[0]
    usual = _USUAL_HORIZON.get(unit)
    if usual is None:  # minutes, seconds, steps of several units: one season, or ten steps
        parts = [f"{h} {unit} ahead" + (" (one season)" if h == season else "")]
    elif usual[0] == h:
        parts = [f"{h} {unit} ahead is the usual horizon for {words} values ({usual[1]})"]
    else:
        parts = [f"{h} {unit} ahead rather than the usual {usual[0]} ({usual[1]}), because the series is short"]
    reads = f"the models read the last {lookback} {unit}"
    if lookback == 3 * h:
        reads += " (three horizons)"
    elif season > 1 and lookback == 2 * season:
        reads += " (two seasons)"
    parts.append(reads)
    if season > 1:
        cycle = _SEASON_WORDS.get((unit, season))
        parts.append(f"a season is {season} {unit}" + (f" ({cycle})" if cycle else ""))
    parts.append(f"the last {info['windows']} blocks of {h} {unit} are held back to test on")
    return ("Why these numbers: " + "; ".join(parts) + ". Any horizon works: set the one your decision needs, "
            "and keep the look-back at least as long as the horizon.")


def forecast_form(dataset, numeric: list[str]):  # type: ignore[no-untyped-def]
    """The Train page for a forecast: time column, what to forecast, how far, and the model.
    Returns a RunSpec when the analyst clicks Train, else None."""
    from dlcore import templates
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec

    times = time_columns(dataset.id)
    c1, c2 = st.columns(2)
    time_col = c1.selectbox("Time column (the dates)", times)
    values = [c for c in numeric if c != time_col]
    if not values:
        st.error("There is no numeric column to forecast besides the time column. A forecast needs numbers over time.")
        return None
    default = dataset.target if dataset.target in values else values[0]
    target = c2.selectbox("What to forecast", values, index=values.index(default))
    id_col = id_choice(dataset.id, time_col, target, key=f"id-{dataset.id}")
    info, problem = series_check(dataset.id, time_col, target, id_col)
    if problem:
        st.error(problem, icon=":material/error:")
        return None
    st.caption(describe(info))
    for note in info["notes"]:
        st.info(note, icon=":material/info:")
    with st.form("forecast"):
        c1, c2, c3, c4 = st.columns(4)
        unit = info["unit"]
        horizon = c1.number_input(f"Horizon: {unit} to forecast", 1, 10_000, info["horizon"])
        lookback = c2.number_input(f"Look-back: {unit} the deep model reads", 1, 10_000, info["lookback"])
        season = c3.number_input(f"Season: {unit} in one cycle (1: none)", 1, 10_000, info["season"])
        windows = c4.number_input("Backtest windows: how many past periods to test on", 1, 20, info["windows"])
        st.caption(why_suggested(info))
        for note in info["setting_notes"]:
            st.caption(note)
        gaps = st.radio("Missing steps", ["interpolate", "ffill", "zero"], horizontal=True,
                        format_func={"interpolate": "draw a straight line between neighbours",
                                     "ffill": "repeat the last value", "zero": "count as zero"}.get,
                        help="How to fill steps with no value (a missing week, say). The models need one value per step.")
        duplicates = "mean"
        if info["duplicates"]:
            duplicates = st.radio("Two values at the same time", ["mean", "sum", "last"], horizontal=True,
                                  format_func={"mean": "take their average", "sum": "add them up",
                                               "last": "keep the last one"}.get)
        covariates = st.multiselect("Other columns the deep model may read (optional; their past values only)",
                                    [c for c in values if c not in (target, id_col)])
        kinds = templates.for_kind("series")
        template = st.radio("Model template", [t.name for t in kinds], format_func=lambda n: templates.get(n).title,
                            captions=[t.description for t in kinds])
        defaults = TrainSpec()
        from dlcore.budget import DEFAULT_PRESET, PRESETS
        from dlcore.budget import describe as budget_words

        budget = st.select_slider(
            "Time budget: how long you are willing to wait. Within it, the template, the look-back and the learning "
            "rate are searched; every model is then backtested on the same windows",
            options=[30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0], value=PRESETS[DEFAULT_PRESET], format_func=budget_words)
        st.caption("The template chosen above is the search's first trial. The naive and seasonal naive forecasts "
                   "are always on the board; each model's score is its average over the backtest windows.")
        with st.expander("Settings (the defaults suit most series) · advanced: fixed settings instead of a search"):
            st.caption("Give a number of epochs per fit to train the template above as it is, instead of searching "
                       "within the time budget.")
            c1, c2 = st.columns(2)
            epochs = c1.number_input("Epochs per fit: passes over the training windows (stops earlier when "
                                     "validation stops improving)", 1, 1000, None, placeholder="searched within the budget")
            size = c2.select_slider("Size: how many units the model has", ["small", "medium", "large"], value="medium")
            learning_rate = c1.select_slider("Learning rate", [0.0001, 0.0003, 0.001, 0.003, 0.01], value=0.001)
        with st.expander("Advanced: stopping early, and repeating a run"):
            c1, c2 = st.columns(2)
            patience = c1.number_input("Patience: epochs without improvement before stopping early", 1, 100, defaults.patience)
            seed = c2.number_input("Seed: the same seed gives the same model", 0, 2**31 - 1, defaults.seed)
        st.caption("The deep model is trained once per backtest window (on the values before it) and once on the "
                   "whole series for the forecast, so training takes a few times one fit.")
        if not st.form_submit_button("Train", type="primary", icon=":material/play_arrow:"):
            return None
    return RunSpec(
        data=DataSpec(dataset_id=dataset.id, target=target, task="forecast", features=tuple(covariates) or None),
        template=template,
        train=TrainSpec(epochs=int(epochs) if epochs is not None else defaults.epochs,
                        budget=float(budget) if epochs is None else None, batch_size=32, learning_rate=float(learning_rate), size=size,
                        patience=int(patience), seed=int(seed)),
        forecast=ForecastSpec(time_col=time_col, horizon=int(horizon), lookback=int(lookback), windows=int(windows),
                              season_length=int(season), gaps=gaps, duplicates=duplicates, id_col=id_col),
    )


def explain_view(result: dict[str, Any]) -> None:
    """Which lags and which columns the forecast leans on."""
    from dlcore.series import explain as explain_series

    if result.get("sentence"):
        st.success(result["sentence"], icon=":material/lightbulb:")
    st.plotly_chart(explain_series.lag_importance_chart(result), width="stretch")
    if len(result.get("channels", [])) > 1:
        st.plotly_chart(explain_series.channel_importance_chart(result), width="stretch")
    st.caption(f"Permutation importance on {result.get('n_windows', 0):,} look-back windows of the history: how much "
               f"worse ({result.get('metric', 'MAE')}) the forecast gets when one part of its input is scrambled.")
