"""The paths that make pages, uploads and training faster still give the same answers: an upload
that answers before its stored copy is written, runs that wait for that copy, and the figures
and tables a page builds once per run and state."""

import os
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dlcore import cache, datasets, ready, runner
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from tests.conftest import churn_frame, wait_until


def _not_ready(store, dataset_id):
    """Put a stored table back in the state of an upload whose copy is still being written."""
    folder = store.dataset_dir(dataset_id)
    aside = folder / "copy-aside.parquet"
    os.replace(folder / "data.parquet", aside)
    (folder / ready.PENDING).touch()
    return aside


def test_a_run_submitted_before_its_dataset_is_ready_waits_says_so_and_then_trains(store, worker):
    record, _ = datasets.register_bytes(store, churn_frame(200).to_csv(index=False).encode(), "churn.csv")
    aside = _not_ready(store, record.id)
    spec = RunSpec(data=DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(epochs=2, batch_size=32),
                   baselines=False)
    run_id = runner.submit(store, spec)  # accepted: the worker checks the target once the copy is there
    wait_until(lambda: store.run(run_id).phase == ready.WAITING, timeout=60)
    time.sleep(1.0)
    waiting = store.run(run_id)
    assert (waiting.status, waiting.epochs_done, store.epochs(run_id)) == ("running", 0, [])
    # The writer finishes: the copy goes into place, then the marker goes.
    os.replace(aside, store.dataset_dir(record.id) / "data.parquet")
    (store.dataset_dir(record.id) / ready.PENDING).unlink()
    done = wait_until(lambda: (r := store.run(run_id)).finished and r, timeout=120)
    assert done.status == "done", done.message
    assert done.epochs_done == 2 and done.result["rows"]["test"] == 40


def test_an_upload_that_answers_first_stores_the_same_table(store, tmp_path):
    content = churn_frame(300, seed=3).to_csv(index=False).encode()
    record, created = datasets.register_bytes(store, content, "churn.csv", answer_first=True)
    assert created
    from dlcore.tables.reader import rebuild_copy

    ready.wait(store, record.id, rebuild_copy)
    assert ready.is_ready(store, record.id) and ready.fresh(record.id) is None
    from dlcore.store import Store

    other = Store.open(tmp_path / "other")
    same, _ = datasets.register_bytes(other, content, "churn.csv")  # every file written before it returns
    pd.testing.assert_frame_equal(datasets.load_frame(store, record.id), datasets.load_frame(other, same.id))
    assert record.profile == same.profile and record.n_rows == same.n_rows == 300


def test_a_copy_whose_writer_died_is_written_again_by_the_first_reader(store):
    record, _ = datasets.register_bytes(store, churn_frame(120).to_csv(index=False).encode(), "churn.csv")
    before = datasets.load_frame(store, record.id)
    aside = _not_ready(store, record.id)
    aside.unlink()
    marker = store.dataset_dir(record.id) / ready.PENDING
    old = time.time() - ready.STALE_SECONDS - 5
    os.utime(marker, (old, old))
    pd.testing.assert_frame_equal(datasets.load_frame(store, record.id), before)
    assert not marker.exists()


