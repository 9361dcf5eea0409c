"""A run of images within a time budget: a search on one held-out validation split (no folds).

Folds would train a CNN five times over on a CPU, so an image run keeps the generic run's split
(train / validation / test) and spends the budget on trials instead: Optuna (seeded TPE, the
median pruner after a few epochs, as ``dlcore.search``) samples the image size, how strongly the
pictures are changed while training (augmentation), the learning rate, the network's width,
dropout and batch size. The first trial is the run's own settings, so the search never ends
below what a run of fixed settings would give. The baselines are fitted once on the small
flattened pictures. Leaderboard rows gain ``trials``; ``cv_score`` / ``cv_ci`` stay null.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from dlcore import base, evaluate
from dlcore.budget import Clock, describe, longer_budget, still_improving
from dlcore.errors import RunError
from dlcore.images import pixels as decode
from dlcore.images.run import image_pixels
from dlcore.search import (
    MAX_EPOCHS,
    TRIAL_SHARE,
    Trial,
    _Record,
    _say_progress,
    _score,
    _study,
    _trial_callback,
    best_words,
    ended_words,
    tell_trial,
)
from dlcore.spec import IMAGE_SIZES, RunSpec, TrainSpec
from dlcore.store import Store, atomic_write

__all__ = ["image_space", "first_image_trial", "size_choices", "run_searched_images", "SPACE_WORDS"]

SPACE_WORDS = ("image size (the suggested side, a smaller and a larger one), augmentation strength 0-2 "
               "(templates that augment), learning rate 3e-4-1e-2, size (small, medium, large), dropout 0-0.5, "
               "batch size 16-128")
FIRST_TRIAL_SHARE = 0.6  # the first trial (the run's own settings) may use this share of the time left
BASELINE_SHARE = 0.3  # of the time left after loading, for the baselines (fitted before the search)


def size_choices(suggested: int) -> list[int]:
    """The sides the search may try: the suggested one and its neighbours among IMAGE_SIZES, the
    larger capped at 64 (a CPU trains four times slower for every doubling of the side)."""
    i = IMAGE_SIZES.index(suggested) if suggested in IMAGE_SIZES else None
    if i is None:
        return [suggested]
    out = {suggested}
    if i > 0 and IMAGE_SIZES[i - 1] >= 16:
        out.add(IMAGE_SIZES[i - 1])
    if i + 1 < len(IMAGE_SIZES) and IMAGE_SIZES[i + 1] <= 64:
        out.add(IMAGE_SIZES[i + 1])
    return sorted(out)


def _batches(n_train: int) -> list[int]:
    return [b for b in (16, 32, 64, 128) if b <= max(16, n_train // 4)]


def image_space(trial: Any, settings: TrainSpec, sizes: list[int], augments: bool, n_train: int) -> tuple[TrainSpec, int]:
    """Sample one trial's settings; returns them and the image side."""
    side = trial.suggest_categorical("image_size", sizes)
    out = replace(
        settings,
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 1e-2, log=True),
        size=trial.suggest_categorical("size", ["small", "medium", "large"]),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
        batch_size=trial.suggest_categorical("batch_size", _batches(n_train)),
    )
    if augments:
        strength = trial.suggest_float("augment_strength", 0.0, 2.0)
        out = replace(out, augment=strength > 0.05, augment_strength=round(strength, 3))
    return out, int(side)


def first_image_trial(settings: TrainSpec, side: int, augments: bool, n_train: int) -> dict[str, Any]:
    """The run's own settings as the first trial (clipped into the space)."""
    first: dict[str, Any] = {"image_size": side, "learning_rate": min(1e-2, max(3e-4, settings.learning_rate)),
                             "size": settings.size, "dropout": min(0.5, settings.dropout),
                             "batch_size": min(_batches(n_train), key=lambda b: abs(b - settings.batch_size))}
    if augments:
        first["augment_strength"] = float(settings.augment_strength) if settings.augment else 0.0
    return first


