"""The store on SQLite and on a real PostgreSQL server (tests/pg.py): records, claims, recovery.

Every test of the store's records runs on both databases (``database``); PostgreSQL's own
concurrency (many claimers at once, short transactions) is tested where SQLite would hide it.
"""

import os
import subprocess
import sys
import time

import pytest

from dlcore.errors import NotFoundError, StoreError
from dlcore.store import Store, atomic_write
from tests.conftest import DATABASES

both = pytest.mark.parametrize("database", DATABASES, indirect=True)


def _dataset(store, sha="a" * 64):
    return store.insert_dataset(id="ds1", sha256=sha, name="x.csv", kind="tabular", format="csv", n_rows=3,
                                n_cols=2, size_bytes=10, profile={"columns": [{"name": "y"}]}, report={"notes": []})


@both
def test_dataset_and_run_round_trip(store):
    record = _dataset(store)
    assert store.dataset_by_hash("a" * 64).id == record.id == "ds1"
    run_id = store.create_run({"k": 1}, "ds1", "mlp", "y", epochs_total=5)
    assert len(run_id) >= 16 and run_id != store.create_run({}, "ds1", "mlp", "y", 5)
    run = store.run(run_id)
    assert (run.status, run.spec, run.epochs_total, run.template) == ("queued", {"k": 1}, 5, "mlp")
    store.add_epoch(run_id, 1, loss=0.7, val_loss=0.8, metric=0.6, val_metric=0.55, seconds=0.1, epochs_total=5)
    store.add_epoch(run_id, 2, loss=0.5, val_loss=0.6, metric=0.7, val_metric=0.65, seconds=0.1, epochs_total=5)
    assert [e["val_loss"] for e in store.epochs(run_id)] == [0.8, 0.6]
    run = store.run(run_id)
    assert run.epochs_done == 2 and run.progress == pytest.approx(0.4)
    store.update_run(run_id, result={"a": [1, 2]})
    assert store.run(run_id).result == {"a": [1, 2]}


@both
def test_unknown_ids_give_a_clear_message(store):
    with pytest.raises(NotFoundError, match="No run with id 'nope'"):
        store.run("nope")
    with pytest.raises(NotFoundError, match="Data page"):
        store.dataset("nope")


@both
def test_a_run_is_claimed_once(store):
    _dataset(store)
    first = store.create_run({}, "ds1", "mlp", "y", 1)
    time.sleep(0.01)
    second = store.create_run({}, "ds1", "mlp", "y", 1)
    other = Store.open(store.home)  # a second worker on the same database
    assert store.claim_next_run() == first
    assert other.claim_next_run() == second
    assert store.claim_next_run() is None and other.claim_next_run() is None


@both
def test_stopping_a_queued_run_cancels_it_at_once(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 1)
    store.request_stop(run_id)
    assert store.run(run_id).status == "cancelled"
    assert store.claim_next_run() is None


@both
def test_runs_whose_worker_died_are_marked_interrupted_and_keep_their_epochs(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 10)
    store.claim_next_run()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    store.update_run(run_id, worker=f"{socket.gethostname()}:{dead.pid}")
    store.add_epoch(run_id, 1, loss=1.0, val_loss=1.0, metric=None, val_metric=None, seconds=0.1)
    alive = store.create_run({}, "ds1", "mlp", "y", 10)
    store.claim_next_run()
    store.update_run(alive, worker=f"{socket.gethostname()}:{os.getpid()}")
    assert store.recover_interrupted() == [run_id]
    run = store.run(run_id)
    assert run.status == "interrupted" and "Rerun" in run.message
    assert len(store.epochs(run_id)) == 1
    assert store.run(alive).status == "running"