def test_a_runs_cached_figures_are_built_again_when_the_run_changes(store):
    cache.clear()
    record, _ = datasets.register_bytes(store, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    run_id = store.create_run({"data": {}}, record.id, "mlp", "churn", 3)
    built = []

    def build(model):
        built.append(model)
        return {"figure of": model, "n": len(built)}

    first = cache.for_run(store.run(run_id), "chart", build, "mlp")
    assert cache.for_run(store.run(run_id), "chart", build, "mlp") is first  # read again: not rebuilt
    assert cache.for_run(store.run(run_id), "chart", build, "dummy")["figure of"] == "dummy"  # another model
    assert built == ["mlp", "dummy"]
    store.update_run(run_id, status="done", finished_at=time.time(), test_score=0.8, epochs_done=3, progress=1.0)
    after = cache.for_run(store.run(run_id), "chart", build, "mlp")
    assert after is not first and after["n"] == 3 and built == ["mlp", "dummy", "mlp"]
    # Evaluated again later (a rerun of the evaluation writes a new score): built again.
    store.update_run(run_id, test_score=0.81, finished_at=time.time() + 1)
    assert cache.for_run(store.run(run_id), "chart", build, "mlp")["n"] == 4


def test_only_the_last_few_runs_test_outputs_are_kept():
    cache.clear()
    runs = [SimpleNamespace(id=f"r{i}", status="done", finished_at=1.0, epochs_done=1, test_score=0.5, progress=1.0)
            for i in range(cache.MAX_HEAVY + 1)]
    for run in runs:
        cache.for_run(run, "test-outputs", lambda: "first", heavy=True)
    assert cache.for_run(runs[-1], "test-outputs", lambda: "again", heavy=True) == "first"  # recent: kept
    assert cache.for_run(runs[0], "test-outputs", lambda: "again", heavy=True) == "again"  # oldest: dropped


@pytest.mark.parametrize("answer_first", [False, True])
def test_a_refused_upload_leaves_nothing_in_either_mode(store, answer_first):
    from dlcore.errors import DataError

    with pytest.raises(DataError):
        datasets.register_bytes(store, b"", "empty.csv", answer_first=answer_first)
    assert store.list_datasets() == []


@pytest.mark.parametrize("template", ["mlp", "mlp_embed"])
def test_the_shared_matrix_gives_every_model_the_same_rows_as_indexing_the_table(store, monkeypatch, template):
    """The matrix laid out by split, filled a block of rows at a time, against the whole table
    transformed at once and indexed by each split (how the inputs were made before): equal to the
    last bit, for the dense template and the one that reads numbers and codes apart."""
    from dlcore import kinds
    from dlcore.tables import run as table_run

    frame = churn_frame(300, seed=5)
    frame.loc[::7, "tenure"] = None  # gaps: the missing flags' columns too
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "churn.csv")
    spec = RunSpec(data=DataSpec(record.id, "churn"), template=template, train=TrainSpec(epochs=1))
    monkeypatch.setattr(table_run, "CHUNK_ROWS", 7)  # many blocks, one of them short
    data = table_run.prepare_inputs(store, "r", spec, store.dataset(record.id), kinds.template(template))
    prep = table_run.prepare(store, spec)
    whole = prep.pre.transform(prep.frame)
    dense = prep.pre.dense(whole)
    for rows in (data.train, data.val, data.test, data.test[::-3]):
        got = data.deep_x(rows)
        if template == "mlp":
            assert got.dtype == np.float32 and np.array_equal(got, dense[rows])
        else:
            assert np.array_equal(got["numeric"], whole.numeric[rows])
            assert all(np.array_equal(got[f"cat_{j}"], whole.codes[rows, j:j + 1]) for j in range(whole.codes.shape[1]))
        assert np.array_equal(data.baseline_x(rows), dense[rows])
    assert not np.shares_memory(data.baseline_x(data.train), data.baseline_x(data.test))
    assert data.baseline_x(data.train).base is not None  # a view of the one matrix, not a copy


@pytest.mark.slow
def test_a_run_scores_the_same_to_the_last_digit_whatever_the_block_size(store, monkeypatch):
    from dlcore.outputs import load_test_outputs
    from dlcore.tables import run as table_run

    record, _ = datasets.register_bytes(store, churn_frame(240, seed=2).to_csv(index=False).encode(), "churn.csv")
    results = []
    for chunk in (100_000, 11):
        monkeypatch.setattr(table_run, "CHUNK_ROWS", chunk)
        spec = RunSpec(data=DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(epochs=2, batch_size=32))
        run_id = runner.submit(store, spec, claim=True)
        runner.execute_run(store, run_id)
        run = store.run(run_id)
        assert run.status == "done", run.message
        results.append(([(r["model"], r["test_score"], r["ci"]) for r in run.result["leaderboard"]["rows"]],
                        load_test_outputs(store, run_id)))
    (board_a, (y_a, out_a, rows_a)), (board_b, (y_b, out_b, rows_b)) = results
    assert board_a == board_b
    assert np.array_equal(y_a, y_b) and np.array_equal(rows_a, rows_b)
    assert all(np.array_equal(out_a[m], out_b[m]) for m in out_a)


