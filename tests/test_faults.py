"""The faults an analyst's server meets, each end to end with real parts.

| fault | what must happen | test |
|---|---|---|
| a browser refresh during training | the run goes on; the page re-attaches to it | ``test_a_refresh_during_training_...`` |
| the server restarted during training | the run is *interrupted* with its epochs kept; a click reruns it | ``test_a_server_restart_...`` |
| a worker killed with SIGKILL | its run *failed* with the reason; the other runs go on | ``test_a_worker_killed_with_sigkill_...`` |
| a loss that becomes NaN | the run stops early with a message that says what to change | ``test_a_loss_that_turns_nan_...`` |
| disk full, data folder read-only | a clear message; nothing half-written or lost | ``test_an_upload_...``, ``test_a_run_artifact_...`` |

The refresh and the restart drive a real Streamlit server in Debian's Chromium; the SIGKILL
kills a real worker process of the app's pool; the SIGKILL and the NaN run on SQLite and on a real
PostgreSQL server (tests/pg.py), the rest on SQLite. A full disk is a
small tmpfs filled up, and a read-only folder a read-only bind mount, where this machine allows
mounting (root here); for a normal user chmod makes a folder read-only; elsewhere the file
system calls fail with the same errors. Related unit tests: ``test_store.py`` (recover and
atomic writes), ``test_jobs.py`` (a bare worker killed, the pool on one worker).
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from dlcore import datasets, runner, templates
from dlcore.errors import StoreError
from dlcore.jobs import LocalPool
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from dlcore.store import Store
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Server
from tests.conftest import (
    DATABASES,
    churn_frame,
    open_page,
    regression_frame,
    use_app_router_in_apptest,
    wait_until,
)

use_app_router_in_apptest()


# ---- helpers ------------------------------------------------------------------------------
def _dataset(store: Store, rows: int = 3000) -> str:
    record, _ = datasets.register_bytes(store, churn_frame(rows).to_csv(index=False).encode(), f"churn-{rows}.csv")
    return record.id


def _submit(store: Store, dataset_id: str, baselines: bool = True, **train) -> str:
    return runner.submit(store, RunSpec(DataSpec(dataset_id, "churn"), train=TrainSpec(**train), baselines=baselines))


def _gone(pid: int) -> bool:
    """The process has ended (a zombie that nobody reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1][:1] == "Z"
    except OSError:
        return True


def _files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden temporary ones included) with its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")  # only the two browser tests need it
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser):
    page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    page.set_default_timeout(60_000)
    return page


def _epoch_shown(page, total: int) -> int:
    """The epoch the run's page says it is at: "Epoch 7 of 20" live, "Trained 20 of 20 epochs" at the end."""
    body = page.inner_text("body")
    found = re.findall(rf"Epoch (\d+) of {total}\b", body) or re.findall(rf"Trained (\d+) of {total} epochs", body)
    return int(found[-1]) if found else 0


def _wait_for_epoch(page, total: int, at_least: int, timeout: float = 120) -> int:
    def seen() -> int:
        n = _epoch_shown(page, total)
        return n if n >= at_least else 0

    return wait_until(seen, timeout=timeout, every=0.25)


