"""A table run within a time budget: folds, paired fold comparisons, the search, the ensemble."""

import io
import math
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from dlcore import budget, ensemble, evaluate, folds, search
from dlcore.errors import SpecError
from tests.conftest import churn_frame


# ---- folds -----------------------------------------------------------------------------------
def test_folds_are_stratified_disjoint_and_never_hold_a_test_row():
    from dlcore.splits import split_indices

    y = np.array([0] * 300 + [1] * 100 + [2] * 50)
    train, val, test = split_indices(y, "multiclass", 0.2, 0.15, seed=1)
    made = folds.make_folds(y, "multiclass", train, val, k=5, repeats=2, seed=1)
    assert len(made) == 10 and {f.repeat for f in made} == {0, 1}
    assert np.array_equal(made[0].held, val) and np.array_equal(made[0].fit, train)  # fold 1 is the validation split
    pool = set(train) | set(val)
    for repeat in (0, 1):
        held = [f.held for f in made if f.repeat == repeat]
        joined = np.concatenate(held)
        assert len(joined) == len(set(joined)) == len(pool) and set(joined) == pool  # no row in two folds
    for f in made:
        assert not set(f.fit) & set(test) and not set(f.held) & set(test)  # test rows never in a fold
        assert not set(f.fit) & set(f.held) and set(f.fit) | set(f.held) == pool
        shares = np.bincount(y[f.held], minlength=3) / len(f.held)
        assert np.allclose(shares, [300 / 450, 100 / 450, 50 / 450], atol=0.04)  # stratified


def test_folds_of_a_regression_target_split_plainly():
    y = np.linspace(0, 1, 100)
    made = folds.make_folds(y, "regression", np.arange(0, 70), np.arange(70, 85), k=5, seed=0)
    assert sorted(np.concatenate([f.held for f in made]).tolist()) == list(range(85))


def test_paired_fold_comparison_matches_a_hand_computed_interval():
    deep = [0.90, 0.80, 0.85]
    base = [0.88, 0.79, 0.80]
    p = folds.paired_folds(deep, base, higher_is_better=True, held_share=0.2)
    d = np.array([0.02, 0.01, 0.05])
    var = ((d - d.mean()) ** 2).sum() / 2  # 0.000433…
    half = 4.302652729911275 * math.sqrt((1 / 3 + 0.2 / 0.8) * var)  # t(0.975, 2 dof), Nadeau-Bengio correction
    assert p.diff == pytest.approx(0.026666666, abs=1e-8)
    assert p.ci == pytest.approx((d.mean() - half, d.mean() + half))
    assert p.ci[0] < 0 < p.ci[1] and p.outcome == "not_clearly_better" and (p.n_folds, p.a_wins) == (3, 3)
    # Lower is better: an error lower by 1 on every fold is "better" whatever the spread.
    q = folds.paired_folds([1.0, 2.0, 3.0, 4.0], [2.0, 3.1, 3.9, 5.0], higher_is_better=False)
    assert q.diff == pytest.approx(1.0) and q.outcome == "better"
    # A fold the deep model was not scored on is left out of the pairs.
    assert folds.paired_folds([0.9, None], [0.8, 0.7], True).n_folds == 1


def test_rows_needed_to_tell_two_models_apart():
    # Half-width 0.03 around a difference of 0.02: (0.03 / 0.02)^2 = 2.25 times the rows.
    assert folds.rows_to_separate(100, 0.02, (-0.01, 0.05)) == 225
    assert folds.rows_to_separate(100, 0.0, (-0.01, 0.01)) is None


# ---- budget ----------------------------------------------------------------------------------
def test_budget_presets_and_seconds():
    assert [budget.parse_budget(x) for x in ("quick", "standard", "thorough", "90", 45, "120s")] == \
        [60.0, 300.0, 1200.0, 90.0, 45.0, 120.0]
    with pytest.raises(SpecError, match="quick \\(60 s\\), standard \\(300 s\\)"):
        budget.parse_budget("soon")
    with pytest.raises(SpecError, match="between 10 and"):
        budget.parse_budget(3)
    assert budget.describe(300.0) == "300 s (5 min, standard)"