@pytest.mark.slow
def test_a_baseline_too_big_for_memory_learns_from_a_stated_sample(store, home, monkeypatch):
    from dlcore import baselines
    from tests.conftest import open_page

    monkeypatch.setattr(baselines, "SAMPLE_ROWS", 50)  # the 144 training rows here are "too many"
    record, _ = datasets.register_bytes(store, churn_frame(240, seed=4).to_csv(index=False).encode(), "churn.csv")
    spec = RunSpec(data=DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(epochs=1, batch_size=32))
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    models = run.result["models"]
    assert models["gradient_boosting"]["sample_rows"] == 50 and models["gradient_boosting"]["train_rows"] == 144
    assert models["logistic_regression"]["sample_rows"] == 50
    assert "sample_rows" not in models["random_forest"] and "sample_rows" not in models["mlp"]
    rows = baselines.sample_of("gradient_boosting", 144, spec.train.seed)
    assert len(set(rows)) == 50 and rows.max() < 144  # the same sample every time for a seed
    assert np.array_equal(rows, baselines.sample_of("gradient_boosting", 144, spec.train.seed))
    at = open_page(home, "compare", run=run_id)
    said = [c.value for c in at.caption if "random sample" in c.value]
    assert any(s.startswith("Gradient boosting learned from a random sample of 50 of the 144 training rows")
               for s in said), said


@pytest.mark.slow
@pytest.mark.parametrize("template", ["mlp", "mlp_embed"])
def test_feeding_keras_by_batches_and_predicting_by_blocks_scores_the_same_to_the_last_digit(store, monkeypatch,
                                                                                           template):
    """The memory-saving paths of a big table, forced on a small one: Keras fed a batch at a time
    from the shared matrix (the same shuffled batches, no tensor copy of the rows) and every
    baseline predicting the test rows a block at a time give the run's scores and every test
    prediction bit for bit as the arrays handed over whole."""
    from dlcore import baselines, training
    from dlcore.outputs import load_test_outputs

    record, _ = datasets.register_bytes(store, churn_frame(260, seed=7).to_csv(index=False).encode(), "churn.csv")
    results = []
    real = training.indexed_feed
    for small in (False, True):
        if small:
            monkeypatch.setattr(training, "FEED_BY_INDEX_BYTES", 0)
            monkeypatch.setattr(baselines, "PREDICT_ROWS", 9)
        fed = []
        monkeypatch.setattr(training, "indexed_feed", lambda *a, fed=fed, **k: fed.append(out := real(*a, **k)) or out)
        spec = RunSpec(data=DataSpec(record.id, "churn"), template=template,
                       train=TrainSpec(epochs=3, batch_size=16), baselines=template == "mlp")
        run_id = runner.submit(store, spec, claim=True)
        runner.execute_run(store, run_id)
        run = store.run(run_id)
        assert run.status == "done", run.message
        # Fed by batches: the training, validation and test rows; else neither training nor test rows.
        assert [f is not None for f in fed] == ([True] * 3 if small else [False] * 2)
        results.append(([(r["model"], r["test_score"], r["ci"]) for r in run.result["leaderboard"]["rows"]],
                        [(e["loss"], e["val_loss"], e["metric"]) for e in store.epochs(run_id)],
                        load_test_outputs(store, run_id)))
    (board_a, epochs_a, (y_a, out_a, _)), (board_b, epochs_b, (y_b, out_b, _)) = results
    assert epochs_a == epochs_b and len(epochs_a) == 3
    assert np.array_equal(y_a, y_b) and set(out_a) == set(out_b)
    assert all(np.array_equal(out_a[m], out_b[m]) for m in out_a if m != "random_forest"), \
        [m for m in out_a if not np.array_equal(out_a[m], out_b[m])]
    # The forest's threads add its trees' votes in any order: equal up to that rounding.
    assert all(np.allclose(out_a[m], out_b[m], rtol=0, atol=1e-12) for m in out_a)
    assert [r[0] for r in board_a] == [r[0] for r in board_b]
    assert [r for r in board_a if r[0] != "random_forest"] == [r for r in board_b if r[0] != "random_forest"]


