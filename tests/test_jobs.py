"""Real worker processes: queued runs execute in order, scoring jobs, and a killed worker; a whole
run from upload to scoring and the recovery of a killed worker's run on SQLite and on a real
PostgreSQL server (the pool's SIGKILL on both is in test_faults.py)."""

import os
import signal
import threading

import pandas as pd
import pytest

from dlcore import datasets, jobs, runner
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import DATABASES, churn_frame, start_worker, wait_until

both = pytest.mark.parametrize("database", DATABASES, indirect=True)


def _submit(store, dataset_id, **train):
    return runner.submit(store, RunSpec(DataSpec(dataset_id, "churn"), train=TrainSpec(**{"epochs": 3, **train})))


def test_a_second_run_queues_and_both_finish_with_their_own_results(store, worker):
    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    first = _submit(store, record.id, seed=1)
    second = _submit(store, record.id, seed=2)
    assert store.run(second).status == "queued"
    wait_until(lambda: store.run(second).status == "done", timeout=180)
    a, b = store.run(first), store.run(second)
    assert a.status == "done" and a.finished_at <= b.started_at  # one worker: one after the other
    assert a.result["rows"] == b.result["rows"]
    assert len(store.epochs(first)) == a.result["deep"]["epochs_run"]
    assert len(store.epochs(second)) == b.result["deep"]["epochs_run"]


@both
def test_scoring_jobs_write_a_safe_csv_and_report_schema_problems(store, worker, database, request):
    longest = _watch_transactions(request) if database == "postgresql" else None
    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    run_id = _submit(store, record.id)
    wait_until(lambda: store.run(run_id).status == "done", timeout=180)
    new = churn_frame(10, seed=4).drop(columns=["churn"])
    new.loc[0, "region"] = "=1+2"
    job = jobs.submit_scoring(store, run_id, "gradient_boosting", new.to_csv(index=False).encode(), "new.csv")
    wait_until(lambda: store.scoring(job).status in ("done", "failed"), timeout=60)
    done = store.scoring(job)
    assert done.status == "done", done.message
    scored = pd.read_csv(store.scoring_dir(job) / "scored.csv")
    assert len(scored) == 10 and scored.loc[0, "region"] == "'=1+2"
    assert done.summary["unseen"] == {"region": 1}
    bad = jobs.submit_scoring(store, run_id, "mlp", new.drop(columns=["plan", "tenure"]).to_csv(index=False).encode(), "bad.csv")
    wait_until(lambda: store.scoring(bad).status in ("done", "failed"), timeout=60)
    failed = store.scoring(bad)
    assert failed.status == "failed" and "'tenure'" in failed.message and "'plan'" in failed.message
    if longest is not None:
        # Every transaction of the upload, the run (epochs, heartbeats, Stop checks, results) and
        # the scorings was short: none stayed open across any work.
        seen = longest()
        assert seen["samples"] >= 20 and seen["sessions"] >= 2, seen
        assert seen["longest"] < 2.0, seen


def _watch_transactions(request):
    """Sample PostgreSQL's open transactions on this test's database until asked; the longest seen."""
    server = request.getfixturevalue("postgres")
    url = os.environ["DLCORE_DATABASE_URL"]
    seen = {"longest": 0.0, "samples": 0, "sessions": 0}
    stop = threading.Event()
    query = ("SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0), count(*) "
             "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")

    def watch() -> None:
        while not stop.wait(0.05):
            longest, sessions = server.sql(url, query)[0]
            seen.update(longest=max(seen["longest"], float(longest)), samples=seen["samples"] + 1,
                        sessions=max(seen["sessions"], sessions))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    def result() -> dict:
        stop.set()
        thread.join(timeout=10)
        return seen

    return result


@pytest.mark.slow
@both
def test_a_killed_worker_leaves_an_interrupted_run_with_its_epochs(store, home):
    record, _ = datasets.register_bytes(store, churn_frame(3000).to_csv(index=False).encode(), "churn.csv")
    run_id = _submit(store, record.id, epochs=500, patience=500, batch_size=16)
    proc = start_worker(home)
    try:
        wait_until(lambda: len(store.epochs(run_id)) >= 2, timeout=120)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = len(store.epochs(run_id))
    assert store.recover_interrupted() == [run_id]
    run = store.run(run_id)
    assert run.status == "interrupted" and "Rerun" in run.message
    assert len(store.epochs(run_id)) == kept >= 2
    # Another worker picks up new work; the interrupted run stays as it is.
    again = _submit(store, record.id, epochs=1)
    proc = start_worker(home)
    try:
        wait_until(lambda: store.run(again).status == "done", timeout=180)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert store.run(run_id).status == "interrupted"


@pytest.mark.slow  # the app's real worker processes
def test_workers_started_by_the_app_leave_when_the_app_is_gone(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    # A stand-in "server" that starts a pool and then dies without cleaning up.
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from pathlib import Path; from dlcore.jobs import LocalPool; "
            f"p = LocalPool(Path({str(tmp_path / 'home')!r}), n_train=1); p.ensure(); "
            "print(' '.join(str(x.pid) for x in p.procs.values()), flush=True)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    pids = [int(x) for x in out.stdout.split()]
    assert len(pids) == 2

    def gone():
        return all(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"
                   for pid in pids)

    wait_until(gone, timeout=60)


@pytest.mark.slow  # the app's real worker pool
def test_the_app_pool_fails_a_run_whose_worker_was_killed_with_the_reason(store, home):
    from dlcore.jobs import LocalPool

    record, _ = datasets.register_bytes(store, churn_frame(3000).to_csv(index=False).encode(), "churn.csv")
    run_id = _submit(store, record.id, epochs=500, patience=500, batch_size=16)
    pool = LocalPool(home, n_train=1, store=store)
    pool.ensure()
    try:
        wait_until(lambda: len(store.epochs(run_id)) >= 1, timeout=120)
        trainer = pool.procs["train-0"]
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait(timeout=10)
        pool.ensure()  # what the next page view does
        run = store.run(run_id)
        assert run.status == "failed"
        assert "killed (signal 9" in run.message and "Rerun" in run.message
        assert len(store.epochs(run_id)) >= 1
        assert pool.procs["train-0"].pid != trainer.pid and pool.alive() == 2
    finally:
        pool.stop()
