"""What a new analyst stumbled on (issue 19, items 2 to 10): every page of a table, an image and a
forecast run (finished, stopped, failed) without a ``None``, ``nan`` or Python repr; bars that start
at zero; no forecast offered for a column of three years; one look for a verdict; settings whose
defaults follow their own help; words an analyst reads; no dead ends; one name for one thing; and
target checks only for the target the analyst chose."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import churn_frame, shapes_zip, use_app_router_in_apptest
from tests.conftest import open_page as app

use_app_router_in_apptest()

KINDS = ("table", "image", "forecast")
ENDINGS = ("finished", "stopped", "failed")


def _seasonal(n: int = 200) -> pd.DataFrame:
    from tests.test_forecast_runs import seasonal_frame

    return seasonal_frame(n)


def build_runs(home: Path) -> dict[str, str]:
    """A store with a table, an image and a forecast run, each finished, stopped and failed, plus a
    finished multiclass table run. The finished yes/no table run is trained so briefly that the
    baselines beat it: its best model is a baseline and its verdict is "worse"."""
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from dlcore.store import Store, _this_worker

    store = Store.open(home)
    table, _ = datasets.register_bytes(store, churn_frame(400).to_csv(index=False).encode(), "churn.csv")
    image, _ = datasets.register_bytes(store, shapes_zip(n_per_class=12), "shapes.zip")
    series, _ = datasets.register_bytes(store, _seasonal().to_csv(index=False, sep=";").encode(), "sales.csv")
    specs = {
        "table": RunSpec(DataSpec(table.id, "churn"), template="mlp",
                         train=TrainSpec(epochs=1, learning_rate=0.0001, size="small", batch_size=256)),
        "image": RunSpec(DataSpec(image.id, "label", image_size=16), template="cnn_small",
                         train=TrainSpec(epochs=2, batch_size=16)),
        "forecast": RunSpec(DataSpec(series.id, "sales", task="forecast"), template="cnn1d",
                            train=TrainSpec(epochs=8, batch_size=32, patience=1, learning_rate=0.03),
                            forecast=ForecastSpec(time_col="Datum", horizon=7, lookback=14, windows=2)),
    }
    ids: dict[str, str] = {}
    for kind, spec in specs.items():
        for ending in ENDINGS:
            run_id = runner.submit(store, spec, claim=True)
            if ending == "failed":  # a worker killed mid-run: two epochs kept, the reason said
                task, metric, fits = {"table": ("binary", "roc_auc", 1), "image": ("multiclass", "accuracy", 1),
                                      "forecast": ("forecast", "mase", 3)}[kind]
                store.update_run(run_id, task=task, metric=metric, epochs_total=fits * spec.train.epochs)
                for epoch in (1, 2):
                    store.add_epoch(run_id, epoch, loss=0.7, val_loss=0.72, metric=0.6, val_metric=0.58,
                                    seconds=0.5, epochs_total=fits * spec.train.epochs)
                store.fail_runs_of_worker(_this_worker(), "The worker process training this run stopped "
                                          "unexpectedly: it was killed (signal 9). The epochs so far are kept.")
            else:
                if ending == "stopped":
                    store.request_stop(run_id)
                runner.execute_run(store, run_id)
            ids[f"{kind}-{ending}"] = run_id
    multiclass = RunSpec(DataSpec(table.id, "plan", task="multiclass"), template="mlp", train=TrainSpec(epochs=2))
    ids["multiclass"] = runner.submit(store, multiclass, claim=True)
    runner.execute_run(store, ids["multiclass"])
    return ids


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("first-steps") / "home"
    ids = build_runs(home)
    store = Store.open(home)
    for name, run_id in ids.items():
        expected = {"finished": "done", "stopped": "stopped", "failed": "failed"}.get(name.split("-")[-1], "done")
        assert store.run(run_id).status == expected, (name, store.run(run_id).message)
    return home, store, ids


# ---- item 2: no None, nan or Python repr anywhere -------------------------------------------

# What must never reach an analyst: Python's None, a NaN, a repr of a list, dict, NumPy scalar,
# timestamp or object.
UNREADABLE = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|\bnp\.\w+\(|\bTimestamp\(|\bdtype\b|[\[{]'|\('[^']*', |object at 0x"
                        r"|\w+Record\(")
_SKIP_FIELDS = {"spec", "data", "arrow_data", "id", "form_id", "url", "page_script_hash", "icon", "default",
                "columns", "styler", "deprecated_autosize", "theme", "selection_mode", "block_id"}


def _strings(message) -> list[str]:  # type: ignore[no-untyped-def]
    """Every text field of a protobuf message, nested ones too (not chart specs or table bytes)."""
    out: list[str] = []
    for field, value in message.ListFields():
        if field.name in _SKIP_FIELDS:
            continue
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        for v in values:
            if isinstance(v, str):
                out.append(v)
            elif hasattr(v, "ListFields"):
                out += _strings(v)
    return out


def _figure_texts(spec: str) -> list[str]:
    """The words of a Plotly figure: titles, axis titles, trace names, annotations, hover templates."""
    fig = json.loads(spec)
    out = [t.get("name") or "" for t in fig.get("data", [])]
    out += [t.get("hovertemplate") or "" for t in fig.get("data", [])]
    layout = fig.get("layout", {})
    for key, value in layout.items():
        if isinstance(value, dict) and "title" in value:
            title = value["title"]
            out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    out += [a.get("text", "") for a in layout.get("annotations", [])]
    return out


def page_texts(at) -> list[str]:  # type: ignore[no-untyped-def]
    """Everything an analyst can read on a page: text, labels, options, help, table cells, chart words."""
    out: list[str] = []
    for node in at._tree:
        proto = getattr(node, "proto", None)
        if proto is None or not hasattr(proto, "ListFields"):
            continue
        out += _strings(proto)
        if node.type == "plotly_chart":
            out += _figure_texts(proto.spec)
        if node.type in ("arrow_data_frame", "dataframe"):
            frame = node.value
            for col in frame.columns:
                out.append(str(col))
                shown = frame[col]
                if shown.dtype == object or str(shown.dtype) == "string":
                    out += [str(v) for v in shown.dropna()]
                if shown.isna().any():
                    out.append(f"{col}: None")  # a missing cell reads "None" in the table
    return out


class _Visible(HTMLParser):
    """The text of an HTML report a reader sees (not its scripts or styles)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if not self._hidden:
            self.parts.append(data)