EPOCHS = 30  # slow enough (batch 32 on 1,800 training rows) for a refresh in the middle
# The worker notices its server is gone at its next heartbeat (5 s), so the run to interrupt has room.
EPOCHS_TO_INTERRUPT = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An analyst's server, shared by the refresh and the restart tests so its worker starts once;
    the restart test stops it itself."""
    home = tmp_path_factory.mktemp("faults") / "home"
    home.mkdir()
    srv = Server(home)
    yield srv
    srv.stop()


def _long_run(home: Path, epochs: int = EPOCHS) -> tuple[Store, str]:
    store = Store.open(home)
    return store, _submit(store, _dataset(store), baselines=False, epochs=epochs, patience=epochs, batch_size=32)


# ---- 1. a browser refresh during training ---------------------------------------------------
def test_a_refresh_during_training_reattaches_to_the_run_which_goes_on(server, browser):
    store, run_id = _long_run(server.home)
    url = f"{server.url}/train?run={run_id}"
    page = _page(browser)
    page.goto(url)  # the first page view starts the server's worker
    page.get_by_text(f"Run {run_id}").wait_for()
    at_reload = _wait_for_epoch(page, EPOCHS, at_least=2)
    stored_at_reload = store.run(run_id).epochs_done
    assert store.run(run_id).status == "running" and at_reload < EPOCHS

    page.reload()
    assert page.url == url
    page.get_by_text(f"Run {run_id}").wait_for()
    # The page is attached to the run again, and the epoch it shows keeps rising.
    after = _wait_for_epoch(page, EPOCHS, at_least=at_reload + 2)
    assert store.run(run_id).epochs_done > stored_at_reload

    # A colleague opening the same link in a fresh browser sees the same run, as far along.
    other = _page(browser)
    other.goto(url)
    other.get_by_text(f"Run {run_id}").wait_for()
    _wait_for_epoch(other, EPOCHS, at_least=after)

    # The reloaded page still controls the run: its Stop button ends it, and it is evaluated
    # with every epoch trained so far kept (no need to sit through the other epochs).
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until(lambda: store.run(run_id).finished, timeout=180)
    run = store.run(run_id)
    assert run.status == "stopped", run.message
    assert after <= run.epochs_done < EPOCHS and run.result["deep"]["stopped_by_user"]
    assert [e["epoch"] for e in store.epochs(run_id)] == list(range(1, run.epochs_done + 1))
    page.get_by_text("See the leaderboard and charts").wait_for()
    assert "stopped by request" in page.inner_text("body")


# ---- 2. the server restarted during training ------------------------------------------------
def test_a_server_restart_marks_the_run_interrupted_keeps_its_epochs_and_reruns_in_one_click(server, browser):
    store, run_id = _long_run(server.home, EPOCHS_TO_INTERRUPT)
    try:
        _page(browser).goto(f"{server.url}/train?run={run_id}")  # starts the worker, if no test did
        wait_until(lambda: len(store.epochs(run_id)) >= 2, timeout=120)
        worker_pid = int(store.run(run_id).worker.rpartition(":")[2])
    finally:
        server.stop()
    # The worker watches the server that started it, and leaves when it is gone.
    wait_until(lambda: _gone(worker_pid), timeout=30)
    kept = len(store.epochs(run_id))
    assert 2 <= kept < EPOCHS_TO_INTERRUPT and store.run(run_id).status == "running"  # nothing has looked at it yet

    again = Server(server.home)
    try:
        page = _page(browser)
        page.goto(f"{again.url}/train?run={run_id}")  # the new server opens the store: the worker is gone
        page.get_by_text("use Rerun to train it again").wait_for()
        run = store.run(run_id)
        assert run.status == "interrupted"
        assert len(store.epochs(run_id)) == run.epochs_done == kept
        body = page.inner_text("body")
        assert "interrupted" in body and "the server was restarted" in body and "epochs so far are kept" in body
        assert f"Trained {kept} of {EPOCHS_TO_INTERRUPT} epochs" in body and "no model was saved from this run" in body
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "faults-interrupted.png"), full_page=True)

        runs_before = {r.id for r in store.list_runs()}
        page.get_by_role("button", name="Rerun with the same settings").click()  # one click
        page.wait_for_url(lambda u: "run=" in u and run_id not in u, timeout=30_000)
        rerun_id = re.search(r"run=([\w-]+)", page.url).group(1)
        assert {r.id for r in store.list_runs()} - runs_before == {rerun_id}  # one click, one new run
        assert store.run(rerun_id).spec == run.spec
        # The rerun trains from its first epoch; stopped once it has two, it is evaluated like any run.
        wait_until(lambda: len(store.epochs(rerun_id)) >= 2, timeout=120)
        page.get_by_role("button", name="Stop", exact=True).click()
        wait_until(lambda: store.run(rerun_id).finished, timeout=180)
        assert store.run(rerun_id).status == "stopped", store.run(rerun_id).message
        assert 2 <= len(store.epochs(rerun_id)) < EPOCHS_TO_INTERRUPT
        assert store.run(run_id).status == "interrupted" and len(store.epochs(run_id)) == kept
    finally:
        again.stop()


# ---- 3. a worker killed with SIGKILL --------------------------------------------------------
@pytest.mark.slow  # the app's real worker pool
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_a_worker_killed_with_sigkill_fails_its_run_with_the_reason_and_the_others_go_on(store, home):
    dataset_id = _dataset(store)
    victim_run = _submit(store, dataset_id, baselines=False, epochs=500, patience=500, batch_size=16)
    other_run = _submit(store, dataset_id, baselines=False, epochs=20, patience=20)
    pool = LocalPool(home, n_train=2, store=store)  # the app's pool: two trainers and a scorer
    pool.ensure()
    try:
        wait_until(lambda: len(store.epochs(victim_run)) >= 1 and store.run(other_run).status != "queued",
                   timeout=120)
        victim = next(p for p in pool.procs.values() if store.run(victim_run).worker.endswith(f":{p.pid}"))
        os.kill(victim.pid, signal.SIGKILL)
        # No page view calls pool.ensure() here: the pool notices the death by itself, at once.
        wait_until(lambda: store.run(victim_run).status != "running", timeout=15)
        run = store.run(victim_run)
        assert run.status == "failed"
        assert "killed (signal 9, often a sign the machine ran out of memory)" in run.message
        assert "use Rerun" in run.message
        kept = len(store.epochs(victim_run))
        assert kept >= 1

        wait_until(lambda: store.run(other_run).finished, timeout=180)
        other = store.run(other_run)
        assert other.status == "done", other.message
        assert len(store.epochs(other_run)) == other.result["deep"]["epochs_run"]
        assert store.run(victim_run).status == "failed" and len(store.epochs(victim_run)) == kept
        pool.ensure()  # the next page view: a fresh worker takes the dead one's place
        assert pool.alive() == 3 and victim not in pool.procs.values()
    finally:
        pool.stop()


# ---- 4. a loss that becomes NaN -------------------------------------------------------------
def _exploding(settings, inputs, task, n_outputs):
    """A model whose output grows fourfold at every training step: its loss overflows in a
    known epoch (the third here), the way a too-large learning rate makes training blow up.

    Real settings do not do it reliably: inputs and target are standardised, Adam bounds each
    step, and Keras clips cross-entropy; even a learning rate of 1.0 recovers from its spikes.
    """
    import keras

    class Exploding(keras.layers.Layer):
        def build(self, shape):
            self.factor = self.add_weight(shape=(), initializer="ones", trainable=False, name="factor")

        def call(self, x, training=False):
            if training:
                self.factor.assign(self.factor * 4.0)
            return x * self.factor

    x_in = keras.Input(shape=(inputs.n_dense,), name="features")
    return keras.Model(x_in, Exploding()(templates.output_layer(task, n_outputs)(x_in)), name="exploding")


@pytest.fixture
def exploding(monkeypatch):
    monkeypatch.setitem(templates.REGISTRY, "exploding", templates.Template(
        "exploding", "tabular", "Exploding (test)", "Blows up after a few epochs.", "dense", _exploding))


@pytest.mark.slow
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_a_loss_that_turns_nan_stops_the_run_with_advice_and_keeps_the_epochs_before(store, home, exploding):
    record, _ = datasets.register_bytes(store, regression_frame(200).to_csv(index=False).encode(), "houses.csv")
    spec = RunSpec(DataSpec(record.id, "price"), template="exploding", baselines=False,
                   train=TrainSpec(epochs=40, patience=40, batch_size=16, learning_rate=0.03))
    run_id = runner.submit(store, spec)
    assert store.claim_next_run() == run_id
    runner.execute_run(store, run_id)  # what the worker does with a claimed run

    run = store.run(run_id)
    epochs = store.epochs(run_id)
    nan_at = len(epochs)
    assert run.status == "failed" and 3 <= nan_at < 40  # stopped early, at the epoch it broke
    assert epochs[-1]["loss"] is None  # not a number: stored empty
    assert all(e["loss"] is not None and math.isfinite(e["loss"]) for e in epochs[:-1])
    assert f"unstable at epoch {nan_at}" in run.message
    assert "Lower the learning rate (now 0.03; try 0.003)" in run.message
    assert not store.run_dir(run_id).exists()  # no model saved from a broken fit

    at = open_page(home, "train", run=run_id)
    assert not at.exception
    assert run.message in [e.value for e in at.error]
    assert any(b.label == "Rerun with the same settings" for b in at.button)


# ---- 5. the disk full, the data folder read-only --------------------------------------------
def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


class Disk:
    """A test's data folder on a disk that can be filled up or made read-only.

    For real where this machine allows it: the folder is a 4 MB tmpfs, filled with a file
    until the kernel says ENOSPC, and a folder is made read-only by a read-only bind mount
    (root), or by chmod (a normal user, whom permissions bind). Elsewhere the file system
    calls under the folder fail with the same errors. The database lives on another disk,
    so only the files fill up (the epochs and the run's status can still be written).
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.disk = root / "disk"
        self.disk.mkdir()
        self.mounts: list[Path] = []
        self.chmodded: list[Path] = []
        if os.geteuid() == 0 and _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(self.disk)):
            self.mounts.append(self.disk)
        self.home = self.disk / "home"
        self.home.mkdir()
        self.url = f"sqlite:///{root / 'store.db'}"
        monkeypatch.setenv("DLCORE_HOME", str(self.home))
        monkeypatch.setenv("DLCORE_DATABASE_URL", self.url)
        monkeypatch.setenv("DLCORE_WORKERS", "0")

    def store(self) -> Store:
        return Store.open(self.home, url=self.url)

    def fill(self) -> str:
        """No space is left for the data folder; returns the error the system will give."""
        if self.disk in self.mounts:
            with pytest.raises(OSError) as full, open(self.disk / "filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            assert full.value.errno == errno.ENOSPC
        else:
            self._fail_under(self.home, errno.ENOSPC, mkdir=False)
        return os.strerror(errno.ENOSPC)

    def read_only(self, folder: Path) -> str:
        """``folder`` cannot be written; returns the error the system will give."""
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            folder.chmod(0o555)
            self.chmodded.append(folder)
            return os.strerror(errno.EACCES)
        if _mount("--bind", str(folder), str(folder)):
            self.mounts.append(folder)
            if _mount("-o", "remount,bind,ro", str(folder)):
                return os.strerror(errno.EROFS)
        self._fail_under(folder, errno.EROFS, mkdir=True)
        return os.strerror(errno.EROFS)

    def _fail_under(self, folder: Path, code: int, mkdir: bool) -> None:
        def inside(path) -> bool:
            return Path(os.fspath(path)).resolve().is_relative_to(folder.resolve())

        real_replace, real_mkdir = os.replace, os.mkdir

        def replace(src, dst, *args, **kwargs):
            if inside(dst):
                raise OSError(code, os.strerror(code), os.fspath(dst))
            return real_replace(src, dst, *args, **kwargs)

        def make_dir(path, *args, **kwargs):
            if inside(path):
                raise OSError(code, os.strerror(code), os.fspath(path))
            return real_mkdir(path, *args, **kwargs)

        self.monkeypatch.setattr(os, "replace", replace)
        if mkdir:
            self.monkeypatch.setattr(os, "mkdir", make_dir)

    def release(self) -> None:
        for folder in self.chmodded:
            folder.chmod(0o755)
        for mount in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def disk(tmp_path, monkeypatch):
    d = Disk(tmp_path, monkeypatch)
    yield d
    d.release()


def _expect_clear_message(message: str, folder: Path, reason: str) -> None:
    assert f"to the data folder {folder}" in message, message
    assert reason in message, message
    assert "Free some disk space or make the folder writable" in message
    assert "nothing stored was changed" in message


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_an_upload_to_a_full_or_read_only_data_folder_says_so_and_changes_nothing(disk, fault):
    store = disk.store()
    kept = _dataset(store, rows=100)
    before = _files(disk.home)
    reason = disk.fill() if fault == "disk full" else disk.read_only(disk.home / "datasets")

    with pytest.raises(StoreError) as refused:
        datasets.register_bytes(store, churn_frame(3000, seed=5).to_csv(index=False).encode(), "new.csv")
    _expect_clear_message(str(refused.value), disk.home / "datasets", reason)
    assert _files(disk.home) == before  # no temporary or half-written file; the stored one intact
    assert [d.id for d in store.list_datasets()] == [kept]

    # The Data page shows the same message, not a traceback.
    at = open_page(disk.home, "data")
    at.file_uploader[0].upload("new.csv", churn_frame(3000, seed=6).to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    _expect_clear_message(shown, disk.home / "datasets", reason)
    assert "dataset" not in at.query_params
    assert _files(disk.home) == before and [d.id for d in store.list_datasets()] == [kept]


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_a_run_artifact_on_a_full_or_read_only_data_folder_fails_the_run_plainly(disk, fault):
    store = disk.store()
    dataset_id = _dataset(store, rows=200)
    earlier = _submit(store, dataset_id, baselines=False, epochs=2)
    store.claim_next_run()
    runner.execute_run(store, earlier)
    assert store.run(earlier).status == "done"
    before = _files(disk.home)
    assert {"runs/" + earlier + "/mlp.keras", "runs/" + earlier + "/preprocess.json"} <= set(before)

    reason = disk.fill() if fault == "disk full" else disk.read_only(disk.home / "runs")
    run_id = _submit(store, dataset_id, baselines=False, epochs=2)
    store.claim_next_run()
    runner.execute_run(store, run_id)  # never raises: the run records what happened
    run = store.run(run_id)
    assert run.status == "failed"
    assert run.message.startswith("Could not write mlp.keras")
    _expect_clear_message(run.message, disk.home / "runs", reason)
    assert len(store.epochs(run_id)) == 2  # the epochs are in the database, which had room
    assert _files(disk.home) == before  # no half-written model; the earlier run's files intact
    assert store.run(earlier).status == "done"


@pytest.mark.slow
def test_a_bug_while_the_run_folder_is_read_only_still_fails_the_run(disk, monkeypatch):
    store = disk.store()
    run_id = _submit(store, _dataset(store, rows=100), baselines=False, epochs=1)
    store.claim_next_run()
    disk.read_only(disk.home / "runs")

    def bug(*_args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(runner, "_execute", bug)
    runner.execute_run(store, run_id)  # error.log cannot be written; the run is still marked
    run = store.run(run_id)
    assert run.status == "failed" and "An internal error stopped this run (RuntimeError)" in run.message


@pytest.mark.slow
def test_a_data_folder_that_cannot_be_opened_is_a_plain_message_on_every_page(tmp_path):
    """Not a traceback: the server's data folder sits below a file, so it can never be created
    (even as root, unlike a read-only folder)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder's parent should be")
    for page in ("home", "data", "runs"):
        at = open_page(blocker / "home", page)
        assert not at.exception, at.exception
        errors = [e.value for e in at.error]
        assert any("cannot be created" in e and "Set DLCORE_HOME to a writable folder" in e for e in errors), errors