def test_fitting_the_preprocessing_a_column_at_a_time_learns_what_the_training_rows_copied_whole_did():
    """The preprocessing learns from the training rows one column at a time (no copy of them
    whole): the same medians, means, spreads, flags and vocabularies, to the last bit, as fitted
    on a copy of those rows with whole-frame reductions (how it was learned before)."""
    from dlcore.tables.preprocess import TabularPreprocessor, _as_category

    rng = np.random.default_rng(11)
    n = 5_000
    frame = pd.DataFrame({
        "a": rng.normal(3.0, 7.0, n) * 1e3, "b": rng.exponential(2.0, n),
        "c": pd.Series(rng.integers(0, 9, n)).astype("string"),  # numbers typed as text
        "const": np.full(n, 4.2), "gaps": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
        "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "kind": rng.choice(["x", " y", "z ", None], n), "many": rng.integers(0, 80, n).astype(str),
    })
    frame.loc[::13, "a"] = np.inf
    train = np.sort(rng.choice(n, 3_100, replace=False))
    pre = TabularPreprocessor(["a", "b", "c", "const", "gaps"], ["kind", "many"], ["when"])
    got = pre.fit(frame, rows=train).to_dict()
    # Before: the training rows copied whole and every column reduced at once.
    part = frame.iloc[train]
    num, _ = pre._numeric_frame(part)
    medians = [float(v) if np.isfinite(v) else 0.0 for v in num.median()]
    filled = num.fillna(dict(zip(num.columns, medians)))
    expected = {"num_names_": list(num.columns), "medians_": medians,
                "flags_": [c for c in num.columns if num[c].isna().any()],
                "means_": [float(v) for v in filled.mean()],
                "stds_": [float(v) if v > 1e-12 else 1.0 for v in filled.std(ddof=0).fillna(1.0)],
                "vocab_": {c: [str(v) for v in _as_category(part[c]).value_counts().index[:50]] for c in ("kind", "many")}}
    assert {k: got[k] for k in expected} == expected
    assert got["flags_"] == ["a", "gaps"] and got["stds_"][3] == 1.0 and len(got["vocab_"]["many"]) == 50
    assert TabularPreprocessor(["a"], ["kind"]).fit(frame).to_dict()["means_"] == \
        TabularPreprocessor(["a"], ["kind"]).fit(frame, rows=np.arange(n)).to_dict()["means_"]


