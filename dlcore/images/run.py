"""A run on images: the split of a ZIP's pictures, decoded once per size and cached beside the
dataset, fed to the CNN as pixels and to the baselines as small flattened pictures.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from dlcore import base
from dlcore.errors import DataError
from dlcore.images import pixels as decode
from dlcore.spec import RunSpec, suggested_image_size
from dlcore.splits import split_indices
from dlcore.store import DatasetRecord, Store, atomic_write
from dlcore.targets import TargetEncoder

__all__ = ["image_task", "image_pixels", "prepare_inputs", "check"]


def check(store: Store, spec: RunSpec, record: DatasetRecord) -> None:
    """The classes were checked when the ZIP was read (two or more, each with a few images)."""
    image_task(spec.data.task, len(record.report.get("classes", {})))
    if spec.data.target != "label":
        raise DataError("Images are classified by their folders (or labels file): the target is 'label'.")


def image_task(requested: str, n_classes: int) -> str:
    """Images are always classified: binary for two classes, multiclass for more."""
    if requested == "regression":
        raise DataError("Images are sorted into classes (their folders); predicting a number from an image "
                        "is not supported. Choose classification.")
    return "binary" if n_classes == 2 else "multiclass"


def image_pixels(store: Store, dataset_id: str, size: int, channels: int,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Every image of a dataset decoded at ``size`` pixels, cached on disk per size (decoded once)."""
    folder = store.dataset_dir(dataset_id)
    cache = folder / f"pixels-{size}.npy"
    if cache.exists():
        return np.load(cache, allow_pickle=False)
    manifest = pd.read_parquet(folder / "data.parquet", columns=["image"])
    pixels = decode.load_pixels(_source_zip(store, dataset_id), manifest["image"].tolist(), size, channels, progress)
    with atomic_write(cache) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, pixels, allow_pickle=False)
    return pixels


def _source_zip(store: Store, dataset_id: str) -> Any:
    return store.dataset_dir(dataset_id) / "source.zip"


def prepare_inputs(store: Store, run_id: str, spec: RunSpec, record: DatasetRecord,
                   template: base.Template) -> base.Inputs:
    """The run's images, split by class and decoded at the training size, for the generic run."""
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
    flat = decode.baseline_features(pixels)
    info = base.InputInfo(image_shape=(size, size, channels))
    meta = {"kind": "image", "input_format": "image", "image": {"size": size, "channels": channels},
            "input_info": {"image_shape": [size, size, channels]}}
    result = {"image": {"size": size, "channels": channels, "baseline_pixels": int(flat.shape[1]),
                        "classes": report.get("classes", {})}}
    small = [f"{c!r} ({n})" for c, n in report.get("classes", {}).items() if n < 20]
    warnings = [f"Some classes have few images: {', '.join(small[:8])}. Scores for them are rough; add images "
                "if you can."] if small else []
    return base.Inputs(task, enc, train, val, test, y, y.astype(np.int64), info, lambda rows: pixels[rows],
                       lambda rows: flat[rows], meta, result, 0, warnings, len(manifest), predict_batch=256)
