"""Ray as the executor (``DLCORE_EXECUTOR=ray``): every queued run, scoring and explanation is
executed as a Ray task on whichever node has the resources it asks for; the store stays the
single record of every job, so the pages, Stop, heartbeats and recovery work as they do locally.

    DLCORE_EXECUTOR=ray RAY_ADDRESS=10.0.0.1:6379 python -m dlcore worker   # the dispatcher

How a job flows:

1. The dispatcher (``serve``: ``python -m dlcore worker`` with the Ray executor; the app's pool
   starts one) hands queued runs to itself in the store (``Store.reserve_runs``: they stay
   queued, and their phase says where they wait) and submits one task per run, asking for
   ``DLCORE_RAY_CPUS`` CPUs, one GPU when the template wants one and the cluster has one, and
   ``DLCORE_RAY_RESOURCES``. Ray's own retry is off for runs: a half-trained run is never
   silently restarted. ``python -m dlcore fit`` submits and waits for its own run the same way.
2. The task, on its node, checks that it sees the shared data folder (``Store.check_home``: a
   node that does not refuses, and the dispatcher keeps jobs off it from then on), claims the
   run (recording the node), keeps its heartbeat, and executes it exactly as a local worker
   does: epochs, Stop and results go through the store. The run's independent pieces (its
   baselines) run as tasks of their own, at once, on any free node; they read their arrays from
   the run's folder, never through Ray's object store.
3. Scorings and explanations are claimed by the dispatcher and run as tasks that Ray retries when
   their process or node is lost: they are idempotent.
4. A task lost with its node or process fails its run with a message that names the node and the
   reason; the epochs so far stay in the store and the run page offers Rerun.
5. A cluster that cannot be reached leaves the jobs queued; every queued run's phase says why and
   which setting to check, and the dispatcher tries again every few seconds.

Nothing leaves the cluster: Ray's usage statistics are off (``RAY_USAGE_STATS_ENABLED=0``, set
before Ray is imported, and the report that says so pointed at loopback) and a local Ray started
here has no dashboard unless ``DLCORE_RAY_DASHBOARD=1``. A Ray head also asks cloud metadata
services which cloud it runs on unless told it is on premises (the commands in docs/team-server.md
do; a local Ray started here is not). Ray is imported inside functions only: the app server never
loads it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

# Light on purpose: a node that runs a piece of a run imports this module and little else
# (jobs, kinds and the runner, with pandas and every kind of data, load only where needed).
from dlcore import config, fanout
from dlcore.errors import ClusterError, DlcoreError, NotFoundError, StoreError
from dlcore.store import Store, atomic_write, this_worker

__all__ = ["connect", "serve", "Dispatcher", "dispatcher_name", "run_and_wait", "RayPieces", "lost_message", "gpus_for",
           "run_task", "scoring_task", "explanation_task", "probe_task"]

log = logging.getLogger("dlcore.cluster")
ROOT = Path(__file__).resolve().parent.parent
# Templates that train on pictures or on windows of a series ask for a GPU when the cluster has
# one (convolutions and recurrent layers gain most); the MLPs train as fast on CPUs.
GPU_INPUTS = ("image", "window")
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024  # a local Ray: jobs pass ids, never arrays
IDEMPOTENT_RETRIES = 3  # scorings, explanations and a run's pieces are retried on a lost node
CONNECT_TIMEOUT = 3.0
RETRY_CONNECT_SECONDS = 5.0
TOUCH_SECONDS = 5.0
SWEEP_SECONDS = 30.0
ORPHAN_SWEEP_SECONDS = 600.0  # record folders no row names are removed this often (Store.sweep_orphans)


def _ray() -> Any:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # nothing leaves the cluster, whatever the environment said
    # The one report a Ray head sends to say statistics are off goes to a closed loopback port.
    os.environ.setdefault("RAY_USAGE_STATS_REPORT_URL", "http://127.0.0.1:9/")
    import ray

    return ray


# ---- joining the cluster ------------------------------------------------------------------
def connect(address: str | None = None, log_to_driver: bool = False) -> str:
    """Join the Ray cluster at ``address`` (default ``$RAY_ADDRESS``), or start a local Ray when
    none is named; a description of where jobs now go. A cluster that cannot be reached or
    joined raises ``ClusterError`` with what to check."""
    ray = _ray()
    address = address if address is not None else config.ray_address()
    if ray.is_initialized():
        return _describe(ray)
    common: dict[str, Any] = {
        "namespace": "dlcore", "logging_level": logging.WARNING, "log_to_driver": log_to_driver,
        # Workers on every node import dlcore from the same path as here.
        "job_config": ray.job_config.JobConfig(code_search_path=[str(ROOT)]),
    }
    if address:
        if address.startswith("ray://"):
            raise ClusterError(f"RAY_ADDRESS is {address!r}, a Ray Client address, which is not supported: set it "
                               "to the head node's host:port (port 6379 unless `ray start --head --port` said otherwise).")
        _check_reachable(address)
        try:
            ray.init(address=address, **common)
        except Exception as exc:  # Ray raises many kinds here (auth, version, timeouts): all mean "not joined"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ClusterError(
                f"The Ray cluster at RAY_ADDRESS={address} could not be joined ({first}). Check RAY_ADDRESS, that "
                "this machine runs the same Ray version as the cluster, and, with token authentication, that "
                "RAY_AUTH_TOKEN_PATH names the cluster's token."
            ) from None
    else:
        # Ray's workers start at the raylet's priority, not 15 below it: each task sets its own
        # (DLCORE_WORKER_NICE, in _start_piece), which only root could raise back from 15.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(address="local", include_dashboard=config.ray_dashboard(),
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    return _describe(ray)


def _check_reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"RAY_ADDRESS is {address!r}; set it to the head node's host:port, e.g. 10.0.0.1:6379.")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except socket.gaierror:
        why = f"the name {host!r} is not known"
    except (TimeoutError, socket.timeout):
        why = f"no answer within {CONNECT_TIMEOUT:g} s"
    except ConnectionRefusedError:
        why = "nothing listens there: connection refused"
    except OSError as exc:
        why = exc.strerror or str(exc)
    else:
        return
    raise ClusterError(
        f"The Ray cluster at RAY_ADDRESS={address} cannot be reached ({why}). Check RAY_ADDRESS and that the "
        "cluster's head node is running (`ray start --head`); queued jobs wait and start when it can be reached."
    )


def _describe(ray: Any) -> str:
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
    gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
    return f"a Ray cluster of {len(nodes)} node{'s' * (len(nodes) != 1)} ({cpus:g} CPUs, {gpus:g} GPUs)"


# ---- on a node: the tasks ---------------------------------------------------------------
def _node_id() -> str:
    return _ray().get_runtime_context().get_node_id()


def _this_node() -> str:
    """How the store names the node a job ran on: its address and Ray's node id (short)."""
    ray = _ray()
    return f"{ray.util.get_node_ip_address()} (Ray node {_node_id()[:8]})"