def _unreadable(where: str, texts: list[str]) -> list[str]:
    return [f"{where}: {t[:160]!r}" for t in texts if UNREADABLE.search(t)]


def test_no_page_report_or_csv_shows_none_nan_or_a_python_repr(runs):
    """Item 2: every page of every run (table, images, forecast; finished, stopped, failed), the
    pages without a run, the reports, the forecast CSV and a scored file read as words and numbers."""
    from dlcore import jobs
    from dlcore.handover import report
    from dlcore.store import EVALUATED

    home, store, ids = runs
    hits: list[str] = []
    for name, run_id in ids.items():
        for page in ("train", "compare", "explain", "decide", "predict"):
            at = app(home, page, run=run_id)
            assert not at.exception, (name, page, at.exception)
            hits += _unreadable(f"{page} page of the {name} run", page_texts(at))
        if store.run(run_id).status in EVALUATED:
            visible = _Visible()
            visible.feed(report.build_report(store, run_id))
            hits += _unreadable(f"report of the {name} run", visible.parts)
    for page in ("home", "runs", "data", "train", "compare", "decide"):
        hits += _unreadable(f"{page} page", page_texts(app(home, page)))
    for record in store.list_datasets():
        for page in ("data", "train"):
            hits += _unreadable(f"{page} page of {record.name}", page_texts(app(home, page, dataset=record.id)))
    forecast = (store.run_dir(ids["forecast-finished"]) / "forecast.csv").read_text()
    hits += _unreadable("forecast CSV", forecast.splitlines())
    run_id = ids["table-finished"]
    scoring_id = jobs.submit_scoring(store, run_id, "mlp", churn_frame(30, seed=5).to_csv(index=False).encode(), "new.csv")
    jobs.execute_scoring(store, scoring_id)
    hits += _unreadable("scored CSV", (store.scoring_dir(scoring_id) / "scored.csv").read_text("utf-8-sig").splitlines())
    hits += _unreadable("Predict page with a scored file", page_texts(app(home, "predict", run=run_id, scoring=scoring_id)))
    assert hits == []


