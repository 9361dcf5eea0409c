"""Execute one run: the deep template and the baselines on one split, evaluated together.

This is the single code path behind the app's workers and ``python -m dlcore fit``, whatever
the kind of data: the run's kind (``dlcore.kinds``) checks the spec at submit and prepares the
``Inputs`` (rows, split, preprocessing fitted on the training rows only, the encoded target);
this module trains the deep template with live metrics, fits every baseline on the same rows,
scores all of them on the same test rows with the same metric code, and saves models,
preprocessing and test predictions. A kind with a loop of its own (a forecast's backtest)
executes its runs itself, on the same store records.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import traceback

import numpy as np

from dlcore import baselines, evaluate, kinds, ready
from dlcore.base import Say
from dlcore.baselines import fit_baselines
from dlcore.errors import DeletedError, DlcoreError, RunError
from dlcore.outputs import run_result, save_test_outputs
from dlcore.spec import RunSpec
from dlcore.store import Store, atomic_write
from dlcore.training import fit_deep, library_versions, make_store_callback, predict_deep

__all__ = ["execute_run", "submit", "fit_baselines"]

log = logging.getLogger("dlcore.runner")


def submit(store: Store, spec: RunSpec, claim: bool = False, held_by: str | None = None) -> str:
    """Queue a run and return its id at once; a worker picks it up (or, with ``claim``, the caller;
    with ``held_by``, the cluster dispatcher of that name, e.g. ``python -m dlcore fit``'s own).

    The run's kind refuses now what would fail in a worker: a template for another kind of
    data, a target that cannot be learned, a series too short for its backtest."""
    template = kinds.template(spec.template)
    record = store.dataset(spec.data.dataset_id)
    kind = kinds.of_run(spec)
    kinds.check_dataset(kind, template, record)
    kind.check(store, spec, record)
    return store.create_run(spec.to_dict(), spec.data.dataset_id, spec.template, spec.data.target, spec.train.epochs,
                            claim=claim, held_by=held_by)


def execute_run(store: Store, run_id: str, say: Say | None = None) -> None:
    """Train and evaluate run ``run_id``; its status ends as done, stopped or failed.

    Errors never escape: the run records a plain message (and, for bugs, a log file). A run
    deleted while it trains stops at its next write (``DeletedError``), and whatever of it
    reached the disk is removed once it has stopped.
    """
    say = say or (lambda message: None)
    store = store.for_job("run", run_id)  # the worker acts for the user who queued the run
    try:
        _execute(store, run_id, say)
    except DeletedError:
        say("deleted while it trained: stopped, and nothing of it is kept")
    except DlcoreError as exc:
        with contextlib.suppress(DeletedError):
            store.update_run(run_id, status="failed", finished_at=time.time(), phase="Failed", message=str(exc))
        say(f"failed: {exc}")
    except Exception as exc:  # a bug: keep the details for us, a plain message for the user
        # A full or read-only disk (or a run deleted meanwhile) must not stop the run being marked failed.
        with contextlib.suppress(DlcoreError), atomic_write(store.run_dir(run_id) / "error.log") as tmp:
            tmp.write_text(traceback.format_exc())
        log.exception("run %s failed", run_id)
        with contextlib.suppress(DeletedError):
            store.update_run(run_id, status="failed", finished_at=time.time(), phase="Failed",
                             message=f"An internal error stopped this run ({type(exc).__name__}). "
                                     "It has been logged for the team; try again or change a setting.")
        say(f"failed with an internal error: {exc!r}")
    finally:
        store.sweep_deleted("run", run_id)  # after its last write: nothing of a deleted run stays


def _execute(store: Store, run_id: str, say: Say) -> None:
    started = time.monotonic()  # a time budget counts from here, the import of Keras included
    import keras

    run = store.run(run_id)
    spec = RunSpec.from_dict(run.spec)
    kind = kinds.of_run(spec)
    # A table uploaded a moment ago may still have its stored copy written: wait, and say so.
    ready.wait(store, spec.data.dataset_id,
               note=lambda words: store.update_run(run_id, phase=words, heartbeat_at=time.time()))
    if kind.execute is not None:  # a kind with a loop of its own (a backtest), on the same records
        return kind.execute(store, run_id, spec, say)
    template = kinds.template(spec.template)
    store.update_run(run_id, phase="Preparing the data", versions=library_versions())
    record = store.dataset(spec.data.dataset_id)
    kinds.check_dataset(kind, template, record)
    data = kind.prepare(store, run_id, spec, record, template)
    if spec.train.budget is not None and kind.searches:  # search, folds and ensemble within the budget
        from dlcore.budget import Clock
        from dlcore.search import run_searched

        return (kind.search_run or run_searched)(store, run_id, spec, kind, template, data, say,
                                                 Clock(spec.train.budget, started))
    task, enc = data.task, data.enc
    n_classes = len(enc.classes_) if task != "regression" else 1
    metric = evaluate.primary_metric(task)
    store.update_run(run_id, task=task, metric=metric.key, higher_is_better=metric.higher_is_better,
                     phase=f"Training {template.title}")
    say(f"{data.n_rows} {kind.unit}, task {task}; training {template.name}")

    keras.utils.set_random_seed(spec.train.seed)
    model = template.build(spec.train, data.info, task, n_classes)
    callback = make_store_callback(store, run_id, task, spec.train.epochs,
                                   metric_scale=enc.std_ if task == "regression" else 1.0)
    fit = fit_deep(model, task, spec.train, data.deep_x(data.train), data.y[data.train],
                   data.deep_x(data.val), data.y[data.val], callback)
    if fit.nan_epoch is not None:
        raise RunError(
            f"Training became unstable at epoch {fit.nan_epoch}: the loss turned into 'not a number'. "
            f"Lower the learning rate (now {spec.train.learning_rate:g}; try {spec.train.learning_rate / 10:g}) "
            "or use a smaller model, then run it again."
        )
    say(f"deep model: {fit.epochs_run} epochs in {fit.fit_seconds:.1f}s")

    raw_out = predict_deep(model, data.deep_x(data.test), data.predict_batch)
    outputs: dict[str, np.ndarray] = {spec.template: enc.from_model(raw_out)}
    families = {spec.template: "deep"}
    fit_seconds = {spec.template: fit.fit_seconds}
    folder = store.run_dir(run_id)
    with atomic_write(folder / f"{spec.template}.keras") as tmp:
        model.save(tmp)

    if spec.baselines:
        y_fit = data.y_raw[data.train] if task == "regression" else data.y[data.train]
        base_out, base_seconds = fit_baselines(store, run_id, task, spec.train.seed, data.baseline_x(data.train), y_fit,
                                               data.baseline_x(data.test), n_classes, say,
                                               offer=data.baselines or kind.baselines)
        outputs.update(base_out)
        fit_seconds.update(base_seconds)
        families.update({name: "baseline" for name in base_out})

    store.update_run(run_id, phase="Scoring every model on the test rows", heartbeat_at=time.time())
    y_test = data.y_raw[data.test]
    board = evaluate.leaderboard(task, y_test, outputs, families, fit_seconds, n_boot=1000, seed=spec.train.seed,
                                 unit=kind.unit, target=spec.data.target)
    save_test_outputs(folder, data.test, y_test, outputs)
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({**data.meta, "target": enc.to_dict(), "task": task,
                                   "target_column": spec.data.target, "template": spec.template}))
    result = {
        **run_result(board, enc, kind, data, fit, fit.stopped_by_user),
        "models": {name: {"family": families[name], "fit_seconds": fit_seconds[name],
                          **_sampled(name, families[name], len(data.train), spec.train.seed)} for name in outputs},
    }
    deep_row = next(r for r in board.rows if r.model == spec.template)
    status = "stopped" if fit.stopped_by_user else "done"
    store.update_run(run_id, status=status, finished_at=time.time(), result=result, test_score=deep_row.test_score,
                     progress=1.0, phase="Stopped early by request; evaluated" if status == "stopped" else "Finished")
    say(f"{status}: {metric.title} {deep_row.test_score:.4f}")


def _sampled(name: str, family: str, n_train: int, seed: int) -> dict:
    """For a baseline trained on a sample of the training rows (``baselines.sample_of``): how many."""
    rows = baselines.sample_of(name, n_train, seed) if family == "baseline" else None
    return {} if rows is None else {"sample_rows": int(len(rows)), "train_rows": int(n_train)}
