"""Forecasting runs on the page: the backtest chart, and the forecast after the last date."""

from __future__ import annotations

import streamlit as st

from dlcore import charts, evaluate
from dlcore.forecasting import load_backtest, load_future
from dlcore.store import RunRecord
from ui import common


def _families(board: dict) -> dict[str, str]:
    return {evaluate.display_name(r["model"]): r["family"] for r in board["rows"]}


def compare_view(run: RunRecord) -> None:
    """Below the leaderboard of a forecast: every model's backtest forecasts against the actual values."""
    info = run.result["series"]
    board = run.result["leaderboard"]
    data = load_backtest(common.store(), run.id)
    st.subheader("The backtest: each model's forecasts against what happened")
    st.caption(
        f"{info['n_steps']:,} {info['frequency']} values from {info['first'][:10]} to {info['last'][:10]}. "
        f"Each of the last {info['windows']} blocks of {info['horizon']} steps was forecast by every model trained "
        f"only on the values before it (a rolling-origin backtest); look-back {info['lookback']} steps, season "
        f"{info['season_length']} steps. MASE divides a forecast's average error by the average error of "
        "'same time last season' on the training part: below 1 beats it."
    )
    models = [r["model"] for r in board["rows"]]
    deep = [r["model"] for r in board["rows"] if r["family"] == "deep"]
    default = deep + [m for m in models if m not in deep][:2]  # the deep model and the two best baselines
    shown = st.multiselect("Models on the chart", models, default=default, format_func=evaluate.display_name)
    forecasts = {evaluate.display_name(m): data["forecasts"][m] for m in shown}
    st.plotly_chart(charts.forecast_chart(data["history_times"], data["history"], data["window_times"], forecasts,
                                          families=_families(board), show_last=max(60, 4 * info["horizon"] * info["windows"])),
                    width="stretch")
    for note in info.get("notes", []):
        st.info(note, icon=":material/info:")


def forecast_view(run: RunRecord) -> None:
    """The Predict page of a forecast: one model's forecast after the last date, charted and downloadable."""
    info = run.result["series"]
    board = run.result["leaderboard"]
    models = [r["model"] for r in board["rows"]]
    st.subheader(f"Forecast “{run.target}” for the next {info['horizon']} steps after {info['last'][:10]}")
    model = st.selectbox("Model", models, index=0, format_func=lambda m: f"{evaluate.display_name(m)} (MASE "
                         f"{next(r['test_score'] for r in board['rows'] if r['model'] == m):.3f})"
                         + ("  ← best in the backtest" if m == models[0] else ""))
    future = load_future(common.store(), run.id)
    chosen = future[future["model"] == model].drop(columns=["model"]).reset_index(drop=True)
    data = load_backtest(common.store(), run.id)
    st.plotly_chart(charts.forecast_chart(data["history_times"], data["history"], data["window_times"],
                                          {evaluate.display_name(model): data["forecasts"][model]}, chosen,
                                          families=_families(board), title=f"Forecast by {evaluate.display_name(model)}",
                                          show_last=max(60, 4 * info["horizon"] * info["windows"])), width="stretch")
    level = f"{info['interval']:.0%}"
    st.caption(f"The band is a {level} interval built from the errors this model made in the backtest, step by step "
               f"ahead (the {level} quantile of their sizes). With {info['windows']} backtest windows it is only as wide "
               "as the errors seen there; more windows make it more trustworthy.")
    st.dataframe(chosen, hide_index=True, width="stretch")
    from dlcore.scoring import to_safe_csv

    st.download_button("Download the forecast (CSV)", to_safe_csv(chosen.rename(columns={"time": info["time_col"]})),
                       file_name=f"forecast-{run.target}-{model}.csv", mime="text/csv", type="primary",
                       icon=":material/download:")
    st.caption("To forecast after newer data with this model: `python -m dlcore predict "
               f"{run.id} NEW.csv -o forecast.csv` (the file with the same columns, up to the latest date).")


