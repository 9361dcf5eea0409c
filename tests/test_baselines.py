import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from dlcore import baselines
from dlcore.errors import StoreError


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_baseline_fits_predicts_and_round_trips(task, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    k = {"binary": 2, "multiclass": 3, "regression": 1}[task]
    y = x[:, 0] * 3 + rng.normal(size=120) if task == "regression" else (np.digitize(x[:, 0], [-0.5, 0.5]) % k)
    models = baselines.baselines_for(task, seed=0, n_rows=120)
    assert list(models)[0] == "dummy" and len(models) == 4
    for name, pipe in models.items():
        assert isinstance(pipe, Pipeline)
        with baselines.small_table_threads(len(x)):  # as a run fits them: spinning OpenMP threads cost 30-70 s when busy
            pipe.fit(x, y)
        out = baselines.predict_output(task, pipe, x, k)
        assert out.shape == ((120,) if task == "regression" else (120, k))
        path = tmp_path / f"{name}.skops"
        baselines.save(pipe, path)
        again = baselines.predict_output(task, baselines.load(path), x, k)
        assert np.allclose(out, again)
    dummy = baselines.predict_output(task, models["dummy"], x, k)
    if task == "regression":
        assert np.allclose(dummy, y.mean())
    else:
        assert np.allclose(dummy, np.bincount(y, minlength=k) / len(y))


def test_a_class_missing_from_training_gets_a_zero_probability_column():
    x = np.arange(20, dtype=float).reshape(-1, 1)
    y = np.array([0, 2] * 10)  # class 1 never seen
    pipe = baselines.baselines_for("multiclass", 0, 20)["logistic_regression"].fit(x, y)
    out = baselines.predict_output("multiclass", pipe, x, 3)
    assert out.shape == (20, 3) and np.all(out[:, 1] == 0) and np.allclose(out.sum(axis=1), 1)


def test_loading_refuses_types_outside_the_allow_list(tmp_path):
    import skops.io as sio

    class NotAModel:
        pass

    path = tmp_path / "evil.skops"
    sio.dump({"payload": NotAModel()}, path)
    with pytest.raises(StoreError, match="not allowed"):
        baselines.load(path)
