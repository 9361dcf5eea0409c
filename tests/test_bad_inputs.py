"""A corpus of hostile and broken inputs, one table: each gives its own clear message.

Every input is made here by a small factory (bytes and a file name) and goes through the CLI
(``python -m dlcore``, in-process, a few in real processes) and through the page an analyst
would use (Data upload, Train submit, Predict scoring), against one store that already holds
a good dataset and a finished run. For each input: the CLI ends with one ``error: ...`` line
and status 1 (or reads the file, when it should be read), the page shows the same message with
``st.error`` and no traceback, and nothing stored is lost or half-written.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, churn_frame, use_app_router_in_apptest

use_app_router_in_apptest()

HEADER = "tenure,charges,plan,region,churn"


# ---- the inputs -----------------------------------------------------------------------


def churn_csv(n: int = 60, **options) -> bytes:
    return churn_frame(n).to_csv(index=False, **options).encode()


def png(seed: int, size: int = 12) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def class_folders(per_class: int = 6, labels: tuple[str, ...] = ("cats", "dogs")) -> dict[str, bytes]:
    return {f"{label}/{i}.png": png(100 * k + i) for k, label in enumerate(labels) for i in range(per_class)}


def wide_csv() -> bytes:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(40, 1000)).round(3), columns=[f"x{i}" for i in range(1000)])
    frame["churn"] = np.where(frame["x0"] > 0, "yes", "no")
    return frame.to_csv(index=False).encode()


def huge_cell_csv() -> bytes:
    frame = churn_frame(60)
    frame.insert(0, "comment", ["short note"] * 60)
    frame.loc[7, "comment"] = "x" * (5 * 1024 * 1024)
    return frame.to_csv(index=False).encode()


def formulas_csv() -> bytes:
    frame = churn_frame(60)
    frame.loc[0, "plan"] = "=cmd|' /C calc'!A0"
    frame.loc[1, "region"] = "@SUM(A1)"
    return frame.to_csv(index=False).encode()


ACCENTED = ("Málaga", "Zoë", "Ñandú", "Köln")


def accented_frame(n: int = 40) -> pd.DataFrame:
    frame = churn_frame(n)
    frame.insert(0, "city", [ACCENTED[i % 4] for i in range(n)])
    return frame


def cp1252_csv() -> bytes:
    return accented_frame().to_csv(index=False).encode("cp1252")


def stray_byte_csv() -> bytes:
    # 0x81 is undefined in Windows-1252: only Latin-1 reads every byte of this file.
    return accented_frame().to_csv(index=False).encode("cp1252").replace(b"Zo\xeb", b"Zo\xeb\x81", 1)


def ragged_csv(bad_rows: int) -> bytes:
    lines = churn_csv().decode().splitlines()
    for i in range(1, bad_rows + 1):
        lines[3 * i] += ",extra,more"
    return ("\n".join(lines) + "\n").encode()


def series_csv(n: int, bad: int = 0) -> bytes:
    days = pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d").tolist()
    sales = (100 + 10 * np.sin(np.arange(n) / 7 * 2 * np.pi)).round(2)
    # The same unreadable value in several rows: over 5% of the rows, under 5% of the distinct
    # values, so the column still offers itself as the time column and its problem is named.
    if bad:
        days[-bad - 1:-1] = ["soon"] * bad
    return pd.DataFrame({"date": days, "sales": sales}).to_csv(index=False).encode()


def cut_parquet() -> bytes:
    out = io.BytesIO()
    churn_frame(60).to_parquet(out, index=False)
    return out.getvalue()[: len(out.getvalue()) // 2]


def extreme_target_csv(value: str) -> bytes:
    """Amounts to predict, two of them ``value`` (an export's overflow: inf, or 1e300)."""
    frame = churn_frame(60).assign(churn=np.linspace(10, 80, 60).round(1).astype(object))
    frame.loc[[6, 40], "churn"] = value
    return frame.to_csv(index=False).encode()


def scoring_frame(n: int = 12, seed: int = 9) -> pd.DataFrame:
    return churn_frame(n, seed=seed).drop(columns=["churn"])


def starts_with(expected: dict[str, list]) -> Callable[[pd.DataFrame], bool]:
    """Whether the stored table's columns begin with these values."""
    return lambda frame: all(frame[c].head(len(v)).tolist() == v for c, v in expected.items())


def cities_read_right(frame: pd.DataFrame) -> bool:
    return frame["city"].head(4).tolist() == list(ACCENTED)


def churn_numbers_read_right(frame: pd.DataFrame) -> bool:
    original = churn_frame(60)
    return (frame["charges"].dtype == "float64"
            and np.allclose(frame["charges"], original["charges"], equal_nan=True)
            and frame["tenure"].tolist() == original["tenure"].tolist())


@dataclass(frozen=True)
class Case:
    """One input, what to do with it, and what the analyst must be told.

    ``problem`` is the part of the message that names the problem and ``fix`` the part that
    says what to do. A case that is ``refused`` ends the CLI with status 1 and shows the message
    with ``st.error``; one that is read (``refused=False``) shows ``problem`` as a note or
    warning, and ``check`` tells whether the values were stored right.
    """

    id: str
    make: Callable[[], tuple[bytes, str]]
    action: str  # table | images | run | forecast | score
    problem: str
    fix: str
    refused: bool = True
    args: tuple[str, ...] = ()
    check: Callable[[pd.DataFrame], bool] | None = None
    env: tuple[tuple[str, str], ...] = ()
    in_subprocess: bool = False


def make(content: bytes | Callable[[], bytes], name: str) -> Callable[[], tuple[bytes, str]]:
    return lambda: (content() if callable(content) else content, name)


CASES = [
    # -- tables that cannot be read ------------------------------------------------------
    Case("empty-file", make(b"", "empty.csv"), "table", "The file 'empty.csv' is empty",
         "Upload a file with a header row"),
    Case("header-only", make(f"{HEADER}\n".encode(), "header.csv"), "table",
         "has a header but no data rows", "Add rows below the header"),
    Case("whitespace-only", make(b"  \n\t\n   \r\n\n", "spaces.csv"), "table", "The file 'spaces.csv' is empty",
         "Upload a file with a header row"),
    Case("only-blank-rows", make(b",,,,\n , ,,,\n\n;;\n", "blank-rows.csv"), "table",
         "has only blank rows", "Upload a file with a header row"),
    Case("binary-junk", make(lambda: np.random.default_rng(0).bytes(4000), "junk.csv"), "table",
         "does not look like a table: it contains binary data", "Upload a CSV"),
    Case("png-named-csv", make(lambda: png(1), "photo.csv"), "table", "is a single PNG image",
         "To train on images, upload a ZIP"),
    Case("many-ragged-rows", make(lambda: ragged_csv(15), "ragged-many.csv"), "table",
         "have more values than the table has columns", "Fix those lines"),
    Case("unclosed-quote", make(lambda: churn_csv().replace(b"basic", b'"basic', 1), "quote.csv"), "table",
         "has a quotation mark that is never closed", "Remove the stray quote"),
    Case("xlsx-that-is-a-broken-zip", make(b"PK\x03\x04" + bytes(range(200)) * 3, "report.xlsx"), "table",
         "The workbook 'report.xlsx' could not be opened", "save it again as .xlsx or CSV"),
    Case("xlsx-locked-with-a-password", make(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "locked.xlsx"),
         "table", "The workbook 'locked.xlsx' could not be opened (it may be damaged or protected with a password)",
         "save it again as .xlsx or CSV"),
    Case("parquet-cut-short", make(cut_parquet, "data.parquet"), "table",
         "looks like a Parquet file but could not be read", "Save it again and upload it"),
    Case("json-object-not-a-table", make(b'{"customers": 240, "source": "crm"}', "export.json"), "table",
         "is JSON holding one object (with 'customers', 'source'), not a table", "Save it in that shape, or as CSV"),
    Case("gzip-cut-short", make(lambda: gzip.compress(churn_csv(200))[:300], "export.csv.gz"), "table",
         "is gzip-compressed but could not be unpacked: it is damaged or cut short", "Compress it again"),
    Case("junk-named-parquet", make(lambda: np.random.default_rng(5).bytes(3000), "junk.parquet"), "table",
         "does not look like a table", "Upload a CSV"),
    Case("over-the-size-limit", make(lambda: churn_csv(3000), "big.csv"), "table",
         "over this server's limit of 51.2 KB", "raise DLCORE_MAX_UPLOAD_MB",
         env=(("DLCORE_MAX_UPLOAD_MB", "0.05"),), in_subprocess=True),
    # -- tables that are odd but must be read right -----------------------------------------
    Case("utf-16", make(lambda: accented_frame().to_csv(index=False).encode("utf-16"), "unicode.csv"), "table",
         "Read as UTF-16 text", "", refused=False, check=cities_read_right),
    Case("windows-1252-accents", make(cp1252_csv, "excel-export.csv"), "table",
         "Read with the Windows-1252 character set", "", refused=False, check=cities_read_right),
    Case("stray-undecodable-byte", make(stray_byte_csv, "stray.csv"), "table",
         "Read with the Latin-1 character set", "", refused=False,
         check=starts_with({"city": ["Málaga", "Zoë\x81", "Ñandú", "Köln"]})),
    Case("a-few-ragged-rows", make(lambda: ragged_csv(2), "ragged.csv"), "table",
         "Skipped 2 row(s) with more values than there are columns (line 4, 7)", "Check those lines",
         refused=False, check=lambda frame: frame.shape == (58, 5)),
    Case("1000-columns", make(wide_csv, "wide.csv"), "table", "Read as comma-separated", "", refused=False,
         check=lambda frame: frame.shape == (40, 1001)),
    Case("one-5MB-cell", make(huge_cell_csv, "huge-cell.csv"), "table", "Read as comma-separated", "",
         refused=False, check=lambda frame: len(frame.loc[7, "comment"]) == 5 * 1024 * 1024),
    Case("formulas-in-cells", make(formulas_csv, "formulas.csv"), "table", "Read as comma-separated", "",
         refused=False, check=starts_with({"plan": ["=cmd|' /C calc'!A0"],
                                           "region": [churn_frame(60).region[0], "@SUM(A1)"]})),
    Case("duplicate-headers", make(lambda: churn_csv().replace(b"tenure,charges", b"tenure,tenure", 1), "dup.csv"),
         "table", "Renamed duplicate column 'tenure' to 'tenure_2'", "", refused=False,
         check=lambda frame: list(frame.columns) == ["tenure", "tenure_2", "plan", "region", "churn"]),
    Case("blank-headers", make(lambda: churn_csv().replace(b"tenure,charges", b",", 1), "blank-head.csv"),
         "table", "Named 2 columns that had no header: 'column_1', 'column_2'", "", refused=False,
         check=lambda frame: list(frame.columns) == ["column_1", "column_2", "plan", "region", "churn"]),
    Case("semicolons-decimal-commas", make(lambda: churn_csv(sep=";", decimal=","), "european.csv"), "table",
         "Read as semicolon-separated with decimal commas", "", refused=False, check=churn_numbers_read_right),
    Case("xlsx-holding-csv-bytes", make(churn_csv, "not-really.xlsx"), "table", "Read as comma-separated", "",
         refused=False, check=churn_numbers_read_right),
    # -- ZIPs of images ---------------------------------------------------------------------
    Case("zip-escaping-its-folder", make(lambda: zip_of({**class_folders(), "../evil.png": png(9)}), "escape.zip"),
         "images", "points outside its folder ('../evil.png')", "Zip your folders again", in_subprocess=True),
    Case("zip-absolute-path", make(lambda: zip_of({**class_folders(), "/etc/evil.png": png(9)}), "absolute.zip"),
         "images", "points outside its folder ('/etc/evil.png')", "Zip your folders again"),
    Case("decompression-bomb", make(lambda: zip_of({**class_folders(), "cats/zeros.png": bytes(60 * 1024 * 1024)}),
                                    "bomb.zip"),
         "images", "which is how a decompression bomb looks", "Remove that file from the ZIP"),
    Case("zip-of-one-class", make(lambda: zip_of(class_folders(labels=("cats",))), "cats.zip"), "images",
         "so there is only one class", "put the images of each class in a folder"),
    Case("empty-zip", make(lambda: zip_of({}), "nothing.zip"), "images", "holds no images. Found: no files at all",
         "Upload a ZIP of PNG, JPEG"),
    Case("class-with-too-few-images", make(lambda: zip_of({**class_folders(), "birds/0.png": png(50)}), "few.zip"),
         "images", "The class 'birds' (1) in 'few.zip' has too few usable images", "add images to it"),
    Case("zip-cut-short", make(lambda: zip_of(class_folders())[:-40], "cut.zip"), "images",
         "is damaged or cut short", "Zip the folders again"),
    Case("zip-inside-the-zip", make(lambda: zip_of({**class_folders(), "inner.zip": zip_of(class_folders(5))}),
                                    "nested.zip"),
         "images", "'inner.zip' is a ZIP inside the ZIP; it was skipped", "Unpack it", refused=False,
         check=lambda frame: len(frame) == 12 and not frame["image"].str.contains("inner").any()),
    Case("text-named-png", make(lambda: zip_of({**class_folders(), "cats/cat.png": b"not a picture at all"}),
                                "named.zip"),
         "images", "1 file that is not an image was skipped ('cats/cat.png')", "", refused=False,
         check=lambda frame: "cats/cat.png" not in set(frame["image"])),
    Case("truncated-png", make(lambda: zip_of({**class_folders(), "cats/cut.png": png(77)[:60]}), "truncated.zip"),
         "images", "1 image could not be read (damaged or cut short) and was skipped: 'cats/cut.png'",
         "Open it in an image viewer", refused=False, check=lambda frame: len(frame) == 12),
    # -- tables that read, with a target that cannot be learned -------------------------------
    Case("all-missing-target", make(lambda: churn_frame(60).assign(churn="").to_csv(index=False).encode(),
                                    "no-target.csv"),
         "run", "The target column 'churn' is empty in every row", "Pick a column that has values"),
    Case("one-class-target", make(lambda: churn_frame(60).assign(churn="no").to_csv(index=False).encode(),
                                  "one-class.csv"),
         "run", "has the same value ('no') in every row", "Pick another target", in_subprocess=True),
    Case("class-in-one-row", make(lambda: churn_frame(60).assign(churn=["maybe"] + ["yes", "no"] * 29 + ["no"])
                                  .to_csv(index=False).encode(), "single-row-class.csv"),
         "run", "The value 'maybe' of the target 'churn' appears in only one row", "Remove those rows"),
    Case("rare-class-in-two-rows", make(lambda: churn_frame(60).assign(churn=["maybe"] * 2 + ["yes", "no"] * 29)
                                        .to_csv(index=False).encode(), "rare.csv"),
         "run", "only 3% of rows are 'maybe'", "compare the models on ROC AUC or balanced accuracy", refused=False),
    Case("regression-on-words", make(lambda: churn_csv(), "words.csv"), "run",
         "A regression needs numbers in the target column 'churn', but it holds",
         "Predict it as categories", args=("--task", "regression")),
    Case("too-few-rows", make(lambda: churn_csv(12), "tiny.csv"), "run",
         "Only 12 rows have a value in the target column 'churn'; at least 20", "Add more rows"),
    Case("regression-target-infinite", make(lambda: extreme_target_csv("inf"), "inf-target.csv"), "run",
         "The target column 'churn' holds 2 infinite values (rows 7 (inf) and 41 (inf))",
         "Correct those cells, or clear them", args=("--task", "regression")),
    Case("regression-target-near-1e300", make(lambda: extreme_target_csv("1e300"), "huge-target.csv"), "run",
         "2 values larger than 1e+30 in size (rows 7 (1e+300) and 41 (1e+300)), beyond what training in 32-bit",
         "predict them in a larger unit", args=("--task", "regression")),
    # -- forecasts --------------------------------------------------------------------------
    Case("unparseable-dates", make(lambda: series_csv(100, bad=6), "dates.csv"), "forecast",
         "6 of 100 values in 'date' could not be read as dates or times, for example 'soon'",
         "Correct them", in_subprocess=True),
    Case("too-short-for-the-horizon", make(lambda: series_csv(30), "short.csv"), "forecast",
         "The series has 30 days, but a horizon of 14", "Shorten the horizon", args=("--horizon", "14")),
    # -- files to score with the finished run ----------------------------------------------------
    Case("scoring-file-missing-columns", make(lambda: scoring_frame().drop(columns=["plan", "charges"])
                                              .to_csv(index=False).encode(), "missing.csv"),
         "score", "The file lacks 2 column(s) the model was trained on: 'charges', 'plan'", "Add them",
         in_subprocess=True),
    Case("scoring-file-header-only", make(b"tenure,charges,plan,region\n", "empty-score.csv"), "score",
         "has a header but no data rows", "Add rows below the header"),
    Case("scoring-extra-column-unseen-category", make(lambda: scoring_frame().assign(
        extra="kept", plan=["platinum"] + scoring_frame().plan.tolist()[1:]).to_csv(index=False).encode(), "new.csv"),
         "score", "1 row(s) have a value in 'plan' that the model never saw in training",
         "were ignored (kept in the output): 'extra'", refused=False),
]


# ---- the store that must lose nothing ----------------------------------------------------


@dataclass(frozen=True)
class Good:
    home: Path
    dataset_id: str
    run_id: str
    n_rows: int


def _execute_queued_scorings(home: Path) -> None:
    """The page's scorer worker, in this process: run every queued scoring now."""
    from dlcore import jobs
    from dlcore.store import Store

    store = Store.open(home)
    while scoring_id := store.claim_next_scoring():
        jobs.execute_scoring(store, scoring_id)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A store holding a good dataset and a finished run, trained once by the CLI."""
    from dlcore import cli
    from ui import common

    folder = tmp_path_factory.mktemp("bad-inputs")
    home = folder / "home"
    data = folder / "churn.csv"
    churn_frame(240).to_csv(data, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCORE_HOME", str(home))
        mp.setenv("DLCORE_WORKERS", "0")
        mp.delenv("DLCORE_DATABASE_URL", raising=False)
        mp.delenv("DLCORE_MAX_UPLOAD_MB", raising=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(["fit", str(data), "--target", "churn", "--epochs", "2"]) == 0
        result = json.loads(out.getvalue())
        # The pages' store and caches start afresh on this store (ids never change what they
        # name, so the caches stay right for the rest of the module).
        st.cache_resource.clear()
        st.cache_data.clear()
        # Pages wait for scorings that a worker process runs; here they run in this process.
        mp.setattr(common, "ensure_workers", lambda: _execute_queued_scorings(home))
        yield Good(home, result["dataset_id"], result["run_id"], 240)


def open_store(good: Good):
    from dlcore.store import Store

    return Store.open(good.home)


def stored(good: Good) -> tuple[dict[str, int], dict[str, str]]:
    store = open_store(good)
    return {d.id: d.n_rows for d in store.list_datasets()}, {r.id: r.status for r in store.list_runs()}


def assert_nothing_lost(good: Good) -> None:
    from dlcore.datasets import load_frame

    datasets, runs = stored(good)
    assert good.dataset_id in datasets and runs.get(good.run_id) == "done"
    assert len(load_frame(open_store(good), good.dataset_id)) == good.n_rows
    folder = good.home / "datasets"
    assert {p.name for p in folder.iterdir()} == set(datasets)  # no folder without its row
    assert not [p for p in good.home.rglob("*") if ".tmp" in p.name]  # nothing half-written


# ---- the two ways in -------------------------------------------------------------------------


def cli_args(case: Case, path: Path, good: Good, out: Path) -> list[str]:
    fit = ["fit", str(path), "--epochs", "1"]
    args = {
        "table": [*fit, "--target", "churn", "--no-baselines"],
        "images": [*fit, "--template", "cnn_small", "--image-size", "16", "--no-baselines"],
        "run": [*fit, "--target", "churn", "--no-baselines"],
        "forecast": [*fit, "--task", "forecast", "--time-col", "date", "--target", "sales"],
        "score": ["predict", good.run_id, str(path), "-o", str(out)],
    }[case.action]
    return [*args, *case.args]


def run_cli(case: Case, args: list[str], good: Good, capsys) -> tuple[int, str]:
    """The exit status and stderr of ``python -m dlcore ARGS``: in this process, or a real one."""
    if case.in_subprocess:
        env = dict(os.environ, DLCORE_HOME=str(good.home), TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run([sys.executable, "-m", "dlcore", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        return done.returncode, done.stderr
    from dlcore import cli

    capsys.readouterr()
    code = cli.main(args)
    return code, capsys.readouterr().err


def app(good: Good, page: str, **params: str) -> AppTest:
    """A page on the corpus' store, opened from a link. Unlike ``conftest.open_page`` the caches
    are kept between pages (cleared once, in the fixture): a page per input stays quick."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.switch_page(f"pages/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.info] + [e.value for e in at.warning]
    parts += [e.value for e in at.error] + [e.value for e in at.success] + [c.value for c in at.caption]
    parts += [e.value for e in at.exception]
    return "\n".join(str(p) for p in parts)