# ---- ensemble ----------------------------------------------------------------------------------
def test_greedy_ensemble_selection_matches_a_hand_computed_case():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    outputs = {"a": y + 1.0, "b": y - 1.0, "c": y + 3.0}

    def rmse(t, p):
        return float(np.sqrt(np.mean((t - p) ** 2)))

    # Step 1: a (error 1, listed before b); step 2: a+b averages to y exactly; step 3: a again
    # (error 1/3, a and b tie and a is first). c is never picked.
    assert ensemble.select(outputs, y, rmse, higher_is_better=False, steps=2) == {"a": 0.5, "b": 0.5}
    weights = ensemble.select(outputs, y, rmse, higher_is_better=False, steps=3)
    assert weights == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert ensemble.combine(outputs, {"a": 0.5, "b": 0.5}) == pytest.approx(y)


# ---- the search --------------------------------------------------------------------------------
def test_search_finds_a_known_best_setting():
    """y is exactly the first column: the less ridge shrinks, the better; the search must find a
    small alpha (the default of 1 is well off)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20))
    y = x[:, 0] * 3.0
    pipe = Pipeline([("model", Ridge())])
    cand = search.search_baseline("ridge", pipe, "regression", 1, x[:40], y[:40], x[40:], y[40:], "rmse",
                                  higher=False, seed=0, until=lambda: False, max_trials=12)
    assert cand.trials == 12
    assert cand.params["alpha"] < 0.05, cand.params
    default_rmse = float(np.sqrt(np.mean((Pipeline([("model", Ridge())]).fit(x[:40], y[:40]).predict(x[40:]) - y[40:]) ** 2)))
    assert cand.fold_scores[0] < default_rmse / 2


@pytest.mark.slow
def test_pruning_stops_a_hopeless_trial(store):
    """After three trials that learned, a trial whose learning rate is far too low is behind the
    median after the warm-up epochs and is pruned long before its last epoch."""
    import keras

    from dlcore import datasets, runner
    from dlcore.budget import Clock
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.training import compile_for

    frame = churn_frame(200)
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=2)))
    study = search._study(0, higher=True, prune=True)
    for _ in range(3):  # three finished trials whose validation AUC climbed to 0.9
        trial = study.ask()
        for epoch in range(40):
            trial.report(0.6 + 0.3 * min(1.0, epoch / 10), epoch)
        study.tell(trial, 0.9)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1, activation="sigmoid")])
    compile_for(model, "binary", 1e-6)  # hopeless: it barely moves
    trial = study.ask()
    cb = search._trial_callback(store, run_id, Clock(600), trial, lambda: 600.0, "auc", 1.0, [0])
    history = model.fit(x[:150], y[:150], validation_data=(x[150:], y[150:]), epochs=40, verbose=0, callbacks=[cb])
    assert cb.pruned
    assert search.PRUNE_AFTER_EPOCHS < len(history.history["loss"]) < 10
    assert len(store.epochs(run_id)) == len(history.history["loss"])  # each epoch drawn live


# ---- a whole run within a budget -------------------------------------------------------------------
BUDGET = 30.0  # the 20 s, with room for a busy test machine (bench/budget.py measures 20 s)


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("budget-home")
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(300).to_csv(index=False).encode(), "churn.csv")
    spec = RunSpec(DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(budget=BUDGET, batch_size=32))
    run_id = runner.submit(store, spec)
    assert store.claim_next_run() == run_id
    started = time.monotonic()
    runner.execute_run(store, run_id)
    return store, store.run(run_id), time.monotonic() - started


def test_a_run_within_a_budget_records_it_and_ends_its_search_in_it(budget_run):
    """The 10% bar itself is timing, so bench/budget.py measures it (a ratio to the budget); here the
    run's record says what it kept to: its budget, the time it took, and a search that ended."""
    store, run, elapsed = budget_run
    assert run.status == "done", run.message
    assert run.result["budget_s"] == BUDGET and 0 < run.result["elapsed_s"] <= elapsed + 0.01
    finished = f"Finished in {run.result['elapsed_s']:.0f} s of {BUDGET:.0f} s"
    # A search that ended because the verdict was settled says why after it (docs/first-verdict.md).
    assert run.phase == finished or (run.result["search"]["ended"] == "settled"
                                     and run.phase.startswith(f"{finished}: The run ended early"))
    deep = [t for t in search.load_trials(store, run.id)["trials"] if t["candidate"] == "mlp"]
    assert 1 <= len(deep) <= 8  # a 30-second budget leaves room for a few deep trials at most


