"""A yes/no target whose event is the rare class (15% "ja", the customer leaves): the class acted
on, the warning when a model never names the rare class, and a threshold that follows the money."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import open_page as _app
from tests.conftest import use_app_router_in_apptest

use_app_router_in_apptest()


def rare_frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    """Columns of noise and a 15% "ja" target: no model can name "ja" at a 50% cut-off."""
    rng = np.random.default_rng(seed)
    target = np.where(np.arange(n) % 20 < 3, "ja", "nein")
    return pd.DataFrame({"alter": rng.integers(18, 80, n), "umsatz": rng.normal(50, 10, n).round(2),
                         "tarif": rng.choice(["s", "m", "l"], n), "Kündigung": rng.permutation(target)})


@pytest.fixture(scope="module")
def rare(tmp_path_factory):
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("rare") / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, rare_frame().to_csv(index=False).encode(), "kunden.csv")
    spec = RunSpec(data=DataSpec(record.id, "Kündigung"), template="mlp", train=TrainSpec(epochs=2, batch_size=32))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    assert store.run(run_id).status == "done", store.run(run_id).message
    return home, store, run_id


def test_the_rarer_class_and_the_other_side_of_a_decision():
    from dlcore.handover import decision

    assert decision.rarer_class(np.array([1, 1, 0, 1]), ["ja", "nein"]) == "ja"
    assert decision.rarer_class(np.array([0, 1, 0, 1]), ["no", "yes"]) == "yes"  # equals: the second, as before
    assert decision.rarer_class(np.array([0, 0, 2, 1, 1, 0]), ["a", "b", "c"]) == "c"
    assert decision.other_side(["ja", "nein"], "ja") == "nein"
    assert decision.other_side(["ja", "nein"], "nein") == "ja"
    assert decision.other_side(["a", "b", "c"], "b") == "not b"
    assert decision.class_column(["ja", "nein"], "ja") == 0
    assert decision.class_column(["ja", "nein"], "") == 1  # saved before the class was recorded


def test_one_class_warning_names_the_class_and_what_to_do():
    from dlcore.evaluate.collapse import one_class_warning

    y = np.array([0, 1, 1, 1, 1, 1, 1, 0])
    flat = np.column_stack([np.full(8, 0.14), np.full(8, 0.86)])
    said = one_class_warning(y, flat, ["ja", "nein"], "logistic regression")
    assert said.startswith("Logistic regression predicts “nein” for every one of the 8 test rows")
    assert "(0.7500)" in said and "threshold from money on the Decide page" in said and "more rows of “ja”" in said
    good = np.column_stack([[0.9, 0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 0.6], [0.1, 0.9, 0.8, 0.9, 0.7, 0.8, 0.9, 0.4]])
    assert one_class_warning(y, good, ["ja", "nein"], "mlp", dummy=flat) is None
    # Two classes said, but no more rows right than the floor: still a warning.
    same = np.column_stack([[0.1, 0.9, 0.2, 0.1, 0.3, 0.2, 0.1, 0.6], [0.9, 0.1, 0.8, 0.9, 0.7, 0.8, 0.9, 0.4]])
    assert "the same as the dummy floor's" in one_class_warning(y, same, ["ja", "nein"], "mlp", dummy=flat)


def test_an_old_threshold_without_a_class_keeps_meaning_the_second_class(rare):
    import json

    from dlcore.handover import decision

    _, store, run_id = rare
    path = store.run_dir(run_id) / "decision.json"
    path.write_text(json.dumps({"model": "mlp", "threshold": 0.5, "profit_per_row": 1.0, "saved_at": 0.0,
                                "money": {"value_tp": 100.0, "cost_fp": 10.0, "cost_fn": 0.0, "value_tn": 0.0,
                                          "currency": "€"}}))
    try:
        saved = decision.load_decision(store, run_id)
        assert (saved.positive, saved.negative) == ("nein", "ja")  # classes are ["ja", "nein"]
        assert list(decision.decide(np.array([0.2, 0.7]), saved)) == ["ja", "nein"]
    finally:
        path.unlink()


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_decide_acts_on_the_rare_class_follows_the_money_and_predict_applies_it(rare):
    from dlcore.evaluate.collapse import one_class_warning
    from dlcore.handover import decision
    from dlcore.outputs import load_test_outputs
    from dlcore.tables.scoring import TableScorer

    home, store, run_id = rare
    y, outputs, _ = load_test_outputs(store, run_id)
    at = _app(home, "decide", run=run_id)
    assert not at.exception
    acted = next(s for s in at.selectbox if s.label == "The class you act on")
    assert acted.value == "ja" and acted.options == ["ja", "nein"]
    assert any("Preselected: “ja”, the rarer class (15% of the rows" in c.value for c in at.caption)
    model = at.selectbox[0].value
    warned = one_class_warning(y, outputs[model], ["ja", "nein"], "x", outputs["dummy"] if model != "dummy" else None)
    assert any("bring more rows of “ja”" in w.value for w in at.warning) == (warned is not None)

    def best_for(money):
        return decision.best_threshold(decision.profit_curve((y == 0).astype(int), outputs[model][:, 0], money))

    inputs = {n.label.split(",")[0]: n for n in at.number_input}
    inputs["Right flag: a real “ja” you act on"].set_value(300.0)
    inputs["False alarm: acting on a row that did not need it"].set_value(60.0)
    at.run()
    best = best_for(decision.Money(300, 60, 0, 0))
    assert _metric(at, "Best threshold for this money") == f"{best:.3f}"
    assert at.slider[0].value == pytest.approx(round(best, 3))  # the slider follows the money
    at.slider[0].set_value(0.9).run()
    assert at.slider[0].value == pytest.approx(0.9)  # a move after the money is kept ...
    inputs = {n.label.split(",")[0]: n for n in at.number_input}
    inputs["False alarm: acting on a row that did not need it"].set_value(0.0)
    at.run()
    best = best_for(decision.Money(300, 0, 0, 0))
    assert at.slider[0].value == pytest.approx(round(best, 3))  # ... until the money changes again
    # False alarms free: the best threshold earns what flagging everyone earns; the page says so.
    assert any("adds nothing over “act on everyone” at these costs" in i.value for i in at.info)
    next(b for b in at.button if b.label.startswith("Use ")).click().run()
    saved = decision.load_decision(store, run_id)
    assert (saved.positive, saved.negative, saved.model) == ("ja", "nein", model)
    assert saved.threshold == pytest.approx(round(best, 3))
    try:
        # Predict's decision column: "ja" where P(ja) reaches the threshold.
        frame = rare_frame(40, seed=9).drop(columns="Kündigung")
        tight = decision.Decision(model=model, threshold=0.15, money=saved.money, positive="ja", negative="nein",
                                  profit_per_row=0.0)
        scored, _ = TableScorer.for_run(store, run_id, model).score(frame, tight)
        expected = np.where(scored["probability ja"] >= 0.15, "ja", "nein")
        assert scored["decision"].tolist() == expected.tolist()
    finally:
        (store.run_dir(run_id) / "decision.json").unlink()


def test_compare_warns_when_the_shown_model_never_names_the_rare_class(rare):
    from dlcore import evaluate
    from dlcore.evaluate.collapse import one_class_warning
    from dlcore.outputs import load_test_outputs

    home, store, run_id = rare
    y, outputs, _ = load_test_outputs(store, run_id)
    # Precondition of the data: noise and 15% "ja" make logistic regression say "nein" for every row.
    assert one_class_warning(y, outputs["logistic_regression"], ["ja", "nein"], "x") is not None
    at = _app(home, "compare", run=run_id)
    assert not at.exception
    best = evaluate.recommended(store.run(run_id).result["leaderboard"])[0]  # the model Compare warns of first
    expected = one_class_warning(y, outputs[best], ["ja", "nein"], "x", None if best == "dummy" else outputs["dummy"])
    assert any("bring more rows of “ja”" in w.value for w in at.warning) == (expected is not None)
    picker = next(s for s in at.selectbox if s.label == "Model")
    picker.set_value("logistic regression").run()
    assert any(w.value.startswith("Logistic regression predicts “nein” for every one of the")
               for w in at.warning)


def test_the_bundle_s_predict_py_acts_on_the_saved_class_and_reads_an_old_threshold(rare, tmp_path):
    import io
    import json
    import os
    import subprocess
    import sys
    import zipfile

    from dlcore.handover import bundle, decision

    _, store, run_id = rare
    decision.save_decision(store, run_id, decision.Decision(
        model="mlp", threshold=0.15, money=decision.Money(), positive="ja", negative="nein", profit_per_row=0.0))
    try:
        with zipfile.ZipFile(io.BytesIO(bundle.build_bundle(store, run_id, "mlp"))) as archive:
            archive.extractall(tmp_path)
    finally:
        (store.run_dir(run_id) / "decision.json").unlink()
    rare_frame(40, seed=9).drop(columns="Kündigung").to_csv(tmp_path / "new.csv", index=False)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

    def run() -> pd.DataFrame:
        proc = subprocess.run([sys.executable, "-I", "predict.py", "new.csv", "-o", "out.csv"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return pd.read_csv(tmp_path / "out.csv", encoding="utf-8-sig")

    out = run()
    assert out["decision"].tolist() == np.where(out["probability ja"] >= 0.15, "ja", "nein").tolist()
    rule = json.loads((tmp_path / "decision.json").read_text())
    old = {key: value for key, value in rule.items() if key not in ("positive", "negative")}
    (tmp_path / "decision.json").write_text(json.dumps(old))
    out = run()  # a threshold saved before the class was recorded: the second class, as it always meant
    assert out["decision"].tolist() == np.where(out["probability nein"] >= 0.15, "nein", "ja").tolist()


def test_compare_bundles_the_recommended_model_by_default_and_names_keep_umlauts(rare):
    from dlcore import evaluate
    from dlcore.handover import bundle

    home, store, run_id = rare
    best = evaluate.recommended(store.run(run_id).result["leaderboard"])[0]
    at = _app(home, "compare", run=run_id)
    picker = next(s for s in at.selectbox if s.label == "Model to bundle")
    # Its columns are noise: nothing predicts, so no model is marked recommended; the picker still
    # opens on the one the rule puts first, marked only as the best.
    assert evaluate.nothing_predicts(store.run(run_id).result["leaderboard"])
    assert picker.value == best and picker.options[0].endswith("← best on the test rows")
    assert not any("recommended" in o for o in picker.options)
    assert not any(o.startswith("dummy") for o in picker.options) and "logistic regression" in picker.options
    labels = [d.proto.label for d in at.get("download_button")]
    assert any(label.startswith("Model bundle (ZIP): ") and label.endswith(
        __import__("dlcore").evaluate.display_name(best)) for label in labels), labels
    picker.set_value("logistic_regression").run()
    assert "Model bundle (ZIP): logistic regression" in [d.proto.label for d in at.get("download_button")]
    assert bundle.bundle_name(store, run_id, "logistic_regression") == \
        f"model-Kündigung-logistic_regression-{run_id}.zip"


def test_one_formatter_for_every_number():
    from dlcore import formats

    assert [formats.number(v) for v in (32021.3486, 18844.8368, 1.621e5, 33137.04, 999.96, 12.345, 0.85, 1.0)] == \
        ["32,021", "18,845", "162,100", "33,137", "1,000", "12.35", "0.8500", "1.0000"]
    assert formats.number(5.42e-06) == "0.00000542" and formats.number(None) == "-"
    assert formats.points(-0.0004, signed=True) == "0.0" and formats.points(0.006, signed=True) == "+0.6"
    assert formats.points(-0.012, signed=True) == "-1.2" and formats.number(-0.00001, signed=True) == "-0.0000100"
    from dlcore.search import best_words

    assert best_words({"l2": 5.42e-06, "learning_rate": 0.00213}) == "L2 0.00000542, learning rate 0.0021"


def test_the_row_sentence_rounds_as_the_table_and_leaves_out_pushes_of_nothing():
    from dlcore.tables.explain import sentence

    row = {"task": "binary", "prediction": 0.16, "base": 0.15, "class": "ja", "contributions": [
        {"feature": "tarif", "value": "s", "contribution": 0.0061},
        {"feature": "alter", "value": 40, "contribution": 0.0004},
        {"feature": "umsatz", "value": 50.1, "contribution": -0.0012}]}
    said = sentence(row, "Kündigung")
    assert "tarif is s, which adds 0.6 points; then umsatz is 50.1, which takes off 0.1 points." in said
    assert "alter" not in said  # +0.04 points rounds to 0.0 in the table
    row["contributions"][0]["contribution"] = 0.0098
    assert "which adds 1 point;" in sentence(row, "Kündigung")
    row["contributions"] = [{"feature": "alter", "value": 40, "contribution": -0.0003}]
    assert ": no column moves it away from the average." in sentence(row, "Kündigung")


def test_a_regression_leaderboard_writes_scores_as_the_verdict_does():
    from dlcore import evaluate
    from ui import views

    rng = np.random.default_rng(0)
    y = rng.normal(300000, 50000, 200)
    board = evaluate.leaderboard("regression", y, {"mlp": y + rng.normal(0, 30000, 200),
                                                   "dummy": np.full(200, y.mean())},
                                 families={"mlp": "deep", "dummy": "baseline"}).to_dict()
    frame = views.leaderboard_frame(board)
    mlp = frame.iloc[0]
    assert mlp["RMSE"] == f"{board['rows'][0]['test_score']:,.0f}"
    low, high = board["rows"][0]["ci"]
    assert mlp["95% interval"] == f"{low:,.0f} to {high:,.0f}"
    assert frame["R²"].dtype != object  # values under 1 stay numbers, shown with 4 decimals
    assert views.score_text(33137.04) == "33,137" and views.score_text(0.85) == "0.8500"
    # Cross-validated: the folds' column too, and the table draws text columns as text (pandas 3 gives
    # them a string dtype, which the config took for numbers and drew as "43804.7186").
    folds = {"mlp": [31000.0, 29000.0, 30500.0], "dummy": [50100.0, 49800.0, 50300.0]}
    board = evaluate.leaderboard("regression", y, {"mlp": y + rng.normal(0, 30000, 200),
                                                   "dummy": np.full(200, y.mean())},
                                 families={"mlp": "deep", "dummy": "baseline"},
                                 cv={m: {"folds": f, "trials": 1, "search_seconds": 1.0} for m, f in folds.items()}).to_dict()
    frame = views.leaderboard_frame(board)
    assert frame.iloc[0]["Cross-validated"] == "30,167" and frame.iloc[0]["RMSE"] == views.score_text(board["rows"][0]["test_score"])
    config = views.leaderboard_config(board, frame)
    assert config["Cross-validated"]["type_config"]["type"] == "text" and config["RMSE"]["type_config"]["type"] == "text"
    assert config["R²"]["type_config"]["type"] == "number"


def test_explain_shows_the_rare_class_probability_by_default(rare):
    from dlcore import explain

    home, store, run_id = rare
    found = explain.explain_run(store, run_id, "logistic_regression")
    at = _app(home, "explain", run=run_id)
    at.selectbox(key="explain-model").set_value("logistic_regression").run()
    assert not at.exception
    picker = at.selectbox(key="pdp-binary-logistic_regression")
    assert picker.value == "ja"
    item = found["dependence"][0]
    shown = [c for c in at.get("plotly_chart")]
    assert shown  # the dependence charts are drawn
    import json as _json

    figure = _json.loads(shown[-len(found["dependence"])].proto.spec)
    averages = [t for t in figure["data"] if t.get("mode", "").startswith("lines") and t["y"] and len(t["y"]) == len(
        item["average"][0])]
    assert np.allclose(averages[-1]["y"], 1 - np.asarray(item["average"][0]), atol=1e-6)
    assert "Probability of “ja”" in _json.dumps(figure["layout"], ensure_ascii=False)


def test_compare_draws_roc_and_precision_recall_for_the_class_acted_on(rare):
    """The yes/no charts are drawn for the rare class "ja" (the first class, not the second), and for
    the class of a threshold saved on Decide once there is one."""
    import json

    from sklearn.metrics import average_precision_score

    from dlcore.handover import decision
    from dlcore.outputs import load_test_outputs

    home, store, run_id = rare
    y, outputs, _ = load_test_outputs(store, run_id)

    def titles_and_ap(at):
        specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        titles = [s["layout"]["title"]["text"] for s in specs if "title" in s.get("layout", {})]
        pr = next(s for s in specs if s["layout"].get("title", {}).get("text", "").startswith("Precision vs recall"))
        ap = {t["name"].split(" (AP")[0]: t["meta"]["average_precision"] for t in pr["data"]
              if isinstance(t.get("meta"), dict) and "average_precision" in t["meta"]}
        return titles, ap

    at = _app(home, "compare", run=run_id)
    assert not at.exception
    # The confusion matrix says it is drawn at the 0.5 cut-off and where a better one is found.
    assert any("(a 0.5 cut-off)" in c.value and "Decide finds the cut-off" in c.value for c in at.caption)
    titles, ap = titles_and_ap(at)
    assert "Precision vs recall for “ja”" in titles
    # Personal mode: the Share popover does not promise a workspace's members-only link.
    assert any(c.value.startswith("Personal mode: anyone who can reach this address") for c in at.caption)
    assert not any("only for members" in c.value for c in at.caption)
    assert any(t.startswith("ROC curve: how well each model picks out “ja”") for t in titles)
    assert ap["logistic regression"] == pytest.approx(
        average_precision_score((y == 0).astype(int), outputs["logistic_regression"][:, 0]))
    model = store.run(run_id).result["leaderboard"]["rows"][0]["model"]
    decision.save_decision(store, run_id, decision.Decision(
        model=model, threshold=0.5, money=decision.Money(), positive="nein", negative="ja", profit_per_row=0.0))
    try:
        at = _app(home, "compare", run=run_id)
        titles, ap = titles_and_ap(at)
        assert "Precision vs recall for “nein”" in titles
        assert ap["logistic regression"] == pytest.approx(
            average_precision_score((y == 1).astype(int), outputs["logistic_regression"][:, 1]))
        assert any("the class the threshold saved on Decide acts on" in c.value for c in at.caption)
    finally:
        (store.run_dir(run_id) / "decision.json").unlink()
