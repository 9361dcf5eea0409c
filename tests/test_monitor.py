"""A model at work: drift kept with every scoring, outcomes that come back, the model in use,
a retrained challenger promoted and reverted, the CLI's JSON, and access (on both databases)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlcore import access, datasets, jobs, monitor
from dlcore.access import Actor
from dlcore.errors import AccessError, DataError, NotFoundError, SchemaError
from dlcore.monitor.challenge import start_challenge
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import DATABASES, churn_frame, run_here

both = pytest.mark.parametrize("database", DATABASES, indirect=True)
pytestmark = pytest.mark.slow  # every test trains a real run (and scores with it)


def _train(store, frame, seed=0):
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), f"churn-{seed}.csv")
    return run_here(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=3, seed=seed)))


def _score(store, run_id, frame, name, model=None, model_run_id=None):
    """Queue a scoring and execute it here, as the scoring worker would."""
    use = monitor.model_in_use(store, run_id)
    scoring_id = jobs.submit_scoring(store, run_id, model or use.model, frame.to_csv(index=False).encode(), name,
                                     model_run_id=model_run_id if model else use.run_id)
    jobs.execute_scoring(store, scoring_id)
    job = store.scoring(scoring_id)
    assert job.status == "done", job.message
    return job


def _drifted(n=300, seed=7):
    frame = churn_frame(n, seed=seed)
    frame["charges"] = frame["charges"] + 60
    frame.loc[: n // 3, "region"] = "space"
    return frame


@both
def test_every_scoring_keeps_its_drift_and_the_outcomes_give_a_realized_score(store, database):
    run = _train(store, churn_frame(400))
    calm = _score(store, run.id, churn_frame(300, seed=5).drop(columns=["churn"]), "april.csv")
    assert calm.summary["drift"]["drifted_columns"] == []
    assert "looks like the training data" in calm.summary["drift"]["sentence"]
    moved = _score(store, run.id, _drifted().assign(id=range(300)).drop(columns=["churn"]), "may.csv")
    assert set(moved.summary["drift"]["drifted_columns"]) == {"charges", "region"}
    report = monitor.load_drift(store, moved.id)
    assert "a new value 'space'" in report.column("region").words
    assert report.column("charges").details["mean_current"] - report.column("charges").details["mean_reference"] \
        == pytest.approx(60, abs=6)
    # The outcomes come back a month later, keyed by id, in another order and with extra rows.
    truth = _drifted().assign(id=range(300))[["id", "churn"]].sample(frac=1, random_state=1)
    outcome = monitor.record_outcomes(store, run.id, content=truth.to_csv(index=False).encode(),
                                      name="may-outcomes.csv", key="id")
    assert outcome["scoring_id"] == moved.id and outcome["n_rows"] == 300
    lo, hi = outcome["promised_interval"]
    board_row = next(r for r in run.result["leaderboard"]["rows"] if r["model"] == moved.model)
    assert [lo, hi] == pytest.approx(board_row["ci"])
    scored = store.scoring_dir(moved.id) / "scored.csv"
    assert scored.exists() and 0 <= outcome["realized_score"] <= 1
    assert outcome["sentence"].startswith(f"{run.result['leaderboard']['metric_title']} ")
    assert "the test rows promised" in outcome["sentence"]
    assert outcome["outside"] == (not lo <= outcome["realized_score"] <= hi)
    rows = monitor.scorings_report(store, run.id)
    assert [r["scoring_id"] for r in rows] == [moved.id, calm.id]
    assert rows[0]["realized_score"] == outcome["realized_score"] and rows[1]["realized_score"] is None
    assert rows[0]["drift"]["charges"]["drifted"] and not rows[0]["drift"]["plan"]["drifted"]


def test_a_labelled_file_scored_at_once_and_an_alert_when_the_score_falls_outside(store):
    run = _train(store, churn_frame(400))
    flipped = churn_frame(300, seed=9)
    flipped["churn"] = np.where(flipped["churn"] == "yes", "no", "yes")  # the world turned: outcomes reversed
    job = _score(store, run.id, flipped, "june-labelled.csv")
    outcome = monitor.record_outcomes(store, run.id, scoring_id=job.id)
    assert outcome["outside"] and outcome["worse"]
    assert "below the" in outcome["sentence"] and "worse than promised" in outcome["sentence"]
    assert monitor.alerts(store, run.id) == [outcome["sentence"]]
    with pytest.raises(SchemaError, match="no column 'churn'"):
        monitor.record_outcomes(store, run.id, content=b"id,other\n1,2\n", key="id")
    with pytest.raises(SchemaError, match="no key column 'ref'"):
        monitor.record_outcomes(store, run.id, content=b"id,churn\n1,yes\n", key="ref")
    with pytest.raises(DataError, match="No scored file of run"):
        monitor.record_outcomes(store, run.id, content=b"id,churn\n1,yes\n", key="id")


def test_retrain_challenge_promote_and_revert_change_the_model_in_use(store):
    run = _train(store, churn_frame(400))
    first = monitor.model_in_use(store, run.id)
    assert first.run_id == run.id and not first.promoted
    labelled = _score(store, run.id, churn_frame(300, seed=11), "july.csv")
    monitor.record_outcomes(store, run.id, scoring_id=labelled.id)
    newer, _ = datasets.register_bytes(store, churn_frame(400, seed=12).to_csv(index=False).encode(), "newer.csv")
    challenger_id = monitor.retrain(store, run.id, newer.id)
    assert store.run(challenger_id).spec["data"]["dataset_id"] == newer.id
    assert store.run(challenger_id).spec["train"] == run.spec["train"]  # the same spec
    assert store.claim_next_run() == challenger_id
    from dlcore import runner

    runner.execute_run(store, challenger_id)
    challenge = start_challenge(store, run.id, challenger_id)
    assert monitor.challenge_result(store, run.id, challenger_id) is None  # both scorings still queued
    for side in ("champion", "challenger"):
        jobs.execute_scoring(store, challenge[f"{side}_scoring"])
    result = monitor.challenge_result(store, run.id, challenger_id)
    assert result["n_rows"] == 300 and result["outcome"] in ("better", "worse", "not_clearly_better")
    lo, hi = result["diff_ci"]
    assert lo <= result["diff"] <= hi and "paired interval" in result["sentence"]
    promoted = monitor.promote(store, run.id, challenger_id)
    assert promoted.run_id == challenger_id and promoted.promoted
    after = _score(store, run.id, churn_frame(50, seed=13).drop(columns=["churn"]), "august.csv")
    assert after.model_run_id == challenger_id  # scoring jobs use the model in use
    from dlcore.scoring import load_scorer

    # As the REST endpoint asks, naming no model: the promoted model of the retrained run (cached per run and model).
    assert load_scorer(store, run.id) is load_scorer(store, challenger_id, promoted.model)
    back = monitor.revert(store, run.id)
    assert (back.run_id, back.model) == (first.run_id, first.model)
    assert [c["use_run_id"] for c in store.model_changes(run.id)] == [run.id, challenger_id]
    assert [a["action"] for a in store.audit_log(access.LOCAL_WORKSPACE) if a["action"] == "model_in_use"] == \
        ["model_in_use", "model_in_use"]
    store.delete_run(challenger_id)  # a promoted run deleted: the run falls back to its own rule
    monitor.promote(store, run.id, run.id, first.model)
    assert monitor.model_in_use(store, run.id).run_id == run.id


@both
def test_deleting_a_run_removes_its_scorings_outcomes_and_model_changes(store, database):
    run = _train(store, churn_frame(300))
    job = _score(store, run.id, churn_frame(100, seed=3), "labelled.csv")
    monitor.record_outcomes(store, run.id, scoring_id=job.id)
    store.change_model(run.id, run.id, job.model)
    assert store.deletion_plan("run", run.id)["outcomes"] == 1
    folder = store.scoring_dir(job.id)
    assert (folder / "drift.json").exists()
    store.delete_run(run.id)
    assert not folder.exists() and not store.run_dir(run.id).exists()
    import sqlalchemy as sa

    from dlcore.store import model_changes, outcomes
    with store.engine.connect() as conn:
        for table in (outcomes, model_changes):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0


@both
def test_access_another_workspace_sees_nothing_and_viewers_change_nothing(store, database, monkeypatch):
    monkeypatch.setenv("DLCORE_AUTH", "team")
    alice = store.as_actor(Actor("alice@example.com"))
    record, _ = datasets.register_bytes(alice, churn_frame(300).to_csv(index=False).encode(), "churn.csv")
    run = run_here(alice, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=2)))
    job = _score(alice, run.id, churn_frame(100, seed=3), "labelled.csv")
    monitor.record_outcomes(alice, run.id, scoring_id=job.id)
    mallory = store.as_actor(Actor("mallory@example.com"))
    for call in (lambda: monitor.scorings_report(mallory, run.id), lambda: monitor.load_drift(mallory, job.id),
                 lambda: monitor.model_in_use(mallory, run.id), lambda: mallory.outcomes_of(run.id),
                 lambda: monitor.record_outcomes(mallory, run.id, scoring_id=job.id),
                 lambda: monitor.promote(mallory, run.id, run.id)):
        with pytest.raises(NotFoundError, match="or you have no access to it"):
            call()
    alice.add_member(alice.workspace_id, "victor@example.com", "viewer")
    victor = store.as_actor(Actor("victor@example.com"), alice.workspace_id)
    assert [r["scoring_id"] for r in monitor.scorings_report(victor, run.id)] == [job.id]  # viewers see
    for call in (lambda: monitor.record_outcomes(victor, run.id, scoring_id=job.id),
                 lambda: monitor.promote(victor, run.id, run.id),
                 lambda: monitor.retrain(victor, run.id, record.id)):
        with pytest.raises(AccessError, match="viewer"):
            call()


def test_the_cli_lists_scorings_and_records_actuals_as_json(store, tmp_path, capsys):
    from dlcore.cli import main

    run = _train(store, churn_frame(400))
    frame = _drifted().assign(id=range(300))
    data = tmp_path / "may.csv"
    frame.drop(columns=["churn"]).to_csv(data, index=False)
    assert main(["predict", run.id, str(data), "-o", str(tmp_path / "scored.csv")]) == 0
    capsys.readouterr()
    truth = tmp_path / "truth.csv"
    frame[["id", "churn"]].to_csv(truth, index=False)
    assert main(["actuals", run.id, str(truth), "--key", "id", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {"realized_score", "promised_interval", "sentence"} <= set(got) and got["n_rows"] == 300
    assert main(["monitor", run.id, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 1
    one = listed[0]
    assert {"scoring_id", "rows", "drifted_columns", "drift", "realized_score", "promised_interval"} <= set(one)
    assert one["rows"] == 300 and set(one["drifted_columns"]) == {"charges", "region"}
    assert one["realized_score"] == pytest.approx(got["realized_score"])
    assert one["drift"]["region"]["drifted"] is True
    labelled = tmp_path / "june.csv"
    churn_frame(200, seed=8).to_csv(labelled, index=False)
    assert main(["actuals", run.id, str(labelled)]) == 0  # a labelled file: scored and compared at once
    out = capsys.readouterr().out
    assert "realized_score" in out and "the test rows promised" in out
    assert main(["monitor", run.id]) == 0
    text = capsys.readouterr().out
    assert "may.csv" in text and "june.csv" in text
    assert main(["monitor", "nope"]) == 1
    assert "No run with id 'nope'" in capsys.readouterr().err


def test_keys_match_as_the_analyst_reads_them():
    import pandas as pd

    from dlcore.monitor import _keys

    assert _keys(pd.Series(["17", "17.0", "1.5", "A17", None, " 18 ", "'19"])).tolist() == \
        ["17", "17", "1.5", "A17", pd.NA, "18", "19"]
    assert _keys(pd.Series([17.0, 1.5, None])).tolist() == ["17", "1.5", pd.NA]
