"""A dataset's "ready" state: an upload answers once its table is read, typed and profiled; the
copy workers load (a table's Parquet file) is written after, and workers wait for it.

While the copy is written, a ``.pending`` file lies in the dataset's folder and the server
process keeps the typed table in memory (``fresh``), so its pages and a submit's checks never
wait. A worker that finds the dataset not ready waits (its run's progress says so) until the
copy is there. A copy whose writer died (the server stopped mid-write, a full disk) is rebuilt
by the first worker that finds its marker stale, from the file kept as it came.

    writing = ready.write_later(folder, frame, write)   # in the upload, before the store row
    ready.hold(dataset_id, frame, writing)              # after the store row: pages use the table
    ready.wait(store, dataset_id, rebuild, note=say)    # in a worker, before loading
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

__all__ = ["PENDING", "STALE_SECONDS", "WAITING", "write_later", "hold", "fresh", "is_ready", "wait"]

PENDING = ".pending"
# A marker this old belongs to a writer that died: writing the copy of 5M rows takes seconds.
STALE_SECONDS = 120.0
WAITING = "Waiting for the dataset to be ready: its stored copy is still being written (this run starts when it is)"

log = logging.getLogger("dlcore.ready")
_fresh: dict[str, Any] = {}
_lock = threading.Lock()


def write_later(folder: Path, frame: Any, write: Callable[[], None]) -> Future:
    """Mark ``folder`` not ready and run ``write`` (which writes the copy) in a thread of its own;
    the marker goes when it has written. The returned future holds its error, if any."""
    marker = folder / PENDING
    marker.touch()
    done: Future = Future()

    def run() -> None:
        try:
            write()
        except BaseException as exc:  # the marker stays: a worker rebuilds the copy from the source
            log.exception("writing the stored copy in %s failed", folder)
            done.set_exception(exc)
            return
        marker.unlink(missing_ok=True)
        done.set_result(None)

    threading.Thread(target=run, name=f"dlcore-write-{folder.name}", daemon=True).start()
    return done


def hold(dataset_id: str, frame: Any, writing: Future) -> None:
    """Keep ``frame`` as dataset ``dataset_id``'s table in this process until ``writing`` ends."""
    with _lock:
        _fresh[dataset_id] = frame

    def drop(_: Future) -> None:
        with _lock:
            _fresh.pop(dataset_id, None)

    writing.add_done_callback(drop)


def fresh(dataset_id: str) -> Any | None:
    """The dataset's typed table if this process is still writing its copy, else None."""
    with _lock:
        return _fresh.get(dataset_id)


def is_ready(store: Any, dataset_id: str) -> bool:
    return not (store.dataset_dir(dataset_id) / PENDING).exists()


def wait(store: Any, dataset_id: str, rebuild: Callable[[Path], None] | None = None,
         note: Callable[[str], None] | None = None, poll: float = 0.2, stale_after: float = STALE_SECONDS) -> None:
    """Return when the dataset's stored copy is written; say ``WAITING`` once through ``note`` if
    it is not yet. A copy whose writer died (its marker is stale) is written again here by
    ``rebuild(folder)`` (``dlcore.tables.reader.rebuild_copy`` for a table); without ``rebuild``
    this returns then, and the kind's loader (which passes one) writes it."""
    marker = store.dataset_dir(dataset_id) / PENDING
    said = False
    while marker.exists():
        try:
            age = time.time() - marker.stat().st_mtime
        except FileNotFoundError:
            break
        if age > stale_after:
            if rebuild is not None:
                log.warning("dataset %s: its stored copy was never finished; writing it again", dataset_id)
                rebuild(store.dataset_dir(dataset_id))
                marker.unlink(missing_ok=True)
            break
        if note is not None and not said:
            note(WAITING)
            said = True
        time.sleep(poll)

