"""Fit one deep candidate with Keras, writing each epoch to the store as it goes.

``StoreCallback`` acts only through Keras' ``on_*`` hooks: it records every epoch, keeps the
run's heartbeat and progress fresh, and turns a stop request into ``model.stop_training``,
which Keras honours after the current batch. ``EarlyStopping(restore_best_weights=True)`` restores the best
weights at the end of training, whether it ended by itself, by patience, or by a stop.
"""

from __future__ import annotations

import logging
import math
import platform
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import DeletedError

__all__ = ["DeepFit", "fit_deep", "predict_deep", "predict_direct", "compile_for", "live_metric_key", "image_dataset",
           "library_versions"]

log = logging.getLogger("dlcore.training")


def live_metric_key(task: str) -> str:
    """The Keras metric drawn live beside the loss (the leaderboard uses exact sklearn metrics)."""
    return {"binary": "auc", "multiclass": "accuracy", "regression": "rmse", "forecast": "mae"}[task]


def compile_for(model: Any, task: str, learning_rate: float) -> None:
    import keras

    if task == "binary":
        loss, metrics = "binary_crossentropy", [keras.metrics.AUC(name="auc")]
    elif task == "multiclass":
        loss, metrics = "sparse_categorical_crossentropy", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    elif task == "forecast":  # every future step at once, on scaled values
        loss, metrics = "mse", [keras.metrics.MeanAbsoluteError(name="mae")]
    else:
        loss, metrics = "mse", [keras.metrics.RootMeanSquaredError(name="rmse")]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics)


@dataclass
class DeepFit:
    epochs_run: int
    best_epoch: int | None
    stopped_by_user: bool
    nan_epoch: int | None
    fit_seconds: float
    epoch_seconds: list[float]


def _clean(value: Any, scale: float = 1.0) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value * scale if math.isfinite(value) else None


def make_store_callback(store: Any, run_id: str, task: str, epochs_total: int, metric_scale: float = 1.0,
                        check_every: float = 0.5, epoch_offset: int = 0) -> Any:
    """Build the Keras callback (a factory, so Keras is imported only in the worker).

    It has no per-batch hook on purpose: a batch hook makes Keras turn every batch's logs
    into numbers, which stalls the training loop. A small thread watches the store instead,
    and a stop request sets ``model.stop_training``, which Keras checks after each batch.
    """
    import keras
    import sqlalchemy as sa

    key = live_metric_key(task)
    sa_errors = (sa.exc.OperationalError, sa.exc.DBAPIError)

    class StoreCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.stopped_by_user = False
            self.nan_epoch: int | None = None
            self.epoch_seconds: list[float] = []
            self._epoch = 0
            self._epoch_start = time.perf_counter()
            self._done = threading.Event()
            self._last_progress = 0.0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self._watcher = threading.Thread(target=self._watch, daemon=True, name=f"watch-{run_id}")
            self._watcher.start()

        def on_train_end(self, logs: dict | None = None) -> None:
            self.close()

        def close(self) -> None:
            self._done.set()
            watcher = getattr(self, "_watcher", None)
            if watcher is not None:
                watcher.join(timeout=5)

        def _watch(self) -> None:
            while not self._done.wait(check_every):
                try:
                    if not self.stopped_by_user and store.stop_requested(run_id):
                        self.stopped_by_user = True
                        self.model.stop_training = True
                    # Progress inside an epoch, estimated from the last epoch's duration.
                    typical = self.epoch_seconds[-1] if self.epoch_seconds else None
                    now = time.monotonic()
                    if typical and now - self._last_progress >= 2.0:
                        self._last_progress = now
                        within = min(0.99, (time.perf_counter() - self._epoch_start) / typical)
                        store.update_run(run_id, progress=min(1.0, (epoch_offset + self._epoch + within) / epochs_total))
                except sa_errors as exc:  # a busy database must not stop training; the next look retries
                    log.warning("store busy while watching run %s: %s", run_id, exc)
                except DeletedError:  # the run was deleted: it stops (stop_requested), and so does this watch
                    return

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch_start = time.perf_counter()
            self._epoch = epoch

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            seconds = time.perf_counter() - self._epoch_start
            self.epoch_seconds.append(seconds)
            loss = logs.get("loss")
            if loss is None or not math.isfinite(float(loss)):
                self.nan_epoch = epoch + 1
                self.model.stop_training = True
            store.add_epoch(
                run_id, epoch_offset + epoch + 1,  # several fits in one run (a backtest) number on
                loss=_clean(loss), val_loss=_clean(logs.get("val_loss")),
                metric=_clean(logs.get(key), metric_scale), val_metric=_clean(logs.get(f"val_{key}"), metric_scale),
                seconds=seconds, epochs_total=epochs_total,
            )
            # A stop asked for since the last look is honoured here rather than a batch later.
            if not self.stopped_by_user and store.stop_requested(run_id):
                self.stopped_by_user = True
                self.model.stop_training = True

    return StoreCallback()


