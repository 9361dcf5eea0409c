"""The executor setting (``DLCORE_EXECUTOR``) and what of the Ray executor needs no cluster.

A cluster that cannot be reached is tested here with real processes (the app's pool starts the
dispatcher; the CLI); everything that needs a running cluster is in ``tests/test_cluster.py``,
which runs it in a network namespace of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dlcore import cluster, config, datasets, fanout, runner
from dlcore.errors import SpecError
from dlcore.jobs import LocalPool
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.browser import free_port
from tests.conftest import ROOT, churn_frame, open_page, use_app_router_in_apptest, wait_until

use_app_router_in_apptest()


def _run(store) -> str:
    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    return runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=2)))


@pytest.fixture
def unreachable(monkeypatch):
    """The Ray executor, pointed at a loopback port nothing listens on."""
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("DLCORE_EXECUTOR", "ray")
    monkeypatch.setenv("RAY_ADDRESS", address)
    return address


def test_the_settings_say_what_is_wrong_and_the_allowed_values(monkeypatch):
    assert config.executor() == "local" and config.ray_cpus() == 1.0 and config.ray_resources() == {}
    monkeypatch.setenv("DLCORE_EXECUTOR", "spark")
    with pytest.raises(SpecError, match="DLCORE_EXECUTOR is 'spark'.*local, ray"):
        config.executor()
    monkeypatch.setenv("DLCORE_RAY_CPUS", "none")
    with pytest.raises(SpecError, match="DLCORE_RAY_CPUS is 'none'"):
        config.ray_cpus()
    monkeypatch.setenv("DLCORE_RAY_RESOURCES", "[1]")
    with pytest.raises(SpecError, match="JSON object"):
        config.ray_resources()
    monkeypatch.setenv("DLCORE_RAY_RESOURCES", '{"trainer": 2}')
    assert config.ray_resources() == {"trainer": 2.0}


@pytest.mark.slow  # the app's dispatcher, a real worker process
def test_a_cluster_that_cannot_be_reached_leaves_the_run_queued_and_its_page_says_why(store, home, unreachable):
    run_id = _run(store)
    pool = LocalPool(home, n_train=1, store=store)  # what the app starts on first use
    assert pool.executor == "ray"
    pool.ensure()
    try:
        assert list(pool.procs) == ["dispatch"]  # one dispatcher, no local trainers
        wait_until(lambda: (store.run(run_id).phase or "").startswith("Waiting for the cluster"), timeout=90)
    finally:
        pool.stop()
    run = store.run(run_id)
    assert run.status == "queued" and run.worker is None and not store.epochs(run_id)
    assert f"RAY_ADDRESS={unreachable} cannot be reached (nothing listens there: connection refused)" in run.phase
    assert "Check RAY_ADDRESS" in run.phase
    page = open_page(home, "train", run=run_id)
    shown = " ".join(m.value for m in page.markdown)
    assert "queued" in shown and f"RAY_ADDRESS={unreachable} cannot be reached" in shown and "Check RAY_ADDRESS" in shown


@pytest.mark.slow
def test_the_cli_says_the_cluster_cannot_be_reached_and_the_run_stays_queued(store, home, unreachable, tmp_path):
    data = tmp_path / "churn.csv"
    churn_frame(200).to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(home))
    done = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "churn", "--epochs", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: The Ray cluster at RAY_ADDRESS={unreachable} cannot be reached")
    assert "stays queued" in last
    (run,) = store.list_runs()
    assert run.status == "queued" and run.phase.startswith("Waiting for the cluster")
    assert store.release_reservations() == [run.id]  # the CLI that held it is gone: back in the queue
    assert store.run(run.id).worker is None


def test_a_ray_client_address_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    from dlcore.errors import ClusterError

    with pytest.raises(ClusterError, match="Ray Client address.*host:port"):
        cluster.connect()


def _raised(name: str, text: str) -> Exception:
    return type(name, (Exception,), {})(text)


def test_a_lost_job_is_told_with_its_node_and_the_reason():
    died = _raised("NodeDiedError", "Task failed because the node it was running on is dead or unavailable. "
                                    "Node IP: 10.0.0.5, node ID: 0a1b2c3d4e5f, This can happen ...")
    message = cluster.lost_message("run", None, died)
    assert message.startswith("The run was lost on the cluster node 10.0.0.5 (Ray node 0a1b2c3d): the node left "
                              "the cluster")
    assert "epochs so far are kept" in message and "Rerun" in message
    crashed = cluster.lost_message("run", "10.0.0.6 (Ray node 99aa88bb)", _raised("WorkerCrashedError", "..."))
    assert "10.0.0.6 (Ray node 99aa88bb): the process running it on that node died" in crashed
    memory = cluster.lost_message("explanation", None, _raised("OutOfMemoryError", "Task was killed ..."))
    assert "ran short of memory" in memory and memory.endswith("Ask for it again.")
    other = cluster.lost_message("scoring", None, _raised("RaySystemError", "System error: something\nmore"))
    assert "RaySystemError: System error: something" in other and "more" not in other


def test_a_gpu_is_asked_for_by_pictures_and_series_when_the_cluster_has_one():
    assert cluster.gpus_for("cnn_deep", 2) == 1 and cluster.gpus_for("lstm", 1) == 1
    assert cluster.gpus_for("mlp", 2) == 0  # an MLP trains as fast on CPUs
    assert cluster.gpus_for("cnn_small", 0) == 0  # no GPU in the cluster: CPUs
    assert cluster.gpus_for("no-such-template", 4) == 0


class _FakeRay:
    @staticmethod
    def cluster_resources():
        return {"CPU": 8.0, "GPU": 1.0}


def test_a_node_that_cannot_see_the_folder_refuses_the_run_and_the_dispatcher_keeps_jobs_off_it(
        store, tmp_path, monkeypatch):
    run_id = _run(store)
    monkeypatch.setattr(cluster, "_niced", True)  # this test process keeps its priority
    monkeypatch.setattr(cluster, "_this_node", lambda: "10.0.0.9 (Ray node deadbeef)")
    monkeypatch.setattr(cluster, "_node_id", lambda: "deadbeef" * 7)
    blind = tmp_path / "not-mounted"  # what the node has at the data folder's path
    result = cluster.run_task(store.url, str(blind), run_id)
    assert result["refused"] == "deadbeef" * 7 and result["node"] == "10.0.0.9 (Ray node deadbeef)"
    assert "cannot see the data folder" in result["message"] and str(blind) in result["message"]
    assert store.run(run_id).status == "queued" and not store.epochs(run_id)  # not claimed, nothing trained

    dispatcher = cluster.Dispatcher(store)
    monkeypatch.setattr(cluster, "_ray", lambda: _FakeRay)
    assert "label_selector" not in dispatcher.options("run", run_id)
    dispatcher.refused[result["refused"]] = result["message"]
    options = dispatcher.options("run", run_id)
    assert options["label_selector"] == {"ray.io/node-id": f"!in({'deadbeef' * 7})"}
    assert options["max_retries"] == 0 and options["num_cpus"] == 1.0 and options["num_gpus"] == 0
    assert f"1 node takes no jobs: it does not see the data folder {store.home}" in dispatcher._phase()
    idempotent = dispatcher.options("explanation", "x")
    assert idempotent["max_retries"] == cluster.IDEMPOTENT_RETRIES and idempotent["label_selector"]


def test_the_pieces_of_a_run_run_in_turn_by_default_with_each_named_first(tmp_path):
    said = []
    pieces = fanout.current()
    assert isinstance(pieces, fanout.InTurn) and not pieces.parallel
    out = list(pieces.map(lambda item, shared: item * shared["k"][0], [1, 2, 3], {"k": [10]}, tmp_path,
                          before=lambda i: said.append(i)))
    assert out == [(0, 10), (1, 20), (2, 30)] and said == [0, 1, 2]
    with fanout.use(cluster.RayPieces()):
        assert fanout.current().parallel and fanout.current().where == "the cluster"
    assert fanout.current() is pieces


@pytest.mark.slow  # two real processes that import Ray
def test_a_ray_task_runs_at_the_workers_niceness_set_not_added_to_rays():
    """Ray starts its workers at nice 15; a task adding DLCORE_WORKER_NICE's 10 ran at 19, which
    a busy neighbour at nice 0 starves. Set: 10 where raising it back is allowed (root), else 15."""
    code = ("import os; from dlcore import cluster; cluster._start_piece(); "
            "print(os.getpriority(os.PRIO_PROCESS, 0))")
    env = {**os.environ, "DLCORE_WORKER_NICE": "10"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.nice(15), cwd=ROOT, check=True)
    assert int(done.stdout.split()[-1]) == (10 if os.geteuid() == 0 else 15)
    lower = subprocess.run([sys.executable, "-c", code], env={**env, "DLCORE_WORKER_NICE": "18"}, capture_output=True,
                           text=True, timeout=120, preexec_fn=lambda: os.nice(15), cwd=ROOT, check=True)
    assert int(lower.stdout.split()[-1]) == 18
