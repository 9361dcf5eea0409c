"""A run of a table within a time budget: a search per candidate, cross-validation, an ensemble.

Optuna drives each search (define-by-run trials, a seeded TPE sampler, a median pruner on the
per-epoch validation metric), one small reported step at a time, so the budget and Stop end it
cleanly. The run goes:

1. each baseline's few settings (regularisation, tree depth and leaf size, learning rate) are
   searched on the first fold (train rows -> validation rows), the first trial being its
   defaults; then its best settings are cross-validated on every fold;
2. the deep template's settings (width and depth, dropout, L2, learning rate and its schedule,
   batch size, embedding sizes) are searched on the same first fold; trials clearly behind
   after a few epochs are pruned. The search hands back its time while the rest of the run
   still fits in the budget; the best trial's model (trained on the training rows, weights
   restored to its best validation epoch) is the run's deep model;
3. the best deep settings are cross-validated on the other folds (as many as the time allows),
   for as many epochs as the best trial's best epoch;
4. a greedy ensemble (``dlcore.ensemble``) is built from the out-of-fold predictions;
5. every candidate is scored on the untouched test rows; the board ranks by cross-validation.

Every trial is written to the run's ``trials.json`` as it ends, for the live trials chart.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from dlcore import baselines, evaluate, formats
from dlcore import folds as folding
from dlcore.base import Inputs, Say, Template
from dlcore.budget import Clock, describe
from dlcore.errors import RunError
from dlcore.spec import RunSpec, TrainSpec
from dlcore.store import Store, atomic_write

__all__ = ["search_lines", "folds_used_words", "tell_trial", "run_searched", "converged", "ended_words",
           "execute_searched", "load_trials", "deep_space", "baseline_space", "Trial", "best_words", "settled",
           "fold_noise", "first_verdict_words", "SEARCH_SPACE_WORDS"]

log = logging.getLogger("dlcore.search")

TRIALS_FILE = "trials.json"
K_FOLDS = 5
MAX_EPOCHS = 200  # a trial ends by patience long before this; the budget ends it otherwise
MAX_BASELINE_TRIALS = 12
PRUNE_AFTER_EPOCHS = 5
TRIAL_SHARE = 0.2  # one trial may take this share of the budget (10 s at least)
FIRST_TRIAL_SHARE = 0.6  # the first deep trial may run until this share of the budget
FIT_OVERHEAD = 1.0  # seconds to build, compile and trace a fresh model before its first epoch
# The deep search has converged, and ends before its time is up, once it has had at least
# CONVERGED_MIN_TRIALS trials and its best validation score has not improved in the last
# CONVERGED_PATIENCE of them (or in the last half of them, whichever is more): on a small table the
# analyst gets the verdict in a fraction of the budget instead of waiting for more of the same.
CONVERGED_MIN_TRIALS = 8
CONVERGED_PATIENCE = 5
# The verdict is settled, and the search ends, once SETTLE_PATIENCE trials in a row have not gained
# more than the folds' noise (the standard error of the cross-validated score), or when no gain
# left could change it (``settled``).
SETTLE_PATIENCE = 3
FIRST_REPEAT_SHARE = 0.4  # the baselines' folds of the first repeat end by this share of the budget at the latest

SEARCH_SPACE_WORDS = {
    "deep": "size (width and depth: small 32-16, medium 128-64, large 256-128-64), dropout 0-0.5, "
            "L2 1e-6-1e-2, learning rate 3e-4-1e-2 with a constant or on-plateau schedule, batch size 16-256, "
            "embedding size x0.5-x2 (with embeddings)",
    "logistic_regression": "regularisation strength C 0.001-100",
    "ridge": "regularisation strength alpha 0.001-1000",
    "random_forest": "leaf size 1-20, features per split (sqrt, half, all)",
    "gradient_boosting": "learning rate 0.02-0.3, leaves per tree 7-63, leaf size 5-50, L2 0.0001-10",
    "dummy": "none (the floor)",
}


# ---- search spaces ---------------------------------------------------------------------------
def deep_space(trial: Any, base: TrainSpec, n_train: int, template: Template) -> tuple[TrainSpec, str]:
    """Sample a deep trial's settings; returns the settings and the learning-rate schedule."""
    sizes = [b for b in (16, 32, 64, 128, 256) if b <= max(16, n_train // 4)]
    settings = replace(
        base,
        size=trial.suggest_categorical("size", ["small", "medium", "large"]),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        l2=trial.suggest_float("l2", 1e-6, 1e-2, log=True),
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        batch_size=trial.suggest_categorical("batch_size", sizes),
    )
    if template.input_format == "split":
        settings = replace(settings, embed_scale=trial.suggest_float("embed_scale", 0.5, 2.0, log=True))
    schedule = trial.suggest_categorical("schedule", ["constant", "plateau"])
    return settings, schedule


def _first_deep(base: TrainSpec, n_train: int, template: Template) -> dict[str, Any]:
    """The run's own settings, tried first, so the search never ends below them."""
    sizes = [b for b in (16, 32, 64, 128, 256) if b <= max(16, n_train // 4)]
    first = {"size": base.size, "dropout": min(0.5, base.dropout), "l2": min(1e-2, max(1e-6, base.l2)),
             "learning_rate": min(1e-2, max(3e-4, base.learning_rate)),
             "batch_size": min(sizes, key=lambda b: abs(b - base.batch_size)), "schedule": "constant"}
    if template.input_format == "split":
        first["embed_scale"] = 1.0
    return first


def _estimator(pipe: Any) -> tuple[str, Any]:
    name, est = pipe.steps[-1]
    return name, est


def baseline_space(name: str, pipe: Any, trial: Any) -> dict[str, Any]:
    """Sample a few settings of one baseline; only those its estimator has."""
    step, est = _estimator(pipe)
    params = est.get_params()
    out: dict[str, Any] = {}
    if "C" in params and name.startswith("logistic"):
        out["C"] = trial.suggest_float("C", 1e-3, 1e2, log=True)
    elif "alpha" in params and name.startswith("ridge"):
        out["alpha"] = trial.suggest_float("alpha", 1e-3, 1e3, log=True)
    elif name.startswith("random_forest"):
        out["min_samples_leaf"] = trial.suggest_int("min_samples_leaf", 1, 20, log=True)
        feats = trial.suggest_categorical("max_features", ["sqrt", "half", "all"])
        out["max_features"] = {"sqrt": "sqrt", "half": 0.5, "all": 1.0}[feats]
    elif name.startswith("gradient_boosting"):
        out["learning_rate"] = trial.suggest_float("learning_rate", 0.02, 0.3, log=True)
        out["max_leaf_nodes"] = trial.suggest_int("max_leaf_nodes", 7, 63, log=True)
        out["min_samples_leaf"] = trial.suggest_int("min_samples_leaf", 5, 50, log=True)
        out["l2_regularization"] = trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True)
    return {f"{step}__{k}": v for k, v in out.items() if k in params}


def _baseline_defaults(name: str, pipe: Any) -> dict[str, Any] | None:
    """A baseline's own defaults as a first trial (in the search space's terms)."""
    _, est = _estimator(pipe)
    p = est.get_params()
    if name.startswith("logistic") and "C" in p:
        return {"C": float(p["C"])}
    if name.startswith("ridge") and "alpha" in p:
        return {"alpha": float(p["alpha"])}
    if name.startswith("random_forest") and "min_samples_leaf" in p:
        return {"min_samples_leaf": int(p["min_samples_leaf"]), "max_features": "sqrt" if p.get("max_features") == "sqrt" else "all"}
    if name.startswith("gradient_boosting") and "learning_rate" in p:
        return {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 1e-4}
    return None


# ---- the record of trials ------------------------------------------------------------------
@dataclass
class Trial:
    candidate: str
    family: str
    number: int
    state: str  # complete, pruned, failed
    score: float | None  # the primary metric on the validation rows (the first fold)
    at: float  # seconds since the run started, when the trial ended
    seconds: float
    params: dict[str, Any]
    epochs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "family": self.family, "number": self.number, "state": self.state,
                "score": self.score, "at": round(self.at, 3), "seconds": round(self.seconds, 3),
                "params": self.params, "epochs": self.epochs}


def load_trials(store: Store, run_id: str) -> dict[str, Any] | None:
    """The run's trials so far (``trials.json``), or None for a run without a search."""
    path = store.run_dir(run_id) / TRIALS_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):  # being replaced right now: the next look reads it
        return None


def _words(value: Any) -> str:
    if isinstance(value, float):
        return formats.number(value)
    return str(value)


PARAM_WORDS = {"size": "size", "dropout": "dropout", "l2": "L2", "learning_rate": "learning rate",
               "batch_size": "batch size", "schedule": "schedule", "embed_scale": "embedding size x",
               "C": "C", "alpha": "alpha", "min_samples_leaf": "leaf size", "max_features": "features per split",
               "max_leaf_nodes": "leaves per tree", "l2_regularization": "L2"}


def best_words(params: dict[str, Any]) -> str:
    """Settings in words: 'size medium, dropout 0.12, learning rate 0.002, ...'."""
    if not params:
        return "its defaults"
    return ", ".join(f"{PARAM_WORDS.get(k, k.replace('_', ' '))} {_words(v)}" for k, v in params.items())


@dataclass
class _Record:
    store: Store
    run_id: str
    clock: Clock
    budget: float
    metric_key: str
    metric_title: str
    higher_is_better: bool
    trials: list[Trial] = field(default_factory=list)

    def add(self, trial: Trial) -> None:
        self.trials.append(trial)
        self.save()

    def save(self, best: dict[str, Any] | None = None) -> None:
        payload = {"budget_s": self.budget, "metric": self.metric_key, "metric_title": self.metric_title,
                   "higher_is_better": self.higher_is_better, "trials": [t.to_dict() for t in self.trials],
                   "best": best or self.best()}
        folder = self.store.run_dir(self.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / TRIALS_FILE) as tmp:
            tmp.write_text(json.dumps(payload))

    def best(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        sign = 1.0 if self.higher_is_better else -1.0
        for t in self.trials:
            if t.state != "complete" or t.score is None:
                continue
            seen = out.get(t.candidate)
            if seen is None or sign * t.score > sign * seen["score"]:
                out[t.candidate] = {"score": t.score, "params": t.params, "number": t.number,
                                    "words": best_words(t.params)}
        return out


# ---- helpers ---------------------------------------------------------------------------------
_STEPS: dict[str, str] = {}  # run id -> the step last said, so a step's start is stamped once


def _say_progress(store: Store, run_id: str, clock: Clock, what: str) -> None:
    """The run's phase (``what`` and the seconds left then), its progress, and when ``what`` began if
    it is a new step: the live page counts the seconds of the step and of the budget from the record."""
    left = max(0.0, clock.left())
    now = time.time()
    step = {"step_started_at": now} if _STEPS.get(run_id) != what else {}
    _STEPS[run_id] = what
    store.update_run(run_id, phase=f"{what} · {left:.0f} s left", progress=min(0.99, clock.elapsed() / clock.budget),
                     heartbeat_at=now, **step)


def _score(task: str, y: np.ndarray, out: np.ndarray, key: str) -> float:
    try:
        value = evaluate.score(task, y, out)[key]
    except Exception:  # noqa: BLE001 (a fold with one class: no score, not a crash)
        return math.nan
    return float(value)


def _sampler_and_pruner(seed: int, prune: bool) -> tuple[Any, Any]:
    import optuna

    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=PRUNE_AFTER_EPOCHS) if prune \
        else optuna.pruners.NopPruner()
    return sampler, pruner


def _study(seed: int, higher: bool, prune: bool = False) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler, pruner = _sampler_and_pruner(seed, prune)
    return optuna.create_study(direction="maximize" if higher else "minimize", sampler=sampler, pruner=pruner)


# ---- baselines ---------------------------------------------------------------------------------
def _one_thread(n_rows: int) -> Any:
    """OpenMP on one thread for gradient boosting on small tables: its threads spin-wait, which on
    a busy 2-core machine made one fit on 300 rows take seconds (as ``dlcore.series.backtest``)."""
    import contextlib

    if n_rows > 20_000:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")


@dataclass
class _Candidate:
    name: str
    family: str
    params: dict[str, Any] = field(default_factory=dict)  # best settings, in the search's words
    trials: int = 0
    search_seconds: float = 0.0
    fold_scores: dict[int, float] = field(default_factory=dict)  # fold position -> score
    oof: dict[int, np.ndarray] = field(default_factory=dict)  # fold position -> output on its held rows
    test_output: np.ndarray | None = None
    fit_seconds: float = 0.0
    model: Any = None  # fitted on the first fold's fit rows (the training rows)
    extra: dict[str, Any] = field(default_factory=dict)


def search_baseline(name: str, pipe: Any, task: str, n_classes: int, x_fit: Any, y_fit: np.ndarray, x_val: Any,
                    y_val: np.ndarray, metric_key: str, higher: bool, seed: int, until: Callable[[], bool],
                    record: _Record | None = None, max_trials: int = MAX_BASELINE_TRIALS,
                    known: _Candidate | None = None, min_gain: float = 0.0) -> _Candidate:
    """Search one baseline's settings on (fit -> val); stops when ``until()`` says so. The first trial
    is the baseline's defaults. Returns the candidate with its best fitted model.

    ``known``: the defaults' trial already run (the first verdict's), reused rather than fitted again.
    ``min_gain``: with it, the search also ends once SETTLE_PATIENCE trials in a row have not beaten
    the best by more than it (the folds' noise: a smaller gain cannot change the verdict)."""
    from sklearn.base import clone

    cand = _Candidate(name, "baseline")
    study = _study(seed, higher)
    first = _baseline_defaults(name, pipe)
    probe = _study(seed, higher).ask()
    has_space = bool(baseline_space(name, pipe, probe))
    if first is not None and has_space:
        study.enqueue_trial(first)
    best_value = -math.inf
    started = time.perf_counter()
    # The known trial is the defaults' (enqueued first), or the only one of a baseline with no settings.
    reuse = (known is not None and known.model is not None and 0 in known.fold_scores
             and (first is not None or not has_space))
    if known is not None:  # its trial counts with these (refitted when it was not the defaults')
        cand.search_seconds, cand.trials = known.search_seconds, 0 if reuse else known.trials
    since_gain = 0
    for number in range(max_trials if has_space else 1):
        if number and until():
            break
        if min_gain > 0 and since_gain >= SETTLE_PATIENCE:
            break
        trial = study.ask()
        params = baseline_space(name, pipe, trial)
        if reuse and number == 0:
            model, out, value, seconds = known.model, known.oof[0], known.fold_scores[0], known.fit_seconds
        else:
            model = clone(pipe).set_params(**params)
            t0 = time.perf_counter()
            with _one_thread(len(y_fit)):
                model.fit(x_fit, y_fit)
            out = baselines.predict_output(task, model, x_val, n_classes)
            value = _score(task, y_val, out, metric_key)
            seconds = time.perf_counter() - t0
        gained = math.isfinite(value) and (value if higher else -value) > best_value + min_gain
        since_gain = 0 if gained or number == 0 else since_gain + 1
        if math.isfinite(value):
            study.tell(trial, value)
        else:
            import optuna

            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        cand.trials += 1
        signed = value if higher else -value
        if math.isfinite(value) and (cand.model is None or signed > best_value):
            best_value, cand.model, cand.params = signed, model, dict(trial.params)
            cand.oof[0], cand.fold_scores[0], cand.fit_seconds = out, value, seconds
        elif cand.model is None:
            cand.model, cand.params, cand.oof[0], cand.fold_scores[0], cand.fit_seconds = model, dict(trial.params), out, value, seconds
        if record is not None and not (reuse and number == 0):
            record.add(Trial(name, "baseline", number, "complete" if math.isfinite(value) else "failed",
                             None if not math.isfinite(value) else value, record.clock.elapsed(), seconds,
                             dict(trial.params)))
    cand.search_seconds += time.perf_counter() - started
    return cand


# ---- the deep template -----------------------------------------------------------------------
def _test_rows_words(board: dict[str, Any]) -> str:
    """Whether the held-out test rows agree with the cross-validated ranking, in words."""
    from dlcore import evaluate

    rows = [r for r in board["rows"] if r.get("test_score") is not None and math.isfinite(r["test_score"])]
    if not rows:
        return ""
    higher = board.get("higher_is_better", True)
    top = max(rows, key=lambda r: r["test_score"] if higher else -r["test_score"])
    first = board["rows"][0]
    if top["model"] == first["model"]:
        return " and the test rows confirm it"
    word = "scored higher than" if higher else "erred less than"  # RMSE 33,769 against 33,786: lower is better
    return (f"; on the test rows {evaluate.display_name(top['model'])} {word} "
            f"{evaluate.display_name(first['model'])} ({formats.number(top['test_score'])} against "
            f"{formats.number(first['test_score'])}): "
            "the intervals on the board say whether that is more than the chance of which rows were held out")


def tell_trial(study: Any, record: Any, trial: Any, name: str, number: int, value: float, pruned: bool,
               elapsed: float, seconds: float, epochs_run: int) -> str:
    """Tell Optuna how a finished deep trial went (pruned, complete, or failed when its score is not a
    number) and add it to the run's trials; returns its state. The tables' and the images' searches
    both end a trial this way."""
    import optuna

    finite = math.isfinite(value)
    if pruned:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        state = "pruned"
    else:
        study.tell(trial, value if finite else None, state=None if finite else optuna.trial.TrialState.FAIL)
        state = "complete" if finite else "failed"
    record.add(Trial(name, "deep", number, state, value if finite else None, elapsed, seconds, dict(trial.params), epochs_run))
    return state


def _trial_callback(store: Store, run_id: str, clock: Clock, trial: Any, deadline: Callable[[], float],
                    key: str, metric_scale: float, epoch_offset: list[int]) -> Any:
    """Keras callback of one deep trial: records epochs for the live chart, reports the validation
    metric to Optuna (and marks the trial pruned), stops at the deadline or on the analyst's Stop."""
    import keras

    class TrialCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stopped_by_user = False
            self.nan_epoch: int | None = None
            self.epoch_seconds: list[float] = []
            self.pruned = False
            self.out_of_time = False
            self._start = time.perf_counter()
            self._done = threading.Event()
            self._watcher: threading.Thread | None = None

        def on_train_begin(self, logs: dict | None = None) -> None:
            # Keras checks ``stop_training`` after every batch: a thread watching the clock and
            # the Stop button ends a long epoch (the first one traces the model) at the deadline.
            self._done.clear()
            self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"deadline-{run_id}")
            self._watcher.start()

        def _watch(self) -> None:
            while not self._done.wait(0.25):
                if clock.elapsed() > deadline():
                    self.out_of_time = True
                    self.model.stop_training = True

        def on_train_end(self, logs: dict | None = None) -> None:
            self.close()

        def close(self) -> None:
            self._done.set()
            if self._watcher is not None:
                self._watcher.join(timeout=2)

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            seconds = time.perf_counter() - self._start
            self.epoch_seconds.append(seconds)
            loss = logs.get("loss")
            if loss is None or not math.isfinite(float(loss)):
                self.nan_epoch = epoch + 1
                self.model.stop_training = True
                return
            epoch_offset[0] += 1

            def clean(v: Any, scale: float = 1.0) -> float | None:
                return None if v is None or not math.isfinite(float(v)) else float(v) * scale

            values = {"loss": clean(loss), "val_loss": clean(logs.get("val_loss")),
                      "metric": clean(logs.get(key), metric_scale),
                      "val_metric": clean(logs.get(f"val_{key}"), metric_scale), "seconds": seconds}
            store.add_epoch(run_id, epoch_offset[0], **values)
            if trial is not None:  # the current trial's own curves, drawn live beside the trials chart
                store.add_trial_epoch(run_id, trial.number, epoch + 1, **values)
            value = logs.get(f"val_{key}")
            if trial is not None and value is not None and math.isfinite(float(value)):
                trial.report(float(value), epoch)
                if trial.should_prune():
                    self.pruned = True
                    self.model.stop_training = True
            if store.stop_requested(run_id):
                self.stopped_by_user = True
                self.model.stop_training = True
            # The next epoch would end past the deadline: stop now rather than cut it. Not after the first
            # epoch, whose time is mostly tracing the model; the watcher stops a later one at the deadline.
            if epoch > 0 and clock.elapsed() + seconds > deadline():
                self.out_of_time = True
                self.model.stop_training = True

    return TrialCallback()