@functools.lru_cache(maxsize=4)
def _store(url: str, home: str) -> Store:
    return Store(url, Path(home))


_niced = False


def _start(url: str, home: str) -> tuple[Store | None, str, dict[str, str] | None]:
    """What every task does first on its node: run below the priority of anything interactive
    there (as the local workers do), open the store and check that this node sees its data
    folder. The store, the node's name, and why this node refuses the job (None: it takes it)."""
    _start_piece()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    node = _this_node()
    try:
        store = _store(url, home)
        store.check_home()
    except StoreError as exc:  # no store here (database unreachable) or not the shared folder
        log.warning("node %s takes no jobs: %s", node, exc)
        return None, node, {"refused": _node_id(), "node": node, "message": str(exc)}
    return store, node, None


def run_task(url: str, home: str, run_id: str, avoid: Sequence[str] = ()) -> dict[str, Any]:
    """Execute one queued run on this node (a Ray task); what happened, for the dispatcher.
    ``avoid``: nodes that refused jobs, which the run's pieces avoid too."""
    store, node, refused = _start(url, home)
    if refused:
        return refused
    if not store.claim_run(run_id, node):  # stopped while it waited, or already taken
        return {"skipped": run_id, "node": node}
    from dlcore import jobs

    _threads_as_asked()
    stop = threading.Event()
    threading.Thread(target=jobs._heartbeat, args=(store, run_id, stop, None), daemon=True,
                     name=f"heartbeat-{run_id}").start()
    # A run's pieces go to other nodes when there are other nodes; on a one-node cluster they
    # run in turn in this process, which has their libraries loaded already (measured: at once
    # on one 2-core node they cost a fresh worker process each, bench/cluster.py).
    pieces = RayPieces(avoid) if _live_nodes() > 1 else fanout.InTurn()
    try:
        with fanout.use(pieces):
            from dlcore.runner import execute_run

            # stderr: Ray shows it to a driver that asked (python -m dlcore fit keeps stdout for its JSON)
            execute_run(store, run_id, say=lambda m: print(f"[{run_id}] {m}", file=sys.stderr, flush=True))
    finally:
        stop.set()
    return {"run": run_id, "node": node}


