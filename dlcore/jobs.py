"""Jobs: a run or a scoring request is queued in the store and executed by a worker process.

``submit`` returns an id at once. Workers (``python -m dlcore worker``) claim queued work with
a guarded UPDATE, so any number of them can share one database: the app starts a small local
pool on first use; a team server starts more against PostgreSQL. TensorFlow is imported in
the worker when it starts, so the first run does not wait for it and the Streamlit server
never loads it. With ``DLCORE_EXECUTOR=ray`` the pool starts one dispatcher instead, which
hands every job to a Ray cluster (``dlcore.cluster``); the store stays the record either way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from dlcore import access
from dlcore.errors import DlcoreError, NotFoundError
from dlcore.store import EVALUATED, ExplanationRecord, Store, atomic_write, new_id

__all__ = ["worker_loop", "execute_scoring", "LocalPool", "submit_scoring", "submit_explanation",
           "execute_explanation"]

log = logging.getLogger("dlcore.jobs")
HEARTBEAT_SECONDS = 5.0
ORPHAN_SWEEP_SECONDS = 600.0  # how often a worker removes record folders no row names (Store.sweep_orphans)


def submit_scoring(store: Store, run_id: str, model: str, content: bytes, name: str,
                   model_run_id: str | None = None) -> str:
    """Queue a scoring of an uploaded file (or a one-row what-if) and return its id. ``model_run_id``:
    the run whose ``model`` scores it, when the run's model in use is a promoted retrained run's."""
    from dlcore.datasets import _check_size

    _check_size(len(content), name)
    store.require("score", "run", run_id)  # before the file is written: a refusal leaves nothing
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise DlcoreError(f"Run {run_id!r} is {run.status}; wait until it finishes to score new data.")
    from dlcore.outputs import check_model

    check_model(store.run(model_run_id) if model_run_id else run, model)
    # The file is in place before the job exists, so a scorer can never claim it half-written.
    scoring_id = new_id()
    with atomic_write(store.scoring_dir(scoring_id) / "input.bin") as tmp:
        tmp.write_bytes(content)
    try:
        return store.create_scoring(run_id, model, Path(name).name, scoring_id=scoring_id,
                                    model_run_id=model_run_id)
    except BaseException:  # the run was deleted (or access taken away) meanwhile: the file goes
        shutil.rmtree(store.scoring_dir(scoring_id), ignore_errors=True)
        raise


def execute_scoring(store: Store, scoring_id: str) -> None:
    """Read the uploaded file as files of the run's kind are read, score it, write ``scored.csv``,
    and keep its drift against the training rows of the model that scored it (``dlcore.monitor``);
    a REST request's scoring also writes the answer its request waits for (``answer.json``)."""
    store = store.for_job("scoring", scoring_id)  # acts for the user who queued it
    try:
        _score(store, scoring_id)
    finally:  # deleted while it worked (with its run): nothing it wrote stays
        store.sweep_deleted("scoring", scoring_id)


def _score(store: Store, scoring_id: str) -> None:
    import json

    from dlcore import monitor
    from dlcore.scoring import API_INPUT, answer_of, score_upload, to_safe_csv

    try:
        job = store.scoring(scoring_id)
    except NotFoundError:  # deleted before it started
        return
    folder = store.scoring_dir(scoring_id)
    try:
        content = (folder / "input.bin").read_bytes()
        model_run = job.model_run_id or job.run_id
        scored = score_upload(store, model_run, job.model, content, job.input_name)
        with atomic_write(folder / "scored.csv") as tmp:
            tmp.write_bytes(to_safe_csv(scored.table, scored.delimiter, scored.decimal))
        preview = scored.table.head(1).to_dict(orient="records")
        summary = {**scored.summary.to_dict(), "preview": _jsonable(preview)}
        if len(scored.table) > 1:  # a one-row what-if has no distribution to compare
            try:
                report = monitor.drift_of_scoring(store, store.run(job.run_id), model_run, job.model, scored.table)
            except DlcoreError:
                raise
            except Exception:  # a fault in the comparison never costs the analyst the scored file
                log.exception("drift of scoring %s could not be worked out", scoring_id)
                report = None
            summary = monitor.keep_drift(store, scoring_id, report, summary)
        if job.input_name == API_INPUT:  # a REST request waits for this answer (dlcore.api)
            drift = summary.get("drift") or {}
            answer = {**answer_of(scored, store.run(model_run)), "drift": drift.get("sentence"),
                      "drifted_columns": drift.get("drifted_columns")}
            with atomic_write(folder / "answer.json") as tmp:
                tmp.write_text(json.dumps(answer))
        store.finish_scoring(scoring_id, "done", summary=summary)
    except DlcoreError as exc:
        # The kind of problem is kept for the REST endpoint's status code (not found: 404, else 422).
        store.finish_scoring(scoring_id, "failed", message=str(exc), summary={"error": type(exc).__name__})
    except Exception as exc:  # a bug: logged, and a plain message for the page
        log.exception("scoring %s failed", scoring_id)
        store.finish_scoring(scoring_id, "failed", summary={"error": "internal"},
                             message=f"An internal error stopped the scoring ({type(exc).__name__}); it was logged.")


