"""A first verdict at once, a search that ends when the verdict is settled, and "nothing predicts".

A run within a budget puts a complete board (every model cross-validated, with intervals) and its
verdict in the run's record as soon as the baselines' defaults and one deep fit with strong
defaults are done, while it is still running; it then keeps improving and ends when more trials
cannot change the verdict, saying why. When no model is clearly better than the dummy floor, the
verdict says so first and no page, report, bundle or CLI answer names a model to use.
Timing is measured in bench/automl.py, never here.
"""

from __future__ import annotations

import io
import json
import os
import socket
import time
import zipfile

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, evaluate, search
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import open_page, run_here

NOISE_TARGET = "Prix (€)"


def noise_frame(n: int = 240, seed: int = 5, binary: bool = False) -> pd.DataFrame:
    """Flats whose price (or a yes/no) is drawn with no regard to anything else in the row."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Surface": rng.normal(80, 20, n).round(1), "Pièces": rng.integers(1, 6, n),
                          "Ville": rng.choice(["Lyon", "Paris", "Nantes"], n), "Étage": rng.integers(0, 8, n)})
    if binary:
        frame["Vendu"] = rng.choice(["oui", "non"], n)
    else:
        frame[NOISE_TARGET] = rng.normal(250_000, 1300, n).round(0)
    return frame


def clear_frame(n: int = 200, seed: int = 3) -> pd.DataFrame:
    """Three classes told apart by one number: every model scores (nearly) perfectly."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["a", "b", "c"], n)
    centre = {"a": 0.0, "b": 10.0, "c": 20.0}
    return pd.DataFrame({"x": [centre[k] + rng.normal(0, 0.5) for k in kind], "z": rng.normal(0, 1, n), "kind": kind})


# ---- the rules, on boards made by hand ---------------------------------------------------------------
def _row(model: str, family: str, cv: float, ci: tuple[float, float]) -> dict:
    return {"model": model, "family": family, "cv_score": cv, "cv_ci": list(ci), "test_score": cv, "ci": list(ci),
            "cv_folds": None}


def _regression_board(ridge: float, ridge_ci: tuple[float, float]) -> dict:
    return {"task": "regression", "metric_title": "RMSE", "higher_is_better": False, "confidence": 0.95,
            "target": NOISE_TARGET,
            "rows": [_row("ridge", "baseline", ridge, ridge_ci), _row("mlp", "deep", 1330.0, (1270.0, 1390.0)),
                     _row("dummy", "baseline", 1310.0, (1255.0, 1365.0))],
            "verdicts": [{"outcome": "worse", "deep_model": "mlp", "best_baseline": "ridge"}]}


def test_nothing_predicts_when_no_model_clears_the_floors_interval():
    board = _regression_board(1300.0, (1240.0, 1360.0))
    said = evaluate.nothing_predicts(board)
    assert said.startswith("Nothing here predicts Prix (€) better than always guessing its average: no model is "
                           "clearly better than the dummy floor (RMSE 1,310 by cross-validation, 95% interval 1,255 "
                           "to 1,365), so no model is recommended for use.")
    model, why = evaluate.recommended(board)
    assert model == "ridge" and why == said  # the pages still open on a model, but none is recommended
    # Beyond the floor's interval and its own interval clear of the floor's score: it predicts.
    assert evaluate.nothing_predicts(_regression_board(900.0, (850.0, 950.0))) is None
    # Beyond the floor's interval, but its own interval reaches the floor's score: not clearly better.
    assert evaluate.nothing_predicts(_regression_board(1250.0, (1180.0, 1320.0))) is not None
    # A floor with no width (ROC AUC 0.5 on every fold) is cleared only by a model sure to beat a coin.
    auc = {"task": "binary", "metric_title": "ROC AUC", "higher_is_better": True, "target": "Vendu",
           "rows": [_row("mlp", "deep", 0.53, (0.46, 0.60)), _row("dummy", "baseline", 0.5, (0.5, 0.5))]}
    assert evaluate.nothing_predicts(auc).startswith(
        "Nothing here predicts Vendu better than always guessing by how common each class is")
    auc["rows"][0].update(cv_score=0.7, cv_ci=[0.62, 0.78])
    assert evaluate.nothing_predicts(auc) is None
    # Not judged without a floor or without intervals (a forecast, an old run).
    assert evaluate.nothing_predicts({**board, "rows": board["rows"][:2]}) is None
    bare = [{**r, "cv_ci": None, "ci": None} for r in board["rows"]]
    assert evaluate.nothing_predicts({**board, "rows": bare}) is None


