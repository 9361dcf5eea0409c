"""Heat maps for image runs: known answers on pictures whose class is where a blob sits, the
overlay picture, and the saved explanations of a real image run."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, runner
from dlcore.errors import RunError
from dlcore.images.explain import cam_layer, grad_cam, image_explanations, overlay_png
from dlcore.outputs import load_test_outputs
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import churn_frame, shapes_zip

SIDE = 24


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grey noise with one bright 6x6 blob: class 0 ("left") in the left half, 1 ("right") in the
    right half, at a random height. Returns pixels (n, 24, 24, 1), classes and blob centres (row, col)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 90, (n, SIDE, SIDE, 1)).astype(np.uint8)
    y = np.arange(n) % 2
    centres = np.zeros((n, 2))
    for i in range(n):
        top = int(rng.integers(1, SIDE - 7))
        left = int(rng.integers(1, 6)) if y[i] == 0 else int(rng.integers(13, 18))
        x[i, top:top + 6, left:left + 6, 0] = 255
        centres[i] = (top + 2.5, left + 2.5)
    return x, y, centres


@pytest.fixture(scope="module")
def blob_model():
    """A tiny CNN with a Flatten head (like the small CNN) that tells left from right.

    It holds a vertical flip and dropout, which change the picture only while training: the maps
    must come from the model in inference mode."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    x_in = keras.Input((SIDE, SIDE, 1))
    x = layers.RandomFlip("vertical", seed=1)(x_in)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(0.3)(layers.Flatten()(x))
    model = keras.Model(x_in, layers.Dense(1, activation="sigmoid")(x))
    model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
    x_train, y_train, _ = blobs(240, seed=0)
    model.fit(x_train, y_train, epochs=6, batch_size=32, verbose=0)
    return model


def mass_in_own_half(heat: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Share of each map's heat in the half where its class's blob sits."""
    left = heat[:, :, : SIDE // 2].sum(axis=(1, 2)) / heat.sum(axis=(1, 2))
    return np.where(y == 0, left, 1.0 - left)


def test_the_heat_of_the_predicted_class_sits_on_the_blob(blob_model):
    x, y, centres = blobs(40, seed=1)
    assert ((blob_model.predict(x, verbose=0)[:, 0] > 0.5) == y).mean() >= 0.95
    heat = grad_cam(blob_model, x, y)
    assert heat.shape == (40, SIDE, SIDE) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and np.allclose(heat.max(axis=(1, 2)), 1.0)
    own = mass_in_own_half(heat, y)
    assert own[y == 0].min() > 0.8 and own[y == 1].min() > 0.8  # "left" (the sigmoid's negative) and "right"
    peaks = np.array([np.unravel_index(h.argmax(), h.shape) for h in heat])
    assert np.abs(peaks - centres).max() <= 2.5  # the hottest pixel is on the blob: the vertical flip was off
    assert cam_layer(blob_model) == "last_conv"


def test_maps_repeat_exactly_and_do_not_depend_on_the_batch(blob_model):
    x, y, _ = blobs(40, seed=2)  # more than one batch of 32
    heat = grad_cam(blob_model, x, y)
    assert np.array_equal(heat, grad_cam(blob_model, x, y))  # no dropout, no random flip
    assert np.allclose(heat[35:], grad_cam(blob_model, x[35:], y[35:]), atol=1e-5)
    assert "call" not in vars(blob_model.get_layer("last_conv"))  # the tap is gone afterwards
    assert grad_cam(blob_model, x[:0], y[:0]).shape == (0, SIDE, SIDE)


def test_classic_grad_cam_misses_one_class_behind_a_flatten_head(blob_model):
    """Why the maps keep each gradient where it falls: averaged over the picture first, the
    weights of a Flatten head's left and right positions cancel, and one class lights up nothing."""
    x, y, _ = blobs(40, seed=1)
    own = mass_in_own_half(grad_cam(blob_model, x, y, pooled=True) + 1e-9, y)
    assert min(own[y == 0].mean(), own[y == 1].mean()) < 0.5


def test_a_saturated_probability_still_gives_the_same_map(blob_model):
    """The class score is the logit: scaling the head by 50 makes every probability exactly 0 or 1
    in float32 (a probability's gradient is then 0), yet the logit's map is unchanged."""
    import keras

    x, y, _ = blobs(12, seed=3)
    sharp = keras.models.clone_model(blob_model)
    sharp.set_weights(blob_model.get_weights())
    head = sharp.layers[-1]
    head.kernel.assign(head.kernel * 50.0)
    head.bias.assign(head.bias * 50.0)
    p = sharp.predict(x, verbose=0)[:, 0]
    assert set(np.unique(p)) <= {0.0, 1.0}
    assert np.allclose(grad_cam(sharp, x, y), grad_cam(blob_model, x, y), atol=1e-4)


@pytest.mark.slow
def test_a_model_without_convolutions_gets_a_saliency_map():
    """A linear model that reads only the left 10 columns: its gradient is its weights, whatever the
    picture and class, and zero elsewhere."""
    import keras
    from keras import layers

    model = keras.Sequential([keras.Input((SIDE, SIDE, 1)), layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    weights = np.zeros((SIDE, SIDE, 1), dtype=np.float32)
    weights[:, :10] = np.random.default_rng(0).normal(0, 1, (SIDE, 10, 1))
    model.set_weights([weights.reshape(-1, 1), np.zeros(1, dtype=np.float32)])
    x, y, _ = blobs(6, seed=4)
    heat = grad_cam(model, x, y)
    assert cam_layer(model) is None
    assert heat.shape == (6, SIDE, SIDE) and np.allclose(heat.max(axis=(1, 2)), 1.0)
    assert heat[:, :, 14:].max() < 1e-3  # only the blur reaches a little past column 10
    from scipy.ndimage import gaussian_filter

    expected = gaussian_filter(np.abs(weights[..., 0]), sigma=1)  # a linear score's gradient is its weights
    assert np.allclose(heat, expected / expected.max(), atol=1e-5)


def test_the_overlay_colours_hot_places_and_leaves_cold_ones_alone():
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (SIDE, SIDE, 1)).astype(np.uint8)
    heat = np.zeros((SIDE, SIDE), dtype=np.float32)
    heat[2:10, 2:10] = 1.0
    png = overlay_png(grey, heat, size=96)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    shown = Image.open(io.BytesIO(png))
    assert (shown.size, shown.mode) == ((96, 96), "RGB")
    shown = np.asarray(shown).astype(int)
    plain = np.asarray(Image.fromarray(grey[..., 0]).convert("RGB").resize((96, 96), Image.Resampling.BILINEAR))
    plain = plain.astype(int)
    assert np.array_equal(shown[48:, 48:], plain[48:, 48:])  # no heat: the picture as it is
    hot = shown[16:36, 16:36] - plain[16:36, 16:36]
    assert np.abs(hot).mean() > 20
    assert (shown[16:36, 16:36, 0] > shown[16:36, 16:36, 2]).mean() > 0.9  # warm: more red than blue
    rgb = rng.integers(0, 256, (10, 14, 3)).astype(np.uint8)
    assert Image.open(io.BytesIO(overlay_png(rgb, np.ones((5, 7))))).size == (192, 192)
    with pytest.raises(ValueError, match="grey or RGB"):
        overlay_png(np.zeros((4, 4, 2)), np.zeros((4, 4)))


def test_the_colour_ramp_grows_brighter_with_heat():
    from dlcore.images.explain import _colour

    rgb = _colour(np.linspace(0.0, 1.0, 60))
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) > 0)


