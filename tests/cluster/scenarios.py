"""The team server for real: PostgreSQL, a Ray head and one more worker node, and the app, started
by the team server's commands (docs/team-server.md) as written, then trained on through the app's pages and the
CLI. Run by ``tests/test_cluster.py`` inside a network namespace whose only interface is
loopback (Ray binds a node to the machine's own interface whenever one exists); not collected by
the suite itself (the file name does not start with ``test_``).

The cluster starts once for the module; the scenarios run in order and the last one takes the
worker node away:

| scenario | what must happen |
|---|---|
| the app's page opens a queued run | the app starts its dispatcher, the run trains on the cluster |
| three runs submitted at once | all finish with their leaderboards, each recording its node |
| scoring and an explanation | both run on the cluster and are kept as on one machine |
| Stop on the page | the run on the cluster stops after its batch and is evaluated |
| ``python -m dlcore fit`` | trains through the cluster (baselines fitted at once on its nodes) with the same scores as on one machine |
| nothing leaves the cluster | no dashboard listening, usage statistics off in the cluster's metadata |
| a node that does not see the data folder | checked when a dispatcher starts: it takes no jobs, and says why |
| the worker node lost mid-run | the run fails naming the node and the reason, its epochs kept, not restarted |
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, churn_frame, wait_until

HEAD_IP, NODE_IP, BLIND_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"
APP = "http://127.0.0.1:8501"


def readme_block() -> list[str]:
    """The lines of the team server's cluster block (docs/team-server.md: the first bash block under its heading)."""
    text = (ROOT / "docs" / "team-server.md").read_text()
    section = text.split("## PostgreSQL and a Ray cluster", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _our_processes() -> list[tuple[int, str]]:
    """Every process in this network namespace (all started by this session), but this one and its parents."""
    me = os.readlink("/proc/self/ns/net")
    mine = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()[1])
        mine.add(pid)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if os.readlink(entry / "ns/net") == me:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            continue
    return found


class Catcher(http.server.BaseHTTPRequestHandler):
    """Loopback port 9 (where the docs point Ray's usage report) and the HTTP proxy of every
    process of the cluster: any HTTP call a Ray process tries beyond the cluster lands here."""

    seen: list[tuple[str, str, str]] = []

    def _record(self) -> None:
        Catcher.seen.append((self.command, self.path, self.headers.get("Host", "")))
        self.send_response(503)
        self.end_headers()

    do_GET = do_POST = do_PUT = do_CONNECT = do_HEAD = _record

    def log_message(self, *args) -> None:
        pass


@dataclass
class Team:
    env: dict[str, str]
    base: Path
    app: subprocess.Popen

    @property
    def home(self) -> Path:
        return Path(self.env["DLCORE_HOME"])

    def store(self):
        from dlcore.store import Store

        return Store(self.env["DLCORE_DATABASE_URL"], self.home)

    def stop_app(self) -> None:
        if self.app.poll() is None:
            self.app.send_signal(signal.SIGTERM)
            self.app.wait(timeout=30)