@st.cache_data(max_entries=8, show_spinner="Looking for dates…")
def time_columns(dataset_id: str) -> list[str]:
    from dlcore.data import timeseries

    return timeseries.time_columns(common.frame(dataset_id))


@st.cache_data(max_entries=16, show_spinner="Checking the series…")
def series_check(dataset_id: str, time_col: str, target: str) -> tuple[dict | None, str | None]:
    """What the series looks like (frequency, gaps, duplicates, suggested settings), or why it cannot be used."""
    from dlcore.data import timeseries
    from dlcore.errors import DlcoreError

    frame = common.frame(dataset_id)
    try:
        report = timeseries.check_series(frame, time_col, target)
        settings = timeseries.suggest_settings(report.frequency, report.n_steps)
    except DlcoreError as exc:
        return None, str(exc)
    return {"words": report.frequency.words, "unit": report.frequency.unit, "n_steps": report.n_steps,
            "start": str(report.start)[:10], "end": str(report.end)[:10], "notes": report.notes,
            "needs_fixing": report.needs_fixing, "duplicates": report.duplicates,
            "horizon": settings.horizon, "lookback": settings.lookback, "season": settings.season_length,
            "windows": settings.windows, "setting_notes": settings.notes}, None


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
    info, problem = series_check(dataset.id, time_col, target)
    if problem:
        st.error(problem, icon=":material/error:")
        return None
    st.caption(f"{info['n_steps']:,} {info['words']} steps from {info['start']} to {info['end']}.")
    for note in info["notes"]:
        st.info(note, icon=":material/info:")
    with st.form("forecast"):
        c1, c2, c3, c4 = st.columns(4)
        unit = info["unit"]
        horizon = c1.number_input(f"Horizon: {unit} to forecast", 1, 10_000, info["horizon"])
        lookback = c2.number_input(f"Look-back: {unit} the deep model reads", 1, 10_000, info["lookback"])
        season = c3.number_input(f"Season: {unit} in one cycle (1: none)", 1, 10_000, info["season"])
        windows = c4.number_input("Backtest windows: how many past periods to test on", 1, 20, info["windows"])
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
                                    [c for c in values if c != target])
        kinds = templates.for_kind("series")
        template = st.radio("Model template", [t.name for t in kinds], format_func=lambda n: templates.get(n).title,
                            captions=[t.description for t in kinds])
        with st.expander("Settings (the defaults suit most series)"):
            defaults = TrainSpec()
            c1, c2 = st.columns(2)
            epochs = c1.number_input("Epochs per fit: passes over the training windows (stops earlier when "
                                     "validation stops improving)", 1, 1000, 30)
            size = c2.select_slider("Size: how many units the model has", ["small", "medium", "large"], value="medium")
            learning_rate = c1.select_slider("Learning rate", [0.0001, 0.0003, 0.001, 0.003, 0.01], value=0.001)
            patience = c2.number_input("Patience: epochs without improvement before stopping early", 1, 100, defaults.patience)
            seed = c1.number_input("Seed: the same seed gives the same model", 0, 2**31 - 1, defaults.seed)
        st.caption("The deep model is trained once per backtest window (on the values before it) and once on the "
                   "whole series for the forecast, so training takes a few times one fit.")
        if not st.form_submit_button("Train", type="primary", icon=":material/play_arrow:"):
            return None
    return RunSpec(
        data=DataSpec(dataset_id=dataset.id, target=target, task="forecast", features=tuple(covariates) or None),
        template=template,
        train=TrainSpec(epochs=int(epochs), batch_size=32, learning_rate=float(learning_rate), size=size,
                        patience=int(patience), seed=int(seed)),
        forecast=ForecastSpec(time_col=time_col, horizon=int(horizon), lookback=int(lookback), windows=int(windows),
                              season_length=int(season), gaps=gaps, duplicates=duplicates),
    )