def _live_nodes() -> int:
    return sum(1 for n in _ray().nodes() if n.get("Alive"))


def _threads_as_asked() -> None:
    """Train with as many threads as the CPUs the run asked for, so Ray's count of free CPUs on
    a node is true (TensorFlow would use every core of the machine). Read when TensorFlow starts
    in this worker process; a process that has trained before keeps its first setting."""
    if "tensorflow" in sys.modules:
        return
    cpus = _ray().get_runtime_context().get_assigned_resources().get("CPU")
    if cpus:
        threads = str(max(1, round(cpus)))
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = threads


def scoring_task(url: str, home: str, scoring_id: str, avoid: Sequence[str] = ()) -> dict[str, Any]:
    """Execute one scoring job on this node (a Ray task Ray may retry: it is idempotent)."""
    store, node, refused = _start(url, home)
    if refused:
        return refused
    from dlcore import jobs

    jobs.execute_scoring(store, scoring_id)
    return {"scoring": scoring_id, "node": node}


def explanation_task(url: str, home: str, explanation_id: str, avoid: Sequence[str] = ()) -> dict[str, Any]:
    """Execute one explanation job on this node (a Ray task Ray may retry: it is idempotent)."""
    store, node, refused = _start(url, home)
    if refused:
        return refused
    from dlcore import jobs

    jobs.execute_explanation(store, explanation_id)
    return {"explanation": explanation_id, "node": node}


def probe_task(url: str, home: str) -> dict[str, Any]:
    """Whether this node takes jobs (it sees the store and its data folder), asked of every node
    when a dispatcher starts."""
    _, node, refused = _start(url, home)
    return refused or {"node": node}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {"run": run_task, "scoring": scoring_task,
                                                   "explanation": explanation_task}