def labelled(widgets, start: str):
    return next(w for w in widgets if w.label.startswith(start))


def through_the_page(case: Case, content: bytes, name: str, good: Good) -> AppTest:
    """What an analyst does with the input in the app, up to the message."""
    record = open_store(good).dataset_by_hash(hashlib.sha256(content).hexdigest())
    if case.action in ("table", "images") or (case.action == "run" and not case.refused):
        at = app(good, "data")
        mime = "application/zip" if name.endswith(".zip") else "text/csv"
        at = at.file_uploader[0].upload(name, content, mime).run()
        if case.action == "run":  # the analyst picks the target; its checks follow
            labelled(at.selectbox, "Target column").select("churn").run()
        return at
    if case.action == "score":
        at = app(good, "predict", run=good.run_id)
        at.file_uploader[0].upload(name, content, "text/csv").run()
        button = next(b for b in at.button if b.label == "Score the file")
        return at if button.disabled else button.click().run()  # columns still to choose: the page asks first
    at = app(good, "train", dataset=record.id)
    if case.action == "run":
        labelled(at.selectbox, "Target").select("churn")
        task = dict(zip(case.args[::2], case.args[1::2])).get("--task", "auto")
        labelled(at.radio, "Kind of prediction").set_value(task)
        return at.form_submit_button[0].click().run()
    labelled(at.radio, "What should the model do?").set_value("forecast").run()
    if at.error:  # the series itself cannot be used: said before any setting is asked for
        return at
    horizon = dict(zip(case.args[::2], case.args[1::2])).get("--horizon")
    if horizon:
        labelled(at.number_input, "Horizon").set_value(int(horizon))
    return next(b for b in at.button if b.label == "Train").click().run()


