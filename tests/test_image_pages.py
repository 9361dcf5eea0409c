"""The image path through every page, with Streamlit's AppTest, opened the way links open it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.conftest import shapes_zip, start_worker
from tests.test_cli import cli
from tests.test_pages import app, modules_loaded_by_pages, texts


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """One finished image run, trained by the CLI in its own process."""
    folder = tmp_path_factory.mktemp("image-pages")
    home = folder / "home"
    data = folder / "shapes.zip"
    data.write_bytes(shapes_zip(n_per_class=15))
    out = cli(home, "fit", data, "--epochs", "2", "--template", "cnn_small", "--image-size", "16")
    assert out.returncode == 0, out.stderr
    return home, json.loads(out.stdout)


def test_data_page_takes_a_zip_and_shows_classes_and_pictures(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    at.file_uploader[0].upload("shapes.zip", shapes_zip(n_per_class=8), "application/zip").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    from dlcore.store import Store

    record = Store.open(home).dataset(at.query_params["dataset"])
    assert record.kind == "image" and record.n_rows == 24
    assert [m.value for m in at.metric][:2] == ["24", "3"]
    shown = texts(at)
    assert "**horizontal** · 8 images" in shown and "**vertical** · 8 images" in shown
    assert "README.txt" in shown  # the skipped file is named
    assert len(at.get("image")) == 3  # one row of pictures per class
    assert [link.label for link in at.page_link if link.label.startswith("Next:")]


@pytest.mark.slow
def test_data_page_refuses_a_bad_zip_with_a_clear_message_and_keeps_what_was_stored(tmp_path):
    import zipfile

    home = tmp_path / "home"
    at = app(home, "data")
    at.file_uploader[0].upload("shapes.zip", shapes_zip(n_per_class=6), "application/zip").run()
    good = at.query_params["dataset"]
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.png", b"x")
    at.file_uploader[0].upload("evil.zip", evil.getvalue(), "application/zip").run()
    assert not at.exception
    assert "escape.png" in " ".join(e.value for e in at.error)
    from dlcore.store import Store

    assert [d.id for d in Store.open(home).list_datasets()] == [good]


@pytest.mark.slow
def test_digits_sample_and_train_page_offer_the_image_templates(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    at.selectbox[0].select("digits").run()
    next(b for b in at.button if b.label == "Use this sample").click().run()
    assert not at.exception
    dataset_id = at.query_params["dataset"]
    assert [m.value for m in at.metric][:2] == ["1,797", "10"]
    at = app(home, "train", dataset=dataset_id)
    assert not at.exception
    template = at.radio[0]
    assert template.options == ["Small CNN", "Deeper CNN with augmentation"] and template.value == "cnn_deep"
    assert "pretrained" in texts(at)
    assert at.select_slider[0].value == 32  # 8-pixel digits are shown at 32 pixels
    at.form_submit_button[0].click().run()
    from dlcore.store import Store

    run = Store.open(home).run(at.query_params["run"])
    assert (run.template, run.target, run.spec["data"]["image_size"], run.spec["train"]["augment"]) == \
        ("cnn_deep", "label", 32, True)


def test_compare_shows_per_class_scores_and_the_mistakes_gallery(image_run):
    home, result = image_run
    at = app(home, "compare", run=result["run_id"])
    assert not at.exception
    board = at.dataframe[0].value
    assert len(board) == 5
    per_class = at.dataframe[1].value
    assert per_class["class"].tolist() == ["horizontal", "square", "vertical"]
    assert per_class["support"].sum() == 9
    assert "got wrong" in texts(at)
    # The dummy floor gets two thirds wrong: its gallery shows them, true and predicted class named.
    next(s for s in at.selectbox if s.label == "Model").select("dummy floor").run()
    assert not at.exception
    assert "dummy floor got wrong** (6 of 9)" in texts(at)
    gallery = str(at.get("image")[0].proto)
    assert gallery.count("said horizontal") == 6  # the floor always says the first class
    assert gallery.count("is square") == 3 and gallery.count("is vertical") == 3


def test_predict_scores_uploaded_images_in_a_worker(image_run):
    from PIL import Image

    home, result = image_run
    worker = start_worker(home, "--only", "score")
    try:
        at = app(home, "predict", run=result["run_id"])
        assert not at.exception
        files = []
        for i in range(2):
            buf = io.BytesIO()
            Image.fromarray(np.full((20, 20, 3), 40 * i, dtype=np.uint8)).save(buf, "PNG")
            files.append((f"new-{i}.png", buf.getvalue(), "image/png"))
        at.file_uploader[0].upload(*files[0]).run()
        next(b for b in at.button if b.label == "Predict").click().run(timeout=120)
        assert not at.exception and not at.error, [e.value for e in at.error]
        table = at.dataframe[0].value
        assert table["file"].tolist() == ["new-0.png"]
        assert table["prediction"].iloc[0] in ("horizontal", "square", "vertical")
        assert str(table["image"].iloc[0]).startswith("data:image/png;base64,")
        assert at.query_params["scoring"]
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_image_pages_never_import_tensorflow(image_run):
    home, result = image_run
    data, run = {"dataset": result["dataset_id"]}, {"run": result["run_id"]}
    assert modules_loaded_by_pages(home, [("data", data), ("train", data), ("compare", run), ("predict", run)]) == []


def test_a_lone_photo_on_the_data_page_is_told_to_come_as_a_zip(tmp_path):
    from PIL import Image

    home = tmp_path / "home"
    at = app(home, "data")
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buf, "JPEG")
    at.file_uploader[0].upload("holiday.jpg", buf.getvalue(), "image/jpeg").run()
    assert not at.exception
    assert "'holiday.jpg' is a single JPEG image. To train on images, upload a ZIP" in at.error[0].value
    from dlcore.store import Store

    assert Store.open(home).list_datasets() == []


def test_a_zip_uploaded_with_other_pictures_for_scoring_keeps_its_pictures():
    """Several files on Predict are packed into one ZIP for the scorer; a ZIP among them used to be
    packed whole and then skipped as a ZIP inside a ZIP (an analyst's 9 photos were not scored)."""
    from dlcore.images import images_from_upload
    from ui.images import _pack

    class Upload:
        def __init__(self, name: str, data: bytes) -> None:
            self.name, self._data = name, data

        def getvalue(self) -> bytes:
            return self._data

    photos = shapes_zip(3)
    pictures = images_from_upload(photos, "photos.zip")
    one = pictures[0][1]
    data, name = _pack([Upload("photos.zip", photos), Upload("extra.png", one)])
    scored = [entry for entry, _ in images_from_upload(data, name)]
    assert len(scored) == len(pictures) + 1
    assert "extra.png" in scored and all(entry.startswith("photos.zip/") for entry in scored if entry != "extra.png")
    assert name == "photos.zip, extra.png.zip"