# ---- a run's pieces, at once on the cluster ---------------------------------------------
class RayPieces(fanout.Pieces):
    """The pieces of one run as Ray tasks, at once, on whichever nodes are free. The arrays they
    share are written once into the run's folder (every node sees it) and memory-mapped there;
    the arrays a piece returns come back the same way. Only small things (a piece's settings, an
    unfitted scikit-learn pipeline, paths) go through Ray."""

    parallel = True
    where = "the cluster"

    def __init__(self, avoid: Sequence[str] = ()) -> None:
        self.avoid = tuple(avoid)  # nodes that refused jobs

    def map(self, fn: fanout.Piece, items: Sequence[Any], shared: dict[str, np.ndarray], folder: Path,
            before: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
        ray = _ray()
        scratch = Path(folder) / ".pieces"
        paths = {}
        for key, array in shared.items():
            with atomic_write(scratch / f"{key}.npy") as tmp:
                np.save(tmp, np.ascontiguousarray(array), allow_pickle=False)
            paths[key] = str(scratch / f"{key}.npy")
        remote = _remote(_piece_task, num_cpus=1, max_retries=IDEMPOTENT_RETRIES, **_avoiding(self.avoid))
        index = {remote.remote(fn, item, paths, str(scratch), i): i for i, item in enumerate(items)}
        pending = list(index)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    yield index[ref], _restore(ray.get(ref))
        finally:
            for ref in pending:  # the run failed or was stopped: the rest are not wanted
                ray.cancel(ref)
            shutil.rmtree(scratch, ignore_errors=True)


def _piece_task(fn: fanout.Piece, item: Any, paths: dict[str, str], scratch: str, i: int) -> Any:
    _start_piece()
    shared = {key: np.load(path, mmap_mode="r") for key, path in paths.items()}
    result = fn(item, shared)
    parts = result if isinstance(result, tuple) else (result,)
    out = []
    for j, part in enumerate(parts):
        if isinstance(part, np.ndarray):
            path = Path(scratch) / f"out-{i}-{j}.npy"
            with atomic_write(path) as tmp:
                np.save(tmp, part, allow_pickle=False)
            part = _Saved(str(path))
        out.append(part)
    return tuple(out) if isinstance(result, tuple) else out[0]


def _start_piece() -> None:
    """Run at ``DLCORE_WORKER_NICE`` on the node, below anything interactive there, as the local
    workers do. Set, not added: Ray starts its workers at nice 15 already (its own
    ``worker_niceness``), and 15 + 10 made every task nice 19, which a busy neighbour at nice 0
    starves (a 3-epoch run sat in "Starting" for minutes beside the test suite's other process).
    Raising a priority needs the right to (root, or ``RAY_worker_niceness=0`` in docs/team-server.md's
    cluster settings so Ray's workers start at 0); without it Ray's own niceness is kept."""
    global _niced
    if not _niced:
        _niced = True
        with contextlib.suppress(OSError):  # not allowed to raise it: keep Ray's
            os.setpriority(os.PRIO_PROCESS, 0, config.worker_nice())


class _Saved:
    """An array a piece wrote into the run's folder instead of returning it through Ray."""

    def __init__(self, path: str) -> None:
        self.path = path


def _restore(result: Any) -> Any:
    parts = result if isinstance(result, tuple) else (result,)
    back = tuple(np.load(p.path, allow_pickle=False) if isinstance(p, _Saved) else p for p in parts)
    return back if isinstance(result, tuple) else back[0]


def _avoiding(nodes: Sequence[str]) -> dict[str, Any]:
    """The Ray option that keeps a task off ``nodes`` (by Ray's node id label)."""
    return {"label_selector": {"ray.io/node-id": f"!in({','.join(sorted(nodes))})"}} if nodes else {}


_remotes: dict[tuple, Any] = {}


def _remote(fn: Callable[..., Any], **options: Any) -> Any:
    """``ray.remote(fn).options(...)``, made once per function and options in this process."""
    key = (fn.__name__, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _remotes:
        _remotes[key] = _ray().remote(fn).options(**options)
    return _remotes[key]


# ---- the dispatcher ---------------------------------------------------------------------
def dispatcher_name() -> str:
    """How the store names this process as the dispatcher holding queued runs: ``ray:host:pid``."""
    return f"ray:{this_worker()}"


def gpus_for(template_name: str, cluster_gpus: float) -> int:
    """GPUs a run of this template asks for: one when the template wants one (pictures, series)
    and the cluster has one; none otherwise."""
    from dlcore import kinds

    try:
        wants = kinds.template(template_name).input_format in GPU_INPUTS
    except DlcoreError:
        wants = False
    return 1 if wants and cluster_gpus >= 1 else 0


class Dispatcher:
    """Hands the store's queued jobs to Ray and records what became of them.

    ``runs``: only these run ids (``python -m dlcore fit`` waiting for its own run); by default
    every queued run, scoring and explanation (the dispatcher of a team server).
    """

    def __init__(self, store: Store, say: Callable[[str], None] | None = None, runs: Sequence[str] | None = None,
                 log_to_driver: bool = False) -> None:
        self.store = store
        self.say = say or (lambda message: log.info("%s", message))
        self.only = list(runs) if runs is not None else None
        self.log_to_driver = log_to_driver
        self.owner = dispatcher_name()
        self.inflight: dict[Any, tuple[str, str]] = {}  # Ray's reference -> (kind of job, its id)
        self.refused: dict[str, str] = {}  # node id -> why it takes no jobs
        self.lost_before_start: dict[str, int] = {}  # run id -> times its task was lost before it began
        self.connected = False
        self._touched = self._swept = self._orphans_swept = 0.0

    def connect(self) -> None:
        where = connect(log_to_driver=self.log_to_driver)
        self.connected = True
        self.say(f"dispatcher {os.getpid()} ready: jobs go to {where}")
        self.probe()

    def probe(self, timeout: float = 60.0) -> None:
        """Ask every live node, once, whether it sees the store's data folder; a node that does
        not is kept from jobs from now on (a node that joins later is checked by its first job)."""
        ray = _ray()
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [_ray().remote(probe_task).options(num_cpus=0, max_retries=0, label_selector={"ray.io/node-id": node})
                .remote(self.store.url, str(self.store.home)) for node in nodes]
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in late:
            ray.cancel(ref)
        for ref in ready:
            try:
                found = ray.get(ref)
            except ray.exceptions.RayError as exc:
                self.say(f"a node could not be checked: {type(exc).__name__}")
                continue
            if "refused" in found:
                self.refused[found["refused"]] = found["message"]
                self.say(f"node {found['node']} takes no jobs: {found['message']}")
        self.say(f"{len(ready)} of {len(nodes)} nodes checked: {len(ready) - len(self.refused)} see the data folder "
                 f"{self.store.home} and take jobs")

    # -- handing jobs over
    def _phase(self) -> str:
        cpus = config.ray_cpus()
        refused = (f" ({len(self.refused)} node{'s' * (len(self.refused) != 1)} take{'s' * (len(self.refused) == 1)} "
                   f"no jobs: {'they do' if len(self.refused) != 1 else 'it does'} not see the data folder "
                   f"{self.store.home} or the store)") if self.refused else ""
        return (f"Handed to the Ray cluster: waiting for a node with {cpus:g} free CPU{'s' * (cpus != 1)}"
                + (f" and {config.ray_resources()}" if config.ray_resources() else "") + refused)

    def hand_over(self) -> int:
        """Submit what is queued; the number of jobs submitted."""
        phase = self._phase()
        if self.only is None:
            run_ids = self.store.reserve_runs(self.owner, 32, phase)
        else:  # created held by us (python -m dlcore fit), or still free
            held = {job_id for kind, job_id in self.inflight.values() if kind == "run"}
            run_ids = [r for r in self.only if r not in held and self._ours(r, phase)]
        for run_id in run_ids:
            self.submit("run", run_id)
        count = len(run_ids)
        if self.only is None:
            while scoring_id := self.store.claim_next_scoring():
                self.submit("scoring", scoring_id)
                count += 1
            while explanation_id := self.store.claim_next_explanation():
                self.submit("explanation", explanation_id)
                count += 1
        return count

    def _ours(self, run_id: str, phase: str) -> bool:
        run = self.store.run(run_id)
        if run.status == "queued" and run.worker == self.owner:
            self.store.update_run(run_id, phase=phase)
            return True
        return bool(self.store.reserve_runs(self.owner, 1, phase, run_id=run_id))

    def options(self, kind: str, job_id: str) -> dict[str, Any]:
        """What a job asks Ray for: resources, retries, and the nodes it may not go to."""
        if kind == "run":
            run = self.store.run(job_id)
            gpus = gpus_for(run.template, _ray().cluster_resources().get("GPU", 0))
            found: dict[str, Any] = {"num_cpus": config.ray_cpus(), "num_gpus": gpus, "max_retries": 0}
            if config.ray_resources():
                found["resources"] = config.ray_resources()
        else:
            found = {"num_cpus": 1, "max_retries": IDEMPOTENT_RETRIES, "retry_exceptions": False}
        found.update(_avoiding(list(self.refused)))
        found["name"] = f"dlcore-{kind}-{job_id}"
        return found

    def submit(self, kind: str, job_id: str) -> None:
        try:
            options = self.options(kind, job_id)
        except NotFoundError:  # deleted while it waited: nothing to hand over
            self.say(f"{kind} {job_id} was deleted before it started")
            return
        ref = _ray().remote(TASKS[kind]).options(**options).remote(
            self.store.url, str(self.store.home), job_id, sorted(self.refused))
        self.inflight[ref] = (kind, job_id)

    # -- what became of them
    def wait(self, timeout: float) -> int:
        """Record the jobs that ended within ``timeout`` seconds; how many."""
        now = time.monotonic()
        if now - self._touched > TOUCH_SECONDS:
            self._touched = now
            self.store.touch_reserved(self.owner)
        if not self.inflight:
            time.sleep(timeout)
            return 0
        ray = _ray()
        ready, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=timeout, fetch_local=False)
        for ref in ready:
            self.finish(ref)
        return len(ready)

    def finish(self, ref: Any) -> None:
        kind, job_id = self.inflight[ref]
        try:
            self._finish(ref)
        except NotFoundError:  # deleted while it ran: its node stopped it at its next write
            self.say(f"{kind} {job_id} was deleted while it ran")
            self.store.sweep_deleted("run" if kind == "explanation" else kind, job_id)

    def _finish(self, ref: Any) -> None:
        ray = _ray()
        kind, job_id = self.inflight.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayError as exc:
            self.lost(kind, job_id, exc)
            return
        if "refused" in result:
            self.refused[result["refused"]] = result["message"]
            self.say(f"node {result['node']} takes no jobs: {result['message']}")
            self.put_back(kind, job_id, result)
        elif kind == "run":
            run = self.store.run(job_id)
            if "skipped" in result and run.status == "queued" and run.worker == self.owner:
                # Not claimed, yet still queued and ours: hand it over again rather than hold it forever.
                self.say(f"run {job_id} was not claimed on {result.get('node')}; handing it over again")
                self.submit("run", job_id)
                return
            self.say(f"run {job_id} {run.status} on {result.get('node')}")

    def put_back(self, kind: str, job_id: str, refusal: dict[str, str]) -> None:
        """A job a node refused goes to another node (never to a refusing one again)."""
        if kind == "run":
            self.store.update_run(job_id, phase=f"Waiting for a node that sees the data folder {self.store.home} "
                                                f"(node {refusal['node']} does not)")
            self.submit("run", job_id)  # still queued and held by us: a node that sees the folder claims it
        else:
            self.submit(kind, job_id)

    def lost(self, kind: str, job_id: str, exc: Exception) -> None:
        """A task lost with its process or node (after Ray's retries, for idempotent jobs)."""
        if kind == "run":
            run = self.store.run(job_id)
            if run.status == "queued" and run.worker == self.owner:
                # Lost before it started on a node: nothing was trained, so it goes to another
                # (a few times: a run that cannot even start is failed with the reason).
                self.lost_before_start[job_id] = self.lost_before_start.get(job_id, 0) + 1
                if self.lost_before_start[job_id] <= IDEMPOTENT_RETRIES:
                    self.say(f"run {job_id} was lost before it started ({type(exc).__name__}); handing it over again")
                    self.submit("run", job_id)
                    return
                self.store.update_run(job_id, status="failed", finished_at=time.time(), phase="Failed",
                                      message=lost_message("run", None, exc))
                return
            message = lost_message("run", run.node, exc)
            if self.store.fail_run(job_id, message):
                self.say(f"run {job_id} failed: {message}")
        elif kind == "scoring":
            self.store.finish_scoring(job_id, "failed", message=lost_message("scoring", None, exc))
        else:
            self.store.finish_explanation(job_id, "failed", message=lost_message("explanation", None, exc))

    def sweep(self) -> None:
        now = time.monotonic()
        if now - self._orphans_swept > ORPHAN_SWEEP_SECONDS or not self._orphans_swept:
            self._orphans_swept = now
            for folder in self.store.sweep_orphans():
                self.say(f"removed {folder}: no record names it")
        if now - self._swept > SWEEP_SECONDS:
            self._swept = now
            self.store.recover_interrupted()

    def step(self, timeout: float = 0.5) -> None:
        self.sweep()
        self.hand_over()
        self.wait(timeout)


def lost_message(what: str, node: str | None, exc: Exception) -> str:
    """Why a job was lost on the cluster, in words: the node (from the store, else from Ray's
    message) and the reason; for a run, that its epochs are kept and Rerun trains it again."""
    text = str(exc)
    if not node:
        found = re.search(r"Node IP: ([^,\s]+), node ID: ([0-9a-f]{8})", text)
        node = f"{found.group(1)} (Ray node {found.group(2)})" if found else None
    kind = type(exc).__name__
    if kind == "NodeDiedError":
        reason = "the node left the cluster (the machine, or Ray on it, stopped)"
    elif kind == "OutOfMemoryError":
        reason = "the node ran short of memory and Ray's memory monitor ended the job"
    elif kind == "WorkerCrashedError":
        reason = "the process running it on that node died (killed, or out of memory)"
    elif kind in ("TaskCancelledError", "TaskUnschedulableError"):
        reason = "Ray cancelled it"
    else:
        reason = f"{kind}: {(text.strip().splitlines() or [''])[0][:200]}"
    where = f"on the cluster node {node}" if node else "on the cluster"
    message = f"The {what} was lost {where}: {reason}."
    if what == "run":
        message += (" The epochs so far are kept; use Rerun to train it again (a half-trained run is not "
                    "restarted by itself).")
    else:
        message += " Ask for it again."
    return message


# ---- the dispatcher process, and the CLI's own run -------------------------------------
def serve(store: Store, parent: int | None = None, say: Callable[[str], None] | None = None,
          poll: float = 0.5) -> None:
    """Dispatch queued jobs to the cluster until stopped (or until ``parent`` is gone). While the
    cluster cannot be reached, every queued run says why on its page."""
    say = say or (lambda message: log.info("%s", message))
    dispatcher = Dispatcher(store, say)
    noted = None
    while True:
        if parent is not None and os.getppid() != parent:
            return
        if not dispatcher.connected:
            try:
                dispatcher.connect()
            except ClusterError as exc:
                if str(exc) != noted:
                    noted = str(exc)
                    say(f"waiting for the cluster: {exc}")
                store.note_queued(f"Waiting for the cluster: {exc}")
                time.sleep(RETRY_CONNECT_SECONDS)
                continue
        dispatcher.step(poll)


def run_and_wait(store: Store, run_id: str, say: Callable[[str], None]) -> None:
    """Execute one queued run on the cluster and wait for it (``python -m dlcore fit``). A
    cluster that cannot be reached leaves the run queued and says so (``ClusterError``)."""
    dispatcher = Dispatcher(store, say, runs=[run_id], log_to_driver=True)
    try:
        dispatcher.connect()
    except ClusterError as exc:
        store.note_queued(f"Waiting for the cluster: {exc}")
        raise ClusterError(f"{exc} Run {run_id} stays queued: a worker or the app's dispatcher starts it once the "
                           "cluster can be reached.") from None
    dispatcher.hand_over()
    # Until the run has ended in the store (whoever executes it: a run handed to another
    # dispatcher before we held it is waited for all the same).
    while dispatcher.inflight or not store.run(run_id).finished:
        dispatcher.wait(1.0)
