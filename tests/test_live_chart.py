"""The live chart of a training run, in a real browser: each second only the epochs the page does
not have yet travel from the server, and the chart grows to the run's whole history. The epochs
are written to the store by the test (as a worker writes them), so no model trains here."""

from __future__ import annotations

import json
import time

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server
from tests.conftest import churn_frame

playwright = pytest.importorskip("playwright.sync_api")


def _epoch(store, run_id, n):
    # Distinct values, so a frame that carries an epoch can be told by its loss.
    store.add_epoch(run_id, n, loss=0.7 - n / 1000 + 1.23456789e-7, val_loss=0.8 - n / 997 + 2.3456789e-7,
                    metric=0.5 + n / 100, val_metric=0.45 + n / 90, seconds=0.5, epochs_total=20)
    store.update_run(run_id, heartbeat_at=time.time())


def _drawn(page) -> list:
    return page.evaluate("() => { const r = document.querySelector('.dl-live');"
                         " return r && r.__live ? r.__live.rows : null; }")


@pytest.mark.browser
def test_the_live_chart_receives_only_new_epochs_and_grows_to_the_whole_history(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    home = tmp_path / "home"
    home.mkdir()
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(120).to_csv(index=False).encode(), "churn.csv")
    run_id = store.create_run({"data": {"dataset_id": record.id, "target": "churn"}, "template": "mlp"},
                              record.id, "mlp", "churn", 20, claim=True)
    store.update_run(run_id, task="binary", phase="Training MLP (plain)", heartbeat_at=time.time())
    for n in (1, 2, 3):
        _epoch(store, run_id, n)
    server = Server(home, workers=0)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            frames: list[bytes] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(
                f if isinstance(f, bytes) else f.encode())))
            page.goto(f"{server.url}/train?run={run_id}")
            page.wait_for_function("() => document.querySelector('.dl-live')?.dataset.epochs === '3'", timeout=60_000)
            page.wait_for_timeout(2500)  # a few polls with nothing new
            frames.clear()
            for n in (4, 5):
                _epoch(store, run_id, n)
            page.wait_for_function("() => document.querySelector('.dl-live')?.dataset.epochs === '5'", timeout=30_000)
            page.wait_for_timeout(2500)
            later = b"".join(frames)
            _epoch(store, run_id, 6)
            page.wait_for_function("() => document.querySelector('.dl-live')?.dataset.epochs === '6'", timeout=30_000)
            rows = _drawn(page)
            browser.close()
    finally:
        server.stop()
    # The chart holds the run's whole history, in order, as the store has it.
    expected = [[e["epoch"], e["loss"], e["val_loss"], e["metric"], e["val_metric"]] for e in store.epochs(run_id)]
    assert rows == expected and [r[0] for r in rows] == [1, 2, 3, 4, 5, 6]
    # After the first drawing, the frames carried epochs 4 and 5, never the first three again.
    sent = lambda n: json.dumps(0.7 - n / 1000 + 1.23456789e-7).encode()  # noqa: E731
    assert sent(4) in later and sent(5) in later
    assert not any(sent(n) in later for n in (1, 2, 3)), "an epoch the page had was sent again"


def test_the_history_rows_hold_what_the_history_frame_held():
    """The live view's rows are built without a DataFrame: the same values, gaps as NaN."""
    import numpy as np

    from ui.live import history_frame, history_rows

    epochs = [{"run_id": "r", "epoch": 1, "loss": 0.5, "val_loss": None, "metric": 0.7, "val_metric": 0.6,
               "seconds": 1.25, "created_at": 1.0},
              {"run_id": "r", "epoch": 2, "loss": 0.4, "val_loss": 0.45, "metric": None, "val_metric": 0.65,
               "seconds": None, "created_at": 2.0}]
    rows = history_rows(epochs)
    frame = history_frame(epochs)
    assert np.array_equal(np.array(rows, dtype=float), frame.to_numpy(dtype=float), equal_nan=True)
    assert [type(r[0]) for r in rows] == [int, int] and history_rows([]) == ()
