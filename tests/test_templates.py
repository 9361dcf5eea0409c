"""One table-driven test over every registered template and task: build, shape, one epoch,
save and reload with the same predictions."""

import numpy as np
import pytest

from dlcore import templates
from dlcore.spec import TrainSpec

TASKS = {"tabular": ("binary", "multiclass", "regression"), "image": ("binary", "multiclass"), "series": ("forecast",)}
HORIZON = 3
# Images: grey and colour, and a side too small to pool three times.
IMAGE_SHAPES = {"binary": (16, 16, 1), "multiclass": (8, 8, 3)}
# Tables with and without free-text columns (the text template always reads text).
TEXTS = {"text_rnn": (True,)}
CASES = [(name, task, text) for name in sorted(templates.REGISTRY) for task in TASKS[templates.get(name).kind]
         for text in (TEXTS.get(name, (False, True)) if templates.get(name).kind == "tabular" else (False,))]
WORDS = np.array(["good strategy game", "slow café service", "我喜欢这个游戏", "", "misspeled wrods here"], dtype=object)


def _inputs(template, task, rng, n, text=False):
    if template.kind == "series":  # a look-back window of 12 steps: the target and one covariate
        info = templates.InputInfo(window_shape=(12, 2))
        return info, templates.model_inputs(template, info, lambda: rng.normal(size=(n, 12, 2)).astype("float32"),
                                            None, None)
    if template.kind == "image":
        info = templates.InputInfo(image_shape=IMAGE_SHAPES[task])
        pixels = rng.integers(0, 256, size=(n, *IMAGE_SHAPES[task])).astype("uint8")
        return info, templates.model_inputs(template, info, lambda: pixels, None, None)
    info = templates.InputInfo(n_dense=4 + 5 + 3, n_numeric=4, cardinalities=(5, 3))
    texts = None
    if text:  # two text columns, vocabularies fitted on the rows as a run does
        from dlcore.tables.text import vocabularies

        texts = WORDS[rng.integers(0, len(WORDS), size=(n, 2))]
        info = templates.InputInfo(n_dense=12, n_numeric=4, cardinalities=(5, 3), n_text=2,
                                   text_vocab=vocabularies(texts))
    numeric = rng.normal(size=(n, 4)).astype("float32")
    codes = np.column_stack([rng.integers(0, 5, n), rng.integers(0, 3, n)]).astype("int32")
    dense = np.hstack([numeric, np.eye(5)[codes[:, 0]], np.eye(3)[codes[:, 1]]]).astype("float32")
    return info, templates.model_inputs(template, info, lambda: dense, numeric, codes, texts)


@pytest.mark.slow  # one epoch of real training per template
@pytest.mark.parametrize("name, task, text", CASES)
def test_template(name, task, text, tmp_path):
    import keras

    from dlcore.training import compile_for

    template = templates.get(name)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, k = 48, 3
    info, x = _inputs(template, task, rng, n, text)
    y = {"binary": rng.integers(0, 2, n), "multiclass": rng.integers(0, k, n), "regression": rng.normal(size=n),
         "forecast": rng.normal(size=(n, HORIZON))}[task]

    outputs = {"multiclass": k, "forecast": HORIZON}.get(task, 1)
    model = template.build(TrainSpec(size="small"), info, task, outputs)
    compile_for(model, task, 1e-3)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    pred = model.predict(x, verbose=0)
    assert pred.shape == (n, outputs)
    if task == "binary":
        assert ((pred >= 0) & (pred <= 1)).all()
    if task == "multiclass":
        assert np.allclose(pred.sum(axis=1), 1.0, atol=1e-5)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert np.allclose(again.predict(x, verbose=0), pred, atol=1e-6)


@pytest.mark.slow  # a real Python process
def test_registry_lists_plain_language_templates_without_keras():
    import subprocess
    import sys

    code = ("import sys; from dlcore import templates; names = sorted(templates.REGISTRY); "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules; print(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['cnn1d', 'cnn_deep', 'cnn_small', 'gru', 'lstm', 'mlp', 'mlp_embed', 'text_rnn']"
    assert [t.name for t in templates.for_kind("image")] == ["cnn_small", "cnn_deep"]
    assert [t.name for t in templates.for_kind("series")] == ["lstm", "gru", "cnn1d"]
    for t in templates.REGISTRY.values():
        assert t.title and len(t.description) > 40


def test_unknown_template_lists_the_known_ones():
    from dlcore.errors import SpecError

    with pytest.raises(SpecError, match="cnn1d, cnn_deep, cnn_small, gru, lstm, mlp, mlp_embed"):
        templates.get("transformer")


def test_augmentation_changes_training_images_only_and_follows_the_settings():
    """The deeper CNN's augmentation acts while training and never when scoring; it can be
    switched off, and mirroring can be left out of it."""
    import keras

    from dlcore.images import templates as cnn

    keras.utils.set_random_seed(0)
    pixels = np.random.default_rng(1).integers(0, 256, size=(4, 16, 16, 1)).astype("float32")
    on = cnn.augmentation(TrainSpec(), seed=3)
    assert [type(layer).__name__ for layer in on] == ["RandomFlip", "RandomRotation", "RandomZoom",
                                                      "RandomTranslation", "RandomContrast"]
    assert [type(layer).__name__ for layer in cnn.augmentation(TrainSpec(flip=False), seed=3)][0] == "RandomRotation"
    assert cnn.augmentation(TrainSpec(augment=False), seed=3) == []
    stack = keras.Sequential([keras.Input((16, 16, 1)), *on])
    assert np.allclose(stack(pixels, training=False), pixels)
    assert not np.allclose(stack(pixels, training=True), pixels)
