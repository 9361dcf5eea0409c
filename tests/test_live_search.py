"""Live while it searches: the current trial's epochs kept and drawn as they end, a clock that ticks
from the run's own record, baselines shown as they fit, and no target chosen for the analyst.

The store and the clock are tested in-process; a real search on each kind of data runs in a real
worker behind a real Streamlit server, watched in Chromium (marked slow)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import DATABASES, ROOT, churn_frame, use_app_router_in_apptest
from tests.conftest import open_page as app

use_app_router_in_apptest()

SCREENSHOTS = ROOT / "docs" / "screenshots"
# The promise: the first point on screen within 5 s of the worker starting the run, for
# every kind. Counted from the run's own started_at, so a slow page load does not count against it.
FIRST_POINT_S = 5.0
# On screen a redraw or a few later: the page polls every second, but on this 2-core machine shared with
# other test runs (load average 25) a point recorded at 1.4 s was drawn at 5.5 s, one at 1.7 s at 19.3 s
# (this test's own loop stalled 9 s meanwhile). bench/first_point.py --search times it on a quiet machine.
SCREEN_SLACK_S = 20.0


# ---- the store: each trial's epochs ---------------------------------------------------------------
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_each_trials_epochs_are_kept_apart_and_the_latest_trial_is_the_current_one(store):
    from dlcore import datasets

    record, _ = datasets.register_bytes(store, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    run_id = store.create_run({"x": 1}, record.id, "mlp", "churn", 0)
    assert store.trial_epochs(run_id) == (None, [])
    for trial, losses in ((0, [0.9, 0.7, 0.6]), (1, [0.8, 0.5])):
        for epoch, loss in enumerate(losses, start=1):
            store.add_trial_epoch(run_id, trial, epoch, loss=loss, val_loss=loss + 0.1, metric=0.5, val_metric=None,
                                  seconds=0.2)
    number, rows = store.trial_epochs(run_id)
    assert number == 1 and [(r["epoch"], r["loss"]) for r in rows] == [(1, 0.8), (2, 0.5)]
    number, rows = store.trial_epochs(run_id, 0)
    assert number == 0 and [r["val_loss"] for r in rows] == pytest.approx([1.0, 0.8, 0.7])
    assert rows[0]["val_metric"] is None
    store.delete_run(run_id)
    assert store.trial_epochs(run_id) == (None, [])


# ---- the clock --------------------------------------------------------------------------------------
def _run(**values):
    from dlcore.store import RunRecord

    base = {"id": "r", "dataset_id": "d", "status": "running", "spec": {"train": {"budget": 300.0}}, "template": "mlp",
            "target": "y", "task": "binary", "metric": "roc_auc", "higher_is_better": True, "created_at": 90.0,
            "started_at": 100.0, "finished_at": None, "heartbeat_at": 100.0, "worker": "w", "stop_requested": False,
            "epochs_done": 0, "epochs_total": 0, "progress": 0.0, "phase": None, "message": None, "test_score": None,
            "result": None}
    return RunRecord(**{**base, **values})


def test_the_clock_is_counted_from_the_runs_start_and_moves_with_time_not_with_the_phase():
    from ui.live import clock_words, progress_text, step_words

    run = _run(phase="Fitting baseline 2 of 4: random forest · 289 s left", step_started_at=108.0)
    assert clock_words(run, now=111.2) == "11 s used · 289 s left of 300 s"
    assert clock_words(run, now=175.0) == "75 s used · 225 s left of 300 s"  # the phase was not rewritten
    # The seconds left stamped into the phase when it was written are not repeated: the clock says them afresh.
    assert step_words(run, now=111.2) == "Fitting baseline 2 of 4: random forest · for 3 s"
    text = progress_text(run, [])
    assert text.startswith("Fitting baseline 2 of 4: random forest · for ") and " s left of 300 s" in text
    assert "289 s left" not in text
    assert clock_words(_run(status="done", finished_at=150.0)) is None  # a finished run says the time it took
    assert clock_words(_run(spec={"train": {"budget": None}})) is None  # fixed settings: epochs, not a budget
    assert clock_words(_run(status="queued", started_at=None)) is None


def test_two_viewers_of_one_run_read_the_same_time_left(tmp_path):
    """Two sessions open on the same link a few seconds apart read the figure from the record."""
    from dlcore import datasets
    from dlcore.store import Store
    from ui.live import clock_words

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    run_id = store.create_run({"train": {"budget": 60.0}}, record.id, "mlp", "churn", 0, claim=True)
    now = time.time()
    first, second = store.run(run_id), Store.open(tmp_path / "home").run(run_id)
    assert clock_words(first, now) == clock_words(second, now)
    assert clock_words(first, now) != clock_words(first, now + 2.0)  # and it ticks


# ---- no silent target -------------------------------------------------------------------------------
def test_a_guess_at_the_target_comes_from_a_columns_name_never_from_its_place():
    from dlcore.tables import guess_target, profile_frame

    frame = churn_frame(80).assign(**{"Prix (€)": np.random.default_rng(0).normal(100, 10, 80).round(2)})
    columns = [c.to_dict() for c in profile_frame(frame).columns]
    assert columns[-1]["name"] == "Prix (€)"
    assert guess_target(columns) == ("churn", "its name, and it has 2 distinct values")
    no_name = frame.rename(columns={"churn": "statut"})
    assert guess_target([c.to_dict() for c in profile_frame(no_name).columns]) is None


def test_the_train_page_asks_for_the_target_and_refuses_to_start_without_one(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    home = tmp_path / "home"
    store = Store.open(home)
    frame = churn_frame(80).assign(**{"Prix (€)": np.random.default_rng(0).normal(100, 10, 80).round(2)})
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "prices.csv")
    at = app(home, "train", dataset=record.id)
    assert not at.exception
    target = next(s for s in at.selectbox if s.label.startswith("Target"))
    assert target.value is None  # not the last column, "Prix (€)"
    assert any("A guess" in c.value and "**churn**" in c.value for c in at.caption)
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert any(e.value.startswith("Choose the target first") for e in at.error)
    assert "run" not in at.query_params and store.list_runs() == []
    next(s for s in at.selectbox if s.label.startswith("Target")).select("churn")
    at.form_submit_button[0].click().run()
    assert store.run(at.query_params["run"]).target == "churn"


def test_the_cli_still_needs_target_for_a_table(tmp_path):
    data = tmp_path / "prices.csv"
    churn_frame(60).to_csv(data, index=False)
    out = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--budget", "30"], cwd=ROOT,
                         env={**os.environ, "DLCORE_HOME": str(tmp_path / "home")},
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1 and "error: Name the column to predict with --target COLUMN." in out.stderr


# ---- predicting in a search traces nothing ---------------------------------------------------------
def test_predicting_with_a_new_model_each_trial_gives_predicts_outputs_without_retracing(caplog):
    """The cause of the 'triggered tf.function retracing' warnings: ``model.predict`` builds a predict
    function for each new model, and a search makes a new model every trial and fold."""
    import keras

    from dlcore.training import predict_direct

    x = np.random.default_rng(0).normal(size=(70, 4)).astype("float32")
    caplog.set_level(logging.WARNING, logger="tensorflow")
    outputs = []
    for seed in range(7):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
        outputs.append(predict_direct(model, x, batch_size=32))
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    assert outputs[-1].shape == (70, 1)
    np.testing.assert_allclose(outputs[-1], model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    inputs = {"numeric": keras.Input((4,), name="numeric"), "cat_0": keras.Input((1,), name="cat_0")}
    joined = keras.layers.Concatenate()([inputs["numeric"], inputs["cat_0"]])
    split = keras.Model(inputs, keras.layers.Dense(2)(joined))
    feed = {"numeric": x, "cat_0": np.arange(70, dtype="float32").reshape(-1, 1)}
    np.testing.assert_allclose(predict_direct(split, feed, 16), split.predict(feed, verbose=0), rtol=1e-5, atol=1e-5)
    # Numbers beside a text column, which reaches the model as a string tensor (``dlcore.base.strings``).
    feed = {"numeric": x, "cat_0": keras.ops.convert_to_tensor(feed["cat_0"])}
    np.testing.assert_allclose(predict_direct(split, feed, 16), split.predict(feed, verbose=0), rtol=1e-5, atol=1e-5)
    assert predict_direct(split, {k: v[:0] for k, v in feed.items()}).shape == (0, 2)


def test_a_forecast_search_starts_with_the_naive_forecasts_scored_on_the_trials_validation_windows(tmp_path):
    from dlcore.budget import Clock
    from dlcore.search import load_trials
    from dlcore.series.run import _fit_windows
    from dlcore.series.search import floor_points
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    t = np.arange(200)
    weekly = (100 + 10 * np.sin(2 * np.pi * t / 7)).reshape(-1, 1)  # a pure weekly rhythm
    spec = RunSpec(DataSpec("d", "sales", task="forecast"), template="lstm", train=TrainSpec(budget=60.0),
                   forecast=ForecastSpec(time_col="day"))
    floor_points(store, "r1", spec, [weekly], 7, 21, 7, Clock(60.0), _fit_windows)
    trials = {t["candidate"]: t for t in load_trials(store, "r1")["trials"]}
    assert set(trials) == {"naive", "seasonal_naive"} and trials["naive"]["family"] == "baseline"
    assert trials["seasonal_naive"]["score"] == pytest.approx(0.0, abs=1e-9)  # last week, exactly
    assert trials["naive"]["score"] > 0.5  # "no change" misses the rhythm by most of its swing (scaled)
    assert all(t["at"] < 5.0 for t in trials.values())


# ---- a real search records each trial's epochs -------------------------------------------------------
@pytest.mark.slow
def test_a_table_search_records_every_deep_trials_epochs_under_its_number(tmp_path):
    from dlcore import datasets, runner
    from dlcore.search import load_trials
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(budget=20.0)))
    from dlcore.jobs import worker_loop

    worker_loop(store, ("train",), once=True)
    run = store.run(run_id)
    assert run.status == "done", run.message
    deep = [t for t in load_trials(store, run_id)["trials"] if t["family"] == "deep"]
    assert deep
    for t in deep:
        number, rows = store.trial_epochs(run_id, t["number"])
        assert number == t["number"] and [r["epoch"] for r in rows] == list(range(1, t["epochs"] + 1))
        assert all(r["loss"] is not None and r["val_loss"] is not None for r in rows)
    assert store.trial_epochs(run_id)[0] == max(t["number"] for t in deep)
    assert run.step_started_at is not None and run.step_started_at >= run.started_at


# ---- in the browser, for every kind ------------------------------------------------------------------
def _table(store):
    from dlcore import datasets
    from dlcore.spec import DataSpec, RunSpec, TrainSpec

    record, _ = datasets.register_bytes(store, churn_frame(400).to_csv(index=False).encode(), "churn.csv")
    return RunSpec(DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(budget=300.0))


def _text(store):
    from dlcore import datasets
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from tests.test_text import EN_FILLER, EN_KEYS, texts_frame

    content = texts_frame(EN_KEYS, EN_FILLER, 300).to_csv(index=False).encode()
    record, _ = datasets.register_bytes(store, content, "texts.csv")
    return RunSpec(DataSpec(record.id, "label"), template="mlp", train=TrainSpec(budget=300.0))


def _images(store):
    from dlcore import datasets
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from tests.conftest import shapes_zip

    record, _ = datasets.register_bytes(store, shapes_zip(n_per_class=40, size=24), "shapes.zip")
    return RunSpec(DataSpec(record.id, "label", image_size=24), template="cnn_deep", train=TrainSpec(budget=300.0))


def _forecast(store):
    from dlcore import datasets
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from tests.test_forecast_runs import seasonal_frame

    record, _ = datasets.register_bytes(store, seasonal_frame().to_csv(index=False, sep=";").encode(), "sales.csv")
    return RunSpec(DataSpec(record.id, "sales", task="forecast"), template="lstm", train=TrainSpec(budget=300.0),
                   forecast=ForecastSpec(time_col="Datum", horizon=7, lookback=21, windows=2))


def _several(store):
    from dlcore import datasets
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from tests.test_forecast_runs import stores_frame

    record, _ = datasets.register_bytes(store, stores_frame().to_csv(index=False).encode(), "shops.csv")
    return RunSpec(DataSpec(record.id, "sales", task="forecast"), template="gru", train=TrainSpec(budget=300.0),
                   forecast=ForecastSpec(time_col="day", id_col="shop", horizon=7, lookback=14, windows=2))


KINDS = {"tables": _table, "text": _text, "images": _images, "forecast": _forecast, "several-series": _several}

# What a searching run's page shows, read in the browser: the points of the trials chart (the Dummy
# floor is not drawn), the epochs of the current trial's live chart, and the progress line.
_LOOK = """run => {
  const trials = document.querySelector(`.st-key-trials-${run} .js-plotly-plot`);
  const points = trials && trials._fullData
    ? trials._fullData.filter(t => t.mode === "markers").reduce((n, t) => n + ((t.x && t.x.length) || 0), 0) : 0;
  const live = [...document.querySelectorAll(".dl-live")].map(e => Number(e.dataset.epochs || 0));
  const bar = document.querySelector("[data-testid=stProgress]");
  return {points, epochs: live.length ? Math.max(...live) : 0, progress: bar ? bar.innerText : ""};
}"""


def _first_recorded(store, run) -> float | None:
    """Seconds after the worker started the run when the store first held a point to draw: a trial
    scored (not the Dummy floor, which the chart leaves out) or an epoch of the current trial."""
    from dlcore.search import load_trials

    times = [run.started_at + t["at"] for t in (load_trials(store, run.id) or {}).get("trials", [])
             if t.get("score") is not None and t["candidate"] != "dummy"]
    times += [r["created_at"] for r in store.trial_epochs(run.id, 0)[1][:1]]
    return min(times) - run.started_at if times else None


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    from tests.browser import Server

    home = tmp_path_factory.mktemp("live") / "home"
    home.mkdir()
    server = Server(home)
    yield server
    server.stop()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_search_is_live_in_the_browser_from_its_first_seconds(live_server, kind):
    """The first point within FIRST_POINT_S of the worker starting the run, the current trial's epochs
    growing, and the time left changing between two screenshots a few seconds apart."""
    playwright = pytest.importorskip("playwright.sync_api")
    from dlcore import runner
    from dlcore.store import Store
    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    store = Store.open(live_server.home)
    spec = KINDS[kind](store)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(f"{live_server.url}/home")  # starts the server's worker, as a first visit does
        page.get_by_role("heading").first.wait_for()
        run_id = runner.submit(store, spec)
        page.goto(f"{live_server.url}/train?run={run_id}")
        page.get_by_text("Status:").first.wait_for()
        page_ready = time.time()
        first_seen = None
        epochs_seen: set[int] = set()
        clock_seen: list[str] = []
        timeline: list[tuple] = []  # (seconds since the run started, trial points, epochs), for a failure's message
        deadline = time.time() + 600  # the worker may still be warming up (minutes on a loaded machine)
        while time.time() < deadline:
            run = store.run(run_id)
            if run.started_at is not None:
                deadline = min(deadline, run.started_at + 280)
            look = page.evaluate(_LOOK, run_id)
            now = time.time()
            timeline.append((round(now - (run.started_at or now), 1), look["points"], look["epochs"]))
            if first_seen is None and (look["points"] or look["epochs"]):
                first_seen = now
            if look["epochs"]:
                epochs_seen.add(look["epochs"])
            found = re.search(r"(\d+) s left of", look["progress"])
            if found and (not clock_seen or clock_seen[-1] != found.group(0)):
                clock_seen.append(found.group(0))
            if len(epochs_seen) >= 2 and len(clock_seen) >= 2 and first_seen is not None:
                break
            if run.finished:
                break
            page.wait_for_timeout(150)
        assert first_seen is not None, f"{kind}: nothing was drawn during the search"
        run = store.run(run_id)
        recorded = _first_recorded(store, run)
        assert recorded is not None and recorded <= FIRST_POINT_S, (
            f"{kind}: the first point was recorded {recorded} s after the worker started the run")
        # On screen: within the limit of the worker's start and a redraw, or of the page's first redraws
        # after it opened (a page opened later than that cannot show the point sooner).
        shown_by = max(run.started_at + FIRST_POINT_S, page_ready) + SCREEN_SLACK_S
        assert first_seen <= shown_by, (f"{kind}: drawn {first_seen - run.started_at:.1f} s after the run started, "
                                        f"the first point recorded at {recorded:.1f} s: {[t for t in timeline if t[0] > 0][:30]}")
        assert len(epochs_seen) >= 2, f"{kind}: the current trial's epochs did not grow on screen ({epochs_seen})"
        # The clock: two figures a few seconds apart differ, read from the page itself.
        before = page.evaluate(_LOOK, run_id)["progress"]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"live-{kind}.png"), scale="css", type="png")
        page.wait_for_timeout(2500)
        after = page.evaluate(_LOOK, run_id)["progress"]
        if not store.run(run_id).finished:
            assert re.search(r"\d+ s used", before) and before != after, (before, after)
        store.request_stop(run_id)
        for _ in range(600):
            if store.run(run_id).finished:
                break
            time.sleep(0.2)
        browser.close()
    assert store.run(run_id).status in ("stopped", "done"), store.run(run_id).message


# ---- the page, through AppTest ----------------------------------------------------------------------
def test_a_searching_runs_page_shows_the_current_trial_the_step_and_a_clock_from_the_record(tmp_path):
    from dlcore import datasets
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    home = tmp_path / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    spec = RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(budget=300.0)).to_dict()
    run_id = store.create_run(spec, record.id, "mlp", "churn", 0, claim=True)
    started = time.time() - 42.0
    store.update_run(run_id, started_at=started, task="binary", step_started_at=started + 30.0,
                     phase="Searching Multi-layer perceptron: trial 2 · 289 s left")
    for trial, epochs in ((0, 4), (1, 3)):
        for epoch in range(1, epochs + 1):
            store.add_trial_epoch(run_id, trial, epoch, loss=1.0 / epoch, val_loss=1.1 / epoch, metric=0.7,
                                  val_metric=0.6 + 0.01 * epoch, seconds=0.3)
    at = app(home, "train", run=run_id)
    assert not at.exception
    shown = "\n".join(m.value for m in at.markdown)
    assert "**Trial 2 of the deep model, epoch by epoch** · training now" in shown
    assert "289 s left" not in shown  # the figure stamped into the phase when it was written
    bar = at.get("progress")[0].proto.text
    found = re.fullmatch(r"Searching Multi-layer perceptron: trial 2 · for (\d+) s · (\d+) s used · (\d+) s left of "
                         r"300 s", bar)
    assert found, bar
    step, used, left = map(int, found.groups())  # counted from the record when the page drew (seconds later)
    assert used >= 42 and abs(used + left - 300) <= 1 and abs(used - 30 - step) <= 1, bar
