"""The Ray executor against the local pool, on this machine: the same queued runs, time from
Submit to done (medians, ratio; target at most 1.05 for a run of a minute); Ray's idle memory
per node; and 10 queued runs on 1 against 2 local Ray worker nodes.

Ray binds a node to the machine's network interface whenever there is one, so as root the
script re-runs itself inside a network namespace whose only interface is loopback (as the
cluster tests do); everything it starts there is stopped at the end.

    python bench/cluster.py [--rows 20000] [--epochs 80] [--reps 3] [--queue 10]

Both sides run the same specs on a SQLite store each, with a warm worker (TensorFlow imported:
the local pool's trainer, and a Ray worker that ran a first run): the local pool's trainer
claims a run within 0.3 s; the Ray dispatcher hands it to a task on the node, whose baselines
then run as tasks of their own, at once.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.epoch_overhead import make_frame  # noqa: E402

HEAD, NODES = "127.0.0.1", ["127.0.0.2", "127.0.0.3"]


def _in_own_network() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def _ours() -> list[tuple[int, str]]:
    """Every process in this network namespace but this one and its parents (all started here)."""
    me, mine, pid = os.readlink("/proc/self/ns/net"), {os.getpid()}, os.getpid()
    while pid > 1:
        pid = int(open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()[1])
        mine.add(pid)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in mine:
            try:
                if os.readlink(entry / "ns/net") == me:
                    found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
            except OSError:
                pass
    return found


def _stop_everything() -> None:
    for pid, _ in _ours():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(1)


def _pss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _ray(*args: str, env: dict[str, str]) -> None:
    subprocess.run(["ray", "start", *args, "--disable-usage-stats", "--object-store-memory=100000000"],
                   env=env, check=True, capture_output=True)


def _node_memory() -> dict[str, float]:
    """PSS of each node's processes: a worker node's raylet and everything under it (its workers
    and agents); the head's also its GCS, monitor and client server. The dlcore processes (the
    dispatcher, the local pool) are not counted."""
    procs = dict(_ours())
    parent = {pid: int(open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()[1]) for pid in procs
              if Path(f"/proc/{pid}").exists()}

    def under(root: int) -> list[int]:
        found, todo = [root], [root]
        while todo:
            at = todo.pop()
            kids = [p for p, pp in parent.items() if pp == at]
            found += kids
            todo += kids
        return found

    nodes: dict[str, list[int]] = {}
    for pid, cmd in procs.items():
        if "/raylet/raylet " in cmd:
            ip = cmd.split("--node_ip_address=", 1)[1].split()[0]
            nodes["head" if ip == HEAD else ip] = under(pid)
    counted = {p for pids in nodes.values() for p in pids}
    extras = [p for p, cmd in procs.items() if p not in counted and "dlcore" not in cmd
              and any(k in cmd for k in ("gcs_server", "ray/", "ray.", "ray::"))]
    nodes["head"] = nodes.get("head", []) + extras
    return {name: _pss_mb(pids) for name, pids in nodes.items()}


def _submit(store, dataset_id: str, epochs: int, seed: int) -> str:
    from dlcore import runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec

    return runner.submit(store, RunSpec(DataSpec(dataset_id, "y"), train=TrainSpec(epochs=epochs, patience=epochs,
                                                                                   seed=seed)))


def _wait(store, run_ids: list[str], timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while not all(store.run(r).finished for r in run_ids):
        if time.monotonic() > deadline:
            raise RuntimeError("runs did not finish")
        time.sleep(0.2)
    bad = [store.run(r) for r in run_ids if store.run(r).status != "done"]
    if bad:
        raise RuntimeError(f"run {bad[0].id} {bad[0].status}: {bad[0].message}")


def _seconds(store, run_id: str) -> float:
    run = store.run(run_id)
    return run.finished_at - run.created_at


def overhead(base: Path, env: dict[str, str], rows: int, epochs: int, reps: int) -> dict:
    from dlcore import datasets
    from dlcore.jobs import LocalPool
    from dlcore.store import Store

    csv = make_frame(rows).to_csv(index=False).encode()
    stores, pools, data = {}, {}, {}
    _ray("--head", f"--node-ip-address={HEAD}", "--port=6379", "--include-dashboard=false", env=env)
    idle = _node_memory()
    for name in ("local", "ray"):
        stores[name] = Store.open(base / f"home-{name}")
        data[name] = datasets.register_bytes(stores[name], csv, "bench.csv")[0].id
        # Like for like: a run on the cluster asks for every CPU of the machine, as the local trainer uses.
        os.environ.update(DLCORE_EXECUTOR=name, RAY_ADDRESS=f"{HEAD}:6379", DLCORE_RAY_CPUS=str(os.cpu_count()))
        pools[name] = LocalPool(stores[name].home, n_train=1, store=stores[name])
        pools[name].ensure()
        warm = _submit(stores[name], data[name], 1, 0)  # TensorFlow imported in the worker that trains
        _wait(stores[name], [warm])
    times: dict[str, list[float]] = {"local": [], "ray": []}
    for rep in range(reps):
        for name in ("local", "ray") if rep % 2 == 0 else ("ray", "local"):
            run_id = _submit(stores[name], data[name], epochs, rep + 1)
            _wait(stores[name], [run_id])
            times[name].append(_seconds(stores[name], run_id))
            print(f"  {name:5} rep {rep + 1}: {times[name][-1]:.1f} s", flush=True)
    after = _node_memory()
    for pool in pools.values():
        pool.stop()
    os.environ.pop("DLCORE_RAY_CPUS")
    local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
    parts = {name: _parts(stores[name]) for name in stores}
    return {"local": local, "ray": ray, "ratio": ray / local, "times": times, "idle_head_mb": idle["head"],
            "after_head_mb": after["head"], "parts": parts}


def _parts(store) -> dict[str, float]:
    """Medians over the timed runs: Submit to start, the epochs, and everything after them
    (the baselines, scoring every model, saving)."""
    runs = [r for r in store.list_runs(statuses=("done",)) if r.epochs_total > 1]
    epochs = [sum(e["seconds"] for e in store.epochs(r.id)) for r in runs]
    return {"to start": statistics.median(r.started_at - r.created_at for r in runs),
            "epochs": statistics.median(epochs),
            "after": statistics.median(r.finished_at - r.started_at - e for r, e in zip(runs, epochs))}


def queue(base: Path, env: dict[str, str], n_nodes: int, n_runs: int, rows: int, epochs: int) -> tuple[float, dict]:
    """``n_runs`` queued at once on a head that trains nothing and ``n_nodes`` worker nodes of one CPU each."""
    from dlcore import cluster, datasets
    from dlcore.store import Store

    _stop_everything()
    _ray("--head", f"--node-ip-address={HEAD}", "--port=6379", "--include-dashboard=false", "--num-cpus=0", env=env)
    for ip in NODES[:n_nodes]:
        _ray("--address", f"{HEAD}:6379", f"--node-ip-address={ip}", "--num-cpus=1", env=env)
    memory = _node_memory()
    store = Store.open(base / f"home-queue-{n_nodes}")
    dataset_id = datasets.register_bytes(store, make_frame(rows).to_csv(index=False).encode(), "queue.csv")[0].id
    os.environ.update(DLCORE_EXECUTOR="ray", RAY_ADDRESS=f"{HEAD}:6379")
    import ray

    if ray.is_initialized():
        ray.shutdown()
    dispatcher = cluster.Dispatcher(store)
    dispatcher.connect()
    warm = [_submit(store, dataset_id, 1, 100 + i) for i in range(n_nodes)]  # a warm worker on each node
    while not all(store.run(r).finished for r in warm):
        dispatcher.step(0.2)
    started = time.monotonic()
    run_ids = [_submit(store, dataset_id, epochs, i) for i in range(n_runs)]
    while not all(store.run(r).finished for r in run_ids):
        dispatcher.step(0.2)
    took = time.monotonic() - started
    assert all(store.run(r).status == "done" for r in run_ids)
    ray.shutdown()
    return took, memory


def _overhead(base: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    print(f"same queued runs ({args.rows} rows, {args.epochs} epochs, baselines), Submit to done:", flush=True)
    found = overhead(base, env, args.rows, args.epochs, args.reps)
    print(f"local pool {found['local']:.1f} s, Ray executor {found['ray']:.1f} s (medians of {args.reps}): "
          f"ratio {found['ratio']:.3f}")
    for name, part in found["parts"].items():
        print(f"  {name:5} medians: Submit to start {part['to start']:.2f} s, epochs {part['epochs']:.1f} s, "
              f"the rest (preparing, baselines, scoring, saving) {part['after']:.1f} s")
    print(f"Ray head node idle: {found['idle_head_mb']:.0f} MB (PSS of its processes, no job run yet); "
          f"after the runs, with its warm workers: {found['after_head_mb']:.0f} MB")


def _queue(base: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    results = {}
    for n_nodes in (1, 2):
        took, memory = queue(base, env, n_nodes, args.queue, args.queue_rows, args.queue_epochs)
        results[n_nodes] = took
        print(f"{args.queue} queued runs ({args.queue_rows} rows, {args.queue_epochs} epochs) on {n_nodes} worker "
              f"node{'s' * (n_nodes > 1)} of 1 CPU: {took:.1f} s; idle memory per node before: "
              + ", ".join(f"{k} {v:.0f} MB" for k, v in memory.items()), flush=True)
    print(f"1 node / 2 nodes: {results[1] / results[2]:.2f}x faster with 2 (this machine has {os.cpu_count()} cores)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000, help="rows of the table a run trains on (about a minute)")
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--queue", type=int, default=10, help="runs queued at once on 1 and on 2 worker nodes")
    ap.add_argument("--queue-rows", type=int, default=3000)
    ap.add_argument("--queue-epochs", type=int, default=10)
    ap.add_argument("--only", choices=["overhead", "queue"], default=None, help="one part only")
    args = ap.parse_args()
    if not _in_own_network():
        if os.geteuid() != 0:
            sys.exit("Run as root: Ray must run in a network namespace whose only interface is loopback.")
        inner = f"ip link set lo up && exec {sys.executable} {Path(__file__).resolve()} {' '.join(sys.argv[1:])}"
        sys.exit(subprocess.run(["unshare", "-n", "sh", "-c", inner], cwd=ROOT).returncode)

    base = Path(tempfile.mkdtemp(prefix="dlcore-bench-cluster-"))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=str(base / "ray"), TF_CPP_MIN_LOG_LEVEL="2")
    (base / "ray").mkdir()
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_TMPDIR=str(base / "ray"), TF_CPP_MIN_LOG_LEVEL="2")
    try:
        if args.only != "queue":
            _overhead(base, env, args)
        if args.only != "overhead":
            _queue(base, env, args)
    finally:
        _stop_everything()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