# ---- item 3: the profile's small bars start at zero -----------------------------------------


def penguins_frame(seed: int = 7) -> pd.DataFrame:
    """Palmer-penguins-like rows: three species, two sexes (168 and 165 rows), and a year column
    that holds only 2007, 2008 and 2009 (the year of each field trip, not a time axis)."""
    rng = np.random.default_rng(seed)
    species = np.repeat(["Adelie", "Gentoo", "Chinstrap"], [146, 119, 68])
    sex = np.array(["male"] * 168 + ["female"] * 165)
    rng.shuffle(sex)
    n = len(species)
    return pd.DataFrame({"species": species, "island": rng.choice(["Biscoe", "Dream", "Torgersen"], n),
                         "bill_length_mm": rng.normal(44, 5, n).round(1),
                         "body_mass_g": rng.normal(4200, 800, n).round(0), "sex": sex,
                         "year": rng.choice([2007, 2008, 2009], n)})


def _column_config(element) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(element.proto.columns or "{}")


def test_the_profiles_small_bars_start_at_zero(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, penguins_frame().to_csv(index=False).encode(), "penguins.csv")
    at = app(store.home, "data", dataset=record.id)
    assert not at.exception, at.exception
    profile = at.dataframe[0]
    bars = profile.value.set_index("Column")["Distribution"]
    assert sorted(bars["sex"]) == [165, 168]
    # Streamlit starts each cell's bars at its smallest count unless told otherwise: the 165
    # females would draw as an empty bar beside the 168 males.
    assert _column_config(profile)["Distribution"]["type_config"]["y_min"] == 0


# ---- item 4: a column of three years is not a time axis --------------------------------------


@pytest.mark.slow
def test_a_year_column_of_three_field_trips_offers_no_forecast_and_no_error(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, penguins_frame().to_csv(index=False).encode(), "penguins.csv")
    at = app(store.home, "data", dataset=record.id)
    assert not at.exception, at.exception
    assert not [e.label for e in at.expander if e.label.startswith("Over time")]
    assert [e.value for e in at.error] == []
    at = app(store.home, "train", dataset=record.id)
    assert not at.exception, at.exception
    assert not [r for r in at.radio if r.label == "What should the model do?"]
    assert [e.value for e in at.error] == []


# ---- item 5: one look for a verdict ----------------------------------------------------------