def image_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None = None) -> Any:
    """Decoded pixels (uint8) to a tf.data pipeline: shuffled afresh each epoch when training,
    batched, and prefetched so the next batch is ready while the model works on this one. The
    pixels were decoded once and cached on disk per size; augmentation happens inside the model."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# Inputs at least this big are fed to Keras a batch at a time from the caller's arrays: given a
# NumPy array, Keras turns the whole of it into a tensor first, a second copy of every row it
# trains, validates or predicts on (at 5,000,000 rows, hundreds of MB each).
FEED_BY_INDEX_BYTES = 32 * 1024 * 1024


def _feedable(x: Any) -> list[tuple[str | None, np.ndarray]] | None:
    """The arrays of a model input that can be fed by index (a matrix, or a dict of arrays with
    rows first); None for anything else (strings, tensors, images) or for small inputs."""
    from dlcore.rows import RowMatrix

    if isinstance(x, RowMatrix):  # kept compact: always fed by batches, each written out as it is needed
        return [(None, x)]
    if isinstance(x, np.ndarray) and x.ndim == 2:
        parts: list[tuple[str | None, np.ndarray]] = [(None, x)]
    elif isinstance(x, dict) and x and all(isinstance(v, np.ndarray) and v.ndim >= 1 and v.dtype != object
                                           for v in x.values()):
        parts = list(x.items())
    else:
        return None
    return parts if sum(a.nbytes for _, a in parts) >= FEED_BY_INDEX_BYTES else None


def indexed_feed(x: Any, y: np.ndarray | None, batch_size: int, shuffle: bool) -> Any:
    """A tf.data pipeline that yields exactly the batches Keras makes of ``(x, y)`` given as
    arrays (the same shuffle, from Keras' own array adapter run over the row numbers), each
    batch gathered from ``x`` as it is needed, so no tensor copy of the whole of ``x`` is made.
    None when ``x`` is not one to feed this way (``_feedable``)."""
    parts = _feedable(x)
    if parts is None:
        return None
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    n = len(parts[0][1])
    rows = np.arange(n, dtype=np.int64)
    adapter = ArrayDataAdapter(rows, y, batch_size=batch_size, shuffle=shuffle)
    arrays = [a for _, a in parts]

    def gather(index: np.ndarray) -> list[np.ndarray]:
        return [a[index] for a in arrays]

    def batch(index: Any, *target: Any) -> Any:
        got = tf.numpy_function(gather, [index], [tf.as_dtype(a.dtype) for a in arrays], stateful=False)
        for tensor, a in zip(got, arrays):
            tensor.set_shape((None, *a.shape[1:]))
        features = got[0] if parts[0][0] is None else {name: t for (name, _), t in zip(parts, got)}
        return (features, *target)

    # Its size told, so Keras steps through epochs as it does over arrays (a fresh pass made
    # ready at each epoch's end, never one step past the last batch).
    data = adapter.get_tf_dataset().apply(tf.data.experimental.assert_cardinality(adapter.num_batches))
    if y is None:
        data = data.map(lambda index: batch(index)[0])
    else:
        data = data.map(batch)
    return data.prefetch(tf.data.AUTOTUNE)


def predict_deep(model: Any, x: Any, batch_size: int) -> np.ndarray:
    """``model.predict`` on ``x``, fed by batches from ``x`` itself when it is big (``indexed_feed``)."""
    feed = indexed_feed(x, None, batch_size, shuffle=False)
    return model.predict(x if feed is None else feed, verbose=0, batch_size=None if feed is not None else batch_size)


def predict_direct(model: Any, x: Any, batch_size: int = 1024) -> np.ndarray:
    """The outputs of ``model`` for ``x`` (an array, a ``RowMatrix``, or a dict of named inputs), calling
    the model a batch at a time. A search predicts with a new model every trial and every fold, and
    ``model.predict`` builds and traces a predict function for each one: after five, TensorFlow printed
    its "triggered tf.function retracing" warning to the analyst's terminal, and each trace cost about a
    second on a busy CPU. A direct call traces nothing (as ``dlcore.series.backtest.eager_predict``)."""
    first = next(iter(x.values())) if isinstance(x, dict) else x
    n = int(first.shape[0]) if hasattr(first, "shape") and not isinstance(first, np.ndarray) else len(first)

    import keras

    def part(start: int) -> Any:
        # A dict of inputs is all tensors or none (Keras refuses a mix): text columns arrive as tensors.
        if isinstance(x, dict):
            return {name: keras.ops.convert_to_tensor(value[start:start + batch_size]) for name, value in x.items()}
        return x[start:start + batch_size]

    if n == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    return np.concatenate([np.asarray(model(part(i), training=False)) for i in range(0, n, batch_size)])


def fit_deep(model: Any, task: str, settings: Any, x_train: Any, y_train: np.ndarray, x_val: Any,
             y_val: np.ndarray, callback: Any, extra_callbacks: list | None = None,
             verbose: int = 0) -> DeepFit:
    """Compile and fit ``model``; return what happened. Weights end as the best seen on validation."""
    import keras

    compile_for(model, task, settings.learning_rate)
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True)
    if isinstance(x_train, np.ndarray) and x_train.ndim == 4:  # images: a tf.data pipeline
        train_data = image_dataset(x_train, y_train, settings.batch_size, shuffle_seed=settings.seed)
        val_data: Any = image_dataset(x_val, y_val, settings.batch_size)
        batching: dict[str, Any] = {"shuffle": False}  # the pipeline shuffles, afresh each epoch
    elif (fed := indexed_feed(x_train, y_train, settings.batch_size, shuffle=True)) is not None:
        # A big table: the same batches as from the arrays, gathered from them as they are needed.
        train_data = fed
        val_data = indexed_feed(x_val, y_val, settings.batch_size, shuffle=False) or (x_val, y_val)
        batching = {"shuffle": False}  # the pipeline shuffles, as Keras would have
    else:
        train_data, val_data = (x_train, y_train), (x_val, y_val)
        batching = {"batch_size": settings.batch_size, "shuffle": True}
    started = time.perf_counter()
    try:
        history = model.fit(
            *((train_data,) if not isinstance(train_data, tuple) else train_data),
            validation_data=val_data,
            epochs=settings.epochs,
            **batching,
            verbose=verbose,
            callbacks=[callback, early, *(extra_callbacks or [])],
        )
    finally:
        callback.close()  # Keras skips on_train_end when fit raises; the watcher must end anyway
    val_losses = [v if v is not None and math.isfinite(v) else math.inf for v in history.history.get("val_loss", [])]
    best = int(np.argmin(val_losses)) + 1 if val_losses and min(val_losses) < math.inf else None
    return DeepFit(
        epochs_run=len(history.history.get("loss", [])),
        best_epoch=best,
        stopped_by_user=callback.stopped_by_user,
        nan_epoch=callback.nan_epoch,
        fit_seconds=time.perf_counter() - started,
        epoch_seconds=callback.epoch_seconds,
    )


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