@pytest.fixture(scope="module")
def team():
    assert [name for _, name in socket.if_nameindex()] == ["lo"], "run inside a network namespace of its own"
    base = Path(tempfile.mkdtemp(prefix="dlcore-team-"))
    base.chmod(0o755)  # PostgreSQL runs as postgres and must reach its folder
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DLCORE_", "RAY_"))}
    env.update(HEAD_IP=HEAD_IP, NODE_IP=NODE_IP, CLUSTER_NET="127.0.0.0/8", DLCORE_HOME=str(base / "shared"),
               PGDATA=str(base / "pgdata"), DLCORE_DB_PASSWORD=secrets.token_hex(12),
               RAY_AUTH_TOKEN_PATH=str(base / "ray-token"), RAY_TMPDIR=str(base / "ray"), TF_CPP_MIN_LOG_LEVEL="2",
               # The suite's other process trains at nice 0 beside the cluster: its jobs run at the
               # same priority here (a team server's default, 10, yields to its web server).
               DLCORE_WORKER_NICE="0")
    (base / "ray").mkdir()
    (base / "home").mkdir()
    catcher = http.server.ThreadingHTTPServer(("127.0.0.1", 9), Catcher)
    threading.Thread(target=catcher.serve_forever, daemon=True).start()
    loopback = ",".join([HEAD_IP, NODE_IP, BLIND_IP, "localhost"])
    env.update(HOME=str(base / "home"), http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy=loopback, NO_PROXY=loopback)
    lines = readme_block()
    app_line = next(i for i, line in enumerate(lines) if line.startswith("streamlit run"))
    # Every command before the app's, as written, in one shell; then the environment it left.
    setup = "\n".join(lines[:app_line]) + "\nenv -0 > " + str(base / "env")
    done = subprocess.run(["bash", "-e", "-c", setup], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    env = dict(item.split("=", 1) for item in (base / "env").read_text().split("\0") if "=" in item)
    log = open(base / "app.log", "wb")
    app = subprocess.Popen(["bash", "-c", "exec " + lines[app_line]], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DLCORE_", "RAY_"))})
    team = Team(env, base, app)
    try:
        wait_until(lambda: _healthy(), timeout=90, every=0.5)
        yield team
    finally:
        team.stop_app()
        subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", env["PGDATA"],
                        "-m", "fast", "-w", "stop"], capture_output=True)
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for pid, _ in _our_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        catcher.shutdown()
        for name in ("app.log",):
            if (base / name).exists():
                print((base / name).read_text()[-2000:])
        shutil.rmtree(base, ignore_errors=True)


def _waiting_for(team: Team, predicate, timeout: float, runs: tuple[str, ...] = ()):
    """``wait_until``, and when it fails, what the runs' records, the app's and the dispatcher's
    logs and Ray's logs say (a run that never ends is otherwise a bare timeout)."""
    try:
        return wait_until(predicate, timeout=timeout)
    except AssertionError as exc:
        store = team.store()
        lines = [str(exc)]
        for run_id in runs:
            run = store.run(run_id)
            lines.append(f"run {run_id}: {run.status} worker={run.worker} node={run.node} phase={run.phase!r} "
                         f"message={run.message!r} epochs={len(store.epochs(run_id))}")
        for path in sorted((team.home / "logs").glob("*.log")) + [team.base / "app.log"]:
            lines.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        for path in sorted((team.base / "ray").glob("session_latest/logs/*")):
            text = path.read_text(errors="replace") if path.is_file() else ""
            if any(r in text for r in runs) or path.name.startswith(("raylet", "gcs_server")) and "rror" in text:
                lines.append(f"--- ray {path.name}\n{text[-2500:]}")
        raise AssertionError("\n".join(lines)) from None


