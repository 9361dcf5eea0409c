"""Forecasting runs end to end: a series through the backtest, the leaderboard, the future
forecast with its interval, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, runner
from dlcore.errors import DataError
from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
from tests.test_cli import cli


def seasonal_frame(n: int = 280, seed: int = 0) -> pd.DataFrame:
    """Daily values with a weekly rhythm, a slow rise and noise, dated day-first as in Europe."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 100 + 0.05 * t + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, n)
    dates = pd.date_range("2024-01-01", periods=n, freq="D").strftime("%d/%m/%Y")
    return pd.DataFrame({"Datum": dates, "sales": values.round(2), "promo": rng.integers(0, 2, n)})


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    from dlcore.store import Store

    store = Store.open(tmp_path_factory.mktemp("forecast") / "home")
    content = seasonal_frame().to_csv(index=False, sep=";").encode()
    return store, train_forecast(store, content, "cnn1d", 4, time_col="Datum", horizon=7, lookback=21, windows=2)


def train_forecast(store, content: bytes, template: str, epochs: int, **forecast):  # type: ignore[no-untyped-def]
    """Register a CSV of sales and train a forecast of them in this process; the finished run."""
    record, _ = datasets.register_bytes(store, content, "sales.csv")
    spec = RunSpec(data=DataSpec(record.id, "sales", task="forecast"), template=template,
                   train=TrainSpec(epochs=epochs, batch_size=32, patience=50), forecast=ForecastSpec(**forecast))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    return store.run(run_id)


def test_a_forecast_run_backtests_the_deep_model_against_every_baseline(forecast_run):
    store, run = forecast_run
    assert run.status == "done", run.message
    assert (run.task, run.metric, run.higher_is_better) == ("forecast", "mase", False)
    board = run.result["leaderboard"]
    assert {r["model"] for r in board["rows"]} == {"cnn1d", "naive", "seasonal_naive", "ridge_lags",
                                                   "gradient_boosting_lags"}
    assert [r["test_score"] for r in board["rows"]] == sorted(r["test_score"] for r in board["rows"])
    scores = {r["model"]: r["test_score"] for r in board["rows"]}
    assert scores["seasonal_naive"] < scores["naive"]  # a weekly rhythm: last week beats yesterday
    series = run.result["series"]
    assert (series["horizon"], series["lookback"], series["windows"], series["season_length"]) == (7, 21, 2, 7)
    assert series["origins"] == ["2024-09-23 00:00:00", "2024-09-30 00:00:00"]  # the last two weeks of 280 days
    # Every fit (2 windows + the final one) drew its epochs on one running count.
    assert [e["epoch"] for e in store.epochs(run.id)] == list(range(1, 13))


def test_the_future_forecast_starts_after_the_last_date_with_an_interval(forecast_run):
    store, run = forecast_run
    table = pd.read_csv(store.run_dir(run.id) / "forecast.csv", parse_dates=["time"])
    assert set(table["model"]) == {"cnn1d", "naive", "seasonal_naive", "ridge_lags", "gradient_boosting_lags"}
    deep = table[table["model"] == "cnn1d"]
    assert deep["time"].tolist() == list(pd.date_range("2024-10-07", periods=7, freq="D"))
    assert (deep["lower 90%"] <= deep["forecast"]).all() and (deep["forecast"] <= deep["upper 90%"]).all()
    naive = table[table["model"] == "naive"]["forecast"].to_numpy()
    assert np.allclose(naive, seasonal_frame()["sales"].iloc[-1])  # the last value, repeated


def test_a_series_too_short_or_a_bad_time_column_is_refused_at_submit(store):
    record, _ = datasets.register_bytes(store, seasonal_frame(30).to_csv(index=False).encode(), "short.csv")
    spec = RunSpec(data=DataSpec(record.id, "sales", task="forecast"), template="lstm",
                   forecast=ForecastSpec(time_col="Datum", horizon=14, lookback=28, windows=3))
    with pytest.raises(DataError, match="The series has 30 days, but .* need at least 93"):
        runner.submit(store, spec)
    wrong = RunSpec(data=DataSpec(record.id, "sales", task="forecast"), template="lstm",
                    forecast=ForecastSpec(time_col="promo"))
    with pytest.raises(DataError):
        runner.submit(store, wrong)
    assert store.list_runs() == []