def run_searched_images(store: Store, run_id: str, spec: RunSpec, kind: Any, template: base.Template,
                        data: base.Inputs, say: base.Say, clock: Clock) -> None:
    """The generic run's path for images with a time budget: baselines once, then trials until the
    budget (less the time the end of the run needs) is spent; the best trial is the deep model."""
    import keras
    import optuna

    from dlcore.baselines import fit_within, predict_output
    from dlcore.outputs import run_result, save_test_outputs
    from dlcore.training import fit_deep, library_versions, live_metric_key, predict_direct

    task, enc = data.task, data.enc
    metric = evaluate.primary_metric(task)
    higher = metric.higher_is_better
    budget, seed = float(spec.train.budget), spec.train.seed
    n_classes = len(enc.classes_)
    store.update_run(run_id, task=task, metric=metric.key, higher_is_better=higher,
                     phase=f"Searching within {describe(budget)}")
    say(f"{data.n_rows} images, task {task}; searching {template.name} within {budget:.0f} s "
        f"({clock.elapsed():.1f} s used by loading)")
    record = _Record(store, run_id, clock, budget, metric.key, metric.title, higher)
    record.save()
    tail = 2.5 + 0.04 * budget  # predicting the test images, the bootstrap, saving
    folder = store.run_dir(run_id)

    # 1. the baselines, once, on the flattened pictures at the run's own size, within their share of
    # the time: forests and boosting grow until it is spent, and the board says which were cut short.
    outputs: dict[str, np.ndarray] = {}
    families: dict[str, str] = {}
    fit_seconds: dict[str, float] = {}
    budget_notes: list[str] = []
    if spec.baselines:
        _say_progress(store, run_id, clock, "Fitting the baselines")
        until = clock.elapsed() + BASELINE_SHARE * max(0.0, budget - tail - clock.elapsed())
        x_val_flat, y_val = data.baseline_x(data.val), data.y_raw[data.val]

        def scored(name: str, pipe: Any, seconds: float) -> None:
            """A baseline on the validation images as soon as it is fitted: the trials chart's first
            points, seconds into the run, on the same images as every trial of the CNN."""
            value = _score(task, y_val, predict_output(task, pipe, x_val_flat, n_classes), metric.key)
            record.add(Trial(name, "baseline", 0, "complete" if math.isfinite(value) else "failed",
                             value if math.isfinite(value) else None, clock.elapsed(), seconds, {}))

        base_out, base_seconds, budget_notes = fit_within(
            store, run_id, task, seed, data.baseline_x(data.train), data.y[data.train], data.baseline_x(data.test),
            n_classes, clock, until, say, offer=data.baselines or kind.baselines, fitted=scored)
        outputs.update(base_out)
        fit_seconds.update(base_seconds)
        families.update({name: "baseline" for name in base_out})

    # 2. the deep search on the validation split.
    side0 = int(data.info.image_shape[0])
    channels = int(data.info.image_shape[2])
    sizes = size_choices(side0)
    augments = "augment" in f"{template.title} {template.description}".lower()  # the templates that change pictures
    n_train = len(data.train)
    study = _study(seed, higher, prune=True)
    study.enqueue_trial(first_image_trial(spec.train, side0, augments, n_train))
    key = live_metric_key(task)
    ready = clock.elapsed()
    usable = max(1.0, budget - tail - ready)
    pixels: dict[int, np.ndarray] = {}
    best: dict[str, Any] = {}
    best_signed = -math.inf
    epoch_offset = [0]
    durations: list[float] = []
    least: list[float] = []  # per trial: building, tracing and the first epoch, what any trial costs at least
    trial_started = [0.0]
    stopped = False
    perfect = None  # the trial (from 0) that scored perfectly on the validation images: no later one can beat it
    started = time.perf_counter()

    running: list[Any] = [None]  # the callback of the trial training now

    def deadline() -> float:
        own = trial_started[0] + max(TRIAL_SHARE * usable, 10.0)
        if not best:
            end = min(ready + FIRST_TRIAL_SHARE * usable, budget - tail)
            # What it would leave cannot pay for another trial (two first epochs, tracing included):
            # the first trial, the run's own settings, takes the time rather than leave it unused.
            seen = running[0].epoch_seconds if running[0] is not None else []
            if seen and (budget - tail) - end < 2.0 * seen[0]:
                return budget - tail
            return end
        return min(budget - tail, own)

    def pixels_at(side: int) -> np.ndarray:
        if side not in pixels:
            _say_progress(store, run_id, clock, f"Decoding the images at {side}×{side} pixels")
            pixels[side] = image_pixels(store, spec.data.dataset_id, side, channels)
        return pixels[side]

    pixels[side0] = data.deep_x(np.arange(data.n_rows))
    number = 0
    while True:
        trial_started[0] = clock.elapsed()
        # Another trial only while it can train a few epochs before the end (it is cut at its deadline).
        if number and (store.stop_requested(run_id)
                       or clock.elapsed() + 2.0 * (min(least) if least else 10.0) > budget - tail):
            break
        trial = study.ask()
        settings, side = image_space(trial, replace(spec.train, epochs=MAX_EPOCHS), sizes, augments, n_train)
        _say_progress(store, run_id, clock, f"Searching {template.title}: trial {number + 1}")
        x = pixels_at(side)
        trial_started[0] = clock.elapsed()
        keras.utils.set_random_seed(seed + number)
        model = template.build(settings, base.InputInfo(image_shape=(side, side, channels)), task, n_classes)
        callback = _trial_callback(store, run_id, clock, trial, deadline, key, 1.0, epoch_offset)
        running[0] = callback
        t0 = time.perf_counter()
        fit = fit_deep(model, task, settings, x[data.train], data.y[data.train], x[data.val], data.y[data.val], callback)
        seconds = time.perf_counter() - t0
        durations.append(seconds)
        if fit.epoch_seconds:
            least.append(seconds - sum(fit.epoch_seconds) + fit.epoch_seconds[0])
        if fit.nan_epoch is not None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            record.add(Trial(spec.template, "deep", number, "failed", None, clock.elapsed(), seconds,
                             dict(trial.params), fit.epochs_run))
            number += 1
            continue
        val_out = enc.from_model(predict_direct(model, x[data.val], data.predict_batch))
        value = _score(task, data.y_raw[data.val], val_out, metric.key)
        state = tell_trial(study, record, trial, spec.template, number, value, callback.pruned, clock.elapsed(),
                           seconds, fit.epochs_run)
        signed = value if higher else -value
        if math.isfinite(value) and (not best or (state == "complete" and signed > best_signed)):
            best_signed = signed
            best = {"model": model, "fit": fit, "side": side, "params": dict(trial.params), "score": value,
                    "cut": still_improving(bool(callback.out_of_time) and not callback.pruned, fit.epochs_run,
                                           fit.best_epoch, settings.patience)}
        number += 1
        if callback.stopped_by_user:
            stopped = True
            break
        if higher and best.get("score", 0.0) >= 1.0:  # a tie never replaces the best: searching on changes nothing
            perfect = number - 1
            break
    if not best:
        raise RunError("Every trial of the deep model became unstable (the loss turned into 'not a number'). "
                       "Lower the learning rate or use a smaller model, then run it again.")
    search_seconds = time.perf_counter() - started
    if best["cut"]:
        budget_notes.append(f"The time budget ({budget:.0f} s) stopped the chosen network after "
                            f"{best['fit'].epochs_run} epoch(s), before it stopped improving: it is likely "
                            f"under-trained, and its scores understate what it can do. {longer_budget(budget)}")
    say(f"deep model: {number} trial(s), best {best_words(best['params'])} ({clock.elapsed():.1f} s)")

    # 3. the best trial on the test images; the records of a run of fixed settings.
    _say_progress(store, run_id, clock, "Scoring every model on the test images")
    side = best["side"]
    x = pixels_at(side)
    outputs = {spec.template: enc.from_model(predict_direct(best["model"], x[data.test], data.predict_batch)),
               **outputs}
    families = {spec.template: "deep", **families}
    fit_seconds = {spec.template: float(best["fit"].fit_seconds), **fit_seconds}
    with atomic_write(folder / f"{spec.template}.keras") as tmp:
        best["model"].save(tmp)
    y_test = data.y_raw[data.test]
    board = evaluate.leaderboard(task, y_test, outputs, families, fit_seconds, n_boot=1000, seed=seed, unit=kind.unit,
                                 target="each image's class")
    trials = {spec.template: number, **{name: 1 for name in outputs if families[name] == "baseline"}}
    for row in board.rows:
        row.trials = trials.get(row.model)
        row.search_seconds = round(search_seconds, 2) if row.family == "deep" else None
    save_test_outputs(folder, data.test, y_test, outputs)
    meta = {**data.meta, "image": {**data.meta.get("image", {}), "size": side},
            "input_info": {"image_shape": [side, side, channels]}}
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({**meta, "target": enc.to_dict(), "task": task,
                                   "target_column": spec.data.target, "template": spec.template}))
    chosen = {spec.template: {"params": best["params"], "words": best_words(best["params"])}}
    chosen.update({name: {"params": {}, "words": "its defaults"} for name in outputs if families[name] == "baseline"})
    search = {
        "budget_s": budget, "k_folds": 0, "repeats": 0, "folds": [], "validation": "held-out split",
        "space": {spec.template: SPACE_WORDS, **{n: "none (fitted once)" for n in outputs if families[n] == "baseline"}},
        "chosen": chosen, "trials": trials,
        "pruned": sum(1 for t in record.trials if t.state == "pruned"), "stopped_early": stopped,
        "ended": "stopped" if stopped else "perfect" if perfect is not None else "budget",
        "best_trial": perfect, "metric_title": metric.title,
    }
    record.save()
    fit = best["fit"]
    image = {**data.result.get("image", {}), "size": side,
             "baseline_pixels": int(decode.baseline_features(pixels[side0][:1]).shape[1])}
    result = {
        **run_result(board, enc, kind, data, fit, stopped),
        "image": image,
        "warnings": [*data.warnings, *budget_notes],
        "budget_notes": budget_notes,
        "models": {name: {"family": families[name], "fit_seconds": fit_seconds[name]} for name in outputs},
        "search": search,
        "budget_s": budget,
    }
    deep_row = next(r for r in board.rows if r.model == spec.template)
    status = "stopped" if stopped else "done"
    result["elapsed_s"] = search["elapsed_s"] = round(clock.elapsed(), 2)
    early = f": {ended_words(search)}" if perfect is not None else ""
    store.update_run(run_id, status=status, finished_at=time.time(), result=result, test_score=deep_row.test_score,
                     progress=1.0, phase="Stopped by request: the search kept its best trial; evaluated"
                     if stopped else f"Finished in {clock.elapsed():.0f} s of {budget:.0f} s{early}",
                     versions=library_versions())
    say(f"{status}: {metric.title} {deep_row.test_score:.4f} after {number} trial(s) "
        f"in {clock.elapsed():.0f} s of {budget:.0f} s")
