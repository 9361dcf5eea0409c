import os
import subprocess
import sys
import time

import pytest

from dlcore.errors import NotFoundError, StoreError
from dlcore.store import Store, atomic_write


def _dataset(store, sha="a" * 64):
    return store.insert_dataset(id="ds1", sha256=sha, name="x.csv", kind="tabular", format="csv", n_rows=3,
                                n_cols=2, size_bytes=10, profile={"columns": [{"name": "y"}]}, report={"notes": []})


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


def test_unknown_ids_give_a_clear_message(store):
    with pytest.raises(NotFoundError, match="No run with id 'nope'"):
        store.run("nope")
    with pytest.raises(NotFoundError, match="Data page"):
        store.dataset("nope")


def test_a_run_is_claimed_once(store):
    _dataset(store)
    first = store.create_run({}, "ds1", "mlp", "y", 1)
    time.sleep(0.01)
    second = store.create_run({}, "ds1", "mlp", "y", 1)
    other = Store.open(store.home)  # a second worker on the same database
    assert store.claim_next_run() == first
    assert other.claim_next_run() == second
    assert store.claim_next_run() is None and other.claim_next_run() is None


def test_stopping_a_queued_run_cancels_it_at_once(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 1)
    store.request_stop(run_id)
    assert store.run(run_id).status == "cancelled"
    assert store.claim_next_run() is None


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


def test_a_run_created_claimed_is_never_handed_to_a_worker(store):
    _dataset(store)
    run_id = store.create_run({}, "ds1", "mlp", "y", 1, claim=True)
    run = store.run(run_id)
    assert run.status == "running" and run.worker.endswith(f":{os.getpid()}")
    assert Store.open(store.home).claim_next_run() is None
    assert store.recover_interrupted() == []  # its process is alive and its heartbeat fresh
