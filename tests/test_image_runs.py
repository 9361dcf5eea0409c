"""Image runs end to end: a ZIP of class folders through the runner, the scorer and the CLI."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, runner
from dlcore.errors import DataError
from dlcore.images import run as images_run
from dlcore.outputs import load_test_outputs
from dlcore.scoring import load_scorer
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import shapes_zip
from tests.test_cli import cli


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """One finished image run (small CNN, a few epochs) in its own store."""
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("images") / "home"
    store = Store.open(home)
    content = shapes_zip(n_per_class=24)
    record, created = datasets.register_bytes(store, content, "shapes.zip")
    spec = RunSpec(data=DataSpec(record.id, "label", image_size=24), template="cnn_small",
                   train=TrainSpec(epochs=6, batch_size=16, learning_rate=3e-3))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    return store, store.run(run_id), record, content


def test_a_zip_registers_as_an_image_dataset(image_run):
    store, _, record, content = image_run
    assert (record.kind, record.format, record.target, record.task) == ("image", "zip", "label", "multiclass")
    assert record.n_rows == 72 and record.report["classes"] == {"horizontal": 24, "square": 24, "vertical": 24}
    assert (store.dataset_dir(record.id) / "source.zip").read_bytes() == content
    again, created = datasets.register_bytes(store, content, "renamed.zip")
    assert (again.id, created) == (record.id, False)


def test_the_image_run_ranks_a_cnn_against_pixel_baselines(image_run):
    store, run, record, _ = image_run
    assert run.status == "done", run.message
    assert (run.task, run.metric) == ("multiclass", "accuracy")
    board = run.result["leaderboard"]
    assert {r["model"] for r in board["rows"]} == {"cnn_small", "dummy", "logistic_regression", "random_forest",
                                                   "gradient_boosting"}
    scores = {r["model"]: r["test_score"] for r in board["rows"]}
    assert scores["dummy"] == pytest.approx(1 / 3, abs=0.1)
    assert max(scores.values()) >= 0.9  # stripes and squares are easy for someone
    assert run.result["rows"] == {"train": 42, "validation": 15, "test": 15, "dropped_missing_target": 0}
    assert run.result["kind"] == "image" and run.result["image"]["size"] == 24
    assert run.result["image"]["baseline_pixels"] == 16 * 16 * 3
    assert len(store.epochs(run.id)) == run.result["deep"]["epochs_run"] >= 1
    assert (store.dataset_dir(record.id) / "pixels-24.npy").exists()  # decoded once, kept for the next run


def test_scoring_the_test_images_again_reproduces_every_models_outputs(image_run):
    store, run, record, _ = image_run
    y_true, outputs, rows = load_test_outputs(store, run.id)
    manifest = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet")
    archive = zipfile.ZipFile(store.dataset_dir(record.id) / "source.zip")
    items = [(manifest["image"].iloc[r], archive.read(manifest["image"].iloc[r])) for r in rows]
    classes = run.result["classes"]
    assert [classes[int(c)] for c in y_true] == manifest["label"].iloc[rows].tolist()
    for model in ("cnn_small", "logistic_regression", "gradient_boosting"):
        table, summary = load_scorer(store, run.id, model).score_images(items)
        probs = table[[f"probability {c}" for c in classes]].to_numpy()
        assert np.allclose(probs, outputs[model], atol=1e-5), model
        assert table["prediction"].tolist() == [classes[k] for k in outputs[model].argmax(axis=1)]
        assert summary.notes() == []


def test_an_unreadable_file_keeps_its_row_with_the_reason(image_run):
    store, run, _, _ = image_run
    items = [("good.png", _png()), ("broken.png", b"\x89PNG\r\n\x1a\n broken"), ("notes.txt", b"hello")]
    table, summary = load_scorer(store, run.id).score_images(items)
    assert table["file"].tolist() == ["good.png", "broken.png", "notes.txt"]
    assert table["prediction"].notna().tolist() == [True, False, False]
    assert table["problem"].isna().tolist() == [True, False, False]
    assert "2 file(s) could not be read" in summary.notes()[0]


def test_a_table_is_refused_by_an_image_model_and_an_image_template_by_a_table(image_run, store):
    image_store, run, _, _ = image_run
    from dlcore.errors import SchemaError

    with pytest.raises(SchemaError, match="images"):
        load_scorer(image_store, run.id).score(pd.DataFrame({"a": [1]}))
    record, _ = datasets.register_bytes(store, b"a,b\n1,x\n2,y\n3,x\n4,y\n", "t.csv")
    with pytest.raises(DataError, match="for image data"):
        runner.submit(store, RunSpec(data=DataSpec(record.id, "b"), template="cnn_deep"))
    image_record, _ = datasets.register_bytes(store, shapes_zip(6), "s.zip")
    with pytest.raises(DataError, match="for tabular data"):
        runner.submit(store, RunSpec(data=DataSpec(image_record.id, "label"), template="mlp"))
    with pytest.raises(DataError, match="number from an image"):
        runner.submit(store, RunSpec(data=DataSpec(image_record.id, "label", task="regression"), template="cnn_deep"))


def _png(seed: int = 0) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (30, 20, 3), dtype=np.uint8)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.slow
def test_cli_fits_a_zip_without_a_target_and_predicts_a_zip(tmp_path):
    home = tmp_path / "home"
    data = tmp_path / "shapes.zip"
    data.write_bytes(shapes_zip(n_per_class=12))
    out = cli(home, "fit", data, "--epochs", "2", "--template", "cnn_small", "--image-size", "16")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["task"], result["metric"], result["higher_is_better"]) == ("multiclass", "accuracy", True)
    assert {r["model"] for r in result["leaderboard"]} >= {"cnn_small", "dummy", "gradient_boosting"}
    assert "36 images" in out.stderr and "1 file" in out.stderr.lower()  # the README.txt was skipped, and said so

    batch = tmp_path / "new.zip"
    with zipfile.ZipFile(batch, "w") as archive:
        archive.writestr("a/one.png", _png(1))
        archive.writestr("two.png", _png(2))
    scored = tmp_path / "scored.csv"
    out = cli(home, "predict", result["run_id"], batch, "-o", scored)
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(scored, encoding="utf-8-sig")
    assert sorted(table["file"]) == ["a/one.png", "two.png"]
    assert set(table["prediction"]) <= {"horizontal", "square", "vertical"}
    probs = table[["probability horizontal", "probability square", "probability vertical"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)

    single = tmp_path / "one.png"
    single.write_bytes(_png(3))
    out = cli(home, "predict", result["run_id"], single, "-o", tmp_path / "one.csv")
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(tmp_path / "one.csv", encoding="utf-8-sig")["file"].tolist() == ["one.png"]


def test_the_image_pipeline_shuffles_each_epoch_and_keeps_every_image_once():
    from dlcore.training import image_dataset

    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 4, 4, 1), dtype=np.uint8)
    y = np.arange(10)
    data = image_dataset(x, y, batch_size=4, shuffle_seed=1)
    epochs = [np.concatenate([yb.numpy() for _, yb in data]) for _ in range(2)]
    assert [sorted(e.tolist()) for e in epochs] == [list(range(10))] * 2
    assert epochs[0].tolist() != epochs[1].tolist()  # a new order each epoch
    first_x, first_y = next(iter(data))
    assert first_x.shape == (4, 4, 4, 1) and first_x.dtype.name == "uint8"
    assert (first_x.numpy()[:, 0, 0, 0] == first_y.numpy()).all()  # pictures stay with their labels
    ordered = np.concatenate([yb.numpy() for _, yb in image_dataset(x, y, batch_size=4)])
    assert ordered.tolist() == list(range(10))  # validation and test keep their order


def test_pixels_are_decoded_once_per_size_and_cached(image_run):
    store, _, record, _ = image_run
    cache = store.dataset_dir(record.id) / "pixels-24.npy"
    stamp = cache.stat().st_mtime_ns
    pixels = images_run.image_pixels(store, record.id, 24, 3)
    assert pixels.shape == (72, 24, 24, 3) and pixels.dtype == np.uint8
    assert cache.stat().st_mtime_ns == stamp  # read back, not decoded again
    calls = []
    small = images_run.image_pixels(store, record.id, 12, 3, progress=lambda done, total: calls.append((done, total)))
    assert small.shape == (72, 12, 12, 3) and calls[-1] == (72, 72)
    assert (store.dataset_dir(record.id) / "pixels-12.npy").exists()


def test_a_lone_picture_or_a_fake_zip_is_told_to_bring_a_zip_of_images(store):
    with pytest.raises(DataError, match="single PNG image. To train on images, upload a ZIP"):
        datasets.register_bytes(store, _png(), "holiday.jpg")  # named JPEG, is a PNG: said by content
    with pytest.raises(DataError, match="not a ZIP archive"):
        datasets.register_bytes(store, b"just some text\n", "photos.zip")
    assert store.list_datasets() == []