@both
def test_a_stale_heartbeat_from_another_host_is_interrupted(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 10)
    store.claim_next_run()
    store.update_run(run_id, worker="elsewhere:123", heartbeat_at=time.time() - 600)
    assert store.recover_interrupted() == [run_id]


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "model.keras"
    with pytest.raises(RuntimeError):
        with atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as tmp:
        assert tmp.suffix == ".keras"
        tmp.write_text("whole")
    assert target.read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_a_full_disk_gives_a_store_error_and_no_partial_file(tmp_path, monkeypatch):
    import errno

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StoreError, match="No space left on device.*Free some disk space"):
        with atomic_write(tmp_path / "x.txt") as tmp:
            tmp.write_text("x")
    assert list(tmp_path.iterdir()) == []


@both
def test_a_bad_upload_leaves_nothing_behind_and_a_good_one_is_stored_once(store):
    from dlcore import datasets
    from dlcore.errors import DataError

    with pytest.raises(DataError, match="empty"):
        datasets.register_bytes(store, b"", "empty.csv")
    assert not (store.home / "datasets").exists() or not any((store.home / "datasets").iterdir())
    content = b"a;b\n" + b"".join(f"{i},5;{i % 3}\n".encode() for i in range(30))
    first, created = datasets.register_bytes(store, content, "euro.csv")
    again, created_again = datasets.register_bytes(store, content, "renamed.csv")
    assert created and not created_again and again.id == first.id
    assert sorted(p.name for p in store.dataset_dir(first.id).iterdir()) == ["data.parquet", "source.csv"]
    assert datasets.load_frame(store, first.id)["a"].tolist()[:2] == [0.5, 1.5]


@both
def test_a_run_created_claimed_is_never_handed_to_a_worker(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 1, claim=True)
    run = store.run(run_id)
    assert run.status == "running" and run.worker.endswith(f":{os.getpid()}")
    assert Store.open(store.home).claim_next_run() is None
    assert store.recover_interrupted() == []  # its process is alive and its heartbeat fresh


# ---- many claimers at once, reservations, upgrades, the shared folder ----------------------
def _claimer(url: str, home: str, role: str, start, out) -> None:
    """One worker process: wait for the others, then claim (or reserve, as a dispatcher) until the queue is empty."""
    got = []
    store = Store(url, home)
    start.wait()
    while True:
        if role == "claim":
            taken = [x for x in [store.claim_next_run()] if x]
        else:
            taken = store.reserve_runs(f"ray:{role}:{os.getpid()}", 3, "Handed to the cluster")
        if not taken:
            break
        got += taken
    out.put((role, got))


@both
def test_many_claimers_at_once_never_take_one_run_twice(store):
    import multiprocessing as mp

    _dataset(store)
    queued = {store.create_run({}, "ds1", "mlp", "y", 1) for _ in range(80)}
    ctx = mp.get_context("fork")
    start, out = ctx.Barrier(10), ctx.Queue()
    roles = ["claim"] * 6 + ["dispatcher-a", "dispatcher-b", "dispatcher-c", "dispatcher-d"]
    procs = [ctx.Process(target=_claimer, args=(store.url, str(store.home), role, start, out)) for role in roles]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    taken = [run_id for _, got in results for run_id in got]
    assert len(taken) == len(set(taken)) == 80 and set(taken) == queued
    assert sum(1 for role, got in results if got) >= 2  # really at once: more than one process got work
    for role, got in results:  # the store agrees with what each process was told
        for run_id in got:
            run = store.run(run_id)
            if role == "claim":
                assert run.status == "running" and run.worker.rpartition(":")[2].isdigit()
            else:
                assert run.status == "queued" and run.worker.startswith(f"ray:{role}:")


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_node_claims_a_handed_run_while_the_dispatchers_heartbeat_holds_its_row(store):
    """The dispatcher touches the runs it holds every few seconds (an UPDATE that locks their rows
    for a moment). A node's claim of one such run waited for nothing: it skipped the locked row, read
    it as taken, and the run stayed queued for good (seen in CI beside a busy test process)."""
    import threading

    import sqlalchemy as sa

    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 3)
    owner = "ray:elsewhere:1"
    assert store.reserve_runs(owner, 5, "Handed to the Ray cluster") == [run_id]
    claimed: list[bool] = []
    with store.engine.connect() as conn:
        tx = conn.begin()
        conn.execute(sa.text("UPDATE runs SET heartbeat_at = heartbeat_at WHERE id = :id"), {"id": run_id})
        claim = threading.Thread(target=lambda: claimed.append(store.claim_run(run_id, node="10.0.0.7")))
        claim.start()
        claim.join(1.0)
        assert claim.is_alive()  # it waits for the heartbeat's transaction instead of skipping the row
        tx.commit()
    claim.join(10)
    assert claimed == [True] and store.run(run_id).status == "running"