def test_the_verdict_is_settled_when_no_gain_left_could_change_it():
    base = [1.0, 0.98, 1.0, 0.99, 0.99]
    # Clearly better already: more trials only widen the lead.
    assert search.settled([1.0, 1.0, 1.0, 1.0, 1.0], [0.9, 0.91, 0.9, 0.92, 0.9], True, "accuracy", 0.0).startswith(
        "the deep model is already clearly better")
    # Level with the best baseline, and a perfect accuracy on every fold would not be clearly better: settled.
    assert "even a perfect accuracy on every fold" in search.settled([0.99, 1.0, 0.98, 1.0, 0.99], base, True,
                                                                      "accuracy", 0.004)
    # Far behind (a first trial cut short): a better setting could bring it level, so the trials go on.
    assert search.settled([0.78, 0.9, 0.65, 0.8, 0.7], base, True, "accuracy", 0.04) is None
    # Level but with room to be clearly better, or an error without a ceiling: the noise rule ends them.
    level = [0.80, 0.81, 0.80, 0.80, 0.81]
    assert search.settled([0.80, 0.82, 0.79, 0.81, 0.80], level, True, "accuracy", 0.004) is None
    assert search.settled([1300.0, 1290.0, 1310.0], [1295.0, 1300.0, 1305.0], False, "rmse", 5.0) is None
    assert search.fold_noise({0: 0.9}) == 0.0
    assert search.fold_noise({0: 0.90, 1: 0.92, 2: 0.94}) == pytest.approx(0.02 / np.sqrt(3))


