"""The analyst's path in a real browser: upload, train with a live chart, compare, score, share."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Server
from tests.conftest import churn_frame

playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser") / "home"
    home.mkdir()
    srv = Server(home)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def chart_points(page) -> int:
    """Epochs drawn in the chart: in the live chart while the run trains (``ui/live_chart.js``),
    else the points of the Plotly chart's first trace (training loss)."""
    return page.evaluate(
        "() => { const live = document.querySelector('.dl-live');"
        " if (live && live.dataset.epochs) return Number(live.dataset.epochs);"
        " const g = [...document.querySelectorAll('.js-plotly-plot')].find(d => d._fullData && d._fullData.length);"
        " if (!g || !g._fullData) return 0;"
        " return Math.max(0, ...g._fullData.map(t => (t.x && t.x.length) || t._length || 0)); }"
    )


def leaderboard_models(page) -> list[str]:
    """Model names on the leaderboard chart (the table is drawn on a canvas)."""
    return page.evaluate(
        "() => { const g = [...document.querySelectorAll('.js-plotly-plot')]"
        ".find(d => d._fullLayout && String(d._fullLayout.title.text).includes('Models ranked'));"
        " if (!g) return []; const names = new Set();"
        " g._fullData.forEach(t => (t.y || []).forEach(v => names.add(String(v)))); return [...names]; }"
    )


def ranked_on_chart(page, tries: int = 100) -> list[str]:
    """The leaderboard chart's model names, once it has drawn (a moment after the page's text)."""
    for _ in range(tries):
        names = leaderboard_models(page)
        if names:
            return names
        page.wait_for_timeout(200)
    return []


# Epochs on 1,440 training rows take 0.1-0.3 s here: enough of them that the live chart, polled
# every second, is seen growing at least twice (12 were once all done between two polls).
EPOCHS = 40


def test_upload_train_compare_predict_and_share(server, browser, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 2200}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{server.url}/data")
    data = tmp_path / "churn.csv"
    churn_frame(2400).to_csv(data, index=False)
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("What should the model predict?").wait_for()
    assert re.search(r"dataset=", page.url)
    page.get_by_role("combobox", name="Target column").click()  # no column is chosen for the analyst
    page.get_by_role("option", name="churn", exact=True).click()
    page.get_by_text("The target looks ready for training.").wait_for()
    shot(page, "1-data")

    page.get_by_role("link", name="Next: choose a model and train it").click()
    page.get_by_text("Model template").wait_for()
    page.get_by_text("Settings (the defaults suit most data)").click()
    epochs = page.get_by_label(re.compile("^Epochs"))
    epochs.fill(str(EPOCHS))
    page.get_by_text("Advanced: against memorising").click()
    page.get_by_label(re.compile("^Patience")).fill("50")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(re.compile(r"run="), timeout=30_000)

    # The live chart gains points at least twice before the run ends; a refresh in the middle
    # re-attaches to the same run, which goes on.
    seen = set()
    reloaded_at = None
    for _ in range(600):
        n = chart_points(page)
        if n:
            seen.add(n)
        if n and reloaded_at is None:
            reloaded_at = n
            run_url = page.url
            page.reload()
            assert page.url == run_url
        if page.get_by_text("See the leaderboard and charts").count():
            break
        page.wait_for_timeout(100)
    assert reloaded_at is not None and max(seen) > reloaded_at
    growth = sorted(n for n in seen if 0 < n < EPOCHS)
    assert len(growth) >= 2, f"chart sizes seen while training: {sorted(seen)}"
    page.get_by_text("See the leaderboard and charts").wait_for(timeout=120_000)
    shot(page, "2-train")

    page.get_by_role("link", name="See the leaderboard and charts").click()
    page.get_by_text("How the models get it right and wrong").wait_for()
    ranked_on_chart(page)
    shot(page, "3-compare")
    ranked = leaderboard_models(page)
    assert set(ranked) == {"MLP", "dummy floor", "logistic regression", "random forest", "gradient boosting"}
    assert "best baseline" in page.inner_text("body")
    compare_url = page.url
    shot(page, "3-compare")
    # The hand-over downloads are built when clicked: a report that stands alone, and the bundle.
    with page.expect_download() as info:
        page.get_by_role("button", name="Report (HTML, opens offline)").click()
    report = open(info.value.path(), encoding="utf-8").read()
    assert report.startswith("<!DOCTYPE html>") and "churn" in report and "<script src" not in report
    with page.expect_download() as info:
        page.get_by_role("button", name="Model bundle (ZIP)").click()
    with zipfile.ZipFile(info.value.path()) as bundle:  # the best model on the test rows, deep or baseline
        names = set(bundle.namelist())
        assert {"preprocess.json", "model_card.md", "predict.py"} <= names
        assert names & {"model.keras", "model.skops", "ensemble.json"}

    page.get_by_role("link", name="Use a model on new data").click()
    page.get_by_text("Score a file").wait_for()
    new = tmp_path / "new.csv"
    churn_frame(50, seed=3).drop(columns=["churn"]).to_csv(new, index=False)
    page.locator("input[type=file]").first.set_input_files(str(new))
    page.get_by_role("button", name="Score the file").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the scored CSV").click()
    scored = pd.read_csv(io.BytesIO(open(info.value.path(), "rb").read()))
    assert len(scored) == 50 and {"prediction", "probability yes", "probability no"} <= set(scored.columns)
    shot(page, "4-predict")

    # A colleague opens the shared link in a fresh browser context and sees the same leaderboard.
    other = browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
    other.goto(compare_url)
    other.get_by_text("How the models get it right and wrong").wait_for(timeout=60_000)
    ranked_on_chart(other)
    assert set(leaderboard_models(other)) == set(ranked)
    context.close()


