"""Security of team mode: deletion that deletes. Each test plays an attack or a mishap of the
issue's findings and fails on the code before the fix.

- A run deleted while a real worker trains it (during its epochs, during its baselines), a
  dataset deleted with a run in flight, a run deleted while its scoring works: the worker stops
  at its next write and nothing of it comes back to disk or to the tables (SQLite and PostgreSQL).
- A write of a job that lands as its record is deleted removes what it wrote.
- A viewer's refused upload or sample leaves no file; record folders no row names are found and
  removed (at once for a deleted record, after an age for others), with a log line.
- Deleted rows leave no copy in the database files (SQLite's store.db and its WAL; PostgreSQL's
  table files after the app's vacuum).
- A run of another workspace costs the same queries as an id that does not exist.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from dlcore import datasets, jobs, runner
from dlcore.access import Actor
from dlcore.errors import AccessError, DeletedError, NotFoundError
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from dlcore.store import Store, atomic_write, metadata
from tests.conftest import DATABASES, churn_frame, wait_until

both = pytest.mark.parametrize("database", DATABASES, indirect=True)
ALICE, CAROL, DAVE = (Actor(f"{n}@example.com") for n in ("alice", "carol", "dave"))


def _submit(store: Store, dataset_id: str, baselines: bool = True, **train) -> str:
    settings = {"epochs": 1, "patience": 1000, **train}
    return runner.submit(store, RunSpec(DataSpec(dataset_id, "churn"), train=TrainSpec(**settings), baselines=baselines))


def _upload(store: Store, rows: int, seed: int = 0) -> str:
    record, _ = datasets.register_bytes(store, churn_frame(rows, seed=seed).to_csv(index=False).encode(),
                                        f"churn-{rows}-{seed}.csv")
    return record.id


def _rows_naming(store: Store, ids: list[str]) -> list[str]:
    """Every row of every table but the audit log (which keeps who deleted what) holding one of ``ids``."""
    found = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "audit":
                continue
            found += [f"{table.name}: {tuple(r)}" for r in conn.execute(sa.select(table)) if any(str(v) in ids for v in r)]
    return found


def _files_naming(home: Path, ids: list[str]) -> list[str]:
    return [str(p) for p in home.rglob("*") if any(i in str(p) for i in ids)]


def _worker_moved_on(store: Store, dataset_id: str) -> None:
    """Queue a one-epoch run and wait until the one worker has trained it: by then it has left
    whatever it worked on before (a worker takes one job at a time)."""
    marker = _submit(store, dataset_id, baselines=False)
    wait_until(lambda: store.run(marker).status in ("done", "failed"), timeout=240)
    assert store.run(marker).status == "done", store.run(marker).message


@both
def test_runs_deleted_while_a_worker_trains_them_leave_nothing(store, worker, database):
    small = _upload(store, 400)
    # During the epochs: the run is deleted once its first epochs are in.
    during_epochs = _submit(store, small, epochs=400)
    wait_until(lambda: len(store.epochs(during_epochs)) >= 2, timeout=240)
    store.delete_run(during_epochs)
    _worker_moved_on(store, small)
    # During the baselines: enough rows that the forest and the boosting take a while.
    large = _upload(store, 40_000, seed=3)
    during_baselines = _submit(store, large)
    wait_until(lambda: "baseline" in (store.run(during_baselines).phase or "").lower(), timeout=240, every=0.02)
    store.delete_run(during_baselines)
    # A dataset deleted with a run in flight: the run and the dataset go, and stay gone.
    doomed = _upload(store, 400, seed=5)
    in_flight = _submit(store, doomed, epochs=400)
    wait_until(lambda: len(store.epochs(in_flight)) >= 2, timeout=240)
    store.delete_dataset(doomed)
    _worker_moved_on(store, small)

    gone = [during_epochs, during_baselines, in_flight, doomed]
    assert _files_naming(store.home, gone) == []  # no preprocess.json, .skops, test_outputs.npz, error.log
    assert _rows_naming(store, gone) == []
    for run_id in (during_epochs, during_baselines, in_flight):
        with pytest.raises(NotFoundError):
            store.run(run_id)
    assert store.sweep_orphans(min_age=0) == []  # the workers' own sweep left nothing for the schedule


@both
def test_runs_deleted_while_their_scoring_or_explanation_works_leave_nothing(store, worker, database):
    dataset_id = _upload(store, 20_000)  # 4,000 test rows: explaining them takes a few seconds
    scored, explained = _submit(store, dataset_id, epochs=2), _submit(store, dataset_id, epochs=2, seed=1)
    wait_until(lambda: store.run(explained).status == "done", timeout=240)
    big = churn_frame(300_000, seed=7).drop(columns=["churn"]).to_csv(index=False).encode()
    scoring_id = jobs.submit_scoring(store, scored, "mlp", big, "big.csv")
    wait_until(lambda: store.scoring(scoring_id).status != "queued", timeout=120, every=0.02)
    assert store.scoring(scoring_id).status == "running"
    time.sleep(1.5)  # past reading the run and its model: the delete falls while the rows are scored
    store.delete_run(scored)
    explanation_id = jobs.submit_explanation(store, explained, "mlp")
    wait_until(lambda: store.explanation(explanation_id).status != "queued", timeout=240, every=0.02)
    time.sleep(1.0)  # past reading the run: the delete falls while the columns are permuted
    store.delete_run(explained)
    _worker_moved_on(store, dataset_id)
    gone = [scored, scoring_id, explained, explanation_id]
    assert _files_naming(store.home, gone) == []  # no scored.csv, no explain/global-mlp.json
    assert _rows_naming(store, gone) == []


def test_every_later_write_of_a_deleted_run_is_refused_and_leaves_nothing(store):
    dataset_id = _upload(store, 120)
    run_id = store.create_run({"data": {}}, dataset_id, "mlp", "churn", 3, claim=True)
    folder = store.run_dir(run_id)
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text("{}")
    store.delete_run(run_id)
    assert store.stop_requested(run_id)  # its training stops at the next look
    assert not store.heartbeat(run_id)
    with pytest.raises(DeletedError):
        store.update_run(run_id, phase="Fitting baseline 1 of 4")
    with pytest.raises(DeletedError):
        store.add_epoch(run_id, 1, loss=0.5, val_loss=0.5, metric=0.5, val_metric=0.5, seconds=0.1)
    with pytest.raises(DeletedError), atomic_write(folder / "random_forest.skops") as tmp:
        tmp.write_bytes(b"model")
    assert not folder.exists() and store.epochs(run_id) == []


def test_a_write_that_lands_as_its_run_is_deleted_is_removed_again(store):
    dataset_id = _upload(store, 120)
    run_id = store.create_run({"data": {}}, dataset_id, "mlp", "churn", 3, claim=True)
    folder = store.run_dir(run_id)
    with pytest.raises(DeletedError), atomic_write(folder / "test_outputs.npz") as tmp:
        tmp.write_bytes(b"predictions of the test rows")
        store.delete_run(run_id)  # between the worker's write and its rename into place
    assert not folder.exists()


# ---- a viewer's refused upload, and folders no row names ---------------------------------------
@pytest.fixture
def team(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_AUTH", "team")
    monkeypatch.delenv("DLCORE_ADMINS", raising=False)
    monkeypatch.delenv("DLCORE_ALLOWED_DOMAINS", raising=False)
    raw = Store.open(tmp_path / "home")
    shared = raw.as_actor(ALICE).create_workspace("Churn team")
    alice = raw.as_actor(ALICE, shared)
    alice.add_member(shared, CAROL.email, "viewer")
    return raw, shared


@pytest.mark.parametrize("how", ["upload", "answer_first", "sample"])
def test_a_viewers_refused_upload_leaves_no_file(team, how):
    raw, shared = team
    carol = raw.as_actor(CAROL, shared)
    content = churn_frame(80).to_csv(index=False).encode()
    with pytest.raises(AccessError, match="uploading data needs the editor role"):
        if how == "sample":
            datasets.register_sample(carol, "iris")
        else:
            datasets.register_bytes(carol, content, "churn.csv", answer_first=how == "answer_first")
    time.sleep(0.3)  # a copy written after the answer would have landed by now
    assert not (raw.home / "datasets").exists() or list((raw.home / "datasets").iterdir()) == []


def test_folders_no_row_names_are_removed_after_an_age_with_a_log_line(store, caplog):
    kept = _upload(store, 80)
    stale = [store.dataset_dir("leftover-upload"), store.run_dir("leftover-run"), store.scoring_dir("leftover-scoring")]
    for folder in stale:
        folder.mkdir(parents=True)
        (folder / "source.csv").write_text("name,email\nAnn,ann@example.com\n")
        old = time.time() - 2 * 3600
        os.utime(folder / "source.csv", (old, old))
        os.utime(folder, (old, old))
    fresh = store.dataset_dir("upload-being-written")  # its row is stored when its files are
    fresh.mkdir(parents=True)
    (fresh / ".source.1234.tmp.csv").write_text("a,b\n")
    with caplog.at_level(logging.WARNING, logger="dlcore.store"):
        removed = store.sweep_orphans()
    assert sorted(removed) == sorted(stale)
    assert not any(f.exists() for f in stale)
    assert fresh.exists() and store.dataset_dir(kept).exists()
    assert sum("no record of the store names it" in r.getMessage() for r in caplog.records) == 3
    assert store.dataset(kept).id == kept


def test_a_deleted_records_folder_is_removed_by_the_sweep_whatever_its_age(store):
    dataset_id = _upload(store, 80)
    run_id = store.create_run({"data": {}}, dataset_id, "mlp", "churn", 3)
    store.delete_run(run_id)
    # A writer that does not go through the store (a library writing beside a model) brings it back.
    (store.run_dir(run_id)).mkdir(parents=True)
    (store.run_dir(run_id) / "checkpoint.bin").write_bytes(b"weights")
    assert store.sweep_orphans() == [store.run_dir(run_id)]
    assert not store.run_dir(run_id).exists()


# ---- no copy of deleted data in the database files ---------------------------------------------
SECRET_NAME = "customers-of-ZqXw-branch.csv"
SECRET_IBAN = "DE89370400440532013000"


def _store_secrets(store: Store) -> str:
    record, _ = datasets.register_bytes(store, churn_frame(80).to_csv(index=False).encode(), SECRET_NAME)
    run_id = store.create_run({"data": {}}, record.id, "mlp", "churn", 1)
    store.update_run(run_id, status="done", result={"models": {"mlp": {}}, "note": SECRET_IBAN * 3})
    scoring_id = store.create_scoring(run_id, "mlp", "new.csv")
    store.finish_scoring(scoring_id, "done", summary={"preview": [{"iban": SECRET_IBAN, "name": "Ann Example"}]})
    explanation_id = store.create_explanation(run_id, "mlp", "row")
    store.finish_explanation(explanation_id, "done", summary={"row": {"iban": SECRET_IBAN}})
    return record.id


def test_a_deleted_dataset_leaves_no_copy_in_the_sqlite_files(store):
    dataset_id = _store_secrets(store)
    files = [store.home / "store.db", store.home / "store.db-wal"]
    assert any(SECRET_IBAN.encode() in f.read_bytes() for f in files if f.exists())
    store.delete_dataset(dataset_id)
    for f in files:
        if f.exists():
            data = f.read_bytes()
            assert SECRET_IBAN.encode() not in data and SECRET_NAME.encode() not in data, f.name


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_deleted_dataset_leaves_no_copy_in_the_postgresql_tables(store, database, postgres):
    dataset_id = _store_secrets(store)
    url = os.environ["DLCORE_DATABASE_URL"]

    def table_bytes() -> bytes:
        postgres.sql(url, "CHECKPOINT")  # the pages as they are now, on disk
        paths = [r[0] for r in postgres.sql(url, """
            SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 't') AND pg_relation_filepath(c.oid) IS NOT NULL""")]
        return b"".join((postgres.folder / "data" / p).read_bytes() for p in paths
                        if (postgres.folder / "data" / p).exists())

    assert SECRET_IBAN.encode() in table_bytes()
    store.delete_dataset(dataset_id)
    data = table_bytes()
    assert SECRET_IBAN.encode() not in data and SECRET_NAME.encode() not in data


# ---- timing: another workspace's record is the same work as a missing id ----------------------
def test_another_workspaces_run_costs_the_same_queries_as_a_missing_id(team):
    raw, shared = team
    alice = raw.as_actor(ALICE, shared)
    dataset_id = _upload(alice, 60)
    run_id = alice.create_run({"data": {}}, dataset_id, "mlp", "churn", 1)
    dave = raw.as_actor(DAVE)
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    def asked(record_id: str) -> list[str]:
        statements.clear()
        with pytest.raises(NotFoundError) as caught:
            dave.run(record_id)
        return [*statements, str(caught.value).replace(record_id, "ID")]

    sa.event.listen(raw.engine, "before_cursor_execute", seen)
    try:
        other, missing = asked(run_id), asked("x" * len(run_id))
    finally:
        sa.event.remove(raw.engine, "before_cursor_execute", seen)
    assert other == missing and len(other) == 2  # one query, and the same words
