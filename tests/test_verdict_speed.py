"""Time to the verdict (issue 20, item 5), correctness only: a search that has converged ends
before its budget, says why, keeps its best trial and repeats with the same seed; the worker's
warm-up changes no score. The times themselves are measured in ``bench/automl.py``."""

import time

import pytest

from dlcore import search
from tests.conftest import churn_frame, run_here

# Far more than the tiny table needs, so no deadline ever cuts a trial even on a loaded machine:
# the search must end by converging, a count of trials that repeats exactly.
BUDGET = 3600.0


def test_the_convergence_rule_counts_trials_not_seconds():
    assert not search.converged(7, 0)  # too few trials to call it
    assert search.converged(search.CONVERGED_MIN_TRIALS, 0)
    assert not search.converged(8, 3)  # the best was 4 trials ago: not enough
    assert search.converged(8, 2)  # 5 trials without beating it
    assert not search.converged(20, 10) and search.converged(20, 9)  # later: half the trials
    words = search.ended_words({"ended": "converged", "elapsed_s": 41.2, "budget_s": 300.0, "best_trial": 2,
                                "deep_trials": 8})
    assert words.startswith("The run ended early, at 41 s of 300 s") and "(trial 3) was not beaten in the 5 trials" in words
    assert search.ended_words({"ended": "budget", "budget_s": 60.0}) == "The search used the time budget of 60 s."


def _run(store, record, spec):
    return run_here(store, spec)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A fixed-settings run and a budgeted deep-only run, then the worker's warm-up, then both again
    in the same process: the second pair must repeat the first to the last digit. The search's
    limits are made smaller (trials of at most 12 epochs, converged after 4 trials and 2 without
    a better score) so the test stays short on a loaded machine; the rule is the same."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "MAX_EPOCHS", 12)
        patch.setattr(search, "CONVERGED_MIN_TRIALS", 4)
        patch.setattr(search, "CONVERGED_PATIENCE", 2)
        yield _runs(tmp_path_factory)


def _runs(tmp_path_factory):
    from dlcore import datasets
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store
    from dlcore.warmup import warm_up

    store = Store.open(tmp_path_factory.mktemp("verdict-home"))
    record, _ = datasets.register_bytes(store, churn_frame(80).to_csv(index=False).encode(), "churn.csv")
    fixed = RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=4, batch_size=16))
    budgeted = RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(budget=BUDGET, batch_size=16, patience=3),
                       baselines=False)
    before = (_run(store, record, fixed), _run(store, record, budgeted))
    started = time.monotonic()
    seconds = warm_up()
    assert 0 < seconds <= time.monotonic() - started + 0.01
    after = (_run(store, record, fixed), _run(store, record, budgeted))
    return store, before, after


def test_a_converged_search_ends_early_says_why_and_keeps_its_best_trial(runs):
    store, (_, run), _ = runs
    found = run.result["search"]
    assert found["ended"] == "converged"
    assert run.result["elapsed_s"] < BUDGET / 4  # the rest of the budget was not waited for
    trials = [t for t in search.load_trials(store, run.id)["trials"] if t["candidate"] == "mlp"]
    n = len(trials)
    assert n == found["deep_trials"] >= search.CONVERGED_MIN_TRIALS
    best = found["best_trial"]
    assert search.converged(n, best) and not search.converged(n - 1, best)  # it ended at the first chance
    complete = [t for t in trials if t["state"] == "complete"]
    top = max(complete, key=lambda t: t["score"])
    assert top["number"] == best and found["chosen"]["mlp"]["params"] == top["params"]
    # The run's deep model is the best trial's: its score on the first fold is that trial's.
    row = next(r for r in run.result["leaderboard"]["rows"] if r["model"] == "mlp")
    assert row["cv_folds"][0] == pytest.approx(top["score"])
    assert row["trials"] == n
    assert "The run ended early" in run.phase and f"of {n}" in run.phase
    assert any("The run ended early" in line for line in search.search_lines(run.result))


def test_the_same_seed_repeats_the_early_end_and_the_warm_up_changes_no_score(runs):
    store, before, after = runs
    for old, new in zip(before, after):
        assert new.test_score == old.test_score
        assert [(r["model"], r["test_score"], r.get("cv_score")) for r in new.result["leaderboard"]["rows"]] == \
            [(r["model"], r["test_score"], r.get("cv_score")) for r in old.result["leaderboard"]["rows"]]
    old_trials = [(t["params"], t["score"], t["state"]) for t in search.load_trials(store, before[1].id)["trials"]]
    new_trials = [(t["params"], t["score"], t["state"]) for t in search.load_trials(store, after[1].id)["trials"]]
    assert new_trials == old_trials
    assert after[1].result["search"]["best_trial"] == before[1].result["search"]["best_trial"]
