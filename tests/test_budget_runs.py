"""Runs keep to their time budget, and the pages ask for it and show it: the Train form queues a
budget in seconds, a forecast stops its backtest at the deadline and says so, and in a real browser
the trials chart of a running search grows. (How close to the budget a run ends is timed in
``bench/budget_kinds.py`` and ``bench/budget.py``, never here.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import churn_frame, use_app_router_in_apptest

use_app_router_in_apptest()  # AppTest runs app.py's router, as a server does after its first page view


# ---- the Train form -------------------------------------------------------------------------------
def test_the_train_form_queues_the_budget_in_seconds_and_epochs_only_when_typed(tmp_path):
    from dlcore import datasets
    from dlcore.spec import TrainSpec
    from dlcore.store import Store
    from tests.conftest import open_page

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    store.set_dataset_target(record.id, "churn", "binary")

    def submit(budget: float, epochs: int | None = None) -> dict:
        at = open_page(store.home, "train", dataset=record.id)
        assert not at.exception
        before = {r.id for r in store.list_runs(dataset_id=record.id)}
        next(s for s in at.select_slider if s.label.startswith("Time budget")).set_value(budget)
        if epochs is not None:
            next(n for n in at.number_input if n.label.startswith("Epochs")).set_value(epochs)
        at.form_submit_button[0].click().run()
        assert not at.exception, at.exception
        new = [r for r in store.list_runs(dataset_id=record.id) if r.id not in before]
        assert [r.id for r in new] == [at.query_params["run"]], "the form queued one run and opened it"
        return new[0].spec["train"]

    train = submit(60.0)
    assert train["budget"] == 60.0  # seconds, as the slider showed "60 s (1 min, quick)"
    assert train["epochs"] == TrainSpec().epochs  # untouched: the search decides, the budget ends it
    typed = submit(60.0, epochs=7)
    assert typed["budget"] is None and typed["epochs"] == 7  # fixed settings trained once, no search


# ---- a forecast that the budget cuts short ---------------------------------------------------------
def _long_noisy_series(n: int = 1500, seed: int = 3) -> pd.DataFrame:
    """Daily values with a weekly and a yearly rhythm and noise: an LSTM needs many epochs on them."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 50 + 0.01 * t + 8 * np.sin(2 * np.pi * t / 7) + 5 * np.sin(2 * np.pi * t / 365.25) + rng.normal(0, 2, n)
    return pd.DataFrame({"day": pd.date_range("2015-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                         "demand": values.round(3)})


@pytest.fixture(scope="module")
def cut_forecast(tmp_path_factory):
    """The least budget (10 s) for three backtest windows of an LSTM on 1,500 days (four fits of at
    least 9 epochs each, patience 8): far too little for every fit to train until it stops improving,
    on any machine."""
    from dlcore import datasets, runner
    from dlcore.budget import MIN_BUDGET
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    store = Store.open(tmp_path_factory.mktemp("cut") / "home")
    record, _ = datasets.register_bytes(store, _long_noisy_series().to_csv(index=False).encode(), "demand.csv")
    spec = RunSpec(DataSpec(record.id, "demand", task="forecast"), template="lstm",
                   train=TrainSpec(budget=MIN_BUDGET, batch_size=32),
                   forecast=ForecastSpec(time_col="day", horizon=14, lookback=56, windows=3))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    return store, run_id


def test_a_forecast_given_a_small_budget_stops_its_fits_at_the_deadline_and_says_so(cut_forecast):
    """The run still ends with a final model, records which fits the budget stopped (or which windows
    it left out) and says so in its warnings."""
    from dlcore.search import load_trials

    store, run_id = cut_forecast
    run = store.run(run_id)
    assert run.status == "done", run.message
    deep = run.result["deep"]
    windows_done = run.result["series"]["windows"]
    assert 1 <= windows_done <= 3
    # One fit per window done (the first is the search's best trial) and the final fit, each recorded;
    # without time for the final fit, the latest window's model forecasts, and the board says so.
    assert len(deep["fit_epochs"]) == len(deep["fit_cut_by_budget"]) == windows_done + deep["final_fit"]
    if not deep["final_fit"]:
        assert any("left no room to train the deep model once more" in n for n in run.result["budget_notes"])
    assert all(e >= 1 for e in deep["fit_epochs"])
    # The budget stopped a fit before early stopping did, or left windows out: either way it is said.
    assert any(deep["fit_cut_by_budget"]) or windows_done < 3
    notes = run.result["budget_notes"]
    assert notes and all(n in run.result["warnings"] for n in notes)
    if any(deep["fit_cut_by_budget"]):
        assert any("under-trained" in n and "stopped" in n for n in notes)
    if windows_done < 3:
        assert any(f"{windows_done} of the 3 backtest windows" in n for n in notes)
    # Every model is compared on the same windows; the naive forecasts stay on the board.
    rows = {r["model"]: r for r in run.result["leaderboard"]["rows"]}
    assert {"naive", "seasonal_naive", "ridge_lags", "lstm"} <= set(rows)  # gradient boosting may be left out
    assert all(len(r["cv_folds"]) == windows_done for r in rows.values())
    if "gradient_boosting_lags" not in rows:  # left out for the time: the board says so
        assert any(n.startswith("Gradient boosting on lags was left off the board") for n in notes)
    # The epochs drawn live are the search's and the fits', numbered on without a gap.
    trials = load_trials(store, run_id)["trials"]
    epochs = [e["epoch"] for e in store.epochs(run_id)]
    assert epochs == list(range(1, len(epochs) + 1))
    assert len(epochs) == sum(t["epochs"] or 0 for t in trials) + sum(deep["fit_epochs"][1:])
    assert (store.run_dir(run_id) / "lstm.keras").exists()  # a model forecasts the future, refitted or not


def test_compare_says_what_the_budget_cut_and_the_train_page_draws_the_chosen_trials_curve(cut_forecast):
    from dlcore.search import load_trials
    from tests.conftest import open_page
    from ui.live import best_trial_epochs

    store, run_id = cut_forecast
    run = store.run(run_id)
    at = open_page(store.home, "compare", run=run_id)
    assert not at.exception, at.exception
    shown = [w.value for w in at.warning]
    assert all(n in shown for n in run.result["budget_notes"])
    board = at.dataframe[0].value
    windows = run.result["series"]["windows"]
    assert set(board["Folds"]) == {f"{windows} of {windows}"}  # the windows are the folds: every model on all
    at = open_page(store.home, "train", run=run_id)
    assert not at.exception, at.exception
    number, first, last = best_trial_epochs(load_trials(store, run_id))
    assert number == 0 and first == 1 and last >= 1  # one trial had the time: the run's own settings
    assert any(c.value.startswith("The learning curve of the chosen settings (trial 1)") for c in at.caption)


def test_the_chosen_trials_epochs_are_found_among_the_trials_in_the_order_they_trained():
    from ui.live import best_trial_epochs

    trials = {"trials": [
        {"candidate": "ridge", "family": "baseline", "number": 0, "state": "complete", "epochs": None},
        {"candidate": "mlp", "family": "deep", "number": 0, "state": "complete", "epochs": 12},
        {"candidate": "mlp", "family": "deep", "number": 1, "state": "failed", "epochs": 3},  # epoch 3 was NaN
        {"candidate": "mlp", "family": "deep", "number": 2, "state": "pruned", "epochs": 6},
        {"candidate": "mlp", "family": "deep", "number": 3, "state": "complete", "epochs": 9},
    ], "best": {"ridge": {"number": 0}, "mlp": {"number": 3}}}
    assert best_trial_epochs(trials) == (3, 12 + 2 + 6 + 1, 12 + 2 + 6 + 9)
    trials["best"]["mlp"]["number"] = 0
    assert best_trial_epochs(trials) == (0, 1, 12)
    assert best_trial_epochs({"trials": trials["trials"][:1], "best": {"ridge": {"number": 0}}}) is None


def test_the_report_says_how_many_folds_each_score_rests_on():
    from dlcore.search import search_lines

    def row(model, family, folds):
        done = [v for v in folds if v is not None]
        return {"model": model, "family": family, "cv_folds": folds, "cv_score": float(np.mean(done)),
                "test_score": 0.9, "ci": [0.8, 1.0]}

    planned = [{"repeat": r, "index": i, "fit_rows": 80, "held_rows": 20} for r in range(2) for i in range(5)]
    four = [0.91, 0.9, 0.92, 0.89, None, None, None, None, None, None]
    result = {"elapsed_s": 58, "leaderboard": {"metric_title": "ROC AUC", "rows": [
        row("mlp", "deep", four), row("ridge", "baseline", [0.9, 0.88, 0.9, 0.9] + [None] * 6),
        row("ensemble", "ensemble", [0.92, 0.91, 0.93] + [None] * 7)]},
        "search": {"budget_s": 60.0, "k_folds": 5, "repeats": 2, "folds": planned, "space": {}, "chosen": {},
                   "trials": {}, "pruned": 0, "stopped_early": False}}
    intro = search_lines(result)[2]
    assert "repeated 2 times" not in intro
    assert ("5 folds × 2 repeats (10 folds) were planned and the time allowed 4: each cross-validated score is the "
            "mean over 4 folds, ensemble (weighted average) over 3;") in intro


# ---- the trials chart grows, in a real browser --------------------------------------------------------
playwright = pytest.importorskip("playwright.sync_api")

TRIAL_POINTS = (
    "() => { const g = [...document.querySelectorAll('.js-plotly-plot')].find(d => d._fullLayout &&"
    " String((d._fullLayout.title || {}).text || '').includes('Search:'));"
    " if (!g || !g._fullData) return {points: 0, best: false};"
    " const marks = g._fullData.filter(t => t.mode === 'markers');"
    " return {points: marks.reduce((n, t) => n + ((t.x && t.x.length) || 0), 0),"
    " best: g._fullData.some(t => String(t.name).endsWith('best so far') && t.x && t.x.length > 0)}; }"
)


@pytest.mark.browser
def test_the_trials_chart_of_a_running_search_grows_in_the_browser(tmp_path):
    from dlcore import datasets, runner
    from dlcore.search import load_trials
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server
    from tests.test_browser import shot

    home = tmp_path / "home"
    home.mkdir()
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(150).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), template="mlp",
                                          train=TrainSpec(budget=10.0, batch_size=32)))
    server = Server(home, workers=1)  # the page starts the worker that runs the search
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.goto(f"{server.url}/train?run={run_id}")
            try:
                # The worker's start (Keras' import) comes first: minutes on a machine loaded by others.
                page.wait_for_function(f"() => ({TRIAL_POINTS})().points > 0", timeout=180_000)
                first = page.evaluate(TRIAL_POINTS)
                page.wait_for_function(f"() => ({TRIAL_POINTS})().points > {first['points']}", timeout=60_000)
                page.wait_for_function(f"() => ({TRIAL_POINTS})().best", timeout=60_000)
                later = page.evaluate(TRIAL_POINTS)
            except Exception:
                shot(page, "trials-chart-grows")
                titles = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                                       ".map(d => String(((d._fullLayout || {}).title || {}).text))")
                run = store.run(run_id)
                raise AssertionError(f"run {run.status} ({run.phase}); charts {titles}; "
                                     f"trials {load_trials(store, run_id)}") from None
            browser.close()
    finally:
        server.stop()
    assert later["points"] > first["points"] >= 1  # drawn as the trials ended, not all at the end
    assert later["best"]  # the deep model's best so far is drawn
    stored = [t for t in load_trials(store, run_id)["trials"] if t["score"] is not None and t["candidate"] != "dummy"]
    assert later["points"] <= len(stored)  # every point drawn is a trial the run recorded