def submit_explanation(store: Store, run_id: str, model: str, row: dict | None = None,
                       test_row: int | None = None) -> str:
    """Queue an explanation of one model of a finished run: of the whole model, or of one row
    given as ``{column: value}`` or as the run's test row number. Returns its id; a global one
    already queued or running is reused rather than started twice."""
    from dlcore.outputs import check_model

    store.require("explain", "run", run_id)
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise DlcoreError(f"Run {run_id!r} is {run.status}; wait until it finishes to explain its models.")
    check_model(run, model)
    kind = "row" if row is not None or test_row is not None else "global"
    if kind == "global":
        latest = store.latest_explanation(run_id, model, "global")
        if latest is not None and latest.status in ("queued", "running") and time.time() - latest.created_at < 600:
            return latest.id
    return store.create_explanation(run_id, model, kind,
                                    {"row": row, "test_row": test_row} if kind == "row" else None)


def execute_explanation(store: Store, explanation_id: str) -> None:
    """Work out one explanation; the global one is kept in the run's folder, a row's in the job."""
    store = store.for_job("explanation", explanation_id)  # acts for the user who queued it
    try:
        job = store.explanation(explanation_id)
    except NotFoundError:  # deleted before it started
        return
    try:
        _explain(store, explanation_id, job)
    finally:  # deleted while it worked (with its run): nothing it wrote stays
        store.sweep_deleted("run", job.run_id)


def _explain(store: Store, explanation_id: str, job: ExplanationRecord) -> None:
    from dlcore import explain

    try:
        if job.kind == "row":
            request = job.request or {}
            row = pd.DataFrame([request["row"]]) if request.get("row") is not None else None
            summary = explain.explain_row_of_run(store, job.run_id, job.model, row, request.get("test_row"))
        else:
            last = [0.0]

            def progress(share: float) -> None:
                if time.monotonic() - last[0] > 1.0 or share >= 1.0:
                    last[0] = time.monotonic()
                    store.explanation_progress(explanation_id, f"{share:.0%} done")

            result = explain.explain_run(store, job.run_id, job.model, progress=progress)
            summary = {"seconds": result.get("seconds")}
        store.finish_explanation(explanation_id, "done", summary=summary)
    except DlcoreError as exc:
        store.finish_explanation(explanation_id, "failed", message=str(exc))
    except Exception as exc:  # a bug: logged, and a plain message for the page
        log.exception("explanation %s failed", explanation_id)
        store.finish_explanation(explanation_id, "failed",
                                 message=f"An internal error stopped the explanation ({type(exc).__name__}); it was logged.")


def _jsonable(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        out.append({str(k): (None if pd.isna(v) else v.item() if hasattr(v, "item")
                             else str(v) if not isinstance(v, (int, float, str)) else v)
                    for k, v in row.items()})
    return out


def _heartbeat(store: Store, run_id: str, stop: threading.Event, parent: int | None) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        if parent is not None and os.getppid() != parent:
            # The app that started us is gone: leave at once; the run is marked interrupted
            # by the next server start (its epochs so far stay in the store).
            os._exit(0)
        try:
            if not store.heartbeat(run_id):
                return  # deleted: the run stops at its next write (and its training at the next look)
        except Exception:  # a busy database must not kill the run; the next beat retries
            log.warning("heartbeat for %s failed", run_id, exc_info=True)


def worker_loop(store: Store, kinds: tuple[str, ...] = ("train", "score"), poll: float = 0.3,
                parent: int | None = None, once: bool = False, say: Callable[[str], None] | None = None) -> None:
    """Claim and execute queued work until stopped (or until the queue is empty, with ``once``)."""
    from dlcore.runner import execute_run

    say = say or (lambda m: None)
    store.check_home()  # a machine that does not see the store's data folder takes no jobs
    import tensorflow  # noqa: F401  (paid here once, not on the first run's clock)

    if "train" in kinds and os.environ.get("DLCORE_WARMUP", "1") != "0":
        from dlcore.warmup import warm_up

        say(f"worker {os.getpid()} warmed up in {warm_up():.1f} s (Keras trace, scikit-learn pools, skops)")
    say(f"worker {os.getpid()} ready ({', '.join(kinds)})")
    last_sweep = last_orphans = 0.0
    while True:
        if parent is not None and os.getppid() != parent:
            return
        if time.monotonic() - last_orphans > ORPHAN_SWEEP_SECONDS or not last_orphans:
            for folder in store.sweep_orphans():
                say(f"removed {folder}: no record names it")
            last_orphans = time.monotonic()
        if time.monotonic() - last_sweep > 30:
            store.recover_interrupted()
            if (days := access.retention_days()) is not None:  # DLCORE_RETENTION_DAYS
                for old in store.delete_expired_runs(days):
                    say(f"[{old}] deleted: older than {days:g} days (DLCORE_RETENTION_DAYS)")
            last_sweep = time.monotonic()
        did = False
        if "score" in kinds:
            scoring_id = store.claim_next_scoring()
            if scoring_id:
                execute_scoring(store, scoring_id)
                did = True
            else:
                explanation_id = store.claim_next_explanation()
                if explanation_id:
                    execute_explanation(store, explanation_id)
                    did = True
        if not did and "train" in kinds:
            run_id = store.claim_next_run()
            if run_id:
                stop = threading.Event()
                beat = threading.Thread(target=_heartbeat, args=(store, run_id, stop, parent), daemon=True)
                beat.start()
                try:
                    execute_run(store, run_id, say=lambda m, r=run_id: say(f"[{r}] {m}"))
                finally:
                    stop.set()
                did = True
        if not did:
            if once:
                return
            time.sleep(poll)


def _lower_priority(niceness: int) -> None:
    """Run a worker below the web server's priority (``DLCORE_WORKER_NICE``): while training
    fills every core, pages still draw promptly (training only yields the moments the server needs)."""
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)