def _schedule_callbacks(schedule: str, patience: int) -> list[Any]:
    import keras

    if schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(2, patience // 3))]
    return []


def _lr_schedule_fixed(schedule: str, best_epoch: int) -> list[Any]:
    """The plateau schedule without validation rows (a fold's refit): halve the rate at the
    same pace a plateau would, once past half of the epochs."""
    import keras

    if schedule != "plateau":
        return []
    half = max(1, best_epoch // 2)
    return [keras.callbacks.LearningRateScheduler(lambda e, lr: lr * 0.5 if e >= half and e % half == 0 else lr)]


def converged(trials: int, best_trial: int) -> bool:
    """Whether the deep search has converged after ``trials`` trials, the best being trial number
    ``best_trial`` (from 0): at least CONVERGED_MIN_TRIALS trials, and none of the last
    CONVERGED_PATIENCE (or the last half, whichever is more) beat the best. A count of trials, not
    of seconds, so the same seed ends the search at the same trial on any machine.

    >>> converged(8, 2), converged(8, 3), converged(20, 9), converged(20, 10)
    (True, False, True, False)
    """
    since = trials - 1 - best_trial
    return trials >= CONVERGED_MIN_TRIALS and since >= max(CONVERGED_PATIENCE, trials // 2)


def ended_words(search: dict[str, Any]) -> str:
    """Why the search ended, in a sentence for the progress line, the report and Compare."""
    ended = search.get("ended")
    if ended == "converged":
        deep = search.get("deep_trials", 0)
        return (f"The run ended early, at {search.get('elapsed_s', 0):.0f} s of {search['budget_s']:.0f} s: the deep "
                f"model's best validation score (trial {search.get('best_trial', 0) + 1}) was not beaten in the "
                f"{deep - 1 - search.get('best_trial', 0)} trials after it, of {deep}; every model was searched and then "
                "cross-validated on every fold the rest of the time allowed.")
    if ended == "settled":
        why = search.get("settled") or "its gains were within the folds' noise"
        return (f"The run ended early, at {search.get('elapsed_s', 0):.0f} s of {search['budget_s']:.0f} s: "
                f"more trials could not change the verdict ({why}).")
    if ended == "perfect":
        return (f"The run ended early, at {search.get('elapsed_s', 0):.0f} s of {search['budget_s']:.0f} s: trial "
                f"{search.get('best_trial', 0) + 1} of the deep model scored a perfect {search.get('metric_title', 'score')} "
                "on the validation images, which no later trial could beat.")
    if ended == "stopped":
        return "The search was stopped by request and kept its best trial."
    return f"The search used the time budget of {search.get('budget_s', 0):.0f} s."


# ---- the first verdict, and when the verdict is settled --------------------------------------
BOUNDED = ("roc_auc", "accuracy", "balanced_accuracy")  # scores that cannot pass 1


def fold_noise(scores: dict[int, float]) -> float:
    """The standard error of a candidate's cross-validated score (0 with fewer than 2 folds): a
    gain smaller than this on one validation fold is within the folds' noise.

    >>> round(fold_noise({0: 0.90, 1: 0.92, 2: 0.94}), 4)
    0.0115
    """
    values = [v for v in scores.values() if v is not None and math.isfinite(v)]
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) >= 2 else 0.0


def _paired_scores(candidates: dict[str, _Candidate], deep: _Candidate,
                   higher: bool) -> tuple[list[float], list[float]] | None:
    """The deep model's and the best baseline's scores on the folds both were scored on (the best
    baseline by its mean there); None before they share two folds."""
    bases = [c for c in candidates.values() if c.family == "baseline" and len(c.fold_scores) >= 2]
    common = sorted(p for p in deep.fold_scores if all(p in c.fold_scores for c in bases))
    if len(common) < 2 or not bases:
        return None
    sign = 1.0 if higher else -1.0
    best = max(bases, key=lambda c: sign * float(np.nanmean([c.fold_scores[p] for p in common])))
    return [deep.fold_scores[p] for p in common], [best.fold_scores[p] for p in common]


def settled(deep: list[float], base: list[float], higher: bool, metric_key: str, noise: float,
            held_share: float = 0.2) -> str | None:
    """Why more deep trials cannot change the verdict, in words; None while they could. ``deep`` and
    ``base`` are the deep model's and the best baseline's scores on the same folds; ``noise`` the
    standard error of the deep model's cross-validated score.

    Clearly better, the deep model stays so (more trials only widen its lead). Level with the best
    baseline (behind by no more than the noise) on a score that cannot pass 1 (accuracy, ROC AUC),
    it is settled when even a perfect score on every fold would not make it clearly better. Behind
    by more, trials go on: a better setting may bring it level, which changes the verdict.

    >>> settled([0.99, 1.0, 0.98, 1.0, 0.99], [1.0, 0.98, 1.0, 0.99, 0.99], True, "accuracy", 0.004)[:30]
    'the deep model is level with t'
    >>> settled([0.78, 0.9, 0.65], [1.0, 0.96, 1.0], True, "accuracy", 0.07) is None
    True
    """
    paired = folding.paired_folds(deep, base, higher, held_share)
    if paired.n_folds < 2 or not math.isfinite(paired.ci[0]):
        return None
    if paired.outcome == "better":
        return ("the deep model is already clearly better than the best baseline, and more trials could only "
                "widen its lead")
    if metric_key in BOUNDED and paired.diff >= -noise:
        perfect = folding.paired_folds([1.0] * len(base), base, higher, held_share)
        if perfect.outcome != "better":
            return ("the deep model is level with the best baseline (within the folds' noise), and even a perfect "
                    f"{'score' if metric_key == 'roc_auc' else 'accuracy'} on every fold would not make it clearly "
                    "better")
    return None


def _publish(store: Store, run_id: str, spec: RunSpec, candidates: dict[str, _Candidate], deep: _Candidate,
             deep_model: Any, data: Inputs, all_folds: list, first_repeat: list[int], metric: Any, clock: Clock,
             still: str, first_s: float | None) -> float:
    """Put the board as it stands (every candidate scored on the test rows, cross-validated on the folds
    done so far, the ensemble) with its verdict in the run's record, while the search goes on; returns
    the seconds into the run it was put there. Nothing is saved as a model: the run's end does that."""
    from dlcore.training import predict_direct

    task, enc = data.task, data.enc
    n_classes = len(enc.classes_) if task != "regression" else 1
    if deep.test_output is None:
        deep.test_output = enc.from_model(predict_direct(deep_model, data.deep_x(data.test), data.predict_batch))
    x_test = None
    for cand in candidates.values():
        if cand.family == "baseline" and cand.test_output is None:
            x_test = data.baseline_x(data.test) if x_test is None else x_test
            cand.test_output = baselines.predict_output(task, cand.model, x_test, n_classes)
    now = {**candidates, deep.name: deep}
    ens = _ensemble(now, all_folds, first_repeat, task, data, metric, metric.higher_is_better)
    if ens is not None:
        now["ensemble"] = ens
    common = [p for p in range(len(all_folds))
              if all(p in c.fold_scores for c in now.values() if c.family != "ensemble")]
    held_share = float(np.mean([len(f.held) / (len(f.held) + len(f.fit)) for f in all_folds]))
    cv = {name: {"folds": [c.fold_scores.get(p) if p in common else None for p in range(len(all_folds))],
                 "trials": c.trials, "search_seconds": round(c.search_seconds, 2), "held_share": held_share}
          for name, c in now.items()}
    board = evaluate.leaderboard(task, data.y_raw[data.test], {n: c.test_output for n, c in now.items()},
                                 {n: c.family for n, c in now.items()}, {n: c.fit_seconds for n, c in now.items()},
                                 n_boot=1000, seed=spec.train.seed, cv=cv, target=spec.data.target)
    at = round(clock.elapsed(), 2)
    first_s = at if first_s is None else first_s
    store.update_run(run_id, result={"first_verdict": {"leaderboard": board.to_dict(), "at_s": at, "still": still,
                                                       "classes": enc.classes_},
                                     "first_verdict_s": first_s}, heartbeat_at=time.time())
    return first_s


def first_verdict_words(result: dict[str, Any]) -> str:
    """When the first verdict came, in a sentence for Compare and the report."""
    first = result.get("first_verdict_s")
    if first is None:
        return ""
    return (f"The first verdict (every model cross-validated, with intervals) was ready {first:.0f} s into the run"
            + (f", which then took {result['elapsed_s']:.0f} s in all." if result.get("elapsed_s") else "."))


# ---- the whole run -------------------------------------------------------------------------
def execute_searched(store: Store, run_id: str, spec: RunSpec, kind: Any, template: Template, data: Inputs,
                     say: Say, clock: Clock) -> dict[str, Any]:
    """Search, cross-validate and ensemble within ``spec.train.budget``; returns what the run's
    result needs (``outputs``, ``families``, ``fit_seconds``, ``cv``, ``trials``, the deep model)."""
    import keras

    from dlcore.training import compile_for, fit_deep, live_metric_key, predict_direct

    task, enc = data.task, data.enc
    budget = float(spec.train.budget)
    n_classes = len(enc.classes_) if task != "regression" else 1
    metric = evaluate.primary_metric(task)
    higher = metric.higher_is_better
    seed = spec.train.seed
    record = _Record(store, run_id, clock, budget, metric.key, metric.title, higher)
    record.save()
    repeats = folding.repeats_for(data.n_rows)
    all_folds = folding.make_folds(data.y_raw, task, data.train, data.val, K_FOLDS, repeats, seed)
    first_repeat = [i for i, f in enumerate(all_folds) if f.repeat == 0]
    # The end of the run (test scores, bootstrap, saving) and what the deep folds need are kept back.
    tail = 2.5 + 0.04 * budget
    # The shares of the budget count from now: loading the data and Keras took what it took.
    ready = clock.elapsed()
    usable = max(1.0, budget - ready)

    def until(share: float) -> float:
        """Seconds left until ``share`` of the time left after loading is used (may be negative)."""
        return ready + share * usable - clock.elapsed()
    stopped = [False]

    def stop_asked() -> bool:
        if not stopped[0] and store.stop_requested(run_id):
            stopped[0] = True
        return stopped[0]

    y_fit_of = (lambda rows: data.y_raw[rows]) if task == "regression" else (lambda rows: data.y[rows])
    candidates: dict[str, _Candidate] = {}

    # 1. baselines: search on the first fold, then every fold while their share of the time lasts.
    offer = data.baselines or kind.baselines
    base_models = offer(task, seed, len(data.train)) if spec.baselines else {}
    x_train, x_val = data.baseline_x(data.train), data.baseline_x(data.val)
    base_share = 0.25 if base_models else 0.0
    # First their defaults only, on the first repeat's folds: with one deep fit, that is the first verdict.
    for i, (name, pipe) in enumerate(base_models.items()):
        _say_progress(store, run_id, clock, f"Fitting baseline {i + 1} of {len(base_models)}: {name.replace('_', ' ')}")
        candidates[name] = search_baseline(name, pipe, task, n_classes, x_train, y_fit_of(data.train), x_val,
                                           data.y_raw[data.val], metric.key, higher, seed, lambda: True,
                                           record=record, max_trials=1)
    for name, cand in candidates.items():
        _cross_validate_baseline(cand, base_models[name], task, n_classes, data, all_folds, first_repeat, metric.key,
                                 y_fit_of, until, 0.0, stop_asked, store, run_id, clock)
    say(f"baselines' defaults cross-validated ({clock.elapsed():.1f} s)")
    held_share = float(np.mean([len(f.held) / (len(f.held) + len(f.fit)) for f in all_folds]))

    def tune_baselines() -> None:
        """The baselines' settings searched beyond their defaults, each until its gains are within its
        folds' noise or its share of the time is used; a new best is cross-validated again."""
        start, left = clock.elapsed(), max(0.0, budget - tail - clock.elapsed())
        for i, (name, pipe) in enumerate(base_models.items()):
            _say_progress(store, run_id, clock,
                          f"Searching baseline {i + 1} of {len(base_models)}: {name.replace('_', ' ')}")
            # Together at most the baselines' share of the time left, as when they were searched first.
            end = start + left * base_share * 0.6 * (i + 1) / len(base_models)
            known = candidates[name]
            cand = search_baseline(name, pipe, task, n_classes, x_train, y_fit_of(data.train), x_val,
                                   data.y_raw[data.val], metric.key, higher, seed,
                                   lambda: clock.elapsed() > end or stop_asked(), record=record, known=known,
                                   min_gain=max(fold_noise(known.fold_scores), 1e-12))
            if cand.params != known.params:
                _cross_validate_baseline(cand, pipe, task, n_classes, data, all_folds, first_repeat, metric.key,
                                         y_fit_of, until, 0.0, stop_asked, store, run_id, clock)
                candidates[name] = cand
            else:
                known.trials, known.search_seconds = cand.trials, cand.search_seconds
            say(f"baseline {name}: {cand.trials} trial(s), best {best_words(cand.params)} ({clock.elapsed():.1f} s)")
    # 2. the deep template's search on the first fold.
    key = live_metric_key(task)
    scale = enc.std_ if task == "regression" else 1.0
    study = _study(seed, higher, prune=True)
    # Keras' live metrics: AUC and accuracy grow, RMSE shrinks; Optuna prunes in that direction.
    n_train = len(data.train)
    study.enqueue_trial(_first_deep(spec.train, n_train, template))
    deep = _Candidate(spec.template, "deep")
    best_model: Any = None
    best_fit: Any = None
    best_signed = -math.inf
    epoch_offset = [0]
    x_deep_train, x_deep_val = data.deep_x(data.train), data.deep_x(data.val)
    y_deep_train, y_deep_val = data.y[data.train], data.y[data.val]
    x_deep_test = data.deep_x(data.test)
    durations: list[float] = []
    search_started = time.perf_counter()

    def cv_cost() -> float:
        """Seconds the deep folds of the first repeat would take, from the best trial so far."""
        if best_fit is None:
            return 0.0
        per_epoch = float(np.median(best_fit.epoch_seconds)) if best_fit.epoch_seconds else 1.0
        return (len(first_repeat) - 1) * (FIT_OVERHEAD + per_epoch * max(1, best_fit.best_epoch or best_fit.epochs_run) * 1.1)

    trial_started = [0.0]

    def search_deadline() -> float:
        # One trial takes at most a share of the budget, so a slow-to-converge setting cannot
        # crowd out the rest of the search (it keeps its best epoch so far).
        own = trial_started[0] + max(TRIAL_SHARE * usable, 10.0)
        if best_fit is None:
            # The first trial is the first verdict's deep model: not cut at one trial's share (a network
            # stopped after a few epochs is no verdict), only where the folds it will need must start.
            return min(ready + FIRST_TRIAL_SHARE * usable, budget - tail)
        # Half as much again is kept for the folds: a later best trial may need more epochs.
        return min(budget - tail - 1.5 * cv_cost(), own)

    def deep_folds(positions: list[int]) -> None:
        """The best deep settings on the folds at ``positions`` not scored yet, as many as the time allows,
        each for as many epochs as the best trial's best epoch."""
        best_epochs = max(1, best_fit.best_epoch or best_fit.epochs_run)
        settings = deep.extra["settings"]
        for position in positions:
            if position == 0 or position in deep.fold_scores:
                continue
            fold = all_folds[position]
            per_epoch = float(np.median(best_fit.epoch_seconds)) if best_fit.epoch_seconds else 1.0
            if stop_asked() or clock.elapsed() + FIT_OVERHEAD + per_epoch * best_epochs * 1.05 > budget - tail:
                break
            _say_progress(store, run_id, clock,
                          f"Cross-validating {template.title}: fold {position + 1} of {len(all_folds)}")
            keras.utils.set_random_seed(seed + 10_000 + position)
            model = template.build(settings, data.info, task, n_classes)
            compile_for(model, task, settings.learning_rate)
            cb = _trial_callback(store, run_id, clock, None, lambda: budget - tail, key, scale, epoch_offset)
            model.fit(data.deep_x(fold.fit), data.y[fold.fit], epochs=best_epochs, batch_size=settings.batch_size,
                      shuffle=True, verbose=0, callbacks=[cb, *_lr_schedule_fixed(deep.extra["schedule"], best_epochs)])
            if cb.nan_epoch is not None or cb.out_of_time or cb.stopped_by_user:
                # A fold cut short by the deadline or a Stop is no measure of the settings: left out.
                continue
            out = enc.from_model(predict_direct(model, data.deep_x(fold.held), data.predict_batch))
            deep.oof[position], deep.fold_scores[position] = out, _score(task, data.y_raw[fold.held], out, metric.key)

    number = 0
    best_number = [0]  # the trial whose score is the best so far
    nan_messages: list[str] = []
    ended = "budget"
    first_s: float | None = None  # seconds into the run when the first verdict was in the record
    since_gain, noise, why_settled = 0, 0.0, None
    while True:
        trial_started[0] = clock.elapsed()  # the deadline of a trial about to start
        if number and stop_asked():
            ended = "stopped"
            break
        if converged(number, best_number[0]):
            ended = "converged"
            break
        if why_settled:
            ended = "settled"
            break
        if number and clock.elapsed() + (np.median(durations) if durations else 0) * 0.5 > search_deadline():
            break
        trial = study.ask()
        settings, schedule = deep_space(trial, replace(spec.train, epochs=MAX_EPOCHS), n_train, template)
        _say_progress(store, run_id, clock, f"Searching {template.title}: trial {number + 1}")
        trial_started[0] = clock.elapsed()
        keras.utils.set_random_seed(seed + number)
        model = template.build(settings, data.info, task, n_classes)
        callback = _trial_callback(store, run_id, clock, trial, search_deadline, key, scale,
                                   epoch_offset)
        t0 = time.perf_counter()
        fit = fit_deep(model, task, settings, x_deep_train, y_deep_train, x_deep_val, y_deep_val, callback,
                       extra_callbacks=_schedule_callbacks(schedule, settings.patience))
        seconds = time.perf_counter() - t0
        durations.append(seconds)
        deep.trials += 1
        import optuna

        if fit.nan_epoch is not None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            nan_messages.append(f"learning rate {settings.learning_rate:.3g}")
            record.add(Trial(spec.template, "deep", number, "failed", None, clock.elapsed(), seconds,
                             dict(trial.params), fit.epochs_run))
            number += 1
            continue
        val_out = enc.from_model(predict_direct(model, x_deep_val, data.predict_batch))
        value = _score(task, data.y_raw[data.val], val_out, metric.key)
        state = tell_trial(study, record, trial, spec.template, number, value, callback.pruned, clock.elapsed(),
                           seconds, fit.epochs_run)
        signed = value if higher else -value
        gained = state == "complete" and math.isfinite(value) and signed > best_signed + noise
        # A pruned trial is kept only when nothing better exists (its weights are its best so far).
        if math.isfinite(value) and (best_model is None or (state == "complete" and signed > best_signed)):
            best_signed, best_model, best_fit = signed, model, fit
            best_number[0] = number
            deep.params, deep.extra = dict(trial.params), {"schedule": schedule, "settings": settings}
            # Folds and test rows of earlier settings say nothing of these: scored again when needed.
            deep.oof, deep.fold_scores, deep.test_output = {0: val_out}, {0: value}, None
        number += 1
        if fit.stopped_by_user:
            stopped[0] = True
        if best_model is None or stopped[0]:
            continue
        if first_s is None and base_models:
            # The first verdict: the strong defaults cross-validated beside the baselines' defaults (a
            # deep-only run has no verdict to give early; its folds come at the end, as before).
            deep_folds(first_repeat)
            first_s = _publish(store, run_id, spec, candidates, deep, best_model, data, all_folds, first_repeat,
                               metric, clock, "the baselines' settings, then more settings of the deep model", None)
            say(f"first verdict in the record ({first_s:.1f} s)")
            tune_baselines()
            _publish(store, run_id, spec, candidates, deep, best_model, data, all_folds, first_repeat, metric, clock,
                     "more settings of the deep model", first_s)
            noise = fold_noise(deep.fold_scores)
            since_gain = 0
        else:
            since_gain = 0 if gained else since_gain + 1
        pair = _paired_scores(candidates, deep, higher)
        why_settled = settled(*pair, higher, metric.key, noise, held_share) if pair else None
        # Without baselines there is no verdict to settle: the convergence rule alone ends the search.
        if why_settled is None and base_models and since_gain >= SETTLE_PATIENCE:
            why_settled = (f"the last {since_gain} trials gained no more than the folds' noise "
                           f"({formats.number(noise)} {metric.title})")
    deep.search_seconds = time.perf_counter() - search_started
    if stopped[0]:
        ended = "stopped"
    if best_model is None:
        raise RunError("Every trial of the deep model became unstable (the loss turned into 'not a number', with "
                       f"{'; '.join(nan_messages[:3])}). Lower the learning rate or use a smaller model, then run it again.")
    say(f"deep model: {deep.trials} trial(s), best {best_words(deep.params)} ({clock.elapsed():.1f} s)"
        + ("; converged: ended early" if ended == "converged" else ""))
    deep.fit_seconds = float(best_fit.fit_seconds)
    if first_s is None and not stopped[0]:  # the budget ended the search before the first verdict's folds
        tune_baselines()
    # 3. the deep folds, as many as the time allows (first repeat first); a settled verdict needs no more
    # than the first repeat, which it was judged on. The baselines follow on the folds the deep model has.
    later = [p for p in range(len(all_folds)) if p not in first_repeat]
    deep_folds(first_repeat + ([] if ended == "settled" else later))
    if any(p in deep.fold_scores for p in later):
        for name, cand in candidates.items():
            _cross_validate_baseline(cand, base_models[name], task, n_classes, data, all_folds, first_repeat,
                                     metric.key, y_fit_of, until, (budget - tail - ready) / usable, stop_asked,
                                     store, run_id, clock)
    candidates[spec.template] = deep
    # 4. test outputs of every candidate (their first-fold models were fitted on the training rows).
    _say_progress(store, run_id, clock, "Scoring every model on the test rows")
    deep.test_output = enc.from_model(predict_direct(best_model, x_deep_test, data.predict_batch))
    x_test = data.baseline_x(data.test)
    for name, cand in candidates.items():
        if cand.family == "baseline":
            cand.test_output = baselines.predict_output(task, cand.model, x_test, n_classes)
    # 5. the ensemble, from out-of-fold outputs of the first repeat.
    ens = _ensemble(candidates, all_folds, first_repeat, task, data, metric, higher)
    if ens is not None:
        candidates["ensemble"] = ens
    return {"candidates": candidates, "folds": all_folds, "deep_model": best_model, "deep_fit": best_fit,
            "record": record, "stopped": stopped[0], "repeats": repeats, "ended": ended,
            "best_trial": best_number[0], "first_verdict_s": first_s, "settled": why_settled}


def _cross_validate_baseline(cand: _Candidate, pipe: Any, task: str, n_classes: int, data: Inputs, all_folds: list,
                             first_repeat: list[int], metric_key: str, y_fit_of: Callable,
                             until: Callable[[float], float], share: float, stop_asked: Callable[[], bool], store: Store,
                             run_id: str, clock: Clock) -> None:
    """The best settings on every fold while the time allows: the first repeat until FIRST_REPEAT_SHARE
    of the time after loading, later repeats until ``share``."""
    from sklearn.base import clone

    step = cand.fit_seconds or 0.1
    for position, fold in enumerate(all_folds):
        if position in cand.fold_scores:
            continue
        later = position not in first_repeat
        if stop_asked() or until(share if later else FIRST_REPEAT_SHARE) < step * 1.2:
            break
        _say_progress(store, run_id, clock, f"Cross-validating {cand.name.replace('_', ' ')}: fold {position + 1} of {len(all_folds)}")
        model = clone(pipe).set_params(**cand.model.get_params())
        t0 = time.perf_counter()
        with _one_thread(len(fold.fit)):
            model.fit(data.baseline_x(fold.fit), y_fit_of(fold.fit))
        step = time.perf_counter() - t0
        out = baselines.predict_output(task, model, data.baseline_x(fold.held), n_classes)
        cand.oof[position], cand.fold_scores[position] = out, _score(task, data.y_raw[fold.held], out, metric_key)


def _ensemble(candidates: dict[str, _Candidate], all_folds: list, first_repeat: list[int], task: str, data: Inputs,
              metric: Any, higher: bool) -> _Candidate | None:
    """A greedy ensemble of the candidates, chosen on their out-of-fold outputs over the folds of the
    first repeat that every candidate was scored on (the first fold, the validation rows, at least);
    None when it would be one model alone."""
    from dlcore import ensemble

    full = [c for c in candidates.values() if c.name != "dummy" and 0 in c.oof]
    first_repeat = [p for p in first_repeat if all(p in c.oof for c in full)]
    if len(full) < 2 or not first_repeat:
        return None
    held = np.concatenate([all_folds[p].held for p in first_repeat])
    oof = {c.name: np.concatenate([c.oof[p] for p in first_repeat]) for c in full}
    weights = ensemble.select(oof, data.y_raw[held], lambda y, out: _score(task, y, out, metric.key), higher)
    if len(weights) < 2:
        return None
    ens = _Candidate("ensemble", "ensemble", params={"weights": weights}, trials=0)
    for p in first_repeat:
        out = ensemble.combine({n: candidates[n].oof[p] for n in weights}, weights)
        ens.oof[p], ens.fold_scores[p] = out, _score(task, data.y_raw[all_folds[p].held], out, metric.key)
    ens.test_output = ensemble.combine({n: candidates[n].test_output for n in weights}, weights)
    ens.fit_seconds = sum(candidates[n].fit_seconds for n in weights)
    return ens


def run_searched(store: Store, run_id: str, spec: RunSpec, kind: Any, template: Template, data: Inputs, say: Say,
                 clock: Clock) -> None:
    """The generic run's path for a table with a time budget: search, folds, ensemble, then the
    same records as a run of fixed settings (models, test outputs, preprocessing, result)."""
    from dlcore.outputs import run_result, save_test_outputs
    from dlcore.training import library_versions

    task, enc = data.task, data.enc
    metric = evaluate.primary_metric(task)
    store.update_run(run_id, task=task, metric=metric.key, higher_is_better=metric.higher_is_better,
                     phase=f"Searching within {describe(clock.budget)}")
    say(f"{data.n_rows} {kind.unit}, task {task}; searching {template.name} and the baselines within {clock.budget:.0f} s "
        f"({clock.elapsed():.1f} s used by loading)")
    done = execute_searched(store, run_id, spec, kind, template, data, say, clock)
    candidates: dict[str, _Candidate] = done["candidates"]
    all_folds = done["folds"]
    say(f"search and folds done ({clock.elapsed():.1f} s)")
    folder = store.run_dir(run_id)
    _say_progress(store, run_id, clock, "Saving the models")
    with atomic_write(folder / f"{spec.template}.keras") as tmp:
        done["deep_model"].save(tmp)
    for name, cand in candidates.items():
        if cand.family == "baseline":
            baselines.save(cand.model, folder / f"{name}.skops")
    if "ensemble" in candidates:
        with atomic_write(folder / "ensemble.json") as tmp:
            tmp.write_text(json.dumps({"weights": candidates["ensemble"].params["weights"]}))
    outputs = {name: c.test_output for name, c in candidates.items()}
    families = {name: c.family for name, c in candidates.items()}
    fit_seconds = {name: c.fit_seconds for name, c in candidates.items()}
    held_share = float(np.mean([len(f.held) / (len(f.held) + len(f.fit)) for f in all_folds]))
    # Every row's cross-validated score is over the same folds: those the deep model and every
    # baseline were scored on (the ensemble's are among them).
    common = [p for p in range(len(all_folds))
              if all(p in c.fold_scores for c in candidates.values() if c.family != "ensemble")]
    for c in candidates.values():
        c.fold_scores = {p: v for p, v in c.fold_scores.items() if p in common}
    cv = {name: {"folds": [c.fold_scores.get(p) for p in range(len(all_folds))], "trials": c.trials,
                 "search_seconds": round(c.search_seconds, 2), "held_share": held_share}
          for name, c in candidates.items()}
    say(f"models saved ({clock.elapsed():.1f} s)")
    _say_progress(store, run_id, clock, "Scoring every model on the test rows")
    y_test = data.y_raw[data.test]
    board = evaluate.leaderboard(task, y_test, outputs, families, fit_seconds, n_boot=1000, seed=spec.train.seed, cv=cv,
                                 target=spec.data.target)
    save_test_outputs(folder, data.test, y_test, outputs)
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({**data.meta, "target": enc.to_dict(), "task": task,
                                   "target_column": spec.data.target, "template": spec.template}))
    say(f"scored on the test rows ({clock.elapsed():.1f} s)")
    record: _Record = done["record"]
    best = record.best()
    fit = done["deep_fit"]
    search = {
        "budget_s": clock.budget,
        "k_folds": K_FOLDS,
        "repeats": done["repeats"],
        "folds": [{"repeat": f.repeat, "index": f.index, "fit_rows": int(len(f.fit)), "held_rows": int(len(f.held))}
                  for f in all_folds],
        "space": {name: SEARCH_SPACE_WORDS["deep"] if c.family == "deep" else SEARCH_SPACE_WORDS.get(name, "")
                  for name, c in candidates.items() if c.family != "ensemble"},
        "chosen": {name: {"params": c.params, "words": best_words(c.params) if c.family != "ensemble"
                          else ", ".join(f"{evaluate.display_name(n)} {w:.0%}" for n, w in c.params["weights"].items())}
                   for name, c in candidates.items()},
        "trials": {name: c.trials for name, c in candidates.items() if c.family != "ensemble"},
        "pruned": sum(1 for t in record.trials if t.state == "pruned"),
        "stopped_early": done["stopped"],
        "ended": done["ended"],  # converged, settled, budget or stopped (ended_words says it in a sentence)
        "best_trial": done["best_trial"],
        "deep_trials": candidates[spec.template].trials,
        "first_verdict_s": done["first_verdict_s"],
        "settled": done["settled"],  # why more trials could not change the verdict, when that ended the search
    }
    record.save(best)
    result = {
        **run_result(board, enc, kind, data, fit, done["stopped"]),
        "models": {name: {"family": families[name], "fit_seconds": fit_seconds[name]} for name in outputs},
        "search": search,
        "budget_s": clock.budget,
        "first_verdict_s": done["first_verdict_s"],
    }
    if "ensemble" in candidates:
        result["ensemble"] = {"weights": candidates["ensemble"].params["weights"]}
    deep_row = next(r for r in board.rows if r.model == spec.template)
    status = "stopped" if done["stopped"] else "done"
    result["elapsed_s"] = round(clock.elapsed(), 2)
    search["elapsed_s"] = result["elapsed_s"]
    early = f": {ended_words(search)}" if search["ended"] in ("converged", "settled") else ""
    store.update_run(run_id, status=status, finished_at=time.time(), result=result, test_score=deep_row.test_score,
                     progress=1.0, phase="Stopped by request: the search kept its best trial; evaluated"
                     if status == "stopped" else f"Finished in {clock.elapsed():.0f} s of {clock.budget:.0f} s{early}",
                     versions=library_versions())
    say(f"{status}: {metric.title} {deep_row.test_score:.4f} (cross-validated {deep_row.cv_score:.4f}) "
        f"in {clock.elapsed():.0f} s of {clock.budget:.0f} s")


def folds_used_words(rows: list[dict[str, Any]], search: dict[str, Any]) -> str:
    """How many folds each model's cross-validated score is the mean of, against those planned: the
    budget may end the folds early, and "repeated 2 times" must not be said of 4 folds out of 10.

    >>> folds_used_words([{"model": "mlp", "cv_folds": [0.9, 0.8, None]}, {"model": "ridge", "cv_folds": [0.7, 0.6, None]}],
    ...                  {"k_folds": 3, "repeats": 1})
    '3 folds were planned and the time allowed 2: every cross-validated score is the mean of those 2 folds'
    """
    from dlcore.evaluate import display_name

    planned = int(search["k_folds"]) * max(1, int(search.get("repeats") or 1))
    plan = f"{search['k_folds']} folds" + (f" × {search['repeats']} repeats" if (search.get("repeats") or 1) > 1 else "")
    used = {r["model"]: sum(v is not None for v in (r.get("cv_folds") or [])) for r in rows if r.get("cv_folds")}
    counts = sorted(set(used.values()), reverse=True)
    if not counts:
        return f"{plan} were planned; no model was scored on a fold"
    most = counts[0]
    head = (f"{plan} ({planned} folds)" if planned != search["k_folds"] else plan)
    said = (f"{head} were planned and the time allowed {most}" if most < planned else f"{head}, all of them")
    if len(counts) == 1:
        return said + f": every cross-validated score is the mean of {'those' if most < planned else 'the'} {most} folds"
    fewer = ", ".join(f"{display_name(m)} over {n}" for m, n in used.items() if n < most)
    return said + f": each cross-validated score is the mean over {most} folds, {fewer}"


def search_lines(result: dict[str, Any]) -> list[str]:
    """Markdown for the report and the model card: the budget, the folds, the search space, the
    settings chosen, how many trials each candidate had, and every fold's score."""
    search = (result or {}).get("search")
    if not search:
        return []
    from dlcore.evaluate import display_name

    board = result["leaderboard"]
    how = {
        # images: one validation split, no folds (dlcore.images.search)
        "held-out split": "Images are not cross-validated (five networks per setting cost too much on a CPU): "
        "each setting was trained on the training images and scored on the held-out validation images, and "
        "the test images confirm the best. Settings were searched with Optuna (seeded TPE sampler, median pruner "
        f"after {PRUNE_AFTER_EPOCHS} epochs) on the validation images",
        # forecasts: the backtest windows are the folds (dlcore.series.search)
        "backtest windows": f"Every model was backtested on the same {search['k_folds']} windows, which are the "
        "folds: a model's cross-validated score is its mean over the windows. The deep model's template, look-back "
        "and learning rate were searched with Optuna (seeded TPE sampler, median pruner after "
        f"{PRUNE_AFTER_EPOCHS} epochs) on the first window's training part, scored on its own latest values, "
        "never on a backtest window",
    }.get(search.get("validation", ""))
    lines = [
        "## How the models were chosen",
        "",
        f"Time budget {describe(float(search['budget_s']))}; the run took {result.get('elapsed_s', 0):.0f} s. "
        + (how if how else
           "Each candidate was cross-validated on folds of the training part (the test rows were in no fold): "
           + folds_used_words(board["rows"], search)
           + "; the board ranks by the cross-validated score" + _test_rows_words(board)
           + ". Settings were searched with Optuna (seeded TPE sampler, median pruner after "
           f"{PRUNE_AFTER_EPOCHS} epochs) on the first fold")
        + f"; {search.get('pruned', 0)} deep trial(s) were pruned"
        + ("; the search was stopped by request and kept its best trial." if search.get("stopped_early") else ".")
        + (f" {ended_words(search)}" if search.get("ended") in ("converged", "perfect", "settled") else "")
        + (f" {first_verdict_words(result)}" if result.get("first_verdict_s") is not None else ""),
        "",
        "| model | search space | trials | settings chosen |",
        "|---|---|---|---|",
    ]
    for name, chosen in search["chosen"].items():
        lines.append(f"| {display_name(name)} | {search['space'].get(name, 'weights over the models below')} | "
                     f"{search['trials'].get(name, 0)} | {chosen['words']} |")
    if not search["folds"]:  # images: no folds
        return lines
    lines += ["", f"Fold scores ({board['metric_title']}; folds every model was scored on):", ""]
    positions = [i for i, _ in enumerate(search["folds"])]
    head = [f"r{f['repeat'] + 1}f{f['index'] + 1}" for f in search["folds"]]
    lines.append("| model | " + " | ".join(head) + " | mean |")
    lines.append("|---|" + "---|" * (len(head) + 1))
    for row in board["rows"]:
        folds = row.get("cv_folds") or [None] * len(positions)
        cells = ["-" if v is None else f"{v:.3f}" for v in folds]
        mean = "-" if row.get("cv_score") is None else f"{row['cv_score']:.3f}"
        lines.append(f"| {display_name(row['model'])} | " + " | ".join(cells) + f" | {mean} |")
    return lines
