"""Small UI helpers that decide what an analyst reads."""

import pandas as pd

from dlcore.scoring import to_safe_csv
from dlcore.store import RunRecord
from ui.live import progress_text
from ui.views import scored_preview


def _run(**values):
    base = dict(id="r", dataset_id="d", status="running", spec={}, template="mlp", target="y", task="binary",
                metric="roc_auc", higher_is_better=True, created_at=0.0, started_at=0.0, finished_at=None,
                heartbeat_at=0.0, worker=None, stop_requested=False, epochs_done=3, epochs_total=10, progress=0.3,
                phase="Training MLP (plain)", message=None, test_score=None, result=None)
    return RunRecord(**{**base, **values})


def test_progress_text_tells_time_left_while_training():
    assert progress_text(_run(), [2.0, 2.0, 4.0]) == (
        "Epoch 3 of 10 · about 14s left at most (early stopping may finish sooner)")


def test_progress_text_drops_the_estimate_once_baselines_fit():
    text = progress_text(_run(phase="Fitting baseline 2 of 4: random forest", epochs_done=6), [1.0])
    assert text == "Epoch 6 of 10 · Fitting baseline 2 of 4: random forest"


def test_progress_text_explains_early_stopping_and_a_stop_request():
    early = _run(status="done", epochs_done=6, result={"deep": {"stopped_by_user": False, "best_epoch": 4}})
    assert progress_text(early, []) == ("Trained 6 of 10 epochs: stopped early because the validation loss "
                                        "stopped improving; the best epoch (4) is kept.")
    asked = _run(status="stopped", epochs_done=2, result={"deep": {"stopped_by_user": True, "best_epoch": 2}})
    assert "stopped by request" in progress_text(asked, [])
    assert progress_text(_run(status="queued"), []).startswith("Waiting for a free worker")
    full = _run(status="done", epochs_done=10, result={"deep": {"stopped_by_user": False, "best_epoch": 8}})
    assert progress_text(full, []) == "Trained 10 of 10 epochs; the best epoch (8) is kept."


def test_scored_csv_keeps_a_european_layout_and_opens_in_excel():
    frame = pd.DataFrame({"Région": ["Île", "=2+3"], "prix": [1.5, None], "prediction": ["oui", "non"]})
    data = to_safe_csv(frame, ";", ",")
    assert data.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs for accents
    assert data.decode("utf-8-sig").splitlines() == ["Région;prix;prediction", "Île;1,5;oui", "'=2+3;;non"]
    shown = scored_preview(data)
    assert shown["Région"].tolist() == ["Île", "=2+3"]  # the guard is for the download, not the screen
    assert shown["prix"].tolist() == ["1.5", ""]  # a blank on screen for a missing number, not "None"
