"""Execute one run: the deep template and the baselines on one split, evaluated together.

This is the single code path behind the app's workers and ``python -m dlcore fit``. It loads
the dataset by id, drops rows without a target, splits once (seeded, stratified for classes),
fits the preprocessing on the training rows only, trains the deep model with live metrics,
fits every baseline on the same rows and matrix, scores all of them on the same test rows
with the same metric code, and saves models, preprocessing and test predictions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from dlcore import baselines, datasets, evaluate, templates
from dlcore.data import tabular
from dlcore.errors import DataError, DlcoreError, RunError
from dlcore.features import TabularPreprocessor, TargetEncoder
from dlcore.spec import RunSpec
from dlcore.store import Store, atomic_write

__all__ = ["Prepared", "Inputs", "prepare", "execute_run", "submit", "resolve_task", "split_indices", "library_versions",
           "image_task", "image_pixels", "load_test_outputs"]

log = logging.getLogger("dlcore.runner")
Say = Callable[[str], None]


def submit(store: Store, spec: RunSpec, claim: bool = False) -> str:
    """Queue a run and return its id at once; a worker picks it up (or, with ``claim``, the caller)."""
    template = templates.get(spec.template)
    record = store.dataset(spec.data.dataset_id)
    if spec.forecast is not None or template.kind == "series":
        return _submit_forecast(store, spec, template, record, claim)
    _check_kind(template, record)
    if record.kind == "image":
        # The classes were checked when the ZIP was read (two or more, each with a few images).
        image_task(spec.data.task, len(record.report.get("classes", {})))
        if spec.data.target != "label":
            raise DataError("Images are classified by their folders (or labels file): the target is 'label'.")
    else:
        if spec.data.target not in {c["name"] for c in record.profile["columns"]}:
            raise DataError(
                f"The dataset has no column {spec.data.target!r}; pick the target among its columns."
            )
        # Refuse a target that cannot be learned now, not minutes later in a worker: only the
        # target column is read, so this stays quick on big tables.
        target = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet", columns=[spec.data.target])
        tabular.check_target(target, spec.data.target, resolve_task(spec.data.task, target[spec.data.target]))
    return store.create_run(spec.to_dict(), spec.data.dataset_id, spec.template, spec.data.target, spec.train.epochs,
                            claim=claim)


def _check_kind(template: templates.Template, record: Any) -> None:
    if template.kind != record.kind:
        raise DataError(f"The template {template.title!r} is for {template.kind} data, but this dataset holds "
                        f"{record.kind} data; choose one of: "
                        f"{', '.join(t.title for t in templates.for_kind(record.kind))}.")


def _submit_forecast(store: Store, spec: RunSpec, template: templates.Template, record: Any, claim: bool) -> str:
    from dlcore.forecasting import load_series

    if template.kind != "series" or spec.forecast is None or record.kind != "tabular":
        raise DataError("A forecast needs a table with a time column and a sequence template "
                        f"({', '.join(t.title for t in templates.for_kind('series'))}); choose both.")
    # Read, fix and size the series now, so a bad date or a too-short series is said at once.
    load_series(datasets.load_frame(store, record.id), spec)
    return store.create_run(spec.to_dict(), spec.data.dataset_id, spec.template, spec.data.target, spec.train.epochs,
                            claim=claim)


def resolve_task(requested: str, y: pd.Series) -> str:
    inferred = tabular.infer_task(y) if requested in ("auto", "classification") else requested
    if requested == "classification" and inferred == "regression":
        n = y.nunique()
        if n > 50:
            raise DataError(
                f"The target {y.name!r} has {n} different values, too many to treat as classes. "
                "Choose regression, or a target with fewer values."
            )
        inferred = "binary" if n == 2 else "multiclass"
    if inferred in ("binary", "multiclass"):
        n = _labels_count(y)
        inferred = "binary" if n == 2 else "multiclass"
    return inferred


def _labels_count(y: pd.Series) -> int:
    return int(y.dropna().astype("string").str.strip().nunique())


def split_indices(y: np.ndarray, task: str, test_share: float, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the train, validation and test rows: seeded, stratified for classes when possible."""
    idx = np.arange(len(y))
    strat = y if task != "regression" else None

    def cut(pool: np.ndarray, share: float, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        try:
            return train_test_split(pool, test_size=share, random_state=seed, stratify=labels)
        except ValueError:  # a class too small to stratify: split plainly rather than refuse
            return train_test_split(pool, test_size=share, random_state=seed)

    rest, test = cut(idx, test_share, strat)
    val_of_rest = val_share / (1.0 - test_share)
    train, val = cut(rest, val_of_rest, strat[rest] if strat is not None else None)
    return np.sort(train), np.sort(val), np.sort(test)


@dataclass
class Prepared:
    """Everything the candidates share: rows, split, preprocessing, encoded target."""

    task: str
    frame: pd.DataFrame  # rows with a target, in dataset order
    pre: TabularPreprocessor
    target_enc: TargetEncoder
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    y: np.ndarray  # encoded target for every row of frame
    y_raw: np.ndarray  # float target (regression) or class codes (classification)
    dropped_missing_target: int
    warnings: list[str]


def prepare(store: Store, spec: RunSpec) -> Prepared:
    data = spec.data
    frame = datasets.load_frame(store, data.dataset_id)
    record = store.dataset(data.dataset_id)
    profile = datasets.profile_of(record)
    if data.target not in frame.columns:
        raise DataError(f"The dataset has no column {data.target!r}; pick the target among: "
                        f"{', '.join(map(repr, list(frame.columns)[:12]))}.")
    task = resolve_task(data.task, frame[data.target])
    warnings = tabular.check_target(frame, data.target, task)
    has_target = frame[data.target].notna() & (frame[data.target].astype("string").str.strip() != "")
    dropped = int((~has_target).sum())
    frame = frame.loc[has_target].reset_index(drop=True)
    if task == "regression":
        frame[data.target] = pd.to_numeric(frame[data.target], errors="coerce")
        frame = frame.loc[frame[data.target].notna()].reset_index(drop=True)

    features = list(data.features) if data.features is not None else tabular.usable_features(profile, data.target)
    unknown = [c for c in features if c not in frame.columns]
    if unknown:
        raise DataError(f"The input column(s) {', '.join(map(repr, unknown))} are not in the dataset; "
                        "choose inputs among its columns.")
    if not features:
        raise DataError(
            "No usable input columns are left besides the target (identifiers, free text and constant "
            "columns are left out). Add columns that could explain the target."
        )
    kinds = {c.name: c.kind for c in profile.columns}
    numeric = [c for c in features if kinds.get(c) == "numeric"]
    dates = [c for c in features if kinds.get(c) == "datetime"]
    categorical = [c for c in features if c not in numeric and c not in dates]

    target_enc = TargetEncoder(task)
    y_all = frame[data.target]
    if task == "regression":
        y_raw = y_all.to_numpy(dtype=np.float64)
    else:
        # Class codes are fixed from every row with a target, so a class seen only in test is known.
        y_raw = target_enc.fit(y_all).encode(y_all)
    train, val, test = split_indices(y_raw, task, data.test_share, data.validation_share, spec.train.seed)
    if task == "regression":
        target_enc.fit(y_all.iloc[train])  # scaling learned from training rows only
    y = target_enc.encode(y_all)
    pre = TabularPreprocessor(numeric, categorical, dates).fit(frame.iloc[train])
    return Prepared(task, frame, pre, target_enc, train, val, test, y, y_raw, dropped, warnings)


def library_versions() -> dict[str, str]:
    import sklearn

    import dlcore

    versions = {"python": platform.python_version(), "dlcore": dlcore.__version__,
                "numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__}
    try:
        import keras
        import tensorflow as tf

        versions.update({"tensorflow": tf.__version__, "keras": keras.__version__})
    except ImportError:
        pass
    return versions


def execute_run(store: Store, run_id: str, say: Say | None = None) -> None:
    """Train and evaluate run ``run_id``; its status ends as done, stopped or failed.

    Errors never escape: the run records a plain message (and, for bugs, a log file).
    """
    say = say or (lambda message: None)
    try:
        _execute(store, run_id, say)
    except DlcoreError as exc:
        store.update_run(run_id, status="failed", finished_at=time.time(), phase="Failed", message=str(exc))
        say(f"failed: {exc}")
    except Exception as exc:  # a bug: keep the details for us, a plain message for the user
        folder = store.run_dir(run_id)
        with contextlib.suppress(OSError):  # a full or read-only disk must not stop the run being marked failed
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "error.log").write_text(traceback.format_exc())
        log.exception("run %s failed", run_id)
        store.update_run(run_id, status="failed", finished_at=time.time(), phase="Failed",
                         message=f"An internal error stopped this run ({type(exc).__name__}). "
                                 "It has been logged for the team; try again or change a setting.")
        say(f"failed with an internal error: {exc!r}")


@dataclass
class Inputs:
    """What every candidate of one run shares, whatever the kind of data: the split, the
    encoded target, and how to feed rows to the deep model and to the baselines."""

    task: str
    enc: TargetEncoder
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    y: np.ndarray  # the target as the deep model learns it
    y_raw: np.ndarray  # float target (regression) or class codes (classification)
    info: templates.InputInfo
    deep_x: Callable[[np.ndarray], Any]  # row positions -> the deep model's input
    baseline_x: Callable[[np.ndarray], np.ndarray]  # row positions -> the baselines' matrix
    meta: dict[str, Any]  # saved in preprocess.json: what scoring needs to rebuild the inputs
    result: dict[str, Any]  # extra keys of the run's result
    dropped_missing_target: int
    warnings: list[str]
    n_rows: int


def _tabular_inputs(store: Store, spec: RunSpec, template: templates.Template) -> Inputs:
    prep = prepare(store, spec)
    pre = prep.pre
    feats = pre.transform(prep.frame)
    dense_all = pre.dense(feats)
    info = templates.InputInfo(n_dense=dense_all.shape[1], n_numeric=pre.n_numeric,
                               cardinalities=tuple(pre.cardinalities))

    def deep_x(rows: np.ndarray) -> Any:
        return templates.model_inputs(template, info, lambda: dense_all[rows], feats.numeric[rows], feats.codes[rows])

    meta = {"kind": "tabular", "preprocessor": pre.to_dict(), "input_format": template.input_format,
            "input_info": {"n_dense": info.n_dense, "n_numeric": info.n_numeric,
                           "cardinalities": list(info.cardinalities)}}
    result = {"features": {"numeric": pre.numeric, "categorical": pre.categorical, "datetime": pre.datetime},
              "input_defaults": _input_defaults(prep.frame.iloc[prep.train], pre)}
    return Inputs(prep.task, prep.target_enc, prep.train, prep.val, prep.test, prep.y, prep.y_raw, info,
                  deep_x, lambda rows: dense_all[rows], meta, result, prep.dropped_missing_target,
                  prep.warnings, len(prep.frame))


def image_task(requested: str, n_classes: int) -> str:
    """Images are always classified: binary for two classes, multiclass for more."""
    if requested == "regression":
        raise DataError("Images are sorted into classes (their folders); predicting a number from an image "
                        "is not supported. Choose classification.")
    return "binary" if n_classes == 2 else "multiclass"


def image_pixels(store: Store, dataset_id: str, size: int, channels: int,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Every image of a dataset decoded at ``size`` pixels, cached on disk per size (decoded once)."""
    from dlcore.data import images

    folder = store.dataset_dir(dataset_id)
    cache = folder / f"pixels-{size}.npy"
    if cache.exists():
        return np.load(cache, allow_pickle=False)
    manifest = pd.read_parquet(folder / "data.parquet", columns=["image"])
    pixels = images.load_pixels(_source_zip(store, dataset_id), manifest["image"].tolist(), size, channels, progress)
    with atomic_write(cache) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, pixels, allow_pickle=False)
    return pixels


def _source_zip(store: Store, dataset_id: str) -> Any:
    return store.dataset_dir(dataset_id) / "source.zip"


def _image_inputs(store: Store, run_id: str, spec: RunSpec, record: Any) -> Inputs:
    from dlcore.data import images
    from dlcore.spec import suggested_image_size

    report = record.report
    manifest = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet")
    labels = manifest["label"].astype("string")
    task = image_task(spec.data.task, labels.nunique())
    enc = TargetEncoder(task).fit(labels)
    y = enc.encode(labels)
    train, val, test = split_indices(y, task, spec.data.test_share, spec.data.validation_share, spec.train.seed)
    size = spec.data.image_size or suggested_image_size(report.get("width_median", 32), report.get("height_median", 32))
    channels = int(report.get("channels", 3))
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done == total:
            last[0] = now
            store.update_run(run_id, phase=f"Decoding the images at {size}×{size} pixels: {done:,} of {total:,}",
                             heartbeat_at=time.time())

    pixels = image_pixels(store, record.id, size, channels, progress)
    flat = images.baseline_features(pixels)
    info = templates.InputInfo(image_shape=(size, size, channels))
    meta = {"kind": "image", "input_format": "image", "image": {"size": size, "channels": channels},
            "input_info": {"image_shape": [size, size, channels]}}
    result = {"image": {"size": size, "channels": channels, "baseline_pixels": int(flat.shape[1]),
                        "classes": report.get("classes", {})}}
    small = [f"{c!r} ({n})" for c, n in report.get("classes", {}).items() if n < 20]
    warnings = [f"Some classes have few images: {', '.join(small[:8])}. Scores for them are rough; add images "
                "if you can."] if small else []
    return Inputs(task, enc, train, val, test, y, y.astype(np.int64), info, lambda rows: pixels[rows],
                  lambda rows: flat[rows], meta, result, 0, warnings, len(manifest))


def _execute(store: Store, run_id: str, say: Say) -> None:
    import keras

    from dlcore.train import fit_deep, make_store_callback

    run = store.run(run_id)
    spec = RunSpec.from_dict(run.spec)
    if spec.forecast is not None:
        from dlcore.forecasting import execute_forecast

        return execute_forecast(store, run_id, spec, say)
    template = templates.get(spec.template)
    store.update_run(run_id, phase="Preparing the data", versions=library_versions())
    record = store.dataset(spec.data.dataset_id)
    _check_kind(template, record)
    data = _image_inputs(store, run_id, spec, record) if record.kind == "image" else _tabular_inputs(store, spec, template)
    task, enc = data.task, data.enc
    n_classes = len(enc.classes_) if task != "regression" else 1
    metric = evaluate.primary_metric(task)
    store.update_run(run_id, task=task, metric=metric.key, higher_is_better=metric.higher_is_better,
                     phase=f"Training {template.title}")
    say(f"{data.n_rows} {'images' if record.kind == 'image' else 'rows'}, task {task}; training {template.name}")

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

    raw_out = model.predict(data.deep_x(data.test), verbose=0, batch_size=256 if record.kind == "image" else 1024)
    outputs: dict[str, np.ndarray] = {spec.template: enc.from_model(raw_out)}
    families = {spec.template: "deep"}
    fit_seconds = {spec.template: fit.fit_seconds}
    folder = store.run_dir(run_id)
    with atomic_write(folder / f"{spec.template}.keras") as tmp:
        model.save(tmp)

    if spec.baselines:
        y_fit = data.y_raw[data.train] if task == "regression" else data.y[data.train]
        base_out, base_seconds = fit_baselines(store, run_id, task, spec.train.seed, data.baseline_x(data.train), y_fit,
                                               data.baseline_x(data.test), n_classes, say)
        outputs.update(base_out)
        fit_seconds.update(base_seconds)
        families.update({name: "baseline" for name in base_out})

    store.update_run(run_id, phase="Scoring every model on the test rows", heartbeat_at=time.time())
    y_test = data.y_raw[data.test]
    board = evaluate.leaderboard(task, y_test, outputs, families, fit_seconds, n_boot=1000, seed=spec.train.seed)
    _save_test_outputs(folder, data.test, y_test, outputs)
    with atomic_write(folder / "preprocess.json") as tmp:
        tmp.write_text(json.dumps({**data.meta, "target": enc.to_dict(), "task": task,
                                   "target_column": spec.data.target, "template": spec.template}))
    result = {
        "leaderboard": board.to_dict(),
        "classes": enc.classes_,
        "kind": record.kind,
        "rows": {"train": int(len(data.train)), "validation": int(len(data.val)), "test": int(len(data.test)),
                 "dropped_missing_target": data.dropped_missing_target},
        **data.result,
        "warnings": data.warnings,
        "deep": {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "stopped_by_user": fit.stopped_by_user,
                 "epoch_seconds_median": float(np.median(fit.epoch_seconds)) if fit.epoch_seconds else None},
        "models": {name: {"family": families[name], "fit_seconds": fit_seconds[name]} for name in outputs},
    }
    deep_row = next(r for r in board.rows if r.model == spec.template)
    status = "stopped" if fit.stopped_by_user else "done"
    store.update_run(run_id, status=status, finished_at=time.time(), result=result, test_score=deep_row.test_score,
                     progress=1.0, phase="Stopped early by request; evaluated" if status == "stopped" else "Finished")
    say(f"{status}: {metric.title} {deep_row.test_score:.4f}")


def fit_baselines(store: Store, run_id: str, task: str, seed: int, x_train: np.ndarray, y_fit: np.ndarray,
                  x_test: np.ndarray, n_classes: int,
                  say: Callable[[str], None] = lambda _: None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Fit every baseline of the task on the training rows, save each (skops) in the run's
    folder, and return their test outputs and fit seconds (``bench/baselines.py`` times this)."""
    models = baselines.baselines_for(task, seed, len(x_train))
    folder = store.run_dir(run_id)
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for i, (name, pipe) in enumerate(models.items(), start=1):
        store.update_run(run_id, phase=f"Fitting baseline {i} of {len(models)}: {name.replace('_', ' ')}",
                         heartbeat_at=time.time())
        started = time.perf_counter()
        pipe.fit(x_train, y_fit)
        seconds[name] = time.perf_counter() - started
        outputs[name] = baselines.predict_output(task, pipe, x_test, n_classes)
        baselines.save(pipe, folder / f"{name}.skops")
        say(f"baseline {name}: {seconds[name]:.1f}s")
    return outputs, seconds


def _save_test_outputs(folder: Any, test: np.ndarray, y_test: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    arrays = {"row": test.astype(np.int64), "y_true": y_test}
    for i, (name, out) in enumerate(outputs.items()):
        arrays[f"model_{i}"] = out
    arrays["names"] = np.array(list(outputs), dtype=np.str_)
    with atomic_write(folder / "test_outputs.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_test_outputs(store: Store, run_id: str) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The test rows' true values and every model's outputs, as saved by the run (no pickle)."""
    with np.load(store.run_dir(run_id) / "test_outputs.npz", allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        return data["y_true"], {name: data[f"model_{i}"] for i, name in enumerate(names)}, data["row"]


def _input_defaults(frame: pd.DataFrame, pre: TabularPreprocessor) -> dict[str, Any]:
    """A typical value per input column (median or most common), for the what-if form."""
    out: dict[str, Any] = {}
    for col in pre.numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        out[col] = {"kind": "numeric", "default": _num(values.median()), "min": _num(values.min()),
                    "max": _num(values.max())}
    for col in pre.datetime:
        stamp = pd.to_datetime(frame[col], errors="coerce", format="mixed")
        out[col] = {"kind": "datetime", "default": str(stamp.median()) if stamp.notna().any() else None}
    for col in pre.categorical:
        out[col] = {"kind": "categorical", "default": pre.vocab_[col][0] if pre.vocab_[col] else None,
                    "choices": pre.vocab_[col]}
    return out


def _num(value: Any) -> float | None:
    return float(value) if pd.notna(value) else None