@pytest.mark.slow
def test_a_run_explains_its_confident_mistakes_first_and_saves_each_picture(store):
    from PIL import Image

    record, _ = datasets.register_bytes(store, shapes_zip(n_per_class=12, size=16), "shapes.zip")
    spec = RunSpec(data=DataSpec(record.id, "label", image_size=16, test_share=0.5), template="cnn_small",
                   train=TrainSpec(epochs=1, batch_size=16, learning_rate=3e-3), baselines=False)
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    assert store.run(run_id).status == "done", store.run(run_id).message

    out = image_explanations(store, run_id, n=6)
    y_true, outputs, rows = load_test_outputs(store, run_id)
    probs = outputs["cnn_small"]
    classes = store.run(run_id).result["classes"]
    n_wrong = int((probs.argmax(axis=1) != y_true).sum())
    assert 0 < n_wrong < len(rows)  # one epoch: some of each, so the order below means something
    assert out["method"] == "HiResCAM" and out["layer"].startswith("conv2d")
    items = out["items"]
    assert len(items) == 6
    wrong = [it for it in items if not it["correct"]]
    assert len(wrong) == min(n_wrong, max(3, 6 - (len(rows) - n_wrong)))
    assert [it["correct"] for it in items] == [False] * len(wrong) + [True] * (6 - len(wrong))
    for group in (wrong, [it for it in items if it["correct"]]):
        assert [it["confidence"] for it in group] == sorted((it["confidence"] for it in group), reverse=True)
    manifest = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet")
    position = {int(r): k for k, r in enumerate(rows)}
    for it in items:
        k = position[it["row"]]
        assert it["file"] == manifest["image"].iloc[it["row"]]
        assert it["true"] == manifest["label"].iloc[it["row"]] == classes[int(y_true[k])]
        assert it["predicted"] == classes[int(probs[k].argmax())]
        assert it["confidence"] == pytest.approx(probs[k].max())
        assert it["correct"] == (it["true"] == it["predicted"])
        with Image.open(store.run_dir(run_id) / "explain" / it["png"]) as img:
            assert img.size == (192, 192) and it["png"] == f"gradcam-{it['row']}.png"
    assert saved(store, run_id) == sorted(it["png"] for it in items)
    fewer = image_explanations(store, run_id, n=2)
    assert fewer["items"] == items[:1] + [it for it in items if it["correct"]][:1]  # one of each, same order
    assert saved(store, run_id) == sorted(it["png"] for it in fewer["items"])  # the pictures of the first call are gone


def saved(store, run_id: str) -> list[str]:
    return sorted(p.name for p in (store.run_dir(run_id) / "explain").iterdir())


def test_only_a_finished_image_run_is_explained(store):
    record, _ = datasets.register_bytes(store, shapes_zip(n_per_class=6, size=16), "shapes.zip")
    queued = runner.submit(store, RunSpec(data=DataSpec(record.id, "label", image_size=16), template="cnn_small"))
    with pytest.raises(RunError, match="is queued; heat maps need a finished run"):
        image_explanations(store, queued)
    table, _ = datasets.register_bytes(store, churn_frame(40).to_csv(index=False).encode(), "churn.csv")
    tabular = runner.submit(store, RunSpec(data=DataSpec(table.id, "churn"), template="mlp"))
    store.update_run(tabular, status="done", result={"kind": "tabular"})
    with pytest.raises(RunError, match="trained on tabular data"):
        image_explanations(store, tabular)