# ---- the corpus ------------------------------------------------------------------------------


def test_the_corpus_is_big_and_varied():
    assert len(CASES) >= 32 and len({c.id for c in CASES}) == len(CASES)
    assert {c.action for c in CASES} == {"table", "images", "run", "forecast", "score"}
    assert len({c.action for c in CASES if c.in_subprocess}) >= 5
    for case in CASES:
        assert case.problem and (case.fix or not case.refused), case.id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_gets_its_own_clear_message_and_loses_nothing(case, good, tmp_path, monkeypatch, capsys):
    for key, value in case.env:
        monkeypatch.setenv(key, value)
    content, name = case.make()
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out.csv"
    datasets_before, runs_before = stored(good)

    code, err = run_cli(case, cli_args(case, path, good, out), good, capsys)
    assert "Traceback" not in err
    errors = [line.removeprefix("error: ") for line in err.splitlines() if line.startswith("error:")]
    if case.refused:
        assert code == 1 and len(errors) == 1, err
        assert case.problem in errors[0] and case.fix in errors[0], errors[0]
        assert not out.exists()
    else:
        assert code == 0 and not errors, err
        assert case.problem in err and case.fix in err

    at = through_the_page(case, content, name, good)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Traceback" not in shown
    waiting = case.action == "score" and next(b for b in at.button if b.label == "Score the file").disabled
    if waiting:  # a file lacking model columns: the page names them and waits for a choice, sending nothing
        asked = next(c.value for c in at.caption if c.value.startswith("Choose the file's column for"))
        assert not at.error and all(f"“{c}”" in asked for c in re.findall(r"'([^']+)'", case.problem)), asked
    elif case.refused:
        assert [e.value for e in at.error] == errors  # the same words as the CLI
    else:
        assert not at.error, [e.value for e in at.error]
        assert case.problem in shown and case.fix in shown

    assert_nothing_lost(good)
    datasets_after, runs_after = stored(good)
    record = open_store(good).dataset_by_hash(hashlib.sha256(content).hexdigest())
    if case.refused:
        assert runs_after == runs_before  # no run, not even a failed one
        if case.action in ("table", "images"):
            assert datasets_after == datasets_before and record is None
            assert "dataset" not in at.query_params
    elif case.action == "score":
        scored = pd.read_csv(out)
        assert len(scored) == 12 and scored["extra"].eq("kept").all()
    elif case.check is not None:
        from dlcore.datasets import load_frame

        assert case.check(load_frame(open_store(good), record.id))