@pytest.mark.slow
def test_a_trial_stops_at_the_deadline_after_the_current_batch(store):
    """The deadline watcher ends a fit mid-epoch: Keras honours ``stop_training`` after a batch."""
    import keras

    from dlcore import datasets, runner
    from dlcore.budget import Clock
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.training import compile_for

    record, _ = datasets.register_bytes(store, churn_frame(100).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=2)))
    x = np.random.default_rng(0).normal(size=(4000, 5)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(1, activation="sigmoid")])
    compile_for(model, "binary", 1e-3)
    clock = Clock(600)
    cb = search._trial_callback(store, run_id, clock, None, lambda: 0.0, "auc", 1.0, [0])  # already past it
    history = model.fit(x, y, validation_split=0.2, epochs=50, batch_size=1, verbose=0, callbacks=[cb])
    assert cb.out_of_time
    assert len(history.history.get("loss", [])) <= 1  # stopped inside the first epoch (3,200 batches)


def test_budget_run_board_has_fold_scores_trials_and_a_verdict_on_both(budget_run):
    store, run, _ = budget_run
    board = run.result["leaderboard"]
    rows = {r["model"]: r for r in board["rows"]}
    assert {"mlp", "dummy", "logistic_regression", "random_forest", "gradient_boosting"} <= set(rows)
    for r in board["rows"]:
        scored = [v for v in r["cv_folds"] if v is not None]
        assert scored and r["cv_score"] == pytest.approx(np.mean(scored))
        if r["family"] != "ensemble":
            assert r["trials"] >= 1
    # The winner is chosen by the cross-validated score.
    cvs = [r["cv_score"] for r in board["rows"]]
    assert cvs == sorted(cvs, reverse=True)
    assert rows["dummy"]["cv_score"] == pytest.approx(0.5)
    trials = search.load_trials(store, run.id)
    assert len(trials["trials"]) == sum(r["trials"] for r in board["rows"] if r["family"] != "ensemble")
    assert "mlp" in trials["best"] and trials["best"]["mlp"]["words"]
    assert "test set" in board["verdicts"][0]["text"] or "test rows" in board["verdicts"][0]["text"]
    chosen = run.result["search"]["chosen"]
    assert set(chosen) == set(rows)


def test_the_same_seed_and_budget_tries_the_same_first_settings(budget_run):
    """Optuna's sampler is seeded: a rerun asks for the same settings in the same order."""
    store, run, _ = budget_run
    first = [t["params"] for t in search.load_trials(store, run.id)["trials"] if t["candidate"] == "logistic_regression"]
    study = search._study(run.spec["train"]["seed"], higher=True)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("model", LogisticRegression())])
    study.enqueue_trial({"C": 1.0})
    again = []
    for _ in first:
        t = study.ask()
        search.baseline_space("logistic_regression", pipe, t)
        again.append(dict(t.params))
        study.tell(t, 0.5)
    assert again[0] == first[0] == {"C": 1.0}
    assert len(first) == 1 or again[1] == first[1]