@pytest.mark.slow
def test_cli_fits_a_forecast_and_predicts_the_next_steps(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "sales.csv"
    seasonal_frame(200).to_csv(data, index=False, sep=";", decimal=",")
    out = cli(home, "fit", data, "--task", "forecast", "--time-col", "Datum", "--target", "sales", "--horizon", "7",
              "--lookback", "14", "--windows", "2", "--template", "cnn1d", "--epochs", "2")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["task"], result["metric"], result["higher_is_better"]) == ("forecast", "mase", False)
    assert len(result["leaderboard"]) == 5
    scored = tmp_path / "future.csv"
    out = cli(home, "predict", result["run_id"], data, "-o", scored, "--model", "seasonal_naive")
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(scored, encoding="utf-8-sig")
    assert list(table.columns) == ["Datum", "model", "forecast", "lower 90%", "upper 90%"]
    assert len(table) == 7 and table["Datum"].iloc[0].startswith("2024-07-19")
    expected = seasonal_frame(200)["sales"].to_numpy()[-7:]  # seasonal naive: the last week again
    assert np.allclose(table["forecast"].to_numpy(), expected, atol=0.01)


def test_pages_show_the_backtest_and_the_forecast(forecast_run):
    from tests.test_pages import app, texts

    store, run = forecast_run
    at = app(store.home, "compare", run=run.id)
    assert not at.exception, at.exception
    board = at.dataframe[0].value
    assert board["Model"].tolist()[:1] and "MASE" in board.columns and len(board) == 5
    assert "t-interval across those windows" in texts(at) and "seasonal naive" in texts(at)
    assert len(at.get("plotly_chart")) == 2  # the leaderboard, and the backtest against the actual values
    at = app(store.home, "predict", run=run.id)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == 7 and {"forecast", "lower 90%", "upper 90%"} <= set(table.columns)
    assert at.get("download_button")
    at = app(store.home, "train", run=run.id)
    assert not at.exception, at.exception
    assert "the average forecast error, in standard deviations of the series" in texts(at)  # the live chart's metric


@pytest.mark.slow
def test_train_page_offers_a_forecast_with_settings_from_the_series(tmp_path):
    from dlcore.store import Store
    from tests.test_pages import app, texts

    home = tmp_path / "home"
    store = Store.open(home)
    frame = seasonal_frame(200).drop(index=[50, 51])  # two missing days
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "sales.csv")
    at = app(home, "train", dataset=record.id)
    assert not at.exception, at.exception
    at.radio[0].set_value("forecast").run()
    assert not at.exception, at.exception
    assert "200 daily steps from 2024-01-01 to 2024-07-18." in texts(at)
    assert any(i.value.startswith("2 steps are missing") and "2024-02-20" in i.value for i in at.info)
    horizon = next(n for n in at.number_input if n.label.startswith("Horizon"))
    assert horizon.value == 14  # daily data: two weeks ahead
    assert [r for r in at.radio if r.label == "Model template"][0].options == ["LSTM", "GRU", "1-D CNN"]
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    run = store.run(at.query_params["run"])
    assert (run.status, run.template, run.spec["data"]["task"], run.spec["forecast"]["time_col"]) == \
        ("queued", "lstm", "forecast", "Datum")
    assert run.spec["forecast"]["horizon"] == 14 and run.spec["forecast"]["gaps"] == "interpolate"


def stores_frame(n: int = 160, seed: int = 1) -> pd.DataFrame:
    """Three shops' daily sales in one long file (a shop column), each at its own level with the
    same weekly rhythm; a fourth shop opened recently and has too short a history."""
    rng = np.random.default_rng(seed)
    parts = []
    for shop, level, days in (("north", 50.0, n), ("south", 400.0, n), ("east", 1200.0, n), ("new", 80.0, 20)):
        t = np.arange(days)
        sales = level * (1 + 0.2 * np.sin(2 * np.pi * t / 7)) + rng.normal(0, level * 0.02, days)
        dates = pd.date_range("2024-01-01", periods=n, freq="D")[-days:]
        parts.append(pd.DataFrame({"shop": shop, "day": dates.strftime("%Y-%m-%d"), "sales": sales.round(2)}))
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)  # rows in any order


@pytest.fixture(scope="module")
def panel_run(tmp_path_factory):
    from dlcore.store import Store

    store = Store.open(tmp_path_factory.mktemp("panel") / "home")
    content = stores_frame().to_csv(index=False).encode()
    return store, train_forecast(store, content, "gru", 3, time_col="day", id_col="shop", horizon=7, lookback=14,
                                 windows=2)