def test_a_real_workbook_uploads_as_a_table_not_as_a_zip_of_images(good):
    """An .xlsx file is a ZIP inside: it is told from a ZIP of images by its entries, whatever its name."""
    from dlcore import datasets

    book = io.BytesIO()
    churn_frame(30).to_excel(book, index=False)
    for name in ("sales.xlsx", "sales-export.zip"):
        record, _ = datasets.register_bytes(open_store(good), book.getvalue(), name)
        assert (record.kind, record.format, record.n_rows, record.n_cols) == ("tabular", "excel", 30, 5)


def test_the_leak_check_of_a_wide_file_gives_scikit_learns_roc_auc():
    from sklearn.metrics import roc_auc_score

    from dlcore.tables.profile import _single_feature_auc

    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.integers(0, 8, 60).astype(float)  # many ties
        x[rng.random(60) < 0.1] = np.nan
        y = pd.Series(rng.choice(["yes", "no"], 60))
        ok = np.isfinite(x)
        auc = roc_auc_score(y[ok] == y[ok].iloc[0], x[ok])
        assert _single_feature_auc(x, y) == pytest.approx(max(auc, 1 - auc), abs=1e-12)


def test_the_app_is_healthy_after_the_whole_corpus(good):
    assert_nothing_lost(good)
    at = app(good, "data", dataset=good.dataset_id)
    assert not at.exception and not at.error
    assert at.dataframe[0].value["Column"].tolist() == ["tenure", "charges", "plan", "region", "churn"]
    at = app(good, "compare", run=good.run_id)
    assert not at.exception
    assert len(at.dataframe[0].value) == 5


