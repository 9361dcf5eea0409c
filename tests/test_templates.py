"""One table-driven test over every registered template and task: build, shape, one epoch,
save and reload with the same predictions."""

import numpy as np
import pytest

from dlcore import templates
from dlcore.spec import TrainSpec

CASES = [(name, task) for name in sorted(templates.REGISTRY) for task in ("binary", "multiclass", "regression")]


@pytest.mark.parametrize("name, task", CASES)
def test_template(name, task, tmp_path):
    import keras

    from dlcore.train import compile_for

    template = templates.get(name)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n, k = 48, 3
    info = templates.InputInfo(n_dense=4 + 5 + 3, n_numeric=4, cardinalities=(5, 3))
    numeric = rng.normal(size=(n, 4)).astype("float32")
    codes = np.column_stack([rng.integers(0, 5, n), rng.integers(0, 3, n)]).astype("int32")
    dense = np.hstack([numeric, np.eye(5)[codes[:, 0]], np.eye(3)[codes[:, 1]]]).astype("float32")
    x = templates.model_inputs(template, info, lambda: dense, numeric, codes)
    y = {"binary": rng.integers(0, 2, n), "multiclass": rng.integers(0, k, n), "regression": rng.normal(size=n)}[task]

    model = template.build(TrainSpec(size="small"), info, task, k if task == "multiclass" else 1)
    compile_for(model, task, 1e-3)
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    pred = model.predict(x, verbose=0)
    assert pred.shape == ((n, k) if task == "multiclass" else (n, 1))
    if task == "binary":
        assert ((pred >= 0) & (pred <= 1)).all()
    if task == "multiclass":
        assert np.allclose(pred.sum(axis=1), 1.0, atol=1e-5)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert np.allclose(again.predict(x, verbose=0), pred, atol=1e-6)


def test_registry_lists_plain_language_templates_without_keras():
    import subprocess
    import sys

    code = ("import sys; from dlcore import templates; names = sorted(templates.REGISTRY); "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules; print(names)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['mlp', 'mlp_embed']"
    for t in templates.for_kind("tabular"):
        assert t.title and len(t.description) > 40


def test_unknown_template_lists_the_known_ones():
    from dlcore.errors import SpecError

    with pytest.raises(SpecError, match="mlp, mlp_embed"):
        templates.get("transformer")