def test_images_upload_train_see_mistakes_and_predict_one(server, browser, tmp_path):
    from PIL import Image

    from tests.conftest import shapes_zip

    context = browser.new_context(viewport={"width": 1400, "height": 2600}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{server.url}/data")
    data = tmp_path / "shapes.zip"
    data.write_bytes(shapes_zip(n_per_class=40, size=24))
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("A few pictures of each class").wait_for()
    page.wait_for_function("() => document.querySelectorAll('img').length >= 24")  # 8 pictures per class
    shot(page, "5-images-data")

    page.get_by_role("link", name="Next: choose a model and train it").click()
    page.get_by_text("Model template").wait_for()
    page.get_by_text("Small CNN").click()
    page.get_by_text("Settings (the defaults suit most data)").click()
    page.get_by_label(re.compile("^Epochs")).fill("6")
    page.get_by_text("Advanced: against memorising").click()
    page.get_by_label(re.compile("^Patience")).fill("50")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(re.compile(r"run="), timeout=30_000)
    seen = set()
    for _ in range(1200):
        n = chart_points(page)
        if n:
            seen.add(n)
        if page.get_by_text("See the leaderboard and charts").count():
            break
        page.wait_for_timeout(100)
    page.get_by_text("See the leaderboard and charts").wait_for(timeout=180_000)
    assert seen and max(seen) >= 1, "the live chart never drew an epoch"
    shot(page, "6-images-train")

    page.get_by_role("link", name="See the leaderboard and charts").click()
    page.get_by_text("How the models get it right and wrong").wait_for()
    ranked_on_chart(page)
    assert set(leaderboard_models(page)) == {"small CNN", "dummy floor", "logistic regression", "random forest",
                                             "gradient boosting"}
    # The dummy floor is always wrong on two classes of three: its mistakes gallery has pictures.
    page.get_by_text("got wrong").first.wait_for()
    model_box = page.get_by_role("combobox", name="Model", exact=True)  # not "Model to bundle"
    model_box.click()
    page.get_by_role("option", name="dummy floor").click()
    page.get_by_text("dummy floor got wrong").wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stImageCaption], figcaption, div')]"
                           ".some(e => e.textContent.startsWith('is ') && e.textContent.includes('said'))")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "7-images-compare")

    page.get_by_role("link", name="Use a model on new data").click()
    page.get_by_text("Sort new images into 3 classes").wait_for()
    one = tmp_path / "one.png"
    picture = (np.random.default_rng(5).integers(0, 60, (24, 24, 3))).astype("uint8")
    picture[::4, :, :] = 230  # horizontal stripes
    Image.fromarray(picture).save(one)
    page.locator("input[type=file]").first.set_input_files(str(one))
    page.get_by_role("button", name="Predict").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the predictions (CSV)").click()
    scored = pd.read_csv(io.BytesIO(open(info.value.path(), "rb").read()), encoding="utf-8-sig")
    assert scored["file"].tolist() == ["one.png"]
    assert scored["prediction"].iloc[0] in ("horizontal", "square", "vertical")
    shot(page, "8-images-predict")
    context.close()


