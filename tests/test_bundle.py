"""Model bundles: a finished run's model, preprocessing, card and predict.py, scored in a fresh
process that cannot import dlcore, must give the app's own predictions."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, images, runner
from dlcore import tables as tabular
from dlcore.errors import NotFoundError, RunError
from dlcore.handover import bundle
from dlcore.handover import predict_script as bundle_predict
from dlcore.scoring import load_scorer, neutralise_formulas
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import churn_frame, regression_frame, shapes_zip

ALLOWED_IMPORTS = {"__future__", "argparse", "io", "json", "re", "sys", "zipfile", "pathlib", "numpy", "pandas",
                   "keras", "PIL", "skops"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from dlcore.store import Store

    return Store.open(tmp_path_factory.mktemp("bundle") / "home")


def _train(store, content: bytes, name: str, target: str, template: str, baselines: bool = True, **data):
    record, _ = datasets.register_bytes(store, content, name)
    spec = RunSpec(data=DataSpec(record.id, target, **data), template=template, baselines=baselines,
                   train=TrainSpec(epochs=3, batch_size=16, size="small", seed=7, learning_rate=3e-3))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    return run


def _with_dates(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    days = rng.integers(0, 900, len(frame))
    frame.insert(2, "signup", (pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"))
    return frame


@pytest.fixture(scope="module")
def churn_run(store):
    """Binary, plain MLP, over numbers (with gaps), a date and categories (with a gap)."""
    frame = _with_dates(churn_frame(240, seed=3), seed=3)
    frame.loc[[5, 17, 60], "plan"] = None
    return _train(store, frame.to_csv(index=False).encode(), "churn.csv", "churn", "mlp")


@pytest.fixture(scope="module")
def price_run(store):
    """Regression, wide and deep: numbers plus one code input per category."""
    return _train(store, regression_frame(200).to_csv(index=False).encode(), "prices.csv", "price", "mlp_embed",
                  baselines=False)


@pytest.fixture(scope="module")
def shapes_run(store):
    """Three classes of 40-pixel pictures, seen by the CNN at 16 pixels (so JPEGs decode in draft)."""
    return _train(store, shapes_zip(n_per_class=10, size=40), "shapes.zip", "label", "cnn_small", image_size=16)


def _unpack(store, run, tmp_path, model=None):
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(io.BytesIO(bundle.build_bundle(store, run.id, model))) as archive:
        archive.extractall(folder)
    return folder


def _predict(folder, *args) -> subprocess.CompletedProcess:
    """predict.py in a fresh, isolated interpreter (-I: no PYTHONPATH, no current folder on sys.path)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-I", "predict.py", *args, "-o", "out.csv"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _read_out(folder) -> pd.DataFrame:
    raw = (folder / "out.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark, for Excel
    return pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", keep_default_na=False, na_values=[""])


def _new_churn_rows() -> pd.DataFrame:
    frame = _with_dates(churn_frame(40, seed=11), seed=11).drop(columns="churn")
    frame["charges"] = frame["charges"].astype(object)
    frame.loc[0, "plan"] = "gold"  # never seen in training
    frame.loc[1, "plan"] = None
    frame.loc[2, "plan"] = "  plus "  # the same category once trimmed
    frame.loc[3, "charges"] = "unknown"  # not a number: treated as missing
    frame.loc[4, "signup"] = None
    frame["note"] = ["=HYPERLINK(\"http://x\")", "-5", "+1 call back", "@boss", "ok"] * 8
    return frame


def test_a_table_bundle_scores_like_the_app_in_a_process_without_dlcore(store, churn_run, tmp_path):
    folder = _unpack(store, churn_run, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt", "model.keras", "model_card.md",
                                                         "predict.py", "preprocess.json"]
    assert (folder / "preprocess.json").read_bytes() == (store.run_dir(churn_run.id) / "preprocess.json").read_bytes()
    isolated = subprocess.run([sys.executable, "-I", "-c", "import dlcore"], cwd=folder, capture_output=True, text=True)
    assert isolated.returncode != 0 and "No module named 'dlcore'" in isolated.stderr
    _new_churn_rows().to_csv(folder / "new.csv", index=False)

    proc = _predict(folder, "new.csv")
    ours = _read_out(folder)
    app_frame, _ = tabular.read_table(folder / "new.csv")
    app, summary = load_scorer(store, churn_run.id, "mlp").score(app_frame)
    assert summary.unseen == {"plan": 1}  # the app's reader already turned 'unknown' into a gap
    assert ours["prediction"].tolist() == app["prediction"].tolist()
    for label in ("no", "yes"):
        np.testing.assert_allclose(ours[f"probability {label}"], app[f"probability {label}"], rtol=0, atol=1e-5)
    assert ours["probability yes"].std() > 0.01  # the rows really get different scores
    assert ours["note"].tolist() == neutralise_formulas(app)["note"].astype(str).tolist()
    assert ours["note"].tolist()[:5] == ["'=HYPERLINK(\"http://x\")", "-5", "'+1 call back", "'@boss", "ok"]
    assert "1 row(s) have a value in 'plan' that the model never saw" in proc.stderr
    assert "1 cell(s) in 'charges' were not numbers" in proc.stderr


def test_a_european_csv_is_read_with_sep_and_decimal(store, churn_run, tmp_path):
    folder = _unpack(store, churn_run, tmp_path)
    frame = _new_churn_rows().drop(columns="note").head(10)
    frame["charges"] = pd.to_numeric(frame["charges"], errors="coerce")
    frame["office"] = "Zürich"  # saved by Excel on Windows: not UTF-8
    (folder / "new.csv").write_text(frame.to_csv(index=False, sep=";", decimal=","), encoding="cp1252")
    _predict(folder, "new.csv", "--sep", ";", "--decimal", ",")
    ours = pd.read_csv(folder / "out.csv", sep=";", decimal=",", encoding="utf-8-sig")
    app, _ = load_scorer(store, churn_run.id, "mlp").score(frame)
    np.testing.assert_allclose(ours["probability yes"], app["probability yes"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours["charges"], frame["charges"])  # written back with decimal commas
    assert ours["office"].tolist() == ["Zürich"] * 10


def test_a_baseline_bundle_ships_its_skops_file_and_scores_like_the_app(store, churn_run, tmp_path):
    folder = _unpack(store, churn_run, tmp_path, "logistic_regression")
    assert (folder / "model.skops").is_file() and not (folder / "model.keras").exists()
    assert "skops==" in (folder / "README.txt").read_text() and "tensorflow" not in (folder / "README.txt").read_text()
    new = _new_churn_rows()
    new.to_csv(folder / "new.csv", index=False)
    _predict(folder, "new.csv")
    ours = _read_out(folder)
    app, _ = load_scorer(store, churn_run.id, "logistic_regression").score(tabular.read_table(folder / "new.csv")[0])
    assert ours["prediction"].tolist() == app["prediction"].tolist()
    np.testing.assert_allclose(ours["probability yes"], app["probability yes"], rtol=0, atol=1e-5)


def test_a_saved_threshold_travels_with_its_model_and_predict_py_adds_the_same_decision_column(store, churn_run, tmp_path):
    from dlcore import jobs
    from dlcore.handover import decision

    new = _new_churn_rows().drop(columns="note")
    # A threshold between the rows' own scores, so both decisions occur.
    threshold = round(float(np.median(load_scorer(store, churn_run.id, "mlp").score(new)[0]["probability yes"])), 3)
    chosen = decision.Decision(model="mlp", threshold=threshold, money=decision.Money(), positive="yes", negative="no",
                               profit_per_row=1.0)
    decision.save_decision(store, churn_run.id, chosen)
    try:
        folder = _unpack(store, churn_run, tmp_path)
        assert json.loads((folder / "decision.json").read_text())["threshold"] == threshold
        assert not (_unpack(store, churn_run, tmp_path / "lr", "logistic_regression") / "decision.json").exists()
        new.to_csv(folder / "new.csv", index=False)
        proc = _predict(folder, "new.csv")
        ours = _read_out(folder)
        scoring_id = jobs.submit_scoring(store, churn_run.id, "mlp", (folder / "new.csv").read_bytes(), "new.csv")
        assert store.claim_next_scoring() == scoring_id
        jobs.execute_scoring(store, scoring_id)
        app = pd.read_csv(store.scoring_dir(scoring_id) / "scored.csv", encoding="utf-8-sig")
        assert ours["decision"].tolist() == app["decision"].tolist()
        assert set(ours["decision"]) == {"yes", "no"}
        assert f"flags 'yes' at probability {threshold:.3f}" in proc.stderr
    finally:
        (store.run_dir(churn_run.id) / "decision.json").unlink()


def test_the_wide_and_deep_regression_bundle_decodes_values_like_the_app(store, price_run, tmp_path):
    assert price_run.result["models"].keys() == {"mlp_embed"}
    folder = _unpack(store, price_run, tmp_path)
    new = regression_frame(30, seed=5).drop(columns="price")
    new.loc[0, "city"] = "z"  # unseen: the 'other' code
    new.loc[1, "size"] = np.nan
    new.to_csv(folder / "new.csv", index=False)
    _predict(folder, "new.csv")
    ours = _read_out(folder)
    app, _ = load_scorer(store, price_run.id).score(tabular.read_table(folder / "new.csv")[0])
    assert list(ours.columns) == ["size", "rooms", "city", "prediction"]
    np.testing.assert_allclose(ours["prediction"], app["prediction"], rtol=1e-6, atol=1e-5)
    assert ours["prediction"].std() > 1_000  # in price units, not standardised ones


def _new_images() -> bytes:
    """Pictures as analysts bring them: PNG and JPEG, a palette with transparency, grey, a
    rotated photo, a damaged file, a text file and a system file."""
    from PIL import Image

    def encoded(img, fmt, **kw) -> bytes:
        out = io.BytesIO()
        img.save(out, format=fmt, **kw)
        return out.getvalue()

    with zipfile.ZipFile(io.BytesIO(shapes_zip(n_per_class=3, size=40, seed=9, nest=""))) as source:
        entries = {i.filename: source.read(i) for i in source.infolist() if not i.filename.endswith(".txt")}
    rng = np.random.default_rng(4)
    stripes = rng.integers(0, 60, size=(40, 52, 3)).astype(np.uint8)
    stripes[::4] = 230
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: turned upright before scoring
    entries["more/rotated.jpg"] = encoded(Image.fromarray(stripes), "JPEG", exif=exif.tobytes())
    entries["more/palette.png"] = encoded(Image.fromarray(stripes).convert("P"), "PNG", transparency=3)
    entries["more/grey.png"] = encoded(Image.fromarray(stripes).convert("L"), "PNG")
    entries["more/alpha.png"] = encoded(Image.fromarray(stripes).convert("RGBA"), "PNG")
    entries["more/broken.png"] = encoded(Image.fromarray(stripes), "PNG")[:60]
    entries["notes.txt"] = b"not an image"
    entries["__MACOSX/._alpha.png"] = b"\x00\x05\x16\x07"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def test_an_image_bundle_decodes_and_scores_like_the_app(store, shapes_run, tmp_path):
    folder = _unpack(store, shapes_run, tmp_path)
    content = _new_images()
    (folder / "new.zip").write_bytes(content)
    items = images.images_from_upload(content, "new.zip")
    for name, data in items:  # the pixels themselves, decoded by both, are identical
        if name != "more/broken.png":
            assert np.array_equal(bundle_predict.decode_image(data, 16, 3), images.decode_image(data, 16, 3)), name

    _predict(folder, "new.zip")
    ours = _read_out(folder)
    app, _ = load_scorer(store, shapes_run.id, "cnn_small").score_images(items)
    assert ours["file"].tolist() == app["file"].tolist() == [name for name, _ in items]
    assert len(ours) == 9 + 5 and "notes.txt" not in ours["file"].tolist()
    assert ours["prediction"].fillna("").tolist() == app["prediction"].fillna("").tolist()
    broken = ours["file"] == "more/broken.png"
    assert ours.loc[broken, "prediction"].isna().all() and ours.loc[~broken, "problem"].isna().all()
    assert "not a readable image" in ours.loc[broken, "problem"].iloc[0]
    columns = ["confidence", *(f"probability {c}" for c in shapes_run.result["classes"])]
    np.testing.assert_allclose(ours.loc[~broken, columns].to_numpy(float),
                               app.loc[~broken.to_numpy(), columns].to_numpy(float), rtol=0, atol=1e-5)


def test_an_image_baseline_bundle_and_a_folder_of_images(store, shapes_run, tmp_path):
    folder = _unpack(store, shapes_run, tmp_path, "logistic_regression")
    with zipfile.ZipFile(io.BytesIO(_new_images())) as archive:
        archive.extractall(tmp_path / "photos")
    from_zip = bundle_predict.list_images(tmp_path / "photos")
    assert [n for n, _ in from_zip] == [n for n, _ in images.images_from_upload(_new_images(), "new.zip")]
    _predict(folder, str(tmp_path / "photos"))
    ours = _read_out(folder)
    app, _ = load_scorer(store, shapes_run.id, "logistic_regression").score_images(from_zip)
    readable = app["problem"].isna().to_numpy()
    assert ours["prediction"].fillna("").tolist() == app["prediction"].fillna("").tolist()
    np.testing.assert_allclose(ours.loc[readable, "confidence"], app.loc[readable, "confidence"], rtol=0, atol=1e-5)


def test_predict_py_builds_the_same_model_inputs_as_the_app(store, churn_run):
    import json

    from dlcore.tables.preprocess import TabularPreprocessor

    meta = json.loads((store.run_dir(churn_run.id) / "preprocess.json").read_text())
    pre = TabularPreprocessor.from_dict(meta["preprocessor"])
    frame = _new_churn_rows()
    numeric, codes = bundle_predict.table_inputs(meta["preprocessor"], frame, notes := [])
    feats = pre.transform(frame)
    assert numeric.dtype == np.float32 and codes.dtype == np.int32
    assert np.array_equal(numeric, feats.numeric) and np.array_equal(codes, feats.codes)
    assert np.array_equal(bundle_predict.one_hot(meta["preprocessor"], numeric, codes), pre.dense(feats))
    assert codes[:3, pre.categorical.index("plan")].tolist() == [1, 0, pre.vocab_["plan"].index("plus") + 2]
    assert len(notes) == 2
    with pytest.raises(bundle_predict.Refused, match=r"lacks 2 column\(s\) the model was trained on: 'tenure', 'plan'"):
        bundle_predict.table_inputs(meta["preprocessor"], frame.drop(columns=["tenure", "plan"]), [])


def test_predict_py_imports_only_plain_libraries():
    tree = ast.parse(bundle_predict.__loader__.get_source("dlcore.handover.predict_script"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS


def test_the_model_card_states_data_metrics_with_intervals_verdict_and_limits(store, churn_run):
    data = bundle.build_bundle(store, churn_run.id)
    assert data == bundle.build_bundle(store, churn_run.id)  # the same run gives the same bytes
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        card = archive.read("model_card.md").decode()
        readme = archive.read("README.txt").decode()
    board = churn_run.result["leaderboard"]
    deep = next(r for r in board["rows"] if r["model"] == "mlp")
    low, high = deep["ci"]
    assert f"| MLP (this bundle) | deep | {deep['test_score']:.3f} | {low:.3f} to {high:.3f} |" in card
    for row in board["rows"]:
        assert f"{row['test_score']:.3f} | {row['ci'][0]:.3f} to {row['ci'][1]:.3f}" in card
    assert board["verdicts"][0]["text"] in card
    record = store.dataset(churn_run.dataset_id)
    assert record.sha256 in card and "churn.csv" in card and f"{record.n_rows:,} rows" in card
    assert "`no`, `yes`" in card and "ROC AUC" in card and "95% interval" in card
    assert f"Trained on {churn_run.result['rows']['train']:,} rows" in card and "'signup' up to 2024-" in card
    assert "scored as 'other'" in card and "Not for other populations" in card
    assert '"seed": 7' in card and f"keras {churn_run.versions['keras']}" in card
    requirements = bundle._REQUIREMENTS.read_text()
    for name in ("keras", "tensorflow-cpu", "pandas"):
        pin = next(line for line in requirements.splitlines() if line.startswith(f"{name}=="))
        assert pin in readme
    assert "python predict.py new.csv -o scored.csv" in readme
    assert bundle.bundle_name(store, churn_run.id) == f"model-churn-mlp-{churn_run.id}.zip"


def test_unknown_models_unfinished_runs_and_forecasts_are_refused(store, churn_run):
    with pytest.raises(NotFoundError, match=r"no model named 'xgboost'; pick one of its models: mlp, dummy"):
        bundle.build_bundle(store, churn_run.id, "xgboost")
    queued = runner.submit(store, RunSpec(DataSpec(churn_run.dataset_id, "churn")))
    with pytest.raises(RunError, match=r"is queued; only a finished run .* Wait for it to finish"):
        bundle.build_bundle(store, queued)
    forecast = store.create_run({**churn_run.spec, "forecast": {"time_col": "signup"}}, churn_run.dataset_id,
                                "lstm", "charges", 3)
    store.update_run(forecast, status="done", result={"kind": "series", "models": {"lstm": {}}})
    with pytest.raises(RunError, match=r"forecast; model bundles cover tables and images for now\. .*Predict page"):
        bundle.build_bundle(store, forecast)
    with pytest.raises(NotFoundError, match="No run with id"):
        bundle.build_bundle(store, "nope")


@pytest.mark.slow
def test_a_text_bundle_scores_raw_strings_like_the_app(store, tmp_path):
    """A table with a free-text column: the deep model's .keras file takes the raw strings (its
    vocabulary is inside it), a baseline's skops file its TF-IDF; both score like the app."""
    from tests.test_text import EN_FILLER, EN_KEYS, texts_frame

    run = _train(store, texts_frame(EN_KEYS, EN_FILLER, 160).to_csv(index=False).encode(), "texts.csv", "label",
                 "text_rnn")
    new = texts_frame(EN_KEYS, EN_FILLER, 12, seed=5).drop(columns="label")
    new.loc[0, "description"] = None
    new.loc[1, "description"] = "zzz never seen words, café 😀 مرحبا"
    for model in ("text_rnn", "logistic_regression"):
        folder = _unpack(store, run, tmp_path / model, model)
        new.to_csv(folder / "new.csv", index=False)
        proc = _predict(folder, "new.csv")
        ours = _read_out(folder)
        app_frame, _ = tabular.read_table(folder / "new.csv")
        app, _ = load_scorer(store, run.id, model).score(app_frame)
        assert ours["prediction"].tolist() == app["prediction"].tolist()
        for label in EN_KEYS:
            np.testing.assert_allclose(ours[f"probability {label}"], app[f"probability {label}"], rtol=0, atol=1e-5)
        assert "1 row(s) have no text in 'description'" in proc.stderr
    card = (folder / "model_card.md").read_text(encoding="utf-8")
    assert "- Free text, read word by word" in card and "'description'" in card


def test_a_file_matched_to_the_models_columns_in_the_app_is_read_the_same_by_predict_py(store, churn_run, tmp_path):
    from dlcore.tables import matching
    from dlcore.tables.scoring import score_upload

    # An export that names two columns in German and lacks 'region' (the analyst chose to score it as missing).
    new = _new_churn_rows().rename(columns={"tenure": "Laufzeit (Monate)", "plan": "Tarif"}).drop(columns="region")
    content = new.to_csv(index=False).encode()
    matching.save_mapping(store, churn_run.id, {"tenure": "Laufzeit (Monate)", "charges": "charges", "plan": "Tarif",
                                                "region": None, "signup": "signup"})
    try:
        app = score_upload(store, store.run(churn_run.id), "mlp", content, "export.csv").table
        folder = _unpack(store, churn_run, tmp_path)
        assert json.loads((folder / "columns.json").read_text())["mappings"][0]["columns"]["plan"] == "Tarif"
        (folder / "export.csv").write_bytes(content)
        proc = _predict(folder, "export.csv")
    finally:
        (store.run_dir(churn_run.id) / "columns.json").unlink()
    ours = _read_out(folder)
    assert list(ours.columns[:len(new.columns)]) == list(new.columns)  # the file's own names kept, as the app does
    assert ours["prediction"].tolist() == app["prediction"].tolist()
    np.testing.assert_allclose(ours["probability yes"], app["probability yes"], rtol=0, atol=1e-5)
    assert ("matched as in the app for this run (columns.json): 'Laufzeit (Monate)' as 'tenure', 'Tarif' as 'plan', "
            "'region' scored as missing") in proc.stderr
    # Without the matching, predict.py says what is missing and how to fix it.
    (folder / "columns.json").unlink()
    refused = subprocess.run([sys.executable, "-I", "predict.py", "export.csv", "-o", "out.csv"], cwd=folder,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "match them once on the app's Predict page" in refused.stderr


def test_a_german_export_with_day_first_dates_and_decimal_commas_scores_like_the_app(store, churn_run, tmp_path):
    # 03.08.2023 is 3 August: predict.py read it as 8 March whenever the day was 12 or less, and
    # "334,73" as not a number unless told --decimal ,; the app reads both by itself.
    folder = _unpack(store, churn_run, tmp_path)
    frame = _with_dates(churn_frame(60, seed=21), seed=21).drop(columns="churn")
    frame["signup"] = pd.to_datetime(frame["signup"]).dt.strftime("%d.%m.%Y")
    assert (pd.to_datetime(frame["signup"], format="%d.%m.%Y").dt.day <= 12).any()
    frame["charges"] = frame["charges"].map(
        lambda v: "" if pd.isna(v) else f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", "."))
    assert frame["charges"].str.contains(",").sum() >= 50
    (folder / "de.csv").write_bytes(frame.to_csv(index=False, sep=";").encode("cp1252"))
    proc = _predict(folder, "de.csv")
    assert "were not numbers" not in proc.stderr
    ours = _read_out(folder)
    app_frame, _ = tabular.read_table(folder / "de.csv")
    app, _ = load_scorer(store, churn_run.id, "mlp").score(app_frame)
    np.testing.assert_allclose(ours["probability yes"], app["probability yes"], rtol=0, atol=1e-5)
    assert ours["prediction"].tolist() == app["prediction"].tolist()