# ---- a real run -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A run within a budget of a table every model gets right, with the record read each time a
    board is put in it while the run is still going."""
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("first-verdict")
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, clear_frame().to_csv(index=False).encode(), "kinds.csv")
    seen = []
    real = search._publish

    def publish_and_look(store_, run_id, *args):  # the real one, then the record as a page would read it
        at = real(store_, run_id, *args)
        seen.append(store_.run(run_id))
        return at

    mp = pytest.MonkeyPatch()
    mp.setattr(search, "_publish", publish_and_look)
    try:
        # A ceiling far above what the table needs, so that even a loaded machine's slow fits leave the
        # search to end by its rule, not by the clock.
        run = run_here(store, RunSpec(DataSpec(record.id, "kind"), train=TrainSpec(budget=1200.0)))
    finally:
        mp.undo()
    return store, run, seen


@pytest.mark.slow
def test_a_run_records_a_first_verdict_before_its_end_and_ends_when_it_is_settled(first_run):
    store, run, seen = first_run
    assert seen, "no board was put in the record before the run ended"
    first = seen[0]
    assert first.status == "running" and first.result["first_verdict"]["still"]
    board = first.result["first_verdict"]["leaderboard"]
    models = {r["model"] for r in board["rows"]}
    assert {"mlp", "dummy", "logistic_regression", "random_forest", "gradient_boosting"} <= models
    for row in board["rows"]:  # complete: every model cross-validated on the first repeat, with intervals
        assert row["cv_score"] is not None and all(np.isfinite(row["cv_ci"])) and all(np.isfinite(row["ci"]))
        assert sum(v is not None for v in row["cv_folds"]) >= 2
    assert board["verdicts"][0]["text"].startswith("By cross-validation, the deep model (MLP)")
    deep_trials = [t for t in search.load_trials(store, run.id)["trials"] if t["candidate"] == "mlp"]
    # The first verdict came after one deep fit; the run's record keeps when.
    at = first.result["first_verdict_s"]
    assert first.result["first_verdict"]["at_s"] == at
    assert run.result["first_verdict_s"] == at == run.result["search"]["first_verdict_s"]
    assert 0 < at < run.result["elapsed_s"]
    # Every model gets it (nearly) right: no trial can change the verdict, so the search ended early and says why.
    search_info = run.result["search"]
    assert search_info["ended"] == "settled" and search_info["settled"]
    assert len(deep_trials) < search.CONVERGED_MIN_TRIALS
    assert "more trials could not change the verdict" in run.phase
    assert search.ended_words(search_info) in "\n".join(search.search_lines(run.result))
    at_page = open_page(store.home, "compare", run=run.id)
    assert not at_page.exception, at_page.exception
    assert any(c.value.startswith(f"The first verdict (every model cross-validated, with intervals) was ready "
                                  f"{at:.0f} s into the run") for c in at_page.caption)


@pytest.mark.slow
def test_a_running_run_shows_its_first_verdict_on_compare_and_train(first_run):
    store, _, seen = first_run
    running = seen[0]
    # The record as it was mid-run, put back under a run still running, as a page opened then saw it.
    from dlcore import runner

    again = runner.submit(store, RunSpec.from_dict(running.spec))
    store.update_run(again, status="running", result=running.result, heartbeat_at=time.time(),
                     worker=f"{socket.gethostname()}:{os.getpid()}")  # a live worker: this process
    for page in ("compare", "train"):
        at = open_page(store.home, page, run=again)
        assert not at.exception, at.exception
        said = [m.value for m in at.markdown]
        assert any(m.startswith(f"**First verdict, {running.result['first_verdict']['at_s']:.0f} s into the run**")
                   for m in said), said
        assert any(c.value.startswith("Still trying: ") for c in at.caption)
        assert any("By cross-validation, the deep model (MLP)" in i.value for i in [*at.info, *at.success])


@pytest.fixture(scope="module")
def noise_runs(tmp_path_factory):
    """A price that nothing in the row bears on (a search within a budget), and a yes/no likewise."""
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("noise")
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, noise_frame().to_csv(index=False).encode(), "flats.csv")
    price = run_here(store, RunSpec(DataSpec(record.id, NOISE_TARGET), train=TrainSpec(budget=30.0)))
    record, _ = datasets.register_bytes(store, noise_frame(binary=True).to_csv(index=False).encode(), "ventes.csv")
    sold = run_here(store, RunSpec(DataSpec(record.id, "Vendu"), train=TrainSpec(epochs=3, seed=1)))
    return store, price, sold


@pytest.mark.slow
def test_a_noise_target_gets_nothing_predicts_on_every_page(noise_runs):
    store, price, sold = noise_runs
    for run in (price, sold):
        board = run.result["leaderboard"]
        said = evaluate.nothing_predicts(board)
        assert said and said.startswith(f"Nothing here predicts {run.target} better than always guessing")
        assert all(v["text"].startswith(said) for v in board["verdicts"])  # the verdict says so first
        for page in ("train", "compare"):
            at = open_page(store.home, page, run=run.id)
            assert not at.exception, at.exception
            assert any(i.value.startswith(said) for i in at.info)
            assert any(m.value.startswith("**No model to use**") for m in at.markdown)
            assert not any("The model to use" in m.value for m in at.markdown)
        at = open_page(store.home, "predict", run=run.id)
        assert not at.exception, at.exception
        assert said in [w.value for w in at.warning]
        picker = next(s for s in at.selectbox if s.label == "Model")
        assert not any(o.endswith("← recommended") for o in picker.options)
    at = open_page(store.home, "decide", run=sold.id)
    assert not at.exception, at.exception
    assert evaluate.nothing_predicts(sold.result["leaderboard"]) in [w.value for w in at.warning]
    picker = next(s for s in at.selectbox if s.label == "Model to act on")
    assert not any(o.endswith("← recommended") for o in picker.options)


@pytest.mark.slow
def test_a_noise_target_gets_nothing_predicts_in_the_cli_report_and_bundle(noise_runs, tmp_path, capsys, monkeypatch):
    from dlcore import cli
    from dlcore.handover.bundle import build_bundle
    from dlcore.handover.report import build_report

    store, price, _ = noise_runs
    monkeypatch.setenv("DLCORE_HOME", str(store.home))  # the CLI's store
    said = evaluate.nothing_predicts(price.result["leaderboard"])
    html = build_report(store, price.id)
    assert "<b>No model to use</b>" in html and "The model to use" not in html
    with zipfile.ZipFile(io.BytesIO(build_bundle(store, price.id))) as z:
        card, readme = z.read("model_card.md").decode(), z.read("README.txt").decode()
    assert f"**Not recommended for use.** {said}" in card and said in readme
    new = tmp_path / "new.csv"
    noise_frame(10, seed=9).drop(columns=[NOISE_TARGET]).to_csv(new, index=False)
    assert cli.main(["predict", price.id, str(new), "-o", str(tmp_path / "scored.csv")]) == 0
    assert f"though no model is recommended for use: {said}" in capsys.readouterr().err


@pytest.mark.slow
def test_the_cli_json_of_a_default_run_has_its_first_verdict_and_no_model_to_use(tmp_path, monkeypatch, capsys):
    """``python -m dlcore fit FILE --target T`` and nothing else: the default budget."""
    from dlcore import cli

    monkeypatch.setenv("DLCORE_HOME", str(tmp_path / "home"))
    path = tmp_path / "flats.csv"
    noise_frame().to_csv(path, index=False)
    assert cli.main(["fit", str(path), "--target", NOISE_TARGET]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 < out["first_verdict_s"] < out["elapsed_s"] <= out["budget_s"] == 300.0
    assert out["verdict"].startswith(f"Nothing here predicts {NOISE_TARGET} better than always guessing its average")
    assert out["recommended"] is None