# ---- formulas are neutralised in every CSV written back ------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)"]


def csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_no_live_formula(data: bytes) -> list[list[str]]:
    """No cell or column name of the CSV would run in a spreadsheet: each one starting like a
    formula is a number (-5 stays -5) or carries the apostrophe."""
    rows = csv_cells(data)
    for row in rows:
        for cell in row:
            if cell.startswith(("=", "+", "-", "@", "\t", "\r")):
                float(cell)  # a plain number such as -5, left as it is
    return rows


def test_to_safe_csv_neutralises_formulas_in_cells_and_names_but_not_numbers():
    from dlcore.scoring import to_safe_csv

    frame = pd.DataFrame({
        "=name": [*FORMULAS, "\tled by a tab", "-5", "plain"],
        "amount": [-5, -0.5, 3, 4, 5, 6, 7],
    })
    rows = assert_no_live_formula(to_safe_csv(frame))
    assert rows[0] == ["'=name", "amount"]
    assert [r[0] for r in rows[1:]] == [f"'{v}" for v in FORMULAS] + ["'\tled by a tab", "-5", "plain"]
    assert [r[1] for r in rows[1:]] == ["-5.0", "-0.5", "3.0", "4.0", "5.0", "6.0", "7.0"]


@pytest.fixture
def downloads(monkeypatch):
    """Every file a page offers with ``st.download_button``, as (label, bytes)."""
    offered: list[tuple[str, bytes]] = []
    original = st.download_button

    def download_button(label, data, *args, **kwargs):
        offered.append((label, data() if callable(data) else data))
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", download_button)
    return offered