def _prepared_alike(a, b):
    """Two ``Prepared`` of one run: the same rows, split, target and preprocessing, to the bit."""
    assert (a.task, a.dropped_missing_target, a.warnings) == (b.task, b.dropped_missing_target, b.warnings)
    for name in ("train", "val", "test", "y", "y_raw"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.pre.to_dict() == b.pre.to_dict() and a.target_enc.to_dict() == b.target_enc.to_dict()


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_reading_the_stored_table_a_column_and_a_block_at_a_time_prepares_what_the_whole_table_did(store, task):
    """A worker reads the table's Parquet copy a column at a time (the target, then each input
    for the preprocessing) and a block of rows at a time (to fill the matrix), never whole: the
    same rows kept (those without a target, or with one that is not a number, left out), split,
    target and preprocessing, to the last bit, and every block the rows the whole table has."""
    from dlcore.tables import run as table_run
    from tests.conftest import regression_frame

    if task == "binary":
        frame, target = churn_frame(300, seed=5), "churn"
        frame.loc[::11, target] = None
    else:
        frame, target = regression_frame(300, seed=3), "price"
        frame["price"] = frame["price"].astype(object)
        frame.loc[::13, "price"] = "n/a"  # not a number: the row is left out of a regression
        frame.loc[::17, "price"] = None
    frame.loc[::7, frame.columns[0]] = None
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "t.csv")
    spec = RunSpec(data=DataSpec(record.id, target, task=task), template="mlp", train=TrainSpec(epochs=1))
    whole = table_run.prepare(store, spec)
    table = table_run._open_table(store, record.id)
    assert isinstance(table, table_run.StoredTable)
    read = table_run._prepare(store, spec, table)
    _prepared_alike(whole, read)
    assert len(read.frame) == len(whole.frame) < 300
    blocks = list(table_run._blocks(read.frame, whole.pre.columns, 23))
    assert [start for start, _ in blocks] == list(np.cumsum([0] + [len(b) for _, b in blocks[:-1]]))
    assert len(blocks) > len(whole.frame) // 23  # read as the file's batches of 23, less the rows left out
    pd.testing.assert_frame_equal(pd.concat([b for _, b in blocks], ignore_index=True),
                                  whole.frame[whole.pre.columns])
    assert table_run._input_defaults(read.frame, read.train, read.pre) == \
        table_run._input_defaults(whole.frame, whole.train, whole.pre)


@pytest.mark.parametrize("template", ["mlp", "mlp_embed"])
def test_a_compact_matrix_gives_every_model_the_rows_of_the_whole_one(store, monkeypatch, template):
    """A big table's matrix is kept as numbers and small category codes, each one-hot row
    written out only when a model reads it (``dlcore.rows.RowMatrix``): forced on a small table,
    every split's rows, a batch gathered in any order and a block are bit for bit the rows of
    the whole table transformed at once; the embedding template's numbers and codes too."""
    from dlcore import kinds
    from dlcore.rows import RowMatrix
    from dlcore.tables import run as table_run

    frame = churn_frame(300, seed=5)
    frame.loc[::7, "tenure"] = None
    frame.loc[::11, "churn"] = None
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "churn.csv")
    spec = RunSpec(data=DataSpec(record.id, "churn"), template=template, train=TrainSpec(epochs=1))
    monkeypatch.setattr(table_run, "CHUNK_ROWS", 7)
    monkeypatch.setattr(table_run, "COMPACT_BYTES", 0)
    data = table_run.prepare_inputs(store, "r", spec, store.dataset(record.id), kinds.template(template))
    prep = table_run.prepare(store, spec)
    whole = prep.pre.transform(prep.frame)
    dense = prep.pre.dense(whole)
    for rows in (data.train, data.val, data.test, data.test[::-3]):
        got = data.deep_x(rows)
        if template == "mlp":
            assert isinstance(got, RowMatrix) and got.shape == dense[rows].shape
            assert np.asarray(got).dtype == np.float32 and np.array_equal(np.asarray(got), dense[rows])
            assert np.array_equal(got[[5, 0, 3]], dense[rows][[5, 0, 3]]) and np.array_equal(got[4:9], dense[rows][4:9])
        else:
            assert np.array_equal(got["numeric"], whole.numeric[rows])
            assert all(np.array_equal(got[f"cat_{j}"], whole.codes[rows, j:j + 1]) and got[f"cat_{j}"].dtype == np.int32
                       for j in range(whole.codes.shape[1]))
        x = data.baseline_x(rows)
        assert isinstance(x, RowMatrix) and np.array_equal(np.asarray(x), dense[rows])
    assert data.result["input_defaults"] == table_run._input_defaults(prep.frame, prep.train, prep.pre)