@both
def test_a_run_handed_to_a_dispatcher_waits_for_its_node_and_comes_back_if_the_dispatcher_is_gone(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 3)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    owner = f"ray:{socket.gethostname()}:{dead.pid}"
    assert store.reserve_runs(owner, 5, "Handed to the Ray cluster") == [run_id]
    assert store.claim_next_run() is None  # a local worker never takes a handed-over run
    assert store.run(run_id).phase == "Handed to the Ray cluster"
    assert store.release_reservations() == [run_id]  # its dispatcher's process is gone
    assert store.run(run_id).worker is None and store.reserve_runs("ray:x:1", 5, "again") == [run_id]
    assert store.claim_run(run_id, node="10.0.0.7 (node 1a2b3c4d)")
    assert not store.claim_run(run_id, node="elsewhere")  # a second task for the same run does nothing
    run = store.run(run_id)
    assert (run.status, run.node) == ("running", "10.0.0.7 (node 1a2b3c4d)")
    assert run.worker == f"{socket.gethostname()}:{os.getpid()}"
    assert store.fail_run(run_id, "node lost") and not store.fail_run(run_id, "again")
    assert store.run(run_id).message == "node lost"


@both
def test_queued_runs_say_why_they_wait(store):
    _dataset(store)
    waiting = store.create_run({}, "ds1", "mlp", "y", 3)
    running = store.create_run({}, "ds1", "mlp", "y", 3)
    store.update_run(running, status="running")
    assert store.note_queued("The Ray cluster cannot be reached") == 1
    assert store.run(waiting).phase == "The Ray cluster cannot be reached"
    assert store.run(running).phase != "The Ray cluster cannot be reached"


@both
def test_a_store_made_before_the_node_column_is_upgraded_when_opened(store, database):
    import sqlalchemy as sa

    _dataset(store)
    run_id = store.create_run({"k": 1}, "ds1", "mlp", "y", 3)
    with store.engine.begin() as conn:  # the shape an older version made
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN node"))
        conn.execute(sa.text("DROP TABLE meta"))
    store.engine.dispose()
    (store.home / ".dlcore-store-id").unlink()
    upgraded = Store.open(store.home)
    assert "node" in {c["name"] for c in sa.inspect(upgraded.engine).get_columns("runs")}
    run = upgraded.run(run_id)
    assert run.spec == {"k": 1} and run.node is None
    assert upgraded.store_id and (store.home / ".dlcore-store-id").read_text().strip() == upgraded.store_id
    upgraded.check_home()
    assert Store.open(store.home).store_id == upgraded.store_id  # opened again: nothing changes


@both
def test_a_node_that_cannot_see_the_data_folder_refuses_jobs(store, tmp_path):
    store.check_home()
    elsewhere = Store(store.url, tmp_path / "not-mounted")  # the same database, another folder at the path
    with pytest.raises(StoreError, match=r"cannot see the data folder.*not-mounted.*mount it there"):
        elsewhere.check_home()
    assert not (tmp_path / "not-mounted" / ".dlcore-store-id").exists()
    (tmp_path / "not-mounted" / ".dlcore-store-id").write_text("another-store\n")
    with pytest.raises(StoreError, match="another store's files"):
        elsewhere.check_home()


def test_a_database_url_in_a_message_hides_its_password():
    from dlcore.store import display_url

    assert display_url("postgresql+psycopg://dlcore:s3cret@db.example:5432/dlcore") == \
        "postgresql+psycopg://dlcore:***@db.example:5432/dlcore"