# The settings TensorFlow, the BLAS libraries, OpenMP (scikit-learn's gradient boosting) and
# joblib (its forests) read for their thread counts; one the server was started with is kept.
THREAD_SETTINGS = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "LOKY_MAX_CPU_COUNT")


def worker_environment(n_train: int) -> dict[str, str]:
    """What a worker of a pool of ``n_train`` trainers gets in its environment besides the
    server's: its share of the cores as every library's thread count (``DLCORE_WORKER_THREADS``),
    so two runs training at once do not each start a thread per core and crowd out the server."""
    from dlcore import config

    threads = config.worker_threads(n_train)
    if threads is None:
        return {}
    return {name: str(threads) for name in THREAD_SETTINGS if name not in os.environ}


class LocalPool:
    """The worker processes one app server starts for itself: N trainers and one scorer, or,
    with the Ray executor (``DLCORE_EXECUTOR=ray``), one dispatcher to the cluster.

    Training and scoring have their own processes so a long training run never keeps an
    analyst waiting for a one-row what-if.
    """

    def __init__(self, home: Path, n_train: int = 1, database_url: str | None = None,
                 store: Store | None = None, executor: str | None = None) -> None:
        from dlcore import config

        self.home = Path(home)
        self.store = store
        self.n_train = n_train
        self.database_url = database_url
        self.executor = executor or config.executor()
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopped: set[int] = set()  # pids terminated on purpose: no run is failed for them

    def ensure(self) -> None:
        """Start any worker that is not running (first use, or after one died)."""
        if self.n_train <= 0:
            return
        if self.executor == "ray":
            wanted = {"dispatch": "ray"}
        else:
            wanted = {f"train-{i}": "train" for i in range(self.n_train)} | {"score": "score"}
        with self.lock:
            for name, kind in wanted.items():
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    self._report_death(proc)
                if proc is None or proc.poll() is not None:
                    self.procs[name] = self._start(kind, name)

    def _start(self, kind: str, name: str) -> subprocess.Popen:
        from dlcore import config

        env = dict(os.environ, DLCORE_HOME=str(self.home), TF_CPP_MIN_LOG_LEVEL="2", DLCORE_EXECUTOR=self.executor,
                   **worker_environment(self.n_train))
        if self.database_url:
            env["DLCORE_DATABASE_URL"] = self.database_url
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"worker-{name}.log", "ab") as out:  # the child keeps its own copy
            proc = subprocess.Popen(
                [sys.executable, "-m", "dlcore", "worker", *(["--only", kind] if kind != "ray" else []),
                 "--parent", str(os.getpid())],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(Path(__file__).resolve().parent.parent), preexec_fn=functools.partial(_lower_priority, config.worker_nice()),
            )
        threading.Thread(target=self._watch, args=(proc,), daemon=True, name=f"watch-{name}").start()
        return proc

    def _watch(self, proc: subprocess.Popen) -> None:
        """Report a worker's death the moment it happens, not at the next page view: with nobody
        watching, another worker's sweep would otherwise call the run merely interrupted."""
        proc.wait()
        if proc.pid not in self.stopped:
            self._report_death(proc)

    def _report_death(self, proc: subprocess.Popen) -> None:
        """A worker that died mid-run fails its run with the reason, instead of leaving it running."""
        if self.store is None or proc.returncode == 0:
            return
        code = proc.returncode
        how = (f"it was killed (signal {-code}{', often a sign the machine ran out of memory' if code == -9 else ''})"
               if code < 0 else f"it exited with status {code}")
        self.store.fail_runs_of_worker(
            f"{socket.gethostname()}:{proc.pid}",
            f"The worker process training this run stopped unexpectedly: {how}. The epochs so far are "
            "kept; use Rerun to train it again (a smaller batch size or model needs less memory).",
        )

    def alive(self) -> int:
        return sum(1 for p in self.procs.values() if p.poll() is None)

    def stop(self) -> None:
        with self.lock:
            for proc in self.procs.values():
                self.stopped.add(proc.pid)
                if proc.poll() is None:
                    proc.terminate()
            for proc in self.procs.values():
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.procs.clear()
