"""Images and forecasts within a time budget: the search on a validation split (images), the
backtest windows as folds (forecasts); runs of fixed epochs are tested as before elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from dlcore import datasets, runner
from dlcore.images.search import first_image_trial, image_space, size_choices
from dlcore.search import _study, load_trials
from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
from tests.conftest import shapes_zip


def _kept_to(run, trials, budget: float) -> None:  # type: ignore[no-untyped-def]
    """The budget ended the search: no trial began after the budget was spent, and the run ended
    within a generous multiple of it (this machine is shared; bench/budget_kinds.py times it)."""
    assert trials["budget_s"] == budget
    # at most the trial running when the time ran out ends after it
    assert sum(t["at"] > budget for t in trials["trials"]) <= 1
    assert run.result["elapsed_s"] <= budget * 4


def _image_run(tmp_path, content: bytes, side: int, batch: int, budget: float):  # type: ignore[no-untyped-def]
    """A CNN trained within ``budget`` seconds on a ZIP of class folders, in this process; the store and the run, done."""
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, content, "images.zip")
    spec = RunSpec(data=DataSpec(record.id, "label", image_size=side), template="cnn_small",
                   train=TrainSpec(batch_size=batch, learning_rate=3e-3, budget=budget))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    return store, run


def test_image_sizes_searched_are_the_suggested_side_and_its_neighbours():
    assert size_choices(32) == [24, 32, 48]
    assert size_choices(64) == [48, 64]  # never larger than 64 on a CPU
    assert size_choices(16) == [16, 24]
    assert size_choices(20) == [20]  # a side chosen by hand off the list is kept as it is


def test_the_first_image_trial_is_the_runs_own_settings():
    settings = TrainSpec(learning_rate=3e-3, size="small", dropout=0.1, batch_size=16, augment=False)
    study = _study(7, True, prune=True)
    study.enqueue_trial(first_image_trial(settings, 24, True, 60))
    trial = study.ask()
    out, side = image_space(trial, settings, [16, 24, 32], True, 60)
    assert side == 24
    assert (out.learning_rate, out.size, out.dropout, out.batch_size) == (3e-3, "small", 0.1, 16)
    assert out.augment is False  # strength 0: no augmentation, as the run asked


@pytest.mark.slow
def test_an_image_run_within_a_budget_searches_and_keeps_to_it(tmp_path):
    from dlcore.scoring import load_scorer

    budget = 25.0
    store, run = _image_run(tmp_path, shapes_zip(n_per_class=24), 24, 16, budget)
    run_id = run.id
    assert run.result["budget_s"] == budget
    _kept_to(run, load_trials(store, run_id), budget)
    rows = {r["model"]: r for r in run.result["leaderboard"]["rows"]}
    assert set(rows) == {"cnn_small", "dummy", "logistic_regression", "random_forest", "gradient_boosting"}
    deep_trials = [t for t in load_trials(store, run_id)["trials"] if t["candidate"] == "cnn_small"]
    assert rows["cnn_small"]["trials"] == len(deep_trials) >= 1  # more when the machine is not overloaded
    assert deep_trials[0]["params"]["image_size"] == 24 and deep_trials[0]["params"]["learning_rate"] == 3e-3
    assert all(r["cv_score"] is None and r["cv_ci"] is None for r in rows.values())  # no folds for images
    assert rows["dummy"]["trials"] == 1
    side = run.result["image"]["size"]
    assert side in (16, 24, 32) and run.result["search"]["chosen"]["cnn_small"]["params"]["image_size"] == side
    scorer = load_scorer(store, run_id)  # scores at the side the search chose
    assert scorer.n_outputs == 3


def test_window_scores_are_the_mean_over_series_of_each_window():
    from dlcore.series.search import lookback_choices, window_cv

    # two series, three windows each (series by series, oldest window first)
    assert window_cv([1.0, 2.0, 3.0, 3.0, 4.0, float("nan")], 2, 3) == [2.0, 3.0, 3.0]
    assert lookback_choices(28, 7) == [7, 14, 28] and lookback_choices(10, 52) == [5, 10]


@pytest.mark.slow
def test_a_forecast_within_a_budget_searches_and_scores_the_windows_as_folds(tmp_path):
    from dlcore.folds import fold_interval
    from dlcore.series.run import load_backtest
    from dlcore.store import Store
    from tests.test_forecast_runs import seasonal_frame

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, seasonal_frame().to_csv(index=False, sep=";").encode(), "sales.csv")
    budget = 30.0
    spec = RunSpec(data=DataSpec(record.id, "sales", task="forecast"), template="cnn1d",
                   train=TrainSpec(batch_size=32, budget=budget),
                   forecast=ForecastSpec(time_col="Datum", horizon=7, lookback=21, windows=3))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    assert run.result["budget_s"] == budget
    _kept_to(run, load_trials(store, run_id), budget)
    rows = {r["model"]: r for r in run.result["leaderboard"]["rows"]}
    assert {"naive", "seasonal_naive"} <= set(rows)  # whatever the search found
    deep = next(r for r in rows.values() if r["family"] == "deep")
    assert deep["model"] == run.template  # the template the search chose is the run's model
    trials = load_trials(store, run_id)["trials"]
    assert deep["trials"] == len([t for t in trials if t["family"] == "deep"]) >= 1
    # The naive forecasts are on the trials chart from the start, scored on the same validation windows.
    assert [t["candidate"] for t in trials if t["family"] == "baseline"] == ["naive", "seasonal_naive"]
    assert run.result["series"]["lookback"] in (10, 7, 21)
    saved = load_backtest(store, run_id)
    y, season = saved["history"][:, 0] if saved["history"].ndim == 2 else saved["history"], run.result["series"]["season_length"]
    origins = [f["fit_rows"] for f in run.result["search"]["folds"]]
    held = float(np.mean([7 / (o + 7) for o in origins]))
    for name, row in rows.items():  # each window's MASE by hand, then their mean and the fold interval
        by_hand = [float(np.mean(np.abs(saved["actuals"][k] - saved["forecasts"][name][k]))
                         / np.mean(np.abs(y[season:o] - y[:o - season]))) for k, o in enumerate(origins)]
        assert row["cv_folds"] == pytest.approx(by_hand, rel=1e-6)
        assert row["cv_score"] == pytest.approx(float(np.mean(by_hand)), rel=1e-6)
        if len(by_hand) > 1:
            assert row["cv_ci"] == pytest.approx(list(fold_interval(by_hand, held)), rel=1e-6)
        else:  # a busy machine: the budget left room for one window (the board says so); no interval
            assert row["cv_ci"] is None and any("backtest windows" in n for n in run.result["budget_notes"])


def test_the_train_page_asks_images_and_forecasts_for_a_time_budget_first(tmp_path):
    from dlcore.store import Store
    from tests.test_forecast_runs import seasonal_frame
    from tests.test_pages import app

    home = tmp_path / "home"
    store = Store.open(home)
    images, _ = datasets.register_bytes(store, shapes_zip(n_per_class=8), "shapes.zip")
    series, _ = datasets.register_bytes(store, seasonal_frame(120).to_csv(index=False).encode(), "sales.csv")
    at = app(home, "train", dataset=images.id)
    assert not at.exception, at.exception
    slider = next(s for s in at.select_slider if s.label.startswith("Time budget"))
    assert slider.value == 300.0 and "image size" in slider.label
    assert next(n for n in at.number_input if n.label.startswith("Epochs")).value is None
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    assert store.run(at.query_params["run"]).spec["train"]["budget"] == 300.0

    at = app(home, "train", dataset=series.id)
    at.radio[0].set_value("forecast").run()
    assert not at.exception, at.exception
    slider = next(s for s in at.select_slider if s.label.startswith("Time budget"))
    assert slider.value == 300.0 and "look-back" in slider.label
    epochs = next(n for n in at.number_input if n.label.startswith("Epochs per fit"))
    assert epochs.value is None
    epochs.set_value(3)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    train = store.run(at.query_params["run"]).spec["train"]
    assert (train["budget"], train["epochs"]) == (None, 3)  # epochs given: fixed settings, as before


def _red_or_blue(n_per_class: int = 16, size: int = 16) -> bytes:
    """Two classes a glance tells apart: reddish and bluish noise."""
    import io
    import zipfile

    from PIL import Image

    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, channel in (("red", 0), ("blue", 2)):
            for i in range(n_per_class):
                img = rng.integers(0, 80, size=(size, size, 3)).astype(np.uint8)
                img[:, :, channel] = rng.integers(170, 255, size=(size, size)).astype(np.uint8)
                out = io.BytesIO()
                Image.fromarray(img).save(out, format="PNG")
                archive.writestr(f"{label}/{label}-{i:03d}.png", out.getvalue())
    return buffer.getvalue()


@pytest.mark.slow
def test_an_image_search_ends_at_a_perfect_validation_score_and_boosting_learns_few_images(tmp_path):
    from dlcore.charts import trials_chart
    budget = 120.0
    store, run = _image_run(tmp_path, _red_or_blue(), 16, 8, budget)
    run_id = run.id
    search = run.result["search"]
    deep = [t for t in load_trials(store, run_id)["trials"] if t["candidate"] == "cnn_small"]
    # A tie never replaces the best trial, so no trial after a perfect one could change the model.
    assert search["ended"] == "perfect" and deep[search["best_trial"]]["score"] == 1.0
    assert len(deep) == search["best_trial"] + 1 and all(t["score"] < 1.0 for t in deep[:-1])
    assert "scored a perfect ROC AUC on the validation images, which no later trial could beat" in run.phase
    assert run.result["elapsed_s"] < budget
    rows = {r["model"]: r for r in run.result["leaderboard"]["rows"]}
    # Boosting's default leaves of 20 left 24 training images unsplit: one answer for all, ROC AUC 0.500.
    assert rows["gradient_boosting"]["test_score"] > 0.9
    n_test = run.result["leaderboard"]["n_test"]
    assert f"The test set has only {n_test} images, so these intervals are wide" in run.result["leaderboard"]["verdicts"][0]["text"]
    # Every trial at 1.0 drew the axis from 0 to 2: it now ends just above 1.
    low, high = trials_chart(load_trials(store, run_id)).layout.yaxis.range
    assert 1.0 < high <= 1.05 and low >= 0.0
    # The report speaks of images and lists no folds (an empty "on each fold" table stood under "not cross-validated").
    from dlcore.handover.report import build_report

    html = build_report(store, run_id)
    assert "of each trial on the validation images" in html and "on each fold (repeat r, fold f)" not in html
