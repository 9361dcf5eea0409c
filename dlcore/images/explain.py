"""Where in a picture an image run's CNN looked: class activation maps and their overlays.

``grad_cam`` returns one heat map per image for a chosen class, from the last convolution
block of a Keras model; ``overlay_png`` blends a map onto its picture; ``image_explanations``
does both for a finished run's most telling test images and saves the pictures in the run's
folder (``explain/gradcam-<row>.png``).

The maps are HiResCAM (Draelos & Carin, 2020), the variant of Grad-CAM that multiplies each
gradient with its own activation instead of first averaging the gradients over the whole
picture. After a global-average-pooling head the two are the same map; after a ``Flatten``
head (the small CNN) the averaging mixes the weights of every position, and classic Grad-CAM
can light up places the model did not use: on pictures whose class is *where* a blob sits, it
marks nothing for one of the two classes (``tests/test_explain_images.py`` shows both).
``grad_cam(..., pooled=True)`` gives the classic map. A model without a convolution layer gets
a gradient saliency map instead.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from dlcore.errors import RunError
from dlcore.store import EVALUATED, RunRecord, Store, atomic_write

__all__ = ["grad_cam", "cam_layer", "overlay_png", "image_explanations", "explain_model"]

_BATCH = 32
# The inferno colour map (dark purple to pale yellow) at eleven even steps: light rises steadily
# with heat, so a hotter place always looks brighter, in colour, in grey and to colour-blind eyes.
_INFERNO = np.array([
    (0, 0, 4), (22, 11, 57), (66, 10, 104), (106, 23, 110), (147, 38, 103), (188, 55, 84),
    (221, 81, 58), (243, 120, 25), (252, 165, 10), (246, 215, 70), (252, 255, 164),
], dtype=np.float64)


def grad_cam(model: Any, pixels: np.ndarray, class_index: np.ndarray, *, pooled: bool = False) -> np.ndarray:
    """Heat maps (n, height, width) in 0..1 showing what made ``model`` score each image's class.

    ``pixels`` is what the model reads, (n, height, width, channels) as saved by a run (0..255;
    the templates scale inside the model; maps are read channels-last, Keras' default); ``class_index`` holds one class per image (for a
    one-unit sigmoid head: 1 scores the logit, 0 its negative). The model runs in inference mode,
    so augmentation and dropout layers leave the pictures alone. Each map is scaled to its own
    maximum; a map that is zero everywhere means no place raised that class's score. Not safe to
    call from two threads on the same model object (a layer is tapped while it runs).
    """
    pixels = np.asarray(pixels)
    class_index = np.asarray(class_index).reshape(-1)
    if pixels.ndim != 4 or len(class_index) != len(pixels):
        raise ValueError(f"grad_cam needs pixels (n, height, width, channels) and one class per image; got pixels "
                         f"{pixels.shape} and {len(class_index)} class indices")
    found = _target_layer(model)
    maps = [_heat_batch(model, pixels[i:i + _BATCH], class_index[i:i + _BATCH], found, pooled)
            for i in range(0, len(pixels), _BATCH)]
    return np.concatenate(maps) if maps else np.zeros(pixels.shape[:3], dtype=np.float32)


def cam_layer(model: Any) -> str | None:
    """The name of the layer whose maps ``grad_cam`` reads, or None when it falls back to saliency."""
    found = _target_layer(model)
    return found.name if found is not None else None


def overlay_png(pixels: np.ndarray, heat: np.ndarray, size: int = 192) -> bytes:
    """PNG bytes of the picture at ``size`` x ``size`` pixels with ``heat`` coloured on top.

    ``pixels`` is (height, width), (height, width, 1) or (height, width, 3) in 0..255; ``heat``
    is (height, width) in 0..1 (any size: it is resized to the picture's). The colour is blended
    in with an opacity that grows from nothing at heat 0.2 to 0.45 at heat 0.6 and above, so
    the picture stays readable and cool places are left untouched.
    """
    from PIL import Image

    img = np.asarray(pixels)
    img = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"overlay_png needs a grey or RGB picture (height, width[, 1 or 3]); got shape {img.shape}")
    picture = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).convert("RGB")
    base = np.asarray(picture.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64)
    warm = Image.fromarray(np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0), mode="F")
    warm = np.clip(np.asarray(warm.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64), 0.0, 1.0)
    alpha = (0.45 * np.clip((warm - 0.2) / 0.4, 0.0, 1.0))[..., None]
    blended = (1.0 - alpha) * base + alpha * _colour(warm)
    out = io.BytesIO()
    Image.fromarray(np.round(blended).astype(np.uint8), mode="RGB").save(out, "PNG")
    return out.getvalue()


def image_explanations(store: Store, run_id: str, n: int = 12) -> dict[str, Any]:
    """Heat maps of up to ``n`` test images of a finished image run, saved as PNGs in its folder.

    The most confident mistakes come first (up to half of ``n``, more when there are too few
    correct images), then the most confident correct images; each map is for the class the
    model predicted. Returns ``{"method", "layer", "items": [{"row", "file", "true",
    "predicted", "confidence", "correct", "png"}]}``; ``png`` is the file's name in the run's
    ``explain/`` folder, which then holds exactly these pictures. Raises ``RunError`` for a run
    that is not finished or not on images.
    """
    import keras

    from dlcore.images.run import image_pixels
    from dlcore.outputs import load_test_outputs

    if n < 1:
        raise ValueError(f"n is the number of images to explain, at least 1; got {n}")
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; heat maps need a finished run. Wait until it is done, "
                       "or pick a finished image run.")
    folder = store.run_dir(run_id)
    meta_path = folder / "preprocess.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta.get("kind") != "image" or (run.result or {}).get("kind") != "image":
        raise RunError(f"Run {run_id!r} was trained on {(run.result or {}).get('kind') or meta.get('kind') or 'other'} "
                       "data; heat maps show where a model looked in a picture, so pick a run on images.")
    template = meta["template"]
    model_path = folder / f"{template}.keras"
    if not model_path.exists():
        raise RunError(f"Run {run_id!r} has no saved {template} model ({model_path.name} is missing); run it again.")
    model = keras.saving.load_model(model_path, safe_mode=True)
    classes = list(meta["target"]["classes_"])
    y_true, outputs, rows = load_test_outputs(store, run_id)
    probs = np.asarray(outputs[template], dtype=np.float64)
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(len(probs)), predicted]
    chosen = _pick(predicted == np.asarray(y_true).astype(np.int64), confidence, n)

    pixels = image_pixels(store, run.dataset_id, int(meta["image"]["size"]), int(meta["image"]["channels"]))
    files = pd.read_parquet(store.dataset_dir(run.dataset_id) / "data.parquet", columns=["image"])["image"]
    x = pixels[rows[chosen]]
    heat = grad_cam(model, x, predicted[chosen])
    layer = cam_layer(model)
    items = []
    for i, k in enumerate(chosen):
        row = int(rows[k])
        name = f"gradcam-{row}.png"
        with atomic_write(folder / "explain" / name) as tmp:
            tmp.write_bytes(overlay_png(x[i], heat[i]))
        items.append({"row": row, "file": str(files.iloc[row]), "true": classes[int(y_true[k])],
                      "predicted": classes[int(predicted[k])], "confidence": float(confidence[k]),
                      "correct": bool(predicted[k] == int(y_true[k])), "png": name})
    shown = {item["png"] for item in items}
    for stale in (folder / "explain").glob("gradcam-*.png"):  # from an earlier call with another n
        if stale.name not in shown:
            stale.unlink(missing_ok=True)
    return {"method": "HiResCAM" if layer is not None else "saliency", "layer": layer, "items": items}


def _pick(correct: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """Positions of the test images to show: confident mistakes first, then confident hits."""
    order = np.lexsort((np.arange(len(confidence)), -confidence))  # most confident first; ties by position
    wrong, right = order[~correct[order]], order[correct[order]]
    n_wrong = min(len(wrong), max(n // 2, n - len(right)))
    return np.concatenate([wrong[:n_wrong], right[:max(0, n - n_wrong)]]).astype(np.int64)


def _walk(model: Any) -> Iterator[tuple[list[Any], int]]:
    """(sibling layers, position) of every layer in forward order, descending into nested models."""
    siblings = list(getattr(model, "layers", None) or [])
    for i, layer in enumerate(siblings):
        yield siblings, i
        yield from _walk(layer)


def _target_layer(model: Any) -> Any | None:
    """The last convolution layer, or the normalisation and activation layers right after it:
    the block's rectified maps, where the paper reads them. None when there is no convolution."""
    from keras import layers

    convs = (layers.Conv2D, layers.SeparableConv2D, layers.DepthwiseConv2D)
    per_channel = (layers.BatchNormalization, layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU,
                   layers.PReLU)
    last = None
    for siblings, i in _walk(model):
        if isinstance(siblings[i], convs):
            last = (siblings, i)
    if last is None:
        return None
    siblings, i = last
    target = siblings[i]
    for after in siblings[i + 1:]:
        try:
            follows = isinstance(after, per_channel) and after.input is target.output
        except (AttributeError, ValueError):  # a layer called more than once has no single input
            follows = False
        if not follows:
            break
        target = after
    return target


@contextlib.contextmanager
def _tap(layer: Any, seen: list[tuple[Any, Any]], on_output: Callable[[Any], None] | None = None) -> Iterator[None]:
    """Note (first input, output) of each call of ``layer`` while the block runs.

    Wrapping the one layer's ``call`` reaches it wherever it sits, in nested models too, which
    a sub-model from the outer inputs to the layer's output cannot do."""
    had_own = "call" in vars(layer)
    original = layer.call

    def call(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if on_output is not None:
            on_output(out)
        seen.append((args[0] if args else None, out))
        return out

    layer.call = call
    try:
        yield
    finally:
        if had_own:
            layer.call = original
        else:
            del layer.call


def _head(model: Any) -> Any | None:
    """The final sigmoid or softmax Dense layer, whose logits score a class without saturating."""
    from keras import layers

    last = (getattr(model, "layers", None) or [None])[-1]
    if isinstance(last, layers.Dense) and getattr(last.activation, "__name__", "") in ("sigmoid", "softmax"):
        return last
    return None


def _class_scores(model: Any, x: Any, class_index: np.ndarray, head: Any) -> Any:
    """The score of each image's class: its logit where the head allows (a probability near 1
    has a gradient of nearly 0, and exactly 0 in float32 for the confident images we show),
    else the log of its probability (log-odds for one sigmoid unit)."""
    import tensorflow as tf

    seen: list[tuple[Any, Any]] = []
    with _tap(head, seen) if head is not None else contextlib.nullcontext():
        out = tf.convert_to_tensor(model(x, training=False), tf.float32)
    out = tf.reshape(out, (tf.shape(out)[0], -1))
    if seen:
        logits = tf.matmul(tf.cast(seen[-1][0], tf.float32), tf.cast(head.kernel, tf.float32))
        if head.use_bias:
            logits = logits + tf.cast(head.bias, tf.float32)
        again = tf.sigmoid(logits) if out.shape[1] == 1 else tf.nn.softmax(logits)
        if not np.allclose(again.numpy(), out.numpy(), atol=1e-4):  # the head is not what made the output
            seen.clear()
    if not seen:
        logits = tf.math.log(tf.clip_by_value(out, 1e-7, 1.0))
        if out.shape[1] == 1:
            logits = logits - tf.math.log(tf.clip_by_value(1.0 - out, 1e-7, 1.0))  # log-odds
    k = tf.constant(class_index.astype(np.int32))
    if logits.shape[1] == 1:
        return tf.where(k == 1, logits[:, 0], -logits[:, 0])
    return tf.gather(logits, k, axis=1, batch_dims=1)


def _heat_batch(model: Any, pixels: np.ndarray, class_index: np.ndarray, target: Any, pooled: bool) -> np.ndarray:
    import tensorflow as tf

    x = tf.convert_to_tensor(pixels, tf.float32)
    seen: list[tuple[Any, Any]] = []
    with tf.GradientTape() as tape:
        if target is None:
            tape.watch(x)
        # Watching the maps as the layer hands them on lets the tape follow the score back to them.
        with _tap(target, seen, tape.watch) if target is not None else contextlib.nullcontext():
            score = _class_scores(model, x, class_index, _head(model))
    if target is None:
        from scipy.ndimage import gaussian_filter

        grads = np.abs(tape.gradient(score, x).numpy()).max(axis=-1)
        return _normalise(gaussian_filter(grads, sigma=(0, 1, 1)))
    maps = tf.cast(seen[-1][1], tf.float32)
    grads = tf.cast(tape.gradient(score, seen[-1][1]), tf.float32)
    if pooled:
        grads = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(grads * maps, axis=-1))
    return _normalise(tf.image.resize(cam[..., None], pixels.shape[1:3], method="bilinear")[..., 0].numpy())


def _normalise(heat: np.ndarray) -> np.ndarray:
    top = heat.reshape(len(heat), -1).max(axis=1, initial=0.0)
    scaled = heat / np.where(top > 0, top, 1.0)[:, None, None]
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _colour(heat: np.ndarray) -> np.ndarray:
    """Inferno colours (..., 3) for heat in 0..1, interpolated between the eleven steps."""
    steps = np.linspace(0.0, 1.0, len(_INFERNO))
    return np.stack([np.interp(heat, steps, _INFERNO[:, c]) for c in range(3)], axis=-1)


def explain_model(store: Store, run: RunRecord, model: str,
                  progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Where the run's deep model looked, on its test images (baselines read pixels as a flat
    vector: there is no map to draw for them, so the deep model is always the one shown)."""
    return image_explanations(store, run.id)