def test_formulas_are_neutralised_in_every_csv_written_back(good, tmp_path, downloads):
    from dlcore import cli

    frame = scoring_frame(12).head(7)
    frame["plan"] = [*FORMULAS, "\tbasic", "-5", "plus"]
    frame["=note"] = "see =A1"
    frame.loc[0, "tenure"] = -5
    path = tmp_path / "formulas.csv"
    frame.to_csv(path, index=False)

    # The CLI's scored file.
    assert cli.main(["predict", good.run_id, str(path), "-o", str(tmp_path / "scored.csv")]) == 0
    rows = assert_no_live_formula((tmp_path / "scored.csv").read_bytes())
    header = rows[0]
    assert "'=note" in header and "=note" not in header
    plan = [r[header.index("plan")] for r in rows[1:]]
    assert plan == [f"'{v}" for v in FORMULAS] + ["basic", "-5", "plus"]  # the tab is stripped on reading
    assert rows[1][header.index("tenure")] == "-5.0"  # a negative number stays a number

    # The Predict page's download (scored by the worker, jobs.execute_scoring).
    at = app(good, "predict", run=good.run_id)
    at.file_uploader[0].upload(path.name, path.read_bytes(), "text/csv").run()
    next(b for b in at.button if b.label == "Score the file").click().run()
    assert not at.exception and not at.error
    (label, data), = [d for d in downloads if d[0] == "Download the scored CSV"]
    assert csv_cells(data) == rows  # the same file as the CLI's, as safe

    # A forecast: the series are named by formulas, in a column whose name is one.
    days = pd.date_range("2024-01-01", periods=40, freq="D").strftime("%Y-%m-%d")
    noise = np.random.default_rng(4).normal(0, 2, (len(FORMULAS), 40)).round(2)
    series = pd.concat([pd.DataFrame({"date": days, "=shop": shop, "sales": 50 + 10 * k + np.arange(40) % 7 + noise[k]})
                        for k, shop in enumerate(FORMULAS)])
    series.to_csv(tmp_path / "shops.csv", index=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["fit", str(tmp_path / "shops.csv"), "--task", "forecast", "--time-col", "date",
                         "--target", "sales", "--id-col", "=shop", "--template", "cnn1d", "--epochs", "1",
                         "--horizon", "3", "--lookback", "7", "--windows", "1"]) == 0
    forecast_run = json.loads(out.getvalue())["run_id"]
    assert cli.main(["predict", forecast_run, str(tmp_path / "shops.csv"), "-o", str(tmp_path / "forecast.csv")]) == 0
    rows = assert_no_live_formula((tmp_path / "forecast.csv").read_bytes())
    assert rows[0][0] == "'=shop" and {r[0] for r in rows[1:]} == {f"'{v}" for v in FORMULAS}
    at = app(good, "predict", run=forecast_run)
    assert not at.exception and not at.error
    (label, data), = [d for d in downloads if d[0].startswith("Download the forecast (CSV)")]
    rows = assert_no_live_formula(data)
    assert rows[0][0] == "'=shop" and {r[0] for r in rows[1:]} == {f"'{v}" for v in FORMULAS}
