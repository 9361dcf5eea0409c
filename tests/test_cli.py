"""The CLI as an automation user runs it: real processes, one store, JSON out, one-line errors."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, churn_frame


def cli(home, *args, timeout=240):
    env = dict(os.environ, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "dlcore", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    home = folder / "home"
    data = folder / "churn.csv"
    churn_frame(240).to_csv(data, index=False)
    out = cli(home, "fit", data, "--target", "churn", "--epochs", "3", "--seed", "5")
    assert out.returncode == 0, out.stderr
    return home, data, json.loads(out.stdout), out.stderr


def test_fit_prints_the_leaderboard_as_json(fitted):
    _, _, result, stderr = fitted
    assert {"run_id", "dataset_id", "task", "metric", "higher_is_better", "leaderboard"} <= set(result)
    assert (result["task"], result["metric"], result["higher_is_better"]) == ("binary", "roc_auc", True)
    board = result["leaderboard"]
    assert {r["family"] for r in board} == {"deep", "baseline"} and len(board) == 5
    assert [r["test_score"] for r in board] == sorted((r["test_score"] for r in board), reverse=True)
    for row in board:
        assert set(row) >= {"model", "family", "test_score", "ci"}
        assert row["ci"][0] <= row["test_score"] <= row["ci"][1]
    assert "Traceback" not in stderr and "dataset" in stderr


def test_predict_writes_one_row_per_input_row_with_probabilities(fitted, tmp_path):
    home, _, result, _ = fitted
    new = churn_frame(30, seed=9).drop(columns=["churn"])
    new["extra"] = "ignored"
    new.loc[0, "plan"] = "=HYPERLINK(\"http://x\")"  # a formula must come back neutralised
    src = tmp_path / "new.csv"
    new.to_csv(src, index=False)
    out_path = tmp_path / "scored.csv"
    out = cli(home, "predict", result["run_id"], src, "-o", out_path)
    assert out.returncode == 0, out.stderr
    scored = pd.read_csv(out_path)
    assert len(scored) == 30
    assert list(scored.columns) == list(new.columns) + ["prediction", "probability no", "probability yes"]
    assert ((scored["probability no"] + scored["probability yes"]).round(6) == 1).all()
    assert set(scored["prediction"]) <= {"no", "yes"}
    assert scored.loc[0, "plan"].startswith("'=")
    assert "never saw" in out.stderr and "'extra'" in out.stderr


def test_predict_with_a_baseline_model(fitted, tmp_path):
    home, data, result, _ = fitted
    out_path = tmp_path / "rf.csv"
    out = cli(home, "predict", result["run_id"], data, "-o", out_path, "--model", "random_forest")
    assert out.returncode == 0, out.stderr
    assert len(pd.read_csv(out_path)) == 240


def test_runs_lists_the_run(fitted):
    home, _, result, _ = fitted
    out = cli(home, "runs", "--json")
    assert out.returncode == 0
    runs = json.loads(out.stdout)
    assert runs[0]["run_id"] == result["run_id"] and runs[0]["status"] == "done"


def test_the_same_file_is_the_same_dataset(fitted):
    home, data, result, _ = fitted
    out = cli(home, "fit", data, "--target", "nope", "--epochs", "1")
    assert out.returncode == 1
    assert result["dataset_id"] in cli(home, "runs", "--json").stdout
    assert "'nope'" in out.stderr and "'churn'" in out.stderr


@pytest.mark.parametrize(
    "content, args, words",
    [
        (b"", [], ["empty"]),
        (b"a,b,churn\n", [], ["no data rows"]),
        (bytes(range(256)) * 40, [], ["does not look like"]),
        (None, ["--task", "regression"], ["churn", "number"]),
        ("one_class", [], ["same value", "no"]),
        ("all_missing", [], ["empty"]),
        ("tiny", [], ["20"]),
    ],
)
@pytest.mark.slow  # a real ``python -m dlcore`` process
def test_bad_input_gives_one_error_line_and_exit_1(tmp_path, content, args, words):
    path = tmp_path / "bad.csv"
    frame = churn_frame(60)
    if content is None:
        frame.to_csv(path, index=False)
    elif content == "one_class":
        frame.assign(churn="no").to_csv(path, index=False)
    elif content == "all_missing":
        frame.assign(churn="").to_csv(path, index=False)
    elif content == "tiny":
        frame.head(12).to_csv(path, index=False)
    else:
        path.write_bytes(content)
    out = cli(tmp_path / "home", "fit", path, "--target", "churn", "--epochs", "1", *args, timeout=120)
    assert out.returncode == 1, out.stdout
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr
    for word in words:
        assert word.lower() in lines[0].lower()


@pytest.mark.slow  # a real ``python -m dlcore`` process
def test_a_file_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.csv"
    churn_frame(3000).to_csv(path, index=False)
    env_home = tmp_path / "home"
    env = dict(os.environ, DLCORE_HOME=str(env_home), DLCORE_MAX_UPLOAD_MB="0.01")
    out = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(path), "--target", "churn"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "over this server's limit" in out.stderr and "MB" in out.stderr


def test_predict_with_an_unknown_run_or_model_names_it(fitted, tmp_path):
    home, data, result, _ = fitted
    out = cli(home, "predict", "no-such-run", data, "-o", tmp_path / "x.csv")
    assert out.returncode == 1 and "No run with id 'no-such-run'" in out.stderr
    out = cli(home, "predict", result["run_id"], data, "-o", tmp_path / "x.csv", "--model", "svm")
    assert out.returncode == 1 and "no model named 'svm'" in out.stderr
    assert not (tmp_path / "x.csv").exists()


def test_ids_never_start_with_a_dash_and_old_ones_that_do_still_work(tmp_path, monkeypatch, capsys):
    from dlcore import cli as cli_module
    from dlcore.store import new_id

    assert not [i for i in (new_id() for _ in range(5000)) if i.startswith("-")]  # 1 in 64 did
    monkeypatch.setenv("DLCORE_HOME", str(tmp_path / "home"))
    # An id from before (argparse alone reads it as an unknown option and says "data is required").
    code = cli_module.main(["predict", "-Fjt8nMuM_KGE8mv", str(tmp_path / "new.csv"), "-o", str(tmp_path / "x.csv")])
    assert code == 1 and "No run with id '-Fjt8nMuM_KGE8mv'" in capsys.readouterr().err
    code = cli_module.main(["report", "--Fjt8nMuM_KGE8m", "-o", str(tmp_path / "r.html")])
    assert code == 1 and "No run with id '--Fjt8nMuM_KGE8m'" in capsys.readouterr().err