@pytest.mark.slow
def test_a_run_on_a_compact_matrix_read_by_blocks_scores_the_same_to_the_last_digit(store, monkeypatch):
    """Every memory-saving path of a big table at once, forced on a small one (the table read a
    block at a time, the matrix kept compact, Keras fed batches written out from it, baselines
    fitted on rows written out and predicting by blocks): the scores, every test prediction and
    every epoch are those of the run with whole arrays, bit for bit (the forest's votes up to
    the order its threads add them)."""
    from dlcore import baselines
    from dlcore.outputs import load_test_outputs
    from dlcore.tables import run as table_run

    frame = churn_frame(260, seed=7)
    frame.loc[::9, "churn"] = None
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "churn.csv")
    results = []
    for compact in (False, True):
        if compact:
            monkeypatch.setattr(table_run, "COMPACT_BYTES", 0)
            monkeypatch.setattr(table_run, "CHUNK_ROWS", 13)
            monkeypatch.setattr(baselines, "PREDICT_ROWS", 9)
        spec = RunSpec(data=DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(epochs=3, batch_size=16))
        run_id = runner.submit(store, spec, claim=True)
        runner.execute_run(store, run_id)
        run = store.run(run_id)
        assert run.status == "done", run.message
        results.append(([(r["model"], r["test_score"], r["ci"]) for r in run.result["leaderboard"]["rows"]],
                        [(e["loss"], e["val_loss"], e["metric"]) for e in store.epochs(run_id)],
                        load_test_outputs(store, run_id), run.result["input_defaults"]))
    (board_a, epochs_a, (y_a, out_a, rows_a), defaults_a), (board_b, epochs_b, (y_b, out_b, rows_b), defaults_b) = results
    assert epochs_a == epochs_b and len(epochs_a) == 3 and defaults_a == defaults_b
    assert np.array_equal(y_a, y_b) and np.array_equal(rows_a, rows_b) and set(out_a) == set(out_b)
    assert all(np.array_equal(out_a[m], out_b[m]) for m in out_a if m != "random_forest"), \
        [m for m in out_a if not np.array_equal(out_a[m], out_b[m])]
    assert np.allclose(out_a["random_forest"], out_b["random_forest"], rtol=0, atol=1e-12)
    assert [r for r in board_a if r[0] != "random_forest"] == [r for r in board_b if r[0] != "random_forest"]


@pytest.mark.slow
def test_a_sampled_baseline_handed_its_rows_compact_or_as_float64_learns_what_it_learned_from_float32(tmp_path, monkeypatch):
    """The baselines of a big table: their training rows written out from the compact matrix
    (a sample of them for gradient boosting, handed over as float64, the copy it makes anyway;
    the floor handed no rows at all) give every test prediction bit for bit as the float32
    matrix handed over whole did."""
    from dlcore import baselines
    from dlcore.rows import RowMatrix, dense_rows

    monkeypatch.setattr(baselines, "SAMPLE_ROWS", 300)
    rng = np.random.default_rng(3)
    n = 700
    numbers = rng.normal(size=(n, 3)).astype(np.float32)
    codes = rng.integers(0, 4, (n, 2)).astype(np.uint8)
    y = (numbers[:, 0] + (codes[:, 0] == 2) + rng.normal(size=n) > 0.5).astype(np.int64)
    compact, whole = RowMatrix(numbers, codes, [4, 5]), dense_rows(numbers, codes, [4, 5])
    train, test = slice(0, 500), slice(500, n)
    for name in ("dummy", "gradient_boosting", "logistic_regression"):
        outs = []
        for x in (whole, compact):
            pipe = baselines.baselines_for("binary", 0, 500)[name]
            x_train = x[train] if isinstance(x, np.ndarray) else x.rows(train)
            x_test = x[test] if isinstance(x, np.ndarray) else x.rows(test)
            out, _ = baselines.fit_one((name, pipe, "binary", 2, str(tmp_path), 0),
                                       {"x_train": x_train, "y_fit": y[train], "x_test": x_test})
            outs.append(out)
        assert np.array_equal(outs[0], outs[1]), name
    assert baselines.sample_of("gradient_boosting", 500, 0) is not None  # the sample path was taken