def test_several_series_in_one_file_train_one_model_and_backtest_each_series(panel_run):
    from dlcore.series.run import load_backtest, series_ids

    store, run = panel_run
    assert run.status == "done", run.message
    info = run.result["series"]
    assert (info["id_col"], info["ids"], info["n_series"]) == ("shop", ["east", "north", "south"], 3)
    assert any("Left out 1 of 4 series" in n and "new" in n for n in info["notes"])
    board = run.result["leaderboard"]
    assert board["n_windows"] == 6  # 3 series × 2 windows: the units of the interval and the verdict
    assert len(info["per_series_mase"]["gru"]) == 3
    # One deep model for all series: one running epoch count over 2 backtest fits and the final fit.
    assert [e["epoch"] for e in store.epochs(run.id)] == list(range(1, 10))
    assert series_ids(store, run.id) == ["east", "north", "south"]
    south = load_backtest(store, run.id, "south")
    frame = stores_frame()
    actual = frame[frame["shop"] == "south"].sort_values("day")["sales"].to_numpy()[-14:]
    assert np.allclose(south["actuals"].reshape(-1), actual)  # each series' own last two weeks
    naive = south["forecasts"]["naive"]
    assert np.allclose(naive[1], actual[6])  # window 2 starts after day 7 of the last 14: its last value


def test_several_series_forecast_each_after_its_last_date_and_a_new_shop_too(panel_run):
    from dlcore.series.run import forecast_frame, load_future

    store, run = panel_run
    future = load_future(store, run.id)
    deep = future[future["model"] == "gru"]
    assert sorted(deep["series"].unique()) == ["east", "north", "south"] and len(deep) == 21
    levels = deep.groupby("series")["forecast"].mean()
    assert levels["north"] < levels["south"] < levels["east"]  # each series forecast at its own level
    assert (deep["lower 90%"] <= deep["forecast"]).all() and (deep["forecast"] <= deep["upper 90%"]).all()
    # Newer data, with a shop the run never saw: it is forecast too, scaled by its own history.
    frame = stores_frame(seed=2)
    newcomer = frame[frame["shop"] == "east"].assign(shop="west", sales=lambda d: d["sales"] / 10)
    table = forecast_frame(store, run.id, pd.concat([frame, newcomer]))
    assert list(table.columns[:3]) == ["shop", "day", "model"]
    assert sorted(table["shop"].unique()) == ["east", "north", "south", "west"]
    west = table[table["shop"] == "west"]
    assert 60 < west["forecast"].mean() < 180  # about a tenth of east's level
    width = (west["upper 90%"] - west["lower 90%"]).mean()
    east = table[table["shop"] == "east"]
    assert 0 < width < (east["upper 90%"] - east["lower 90%"]).mean()  # errors scaled to the smaller shop


def test_pages_for_several_series_chart_each_one_and_forecast_after_newer_data(panel_run):
    from dlcore import jobs
    from tests.test_pages import app, texts

    store, run = panel_run
    at = app(store.home, "compare", run=run.id)
    assert not at.exception, at.exception
    assert "3 series (" in texts(at) and "one deep model learnt from all of them" in texts(at)
    assert any(e.label.startswith("Per series: the deep model has the lower MASE on") for e in at.expander)
    chooser = next(s for s in at.selectbox if s.label == "Series (shop)")
    assert chooser.options == ["east", "north", "south"]
    chooser.set_value("south").run()
    assert not at.exception, at.exception
    at = app(store.home, "predict", run=run.id)
    assert not at.exception, at.exception
    next(s for s in at.selectbox if s.label == "Series to chart (shop)").set_value("north").run()
    table = at.dataframe[0].value
    assert len(table) == 7 and "series" not in table.columns  # the chosen series' 7 days
    assert [b.proto.label for b in at.get("download_button")] == ["Download the forecast (CSV), all 3 series"]
    # Newer data through the scorer's path (what the page's Forecast button queues).
    newer = stores_frame(n=170, seed=3)
    scoring_id = jobs.submit_scoring(store, run.id, "naive", newer.to_csv(index=False).encode(), "newer.csv")
    jobs.execute_scoring(store, scoring_id)
    job = store.scoring(scoring_id)
    assert job.status == "done", job.message
    scored = pd.read_csv(store.scoring_dir(scoring_id) / "scored.csv", encoding="utf-8-sig")
    assert list(scored.columns[:3]) == ["shop", "day", "model"] and len(scored) == 21
    assert scored["day"].min().startswith("2024-06-19")  # 170 days from 1 January: the day after the newest
    at = app(store.home, "predict", run=run.id, scoring=scoring_id)
    assert not at.exception, at.exception
    assert "Forecast 7 steps after the last date of newer.csv with naive" in texts(at)