def _shown_as(at, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [kind for kind in ("success", "info", "warning", "error") if any(e.value == text for e in getattr(at, kind))]


def test_a_verdict_looks_the_same_on_train_and_compare_and_losing_is_not_an_error(runs):
    home, store, ids = runs
    for name in ("table-finished", "forecast-finished", "image-finished"):
        verdict = store.run(ids[name]).result["leaderboard"]["verdicts"][0]
        on_train = _shown_as(app(home, "train", run=ids[name]), verdict["text"])
        on_compare = _shown_as(app(home, "compare", run=ids[name]), verdict["text"])
        assert on_train == on_compare and len(on_train) == 1, (name, verdict["outcome"], on_train, on_compare)
        assert on_train != ["error"], (name, verdict["outcome"])
    assert store.run(ids["table-finished"]).result["leaderboard"]["verdicts"][0]["outcome"] == "worse"
    from dlcore.handover import report

    html = report.build_report(store, ids["table-finished"])
    assert "<div class='verdict worse'>" in html and ".verdict.worse{" not in html  # the report's look is the pages'


# ---- item 6: defaults that follow their own help ---------------------------------------------


def characters_zip(classes: tuple[str, ...] = ("0", "1", "2"), per_class: int = 6) -> bytes:
    """A ZIP of class folders named like digits (or letters), as a scan of handwriting is."""
    from PIL import Image

    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in classes:
            for i in range(per_class):
                out = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(out, format="PNG")
                archive.writestr(f"{label}/{label}-{i}.png", out.getvalue())
    return buffer.getvalue()


def _mirror_toggle(at):  # type: ignore[no-untyped-def]
    return next(t for t in at.toggle if t.label.startswith("Mirror pictures left-right"))


@pytest.mark.slow
def test_mirroring_starts_off_for_digits_and_letters_and_on_for_other_pictures(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    digits, _ = datasets.register_bytes(store, characters_zip(), "digits.zip")
    letters, _ = datasets.register_bytes(store, characters_zip(("a", "b", "C")), "letters.zip")
    shapes, _ = datasets.register_bytes(store, shapes_zip(n_per_class=6), "shapes.zip")
    for record, mirrored in ((digits, False), (letters, False), (shapes, True)):
        at = app(store.home, "train", dataset=record.id)
        assert not at.exception, at.exception
        assert _mirror_toggle(at).value is mirrored, record.name
    at = app(store.home, "train", dataset=digits.id)
    assert "look like characters" in (_mirror_toggle(at).help or "")
    at.form_submit_button[0].click().run()
    assert store.run(at.query_params["run"]).spec["train"]["flip"] is False


def test_the_forecast_form_says_why_it_suggests_its_horizon(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(store, _seasonal().to_csv(index=False).encode(), "sales.csv")
    at = app(store.home, "train", dataset=record.id)
    at.radio[0].set_value("forecast").run()
    assert not at.exception, at.exception
    horizon = next(n for n in at.number_input if n.label.startswith("Horizon"))
    assert horizon.value == 14
    said = " ".join(c.value for c in at.caption)
    assert "14 days ahead is the usual horizon for daily values (two weeks)" in said
    assert "the models read the last 42 days (three horizons)" in said


# ---- item 7: words ---------------------------------------------------------------------------


def test_a_forecasts_live_chart_counts_epochs_per_fit_in_words(runs):
    from ui.live import progress_text

    home, store, ids = runs
    run = store.run(ids["forecast-finished"])
    # Each fit's epochs start at its own block of the running count (8 epochs a fit), so where a
    # fit begins is known even when early stopping ended the one before it.
    numbers = [e["epoch"] for e in store.epochs(run.id)]
    starts = [n for n in numbers if (n - 1) % 8 == 0]
    assert starts == [1, 9, 17] and len(numbers) < 24
    running = _run_record(run, status="running", epochs_done=11, finished_at=None,
                          phase="Training 1-D CNN: backtest window 2 of 2")
    assert progress_text(running, [0.5]).startswith("Backtest 2 of 2, epoch 3 of 8")
    final = _run_record(run, status="running", epochs_done=18, finished_at=None,
                        phase="Training 1-D CNN: the whole history, for the forecast")
    assert progress_text(final, [0.5]).startswith("Final fit on the whole history, epoch 2 of 8")
    at = app(home, "train", run=run.id)
    said = "\n".join(page_texts(at))
    assert "scaled values" not in said and "(None)" not in said
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {t["name"] for t in figure["data"]}
    assert {"Backtest 1 of 2", "Backtest 2 of 2", "Final fit"} <= names
    assert max(_numbers(t["x"]).max() for t in figure["data"]) <= 8  # epochs within a fit, not a running count
    assert "Average error (lower is better)<br>in standard deviations of the series" in _figure_texts(
        at.get("plotly_chart")[0].proto.spec)


def _numbers(values) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A Plotly JSON array: a list, or NumPy bytes in base64 (``{"dtype": ..., "bdata": ...}``)."""
    import base64

    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=float)


def _run_record(run, **values):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(run, **values)


def _expander(at, start: str):  # type: ignore[no-untyped-def]
    return next(e for e in at.expander if e.label.startswith(start))


@pytest.mark.slow
def test_dropout_l2_patience_and_seed_sit_under_advanced(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    store = Store.open(tmp_path / "home")
    table, _ = datasets.register_bytes(store, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    at = app(store.home, "train", dataset=table.id)
    next(s for s in at.selectbox if s.label.startswith("Target")).select("churn")  # never chosen for the analyst
    advanced = _expander(at, "Advanced")
    labels = [w.label.split(":")[0] for w in [*advanced.slider, *advanced.number_input, *advanced.select_slider]]
    assert sorted(labels) == ["Dropout", "L2 penalty", "Patience", "Seed"]
    settings = _expander(at, "Settings")
    shown = [w.label.split(":")[0] for w in [*settings.slider, *settings.number_input, *settings.select_slider]]
    assert not {"Dropout", "L2 penalty", "Patience", "Seed"} & set(shown)
    at.form_submit_button[0].click().run()
    assert store.run(at.query_params["run"]).spec["train"]["seed"] == 42  # the defaults still travel

    record, _ = datasets.register_bytes(store, _seasonal().to_csv(index=False).encode(), "sales.csv")
    at = app(store.home, "train", dataset=record.id)
    at.radio[0].set_value("forecast").run()
    advanced = _expander(at, "Advanced")
    assert sorted(w.label.split(":")[0] for w in advanced.number_input) == ["Patience", "Seed"]


def test_every_metric_on_a_leaderboard_says_what_it_means_and_is_rounded_alike(runs):
    """Items 7 and 9: a tooltip with each metric's meaning on its column, the same decimals on every score."""
    from dlcore import evaluate, formats

    home, store, ids = runs
    for name in ("table-finished", "forecast-finished", "multiclass"):
        run = store.run(ids[name])
        at = app(home, "compare", run=run.id)
        config = _column_config(at.dataframe[0])
        table = at.dataframe[0].value
        for metric in evaluate.metrics_for(run.task):
            assert config[metric.title]["help"] == metric.explain, (name, metric.title)
            kind = config[metric.title]["type_config"]
            if kind["type"] == "text":  # large errors, or a score undefined here: written by dlcore.formats
                board = run.result["leaderboard"]["rows"]
                assert table[metric.title].tolist() == [formats.number(r["metrics"].get(metric.key)) for r in board]
            else:
                assert kind["format"] == "%.4f", (name, metric.title)


def test_the_forecast_page_keeps_the_command_line_in_a_fold_for_automation(runs):
    home, store, ids = runs
    at = app(home, "predict", run=ids["forecast-finished"])
    assert not at.exception, at.exception
    automation = _expander(at, "For automation")
    inside = {id(node) for node in automation}
    with_cli = [node for node in at._tree if getattr(node, "type", "") in ("caption", "markdown", "code")
                and "python -m dlcore" in str(getattr(node, "value", ""))]
    assert with_cli and all(id(node) in inside for node in with_cli)


# ---- item 8: no dead ends --------------------------------------------------------------------


def test_decide_lists_only_the_runs_it_can_handle(runs):
    home, store, ids = runs
    at = app(home, "decide")
    listed = {link.proto.query_string.removeprefix("run=") for link in at.page_link if link.proto.page == "decide"}
    assert listed == {ids["table-finished"], ids["table-stopped"], ids["multiclass"]}


def test_decide_offers_one_class_against_the_rest_and_predict_applies_it(runs):
    from dlcore import jobs
    from dlcore.handover import decision

    home, store, ids = runs
    run_id = ids["multiclass"]
    at = app(home, "decide", run=run_id)
    assert not at.exception, at.exception
    classes = store.run(run_id).result["classes"]
    chooser = next(s for s in at.selectbox if s.label.startswith("The class you act on"))
    assert chooser.options == classes
    chooser.set_value("premium").run()
    next(b for b in at.button if b.label.startswith("Use ")).click().run()
    assert not at.exception, at.exception
    saved = decision.load_decision(store, run_id)
    assert (saved.positive, saved.negative) == ("premium", "not premium")
    scoring_id = jobs.submit_scoring(store, run_id, saved.model, churn_frame(40, seed=9).to_csv(index=False).encode(),
                                     "new.csv")
    jobs.execute_scoring(store, scoring_id)
    scored = pd.read_csv(store.scoring_dir(scoring_id) / "scored.csv", encoding="utf-8-sig")
    expected = np.where(scored["probability premium"] >= saved.threshold, "premium", "not premium")
    assert scored["decision"].tolist() == expected.tolist()
    (store.run_dir(run_id) / "decision.json").unlink()


def test_explain_and_predict_say_they_open_on_the_best_model_with_the_deep_one_a_click_away(runs):
    home, store, ids = runs
    for page in ("explain", "predict"):
        at = app(home, page, run=ids["table-finished"])
        assert not at.exception, at.exception
        model = next(s for s in at.selectbox if s.label == "Model")
        assert model.value == "logistic_regression"
        assert "Showing logistic regression, the best on the test rows." in [c.value for c in at.caption]
        next(b for b in at.button if b.label == "Show the deep model (MLP) instead").click().run()
        assert not at.exception, at.exception
        assert next(s for s in at.selectbox if s.label == "Model").value == "mlp"


# ---- item 9: one name for one thing ----------------------------------------------------------


def test_the_forecast_table_on_screen_names_its_columns_as_the_download_does(runs):
    home, store, ids = runs
    at = app(home, "predict", run=ids["forecast-finished"])
    shown = at.dataframe[0].value
    assert list(shown.columns[:1]) == ["Datum"] and "time" not in shown.columns


def test_the_runs_page_names_the_metric_and_the_home_cards_are_three_a_row(runs):
    home, store, ids = runs
    table = app(home, "runs").dataframe[0].value
    metric = dict(zip(table["Run"].str.rsplit("=", n=1).str[-1], table["Metric"]))
    assert metric[ids["forecast-finished"]] == "MASE" and metric[ids["table-finished"]] == "ROC AUC"
    at = app(home, "home")
    rows = [block for block in at._tree if getattr(block, "type", "") == "flex_container"
            and any(getattr(c, "type", "") == "column" for c in block.children.values())]
    cards = [sum(getattr(c, "type", "") == "column" for c in block.children.values()) for block in rows
             if any(getattr(n, "type", "") == "page_link" and n.proto.label.startswith("Go to") for n in block)]
    assert cards and max(cards) <= 3 and sum(cards) == 6


@pytest.mark.slow  # a real ``python -m dlcore`` process
def test_a_cli_usage_error_names_the_command_once(capsys):
    from dlcore import cli

    for argv, command in (([], "python -m dlcore --help"), (["fit"], "python -m dlcore fit --help"),
                          (["fit", "sales.csv", "--horizon", "soon"], "python -m dlcore fit --help"),
                          (["runs", "--bogus"], "python -m dlcore --help")):
        with pytest.raises(SystemExit) as stop:
            cli.main(argv)
        assert stop.value.code == 1
        err = capsys.readouterr().err
        assert f"(see: {command})" in err and "dlcore dlcore" not in err, err


# ---- item 10: target checks only for the chosen target ---------------------------------------


def weather_frame(n: int = 300, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    weather = rng.choice(["sun", "rain", "fog"], n).astype(object)
    weather[:6] = "snow"  # 2% of the rows
    return pd.DataFrame({"temp": rng.normal(12, 6, n).round(1), "wind": rng.gamma(2, 3, n).round(1),
                         "weather": weather})


@pytest.mark.slow
def test_no_target_warning_before_the_analyst_picks_a_target(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    at.file_uploader[0].upload("weather.csv", weather_frame().to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception, at.exception
    said = [e.value for e in [*at.warning, *at.error, *at.success]]
    assert not [w for w in said if "snow" in w or "target" in w.lower()], said
    target = next(s for s in at.selectbox if s.label == "Target column")
    assert target.value is None
    target.select("weather").run()
    assert any("only 2% of rows are 'snow'" in w.value for w in at.warning)