def test_the_ensemble_scores_explains_and_bundles_like_any_model(budget_run, tmp_path):
    from dlcore import datasets
    from dlcore.handover.bundle import build_bundle
    from dlcore.outputs import load_test_outputs
    from dlcore.scoring import load_scorer
    from dlcore.tables.explain import explain_model

    store, run, _ = budget_run
    assert "ensemble" in run.result["models"], run.result["search"]["chosen"]
    weights = run.result["ensemble"]["weights"]
    assert len(weights) >= 2 and sum(weights.values()) == pytest.approx(1.0)
    y_true, outputs, rows = load_test_outputs(store, run.id)
    frame = datasets.load_frame(store, run.dataset_id)
    scorer = load_scorer(store, run.id, "ensemble")
    out, _ = scorer.output(frame.iloc[rows])
    assert np.allclose(out, outputs["ensemble"], atol=1e-5)
    assert np.allclose(out, sum(w * outputs[m] for m, w in weights.items()), atol=1e-5)
    explained = explain_model(store, run, "ensemble")
    assert explained["model"] == "ensemble" and explained["importance"]
    data = build_bundle(store, run.id, "ensemble")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"ensemble.json", "preprocess.json", "predict.py", "model_card.md"} <= names
        assert all(any(n.startswith(f"members/{m}.") for n in names) for m in weights)
        card = archive.read("model_card.md").decode()
        archive.extractall(tmp_path / "bundle")
    assert "How the models were chosen" in card and "trials" in card
    import subprocess
    import sys

    frame.iloc[rows].drop(columns=["churn"]).to_csv(tmp_path / "new.csv", index=False)
    done = subprocess.run([sys.executable, "predict.py", str(tmp_path / "new.csv"), "-o", str(tmp_path / "out.csv")],
                          cwd=tmp_path / "bundle", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(tmp_path / "out.csv")
    probability = [c for c in scored.columns if c.startswith("probability")][-1]
    assert np.allclose(scored[probability].to_numpy(), outputs["ensemble"][:, -1], atol=1e-4)


# ---- pages -----------------------------------------------------------------------------------------
def test_the_run_page_shows_the_trials_and_the_best_settings_in_words(budget_run):
    from tests.conftest import open_page

    store, run, _ = budget_run
    at = open_page(store.home, "train", run=run.id)
    assert not at.exception
    charts = [c for c in at.get("plotly_chart")]
    # The trials, then the chosen trial's own learning curve (the search's epochs of many trials make
    # no one curve; the chosen one's are the run's deep model's).
    assert [c.key for c in charts] == [f"trials-{run.id}", f"best-curves-{run.id}"]
    import json

    trials = search.load_trials(store, run.id)
    chosen = trials["best"]["mlp"]["number"]
    import base64

    import numpy as np

    x = json.loads(charts[1].proto.spec)["data"][0]["x"]  # epochs 1..n, as Plotly packs an integer array
    epochs = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else np.asarray(x)
    assert epochs.tolist() == list(range(1, 1 + next(t["epochs"] for t in trials["trials"]
                                                       if t["candidate"] == "mlp" and t["number"] == chosen)))

    trials_fig = json.loads(charts[0].proto.spec)
    n_points = sum(len(t.get("x", [])) for t in trials_fig["data"] if t.get("mode") == "markers")
    assert n_points == len([t for t in search.load_trials(store, run.id)["trials"]
                            if t["score"] is not None and t["candidate"] != "dummy"])
    assert "Search: ROC AUC of each trial" in json.dumps(trials_fig["layout"]["title"])
    text = " ".join(m.value for m in at.markdown)
    assert "Best settings so far" in text and "**MLP**" in text and "learning rate" in text
    assert any("Tried" in p.proto.text and "of the 30 s budget" in p.proto.text for p in at.get("progress"))
    at = open_page(store.home, "compare", run=run.id)
    assert not at.exception
    board = at.dataframe[0].value
    assert {"Cross-validated", "Folds interval", "Trials"} <= set(board.columns)
    assert board["Kind"].tolist().count("ensemble") == 1


def test_pages_say_the_first_model_is_best_by_cross_validation_not_on_the_test_rows(budget_run):
    # The board ranks a cross-validated run by its fold scores: its first model need not be the best
    # on the test rows, so no page may call it that.
    from tests.conftest import open_page

    store, run, _ = budget_run
    board = run.result["leaderboard"]
    first = board["rows"][0]["model"]
    use, why = evaluate.recommended(board)  # the first unless the verdict prefers a baseline (tests/test_recommended.py)
    assert evaluate.best_by(board) == "by cross-validation"
    assert evaluate.best_by({**board, "rows": [{**r, "cv_score": None} for r in board["rows"]]}) == "on the test rows"
    for page in ("predict", "explain"):
        at = open_page(store.home, page, run=run.id)
        assert not at.exception, at.exception
        picker = next(s for s in at.selectbox if s.label == "Model")
        assert picker.value == use and picker.options[0].endswith("← recommended")
        if use != first:
            assert next(o for o in picker.options if o.startswith(evaluate.display_name(first))).endswith(
                "← best by cross-validation")
        captions = " ".join(c.value for c in at.caption)
        assert f"Showing {evaluate.display_name(use)}, {why}." in captions and "by cross-validation" in captions
        assert "best on the test rows" not in captions
    labels = next(s for s in open_page(store.home, "predict", run=run.id).selectbox if s.label == "Model").options
    assert any(o.startswith("ensemble (weighted average) (ensemble, ") for o in labels), labels


def test_the_report_says_when_the_test_rows_disagree_with_the_cross_validated_ranking():
    rows = [{"model": "ensemble", "test_score": 0.8088, "cv_score": 0.83},
            {"model": "logistic_regression", "test_score": 0.8129, "cv_score": 0.82}]
    words = search._test_rows_words({"rows": rows, "higher_is_better": True})
    assert words == ("; on the test rows logistic regression scored higher than ensemble (weighted average) "
                     "(0.8129 against 0.8088): the intervals on the board say whether that is more than the chance "
                     "of which rows were held out")
    assert search._test_rows_words({"rows": rows, "higher_is_better": False}) == " and the test rows confirm it"
    # An error: lower is better, in the board's number format (it read "scored higher … (3.377e+04 against 3.379e+04)").
    errors = [{"model": "ensemble", "test_score": 33786.2, "cv_score": 35000.0},
              {"model": "ridge", "test_score": 33768.9, "cv_score": 35100.0}]
    assert search._test_rows_words({"rows": errors, "higher_is_better": False}).startswith(
        "; on the test rows ridge regression erred less than ensemble (weighted average) (33,769 against 33,786)")


def test_the_train_page_asks_for_a_time_budget_first_and_leaves_epochs_empty(budget_run):
    from tests.conftest import open_page

    store, run, _ = budget_run
    at = open_page(store.home, "train", dataset=run.dataset_id)
    assert not at.exception
    slider = next(s for s in at.select_slider if s.label.startswith("Time budget"))
    assert slider.value == 300.0 and "300 s (5 min, standard)" in slider.options
    epochs = next(n for n in at.number_input if n.label.startswith("Epochs"))
    assert epochs.value is None  # given only to train fixed settings instead of searching


def test_the_report_carries_the_search_space_the_chosen_settings_and_the_fold_scores(budget_run):
    from dlcore.handover.report import build_report

    store, run, _ = budget_run
    html = build_report(store, run.id)
    assert "How the models were chosen" in html and "(cross-validated)" in html
    assert "regularisation strength C" in html  # the search space of logistic regression
    assert run.result["search"]["chosen"]["mlp"]["words"].split(",")[0] in html
    assert "r1 f1" in html and "Search: ROC AUC of each trial" in html


@pytest.mark.slow
def test_stop_ends_the_search_and_keeps_the_best_trial(store):
    """A Stop asked before the first trial ends: one trial per model, the deep one cut after its
    first epoch, and the run still evaluated on every model with what it has."""
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec

    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(budget=600, batch_size=32)))
    assert store.claim_next_run() == run_id
    store.request_stop(run_id)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "stopped", run.message
    assert run.result["search"]["stopped_early"] and run.result["elapsed_s"] < 120
    counts = run.result["search"]["trials"]
    assert counts == {"dummy": 1, "logistic_regression": 1, "random_forest": 1, "gradient_boosting": 1, "mlp": 1}
    assert run.result["deep"]["epochs_run"] == 1
    assert {r["model"] for r in run.result["leaderboard"]["rows"]} >= set(counts)
    assert "stopped by request" in run.phase.lower()
