"""Which lags and covariates a forecast relies on: permutation importance on a run's own
history, checked on series where the answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, runner
from dlcore.charts import ACCENT_COLOR
from dlcore.errors import NotFoundError, RunError, SpecError
from dlcore.series.explain import (
    channel_importance_chart,
    lag_importance_chart,
    series_importance,
)
from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec

LOOKBACK, HORIZON, SEASON = 14, 7, 7


def shops_frame(seed: int = 0) -> pd.DataFrame:
    """Two shops' daily sales, each with a weekly rhythm and a push from ``driver`` exactly one
    week before (so the driver values the model needs for the next 7 days all lie in its last
    7 steps), and a ``noise`` column that has nothing to do with sales."""
    rng = np.random.default_rng(seed)
    parts = []
    for shop, level, n in (("north", 100.0, 200), ("south", 1000.0, 160)):
        t = np.arange(n + 7)
        driver = rng.normal(0, 1, n + 7)
        sales = level * (1 + 0.1 * np.sin(2 * np.pi * t[7:] / 7) + 0.04 * driver[:-7]) + rng.normal(0, level * 0.005, n)
        days = pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
        parts.append(pd.DataFrame({"shop": shop, "day": days, "sales": sales.round(3), "driver": driver[7:].round(3),
                                   "noise": rng.normal(0, 1, n).round(3)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def shops_run(tmp_path_factory):
    from dlcore.store import Store

    store = Store.open(tmp_path_factory.mktemp("explain-series") / "home")
    record, _ = datasets.register_bytes(store, shops_frame().to_csv(index=False).encode(), "shops.csv")
    spec = RunSpec(data=DataSpec(record.id, "sales", task="forecast", features=("driver", "noise")), template="cnn1d",
                   train=TrainSpec(epochs=20, batch_size=32, patience=50, size="small"), baselines=False,
                   forecast=ForecastSpec(time_col="day", id_col="shop", horizon=HORIZON, lookback=LOOKBACK, windows=1,
                                         season_length=SEASON))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    return store, run, series_importance(store, run_id)


def test_the_driving_covariate_beats_the_noise_and_the_recent_week_leads(shops_run):
    _, _, summary = shops_run
    channels = {c["name"]: c for c in summary["channels"]}
    assert [c["name"] for c in summary["channels"]] == ["sales", "driver", "noise"]  # the target first
    driver, noise, own = channels["driver"], channels["noise"], channels["sales"]
    assert driver["mean"] > 4 * noise["mean"] and driver["mean"] > 2 * driver["std"]
    assert own["mean"] > driver["mean"]  # the level and the rhythm are in the series itself
    means = {d["lag"]: d["mean"] for d in summary["lags"]}
    assert summary["top_lags"][0] == 1  # the anchor every forecast starts from
    assert sorted(means, key=lambda k: -means[k]).index(SEASON) < LOOKBACK // 2  # the season lag in the top half
    # The driver reaches the next 7 days from its last 7 steps only: those lags matter more.
    assert np.mean([means[k] for k in range(1, 8)]) > 1.5 * np.mean([means[k] for k in range(8, 15)])
    assert summary["sentence"].startswith("The forecast leans most on the latest value")
    assert "of the 2 covariates, 'driver' matters most, less than the series' own past." in summary["sentence"]


def test_the_summary_has_its_shape_round_trips_through_json_and_repeats_with_its_seed(shops_run):
    store, run, summary = shops_run
    assert set(summary) == {"metric", "baseline_error", "lags", "channels", "lookback", "season", "n_windows",
                            "top_lags", "sentence", "model", "n_repeats"}
    assert (summary["metric"], summary["lookback"], summary["season"], summary["model"], summary["n_repeats"]) == \
        ("MAE (scaled)", LOOKBACK, SEASON, "cnn1d", 5)
    assert summary["n_windows"] == (200 - 21 + 1) + (160 - 21 + 1)  # every window of both shops, under the cap
    assert [d["lag"] for d in summary["lags"]] == list(range(1, LOOKBACK + 1))
    assert len(summary["top_lags"]) == 3 and all(d["std"] >= 0 for d in summary["lags"] + summary["channels"])
    assert 0 < summary["baseline_error"] < 0.6  # in scaled units: well below the spread of the series
    assert json.loads(json.dumps(summary)) == summary
    assert series_importance(store, run.id) == summary  # the same seed, the same shuffles
    other = series_importance(store, run.id, n_repeats=2, seed=1)
    assert other["baseline_error"] == summary["baseline_error"] and other["lags"] != summary["lags"]


def seasonal_naive_model():  # type: ignore[no-untyped-def]
    """A model whose forecast for step j is the value one season before it: with the anchor
    added back, ``out_j = x[lookback - 7 + j] - anchor``. Each of lags 1..7 feeds one step."""
    import keras

    x_in = keras.Input(shape=(LOOKBACK, 3))
    dense = keras.layers.Dense(HORIZON, use_bias=False)
    model = keras.Model(x_in, dense(keras.layers.Flatten()(x_in)))
    kernel = np.zeros((LOOKBACK * 3, HORIZON), dtype=np.float32)
    for j in range(HORIZON):
        kernel[(LOOKBACK - SEASON + j) * 3, j] = 1.0  # the target channel, 7 steps before step j
    dense.set_weights([kernel])
    return model


def test_a_seasonal_naive_model_scores_as_computed_by_hand_and_leans_on_the_last_season_only(shops_run, monkeypatch):
    import keras

    store, run, _ = shops_run
    monkeypatch.setattr(keras.saving, "load_model", lambda path, safe_mode: seasonal_naive_model())
    done: list[float] = []
    # 101 windows: 50 for south (the shorter), 51 for north.
    summary = series_importance(store, run.id, n_repeats=3, max_windows=101, progress=done.append)
    assert len(done) == 3 * (LOOKBACK + 3) and done == sorted(done) and done[-1] == 1.0
    assert summary["n_windows"] == 101
    frame = shops_frame()
    errors = []
    for shop, keep in (("north", 51), ("south", 50)):
        sales = frame.loc[frame["shop"] == shop, "sales"].to_numpy()
        n = len(sales) - LOOKBACK - HORIZON + 1
        for i in range(n - keep, n):
            origin = i + LOOKBACK
            errors.append(np.abs(sales[origin:origin + HORIZON] - sales[origin - SEASON:origin - SEASON + HORIZON])
                          / sales.std())
    assert summary["baseline_error"] == pytest.approx(np.mean(errors), rel=1e-4)
    means = {d["lag"]: d["mean"] for d in summary["lags"]}
    # Lag 1 counts too: shuffled before anchoring, it moves the anchor that step 7 of the forecast is.
    assert all(means[k] > 0.05 for k in range(1, 8))
    assert all(abs(means[k]) < 1e-4 for k in range(8, LOOKBACK + 1))  # never read
    channels = {c["name"]: c["mean"] for c in summary["channels"]}
    assert channels["sales"] > 0.05 and channels["driver"] == channels["noise"] == 0
    assert set(summary["top_lags"]) <= set(range(1, 8))
    assert summary["sentence"].endswith("; no covariate makes a clear difference.")


def test_charts_show_each_lag_and_each_column_with_their_spread(shops_run):
    _, _, summary = shops_run
    fig = lag_importance_chart(summary)
    (bars,) = fig.data
    assert list(bars.x) == list(range(1, LOOKBACK + 1))
    assert list(bars.y) == [d["mean"] for d in summary["lags"]]
    assert list(bars.error_y.array) == [d["std"] for d in summary["lags"]]
    assert bars.marker.color[SEASON - 1] == ACCENT_COLOR
    assert any(s.x0 == SEASON and s.x1 == SEASON for s in fig.layout.shapes)  # the season line
    assert fig.layout.xaxis.autorange == "reversed" and fig.layout.xaxis.title.text.startswith("Steps back")
    assert fig.layout.yaxis.title.text.replace("<br>", " ") == "How much worse the forecast gets when this is scrambled"
    assert "standard deviations of the series" in fig.layout.title.subtitle.text
    fig = channel_importance_chart(summary)
    (bars,) = fig.data
    assert bars.orientation == "h"
    assert list(bars.y) == ["noise", "driver", "sales (its own past)"]  # the target's own past on top
    assert list(bars.x) == [c["mean"] for c in summary["channels"]][::-1]
    assert list(bars.error_x.array) == [c["std"] for c in summary["channels"]][::-1]
    assert fig.layout.xaxis.title.text == ("How much worse the forecast gets when this is scrambled "
                                           "(extra error, in standard deviations of the series)")
    empty = {**summary, "lags": [], "channels": []}
    assert not lag_importance_chart(empty).data and not channel_importance_chart(empty).data


def test_only_a_finished_forecasting_run_with_its_final_model_can_be_explained(shops_run):
    store, run, _ = shops_run
    with pytest.raises(NotFoundError):
        series_importance(store, "no-such-run")
    with pytest.raises(SpecError, match="n_repeats is 0"):
        series_importance(store, run.id, n_repeats=0)
    with pytest.raises(SpecError, match="max_windows is 1"):
        series_importance(store, run.id, max_windows=1)
    spec = RunSpec.from_dict(run.spec)
    queued = runner.submit(store, spec)
    with pytest.raises(RunError, match="is queued; only a finished forecasting run"):
        series_importance(store, queued)
    store.update_run(queued, status="stopped", result={"kind": "series"})  # stopped before its final fit
    with pytest.raises(RunError, match="stopped before its final model"):
        series_importance(store, queued)
    table = runner.submit(store, RunSpec(data=DataSpec(spec.data.dataset_id, "sales", task="regression",
                                                       features=("driver", "noise")), template="mlp"))
    with pytest.raises(RunError, match="is not a forecast"):
        series_importance(store, table)


def test_the_sentence_names_the_lags_that_matter_and_weighs_the_covariate_against_the_series():
    from dlcore.series.explain import _sentence

    def lags(means: dict[int, float]) -> list[dict]:
        return [{"lag": k, "mean": means.get(k, 0.0), "std": 0.01} for k in range(1, 60)]

    own = {"name": "sales", "mean": 0.5, "std": 0.02}
    price = {"name": "price", "mean": 0.1, "std": 0.01}
    assert _sentence(lags({1: 0.4, 52: 0.3, 2: 0.1}), [own, price], 52) == (
        "The forecast leans most on the latest value and on the value 52 steps back (one season ago); "
        "the covariate 'price' matters less than the series' own past.")
    # A second lag is named only when it matters at least half as much as the first.
    assert _sentence(lags({14: 0.4, 3: 0.1}), [own, {**price, "mean": 0.9}], 7) == (
        "The forecast leans most on the value 14 steps back (2 seasons ago); "
        "the covariate 'price' matters more than the series' own past.")
    assert _sentence(lags({}), [own, {**price, "mean": 0.01}], 7) == (
        "No single step of the look-back stands out: scrambling any one of them changes the error by less than "
        "the noise of shuffling; the covariate 'price' makes no clear difference.")
    assert _sentence(lags({5: 0.2}), [own], 1) == "The forecast leans most on the value 5 steps back."