def _healthy() -> bool:
    try:
        return urllib.request.urlopen(f"{APP}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser(team):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _nodes() -> dict[str, str]:
    """The cluster's live nodes as the store names them: address (Ray node id, short) -> address."""
    import ray

    from dlcore import cluster

    cluster.connect()
    return {f"{n['NodeManagerAddress']} (Ray node {n['NodeID'][:8]})": n["NodeManagerAddress"]
            for n in ray.nodes() if n["Alive"]}


def _submit(store, dataset_id: str, **train) -> str:
    from dlcore import runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec

    return runner.submit(store, RunSpec(DataSpec(dataset_id, "churn"), train=TrainSpec(**{"epochs": 3, **train})))


def _dataset(store, rows: int = 300) -> str:
    from dlcore import datasets

    record, _ = datasets.register_bytes(store, churn_frame(rows).to_csv(index=False).encode(), f"churn-{rows}.csv")
    return record.id


# ---- the scenarios, in order ----------------------------------------------------------------
def test_the_app_trains_a_queued_run_on_the_cluster(team, browser):
    store = team.store()
    assert store.url.startswith("postgresql+psycopg://dlcore:") and "127.0.0.1:5432" in store.url
    run_id = _submit(store, _dataset(store))
    page = browser.new_page()
    page.goto(f"{APP}/train?run={run_id}")  # the first page view starts the app's dispatcher
    page.get_by_text(f"Run {run_id}").wait_for(timeout=60_000)
    _waiting_for(team, lambda: store.run(run_id).finished, 240, (run_id,))
    run = store.run(run_id)
    assert run.status == "done", run.message
    assert run.node in _nodes()
    assert len(run.result["leaderboard"]["rows"]) == 5
    page.get_by_text("See the leaderboard and charts").wait_for(timeout=30_000)
    dispatch_log = (team.home / "logs" / "worker-dispatch.log").read_text()
    assert "jobs go to a Ray cluster of 2 nodes" in dispatch_log
    assert "2 of 2 nodes checked: 2 see the data folder" in dispatch_log
    page.close()


def test_three_runs_submitted_at_once_all_finish_each_with_the_node_that_ran_it(team):
    store = team.store()
    dataset_id = _dataset(store, 400)
    runs = [_submit(store, dataset_id, seed=seed) for seed in (1, 2, 3)]
    _waiting_for(team, lambda: all(store.run(r).finished for r in runs), 300, tuple(runs))
    nodes = _nodes()
    records = [store.run(r) for r in runs]
    for run in records:
        assert run.status == "done", run.message
        assert run.node in nodes, (run.node, nodes)
        board = run.result["leaderboard"]
        assert [r["model"] for r in board["rows"]] and {r["family"] for r in board["rows"]} == {"deep", "baseline"}
        assert len(board["rows"]) == 5 and all(r["test_score"] is not None for r in board["rows"])
        assert len(store.epochs(run.id)) == run.result["deep"]["epochs_run"]
        assert not (store.run_dir(run.id) / ".pieces").exists()  # the baselines' shared arrays are cleaned up
    # At once: every run started before any of them finished (4 CPUs, 1 asked per run).
    assert max(r.started_at for r in records) < min(r.finished_at for r in records)


def test_scoring_and_an_explanation_run_on_the_cluster(team):
    import pandas as pd

    from dlcore import explain, jobs

    store = team.store()
    run = next(r for r in store.list_runs(statuses=("done",)))
    new = churn_frame(12, seed=5).drop(columns=["churn"])
    scoring_id = jobs.submit_scoring(store, run.id, "random_forest", new.to_csv(index=False).encode(), "new.csv")
    explanation_id = jobs.submit_explanation(store, run.id, "gradient_boosting")
    wait_until(lambda: store.scoring(scoring_id).status in ("done", "failed")
               and store.explanation(explanation_id).status in ("done", "failed"), timeout=180)
    assert store.scoring(scoring_id).status == "done", store.scoring(scoring_id).message
    scored = pd.read_csv(store.scoring_dir(scoring_id) / "scored.csv")
    assert len(scored) == 12 and set(scored["prediction"]) <= {"yes", "no"}
    assert set(new.columns) < set(scored.columns)
    assert store.explanation(explanation_id).status == "done", store.explanation(explanation_id).message
    saved = explain.load_global(store, run.id, "gradient_boosting")
    assert {d["feature"] for d in saved["importance"]} == {"tenure", "charges", "plan", "region"}


def test_stop_on_the_page_stops_a_run_on_the_cluster(team, browser):
    store = team.store()
    run_id = _submit(store, _dataset(store, 3000), epochs=400, patience=400, batch_size=16)
    page = browser.new_page()
    page.goto(f"{APP}/train?run={run_id}")
    _waiting_for(team, lambda: len(store.epochs(run_id)) >= 2, 180, (run_id,))
    assert store.run(run_id).node in _nodes()
    # The run's Ray worker trains at DLCORE_WORKER_NICE as set (0 here), not at Ray's 15 plus it.
    trainers = [pid for pid, cmd in _our_processes() if f"dlcore-run-{run_id}" in cmd]
    assert trainers and {os.getpriority(os.PRIO_PROCESS, pid) for pid in trainers} == {0}
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until(lambda: store.run(run_id).finished, timeout=180)
    run = store.run(run_id)
    assert run.status == "stopped", run.message
    assert 2 <= run.epochs_done < 400 and run.result["deep"]["stopped_by_user"]
    assert len(run.result["leaderboard"]["rows"]) == 5
    page.close()


def test_a_run_deleted_while_it_trains_on_the_cluster_leaves_nothing(team):
    store = team.store()
    dataset_id = _dataset(store, 3000)
    run_id = _submit(store, dataset_id, epochs=400, patience=400, batch_size=16)
    _waiting_for(team, lambda: len(store.epochs(run_id)) >= 2, 180, (run_id,))
    assert store.run(run_id).node in _nodes()
    store.delete_run(run_id)
    # Its task on the node stops at its next write, and nothing of it comes back from there.
    wait_until(lambda: not any(f"dlcore-run-{run_id}" in cmd for _, cmd in _our_processes()), timeout=120)
    assert not store.run_dir(run_id).exists() and store.epochs(run_id) == []
    # The app's dispatcher lived through the deletion of a run it had in flight.
    after = _submit(store, dataset_id, epochs=1)
    _waiting_for(team, lambda: store.run(after).status == "done", 240, (after,))
    assert not store.run_dir(run_id).exists()


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlcore", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_cli_fits_through_the_cluster_with_the_scores_of_one_machine(team, tmp_path):
    data = tmp_path / "churn.csv"
    churn_frame(400, seed=3).to_csv(data, index=False)
    args = ("fit", str(data), "--target", "churn", "--epochs", "1", "--seed", "7")
    on_cluster = _cli(team.env, *args)
    alone = {k: v for k, v in team.env.items() if not k.startswith(("DLCORE_", "RAY_"))}
    local = _cli(dict(alone, DLCORE_HOME=str(tmp_path / "alone")), *args)
    out, err = on_cluster.communicate(timeout=300)
    errors = team.home / "logs" / "cli-errors.log"
    assert on_cluster.returncode == 0, err[-3000:] + (errors.read_text()[-3000:] if errors.exists() else "")
    local_out, local_err = local.communicate(timeout=300)
    assert local.returncode == 0, local_err[-3000:]
    clustered, single = json.loads(out), json.loads(local_out)
    assert "executing on the Ray cluster" in err
    run = team.store().run(clustered["run_id"])
    assert run.status == "done" and run.node in _nodes()
    listed = subprocess.run([sys.executable, "-m", "dlcore", "runs", "--json"], cwd=ROOT, env=team.env,
                            capture_output=True, text=True, timeout=120)
    assert {r["run_id"]: r["node"] for r in json.loads(listed.stdout)}[run.id] == run.node
    assert team.store().run(clustered["run_id"]).result["models"].keys() == {r["model"] for r in clustered["leaderboard"]}
    # The baselines, fitted at once on the cluster's nodes, score exactly as when fitted in turn here.
    baselines = {r["model"]: r["test_score"] for r in clustered["leaderboard"] if r["family"] == "baseline"}
    assert baselines == {r["model"]: r["test_score"] for r in single["leaderboard"] if r["family"] == "baseline"}
    assert len(baselines) == 4


def test_nothing_leaves_the_cluster(team):
    import ray
    from ray._common.usage import usage_constants

    _nodes()
    with pytest.raises(OSError):  # no dashboard
        socket.create_connection((HEAD_IP, 8265), timeout=2).close()
    metadata = json.loads(ray.experimental.internal_kv._internal_kv_get(
        usage_constants.CLUSTER_METADATA_KEY, namespace="cluster"))
    # The head records more than its versions only when usage statistics are on.
    assert set(metadata) == {"ray_version", "python_version", "ray_init_cluster"}, metadata
    assert not list(team.base.joinpath("ray").rglob("usage_stats.json"))
    # No Ray process tried to reach anything beyond the cluster (a cloud's metadata service, Ray's
    # usage server): the only request that reached the catcher is the one report Ray sends to
    # say its statistics are off, which the documented settings point at loopback.
    assert all(method == "POST" and path == "/" and host == "127.0.0.1:9" for method, path, host in Catcher.seen), \
        Catcher.seen
    # Every process of the cluster listens on loopback only (the namespace has nothing else).
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout.split()
    assert all(a.rsplit(":", 1)[0].strip("[]").removeprefix("::ffff:") in ("127.0.0.1", "127.0.0.2", "*", "0.0.0.0", "::")
               for a in listening[3::5])


def test_a_node_that_cannot_see_the_data_folder_takes_no_jobs(team):
    from dlcore import cluster

    team.stop_app()  # its dispatcher leaves with it; from here the tests hand runs over themselves
    # A third node whose machine mounts nothing at the shared folder's path (an empty tmpfs there).
    joined = subprocess.run(
        ["unshare", "-m", "sh", "-c", f'mount -t tmpfs none "$DLCORE_HOME" && exec ray start --address={HEAD_IP}:6379 '
                                      f"--node-ip-address={BLIND_IP} --num-cpus=1 --disable-usage-stats "
                                      "--object-store-memory=100000000"],
        env=team.env, capture_output=True, text=True, timeout=120)
    assert joined.returncode == 0, joined.stderr[-2000:]
    wait_until(lambda: len(_nodes()) == 3, timeout=60)
    said = []
    dispatcher = cluster.Dispatcher(team.store(), say=said.append)
    dispatcher.connect()
    ((node_id, message),) = dispatcher.refused.items()
    assert f"{BLIND_IP} (Ray node {node_id[:8]})" in _nodes()
    assert "cannot see the data folder of the store" in message and str(team.home) in message
    assert any(line.startswith(f"node {BLIND_IP} (Ray node ") and "takes no jobs" in line for line in said)
    assert "3 of 3 nodes checked: 2 see the data folder" in said[-1]
    assert dispatcher.options("scoring", "x")["label_selector"] == {"ray.io/node-id": f"!in({node_id})"}


def test_the_worker_node_lost_mid_run_fails_the_run_with_the_node_and_the_reason(team, monkeypatch):
    from dlcore import cluster

    store = team.store()
    # Ray's own resource "node:<address>" puts the run on the worker node.
    monkeypatch.setenv("DLCORE_RAY_RESOURCES", json.dumps({f"node:{NODE_IP}": 0.01}))
    run_id = _submit(store, _dataset(store, 3000), epochs=400, patience=400, batch_size=16)
    dispatcher = cluster.Dispatcher(store, runs=[run_id])
    dispatcher.connect()
    dispatcher.hand_over()
    wait_until(lambda: dispatcher.wait(0.2) >= 0 and len(store.epochs(run_id)) >= 2, timeout=180)
    node = store.run(run_id).node
    assert node.startswith(f"{NODE_IP} (Ray node ")
    doomed = [pid for pid, cmd in _our_processes() if re.search(rf"{re.escape(NODE_IP)}\b", cmd)]
    assert any("raylet" in cmd for pid, cmd in _our_processes() if pid in doomed)
    for pid in doomed:  # the machine gone: its raylet and every process of the node at once
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: dispatcher.wait(0.5) >= 0 and store.run(run_id).finished, timeout=120)
    run = store.run(run_id)
    assert run.status == "failed"
    assert node in run.message and "left the cluster" in run.message and "Rerun" in run.message, run.message
    kept = len(store.epochs(run_id))
    assert kept >= 2 and [e["epoch"] for e in store.epochs(run_id)] == list(range(1, kept + 1))
    # Not restarted: nothing of it is left with Ray, and it stays failed with the epochs it had.
    assert not dispatcher.inflight
    assert store.run(run_id).status == "failed" and len(store.epochs(run_id)) == kept
    assert re.search(r"lost on the cluster node 127\.0\.0\.2 \(Ray node [0-9a-f]{8}\)", run.message)