@pytest.mark.slow
def test_data_page_shows_each_series_over_time_and_leads_to_the_forecast(tmp_path):
    from dlcore.store import Store
    from tests.test_pages import app

    store = Store.open(tmp_path / "home")
    frame = stores_frame().drop(index=[5, 6])  # two rows gone: gaps in some shop's series
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "shops.csv")
    at = app(store.home, "data", dataset=record.id)
    assert not at.exception, at.exception
    over = next(e for e in at.expander if e.label.startswith("Over time"))
    assert next(s for s in over.selectbox if s.label.startswith("Several series")).value == "shop"  # found by shape
    metrics = {m.label: m.value for m in over.metric}
    assert metrics["Series"] == "4" and metrics["Frequency"] == "daily" and metrics["Missing steps"] == "2"
    assert len(over.get("plotly_chart")) == 1
    next(b for b in over.button if b.label == "Next: forecast sales").click().run()
    assert not at.exception, at.exception
    assert (store.dataset(record.id).target, store.dataset(record.id).task) == ("sales", "forecast")
    at = app(store.home, "train", dataset=record.id)
    assert at.radio[0].value == "forecast"  # the Train page opens on the forecast
    assert next(s for s in at.selectbox if s.label.startswith("Several series")).value == "shop"
    assert "4 series, daily, from 2024-01-01 to 2024-06-08; a typical one has 160 steps, the shortest 20." in \
        [c.value for c in at.caption]


@pytest.mark.slow
def test_cli_forecasts_several_series_named_by_an_id_column(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "shops.csv"
    stores_frame(n=100).to_csv(data, index=False)
    out = cli(home, "fit", data, "--task", "forecast", "--time-col", "day", "--target", "sales", "--id-col", "shop",
              "--horizon", "7", "--lookback", "14", "--windows", "2", "--template", "cnn1d", "--epochs", "1")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["leaderboard"]) == 5
    scored = tmp_path / "future.csv"
    out = cli(home, "predict", result["run_id"], data, "-o", scored)
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(scored, encoding="utf-8-sig")
    assert sorted(table["shop"].unique()) == ["east", "north", "south"] and len(table) == 21


@pytest.mark.slow
def test_data_page_folds_the_series_view_for_a_table_of_orders_with_dates(tmp_path):
    from dlcore.store import Store
    from tests.test_pages import app

    rng = np.random.default_rng(4)
    orders = pd.DataFrame({"ordered": pd.date_range("2024-01-01", periods=30, freq="D").repeat(20).strftime("%Y-%m-%d"),
                           "amount": rng.gamma(2, 30, 600).round(2), "returned": rng.choice(["yes", "no"], 600)})
    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, orders.to_csv(index=False).encode(), "orders.csv")
    at = app(store.home, "data", dataset=record.id)
    assert not at.exception, at.exception
    over = next(e for e in at.expander if e.label.startswith("Over time"))
    assert not over.proto.expanded  # 20 orders a day: not a series until added up; still there to open
    # 600 customers in the order of their number, each with a sign-up day of its own within two years:
    # the days read as a daily series with few gaps, but the file lists them in any order.
    days = rng.choice(pd.date_range("2023-01-01", periods=700, freq="D"), 600, replace=False)
    customers = pd.DataFrame({"signed_up": pd.DatetimeIndex(days).strftime("%d.%m.%Y"), "age": rng.integers(18, 90, 600),
                              "churned": rng.choice(["ja", "nein"], 600)})
    record, _ = datasets.register_bytes(store, customers.to_csv(index=False, sep=";").encode(), "kunden.csv")
    at = app(store.home, "data", dataset=record.id)
    assert not at.exception, at.exception
    assert not next(e for e in at.expander if e.label.startswith("Over time")).proto.expanded
    series = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=60, freq="D").strftime("%Y-%m-%d"),
                           "sales": rng.normal(100, 5, 60).round(2)})
    record, _ = datasets.register_bytes(store, series.to_csv(index=False).encode(), "sales.csv")
    at = app(store.home, "data", dataset=record.id)
    assert next(e for e in at.expander if e.label.startswith("Over time")).proto.expanded