def test_series_upload_forecast_see_backtest_and_download(server, browser, tmp_path):
    from tests.test_forecast_runs import seasonal_frame

    context = browser.new_context(viewport={"width": 1400, "height": 2600}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{server.url}/data")
    data = tmp_path / "sales.csv"
    seasonal_frame(220).to_csv(data, index=False, sep=";", decimal=",")
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("What should the model predict?").wait_for()
    dataset_id = re.search(r"dataset=([^&]+)", page.url).group(1)

    page.goto(f"{server.url}/train?dataset={dataset_id}")
    page.get_by_text("Forecast a series over time").click()
    page.get_by_text("daily steps from 2024-01-01").wait_for()
    page.get_by_label(re.compile("^Horizon")).fill("7")
    page.get_by_label(re.compile("^Look-back")).fill("14")
    page.get_by_label(re.compile("^Backtest windows")).fill("2")
    page.get_by_text("1-D CNN").click()
    page.get_by_text("Settings (the defaults suit most series)").click()
    page.get_by_label(re.compile("^Epochs per fit")).fill("3")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(re.compile(r"run="), timeout=30_000)
    page.get_by_text("See the leaderboard and charts").wait_for(timeout=240_000)
    shot(page, "9-series-train")

    page.get_by_role("link", name="See the leaderboard and charts").click()
    page.get_by_text("The backtest: each model's forecasts against what happened").wait_for()
    ranked_on_chart(page)
    assert set(leaderboard_models(page)) == {"1-D CNN", "naive (last value)", "seasonal naive", "ridge on lags",
                                             "gradient boosting on lags"}
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(g => g._fullData && "
                           "g._fullData.some(t => String(t.name).endsWith('(backtest)')))")
    shot(page, "10-series-compare")

    page.get_by_role("link", name="See the forecast and download it").click()
    page.get_by_text("for the next 7 steps").wait_for()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the forecast (CSV)").click()
    table = pd.read_csv(io.BytesIO(open(info.value.path(), "rb").read()), encoding="utf-8-sig")
    assert len(table) == 7 and table["Datum"].iloc[0].startswith("2024-08-08")
    assert (table["lower 90%"] <= table["forecast"]).all() and (table["forecast"] <= table["upper 90%"]).all()
    shot(page, "11-series-predict")
    context.close()


def test_predict_matches_a_renamed_file_scores_it_and_the_next_one_in_one_click(server, browser, tmp_path):
    """Next month's export names every column differently: Predict matches them (by values), the
    analyst picks the one two columns could be, scores and downloads; the next export with the
    same names is matched from the run's saved matching and scores in one click."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import PENGUIN_NAMES, ROOT, penguin_frame

    data = tmp_path / "penguins.csv"
    penguin_frame(300).to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(server.home), TF_CPP_MIN_LOG_LEVEL="2")
    fit = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "Sexe", "--epochs", "2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr
    run_id = json.loads(fit.stdout)["run_id"]

    def export(n: int, seed: int):
        frame = penguin_frame(n, seed).drop(columns=["Sexe"])
        renamed = frame.rename(columns=PENGUIN_NAMES)
        return frame, renamed.assign(culmen_length_mm=renamed["bill_length_mm"] + 0.2)  # a second bill length

    page = browser.new_context(viewport={"width": 1400, "height": 2400}, accept_downloads=True).new_page()
    page.set_default_timeout(60_000)

    def score_and_download(name: str, n: int):  # type: ignore[no-untyped-def]
        page.get_by_role("button", name="Score the file").click()
        page.get_by_text(f"Scored {n} rows of {name}").wait_for(timeout=120_000)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download the scored CSV").click()
        return pd.read_csv(info.value.path())

    page.goto(f"{server.url}/predict?run={run_id}")
    page.get_by_text("Score a file").wait_for()
    original, first = export(40, 5)
    first.to_csv(tmp_path / "export.csv", index=False)
    page.locator("input[type=file]").first.set_input_files(str(tmp_path / "export.csv"))
    page.get_by_text("Match the file's columns to the model's").wait_for()
    page.get_by_text("could each be it, by their values").wait_for()
    shot(page, "12-match-columns")
    page.get_by_label("Column of the file for “Longueur du bec (mm)”").click()
    page.get_by_role("option", name="bill_length_mm", exact=True).click()
    page.get_by_text("Chosen: numbers from").wait_for()
    scored = score_and_download("export.csv", 40)
    assert list(scored.columns[:8]) == list(first.columns) and len(scored) == 40
    # The same predictions as the original file with the model's own names, scored by the command line.
    (tmp_path / "original.csv").write_text(original.to_csv(index=False))
    cli = subprocess.run([sys.executable, "-m", "dlcore", "predict", run_id, str(tmp_path / "original.csv"), "-o",
                          str(tmp_path / "cli.csv")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    expected = pd.read_csv(tmp_path / "cli.csv")
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    assert np.allclose(scored["probability male"], expected["probability male"], atol=1e-6)
    shot(page, "13-matched-and-scored")

    _, second = export(30, 6)
    second.to_csv(tmp_path / "export-2.csv", index=False)
    page.locator("input[type=file]").first.set_input_files(str(tmp_path / "export-2.csv"))
    page.get_by_text("matched as for the last file with these names").wait_for()
    scored = score_and_download("export-2.csv", 30)  # one click
    assert len(scored) == 30 and scored["prediction"].isin(["male", "female"]).all()
    shot(page, "14-next-file-in-one-click")
    page.context.close()


def test_text_upload_train_and_see_a_rows_words_highlighted(server, browser, tmp_path):
    from tests.test_text import EN_FILLER, EN_KEYS, texts_frame

    page = browser.new_context(viewport={"width": 1400, "height": 2600}).new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{server.url}/data")
    data = tmp_path / "texts.csv"
    texts_frame(EN_KEYS, EN_FILLER, 300).to_csv(data, index=False)
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("What should the model predict?").wait_for()
    page.get_by_role("combobox", name="Target column").click()  # the target box starts empty
    page.get_by_role("option", name="label", exact=True).click()
    page.get_by_text("Most telling words").wait_for()
    page.get_by_role("link", name="Next: choose a model and train it").click()
    page.get_by_text("Model template").wait_for()
    # The settings as they are, trained once (a search within the default budget takes 5 minutes).
    page.get_by_text("Settings (the defaults suit most data)").click()
    page.get_by_label(re.compile("^Epochs")).fill("40")
    page.get_by_role("button", name="Train").click()
    page.wait_for_url(re.compile(r"run="), timeout=30_000)
    page.get_by_text("See the leaderboard and charts").wait_for(timeout=180_000)
    run_id = re.search(r"run=([^&]+)", page.url).group(1)

    page.goto(f"{server.url}/explain?run={run_id}")
    page.get_by_text("Why this prediction?").click()
    page.get_by_role("button", name="Explain this row").click()
    said = page.get_by_text("mostly because of '").first
    said.wait_for(timeout=120_000)
    marks = page.locator("mark")
    marks.first.wait_for()
    marked = [m.lower() for m in marks.all_inner_texts()]
    every_key = {w for words in EN_KEYS.values() for w in words}
    assert set(marked) & every_key, marked
    assert re.search(r"likely to be '(games|cooking|travel|finance)'", said.inner_text())
    shot(page, "5-text-explain")
