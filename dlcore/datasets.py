"""Register uploads and samples as datasets: written to the store at once, keyed by content.

The same bytes uploaded twice are the same dataset (one SHA-256, one id). The kind of data that
claims an upload most surely (``Kind.claims``) reads it and writes its files (``Kind.ingest``):
a table is kept as it came beside a Parquet copy that workers load quickly; a ZIP of images as
it came beside its manifest. Nothing is left behind when a file cannot be read.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Iterator

import pandas as pd
import sqlalchemy as sa

from dlcore import config, images, kinds, ready, series
from dlcore import tables as tabular
from dlcore.access import LOCAL_WORKSPACE
from dlcore.errors import DataError, TooLargeError
from dlcore.store import DatasetRecord, Store, new_id
from dlcore.tables import samples
from dlcore.tables.profile import profile_of
from dlcore.tables.reader import _human_size, load_frame

__all__ = ["register_bytes", "register_file", "register_sample", "load_frame", "profile_of"]


def _check_size(size: int, name: str) -> None:
    limit = config.max_upload_bytes()
    if size > limit:
        raise TooLargeError(
            f"{name} is {_human_size(size)}, over this server's limit of {_human_size(limit)}. "
            "Upload a smaller extract (fewer rows or columns), or ask the administrator to raise "
            "DLCORE_MAX_UPLOAD_MB."
        )


def register_bytes(store: Store, content: bytes, name: str, answer_first: bool = False) -> tuple[DatasetRecord, bool]:
    """Store an upload and return its dataset record, and whether it is new.

    The file is parsed and profiled before anything is written, so a bad file changes nothing.
    With ``answer_first`` (the Data page) this returns as soon as the table is typed, profiled
    and its row stored; the copy workers load is written after, and they wait for it
    (``dlcore.ready``). Otherwise it returns once every file is written.
    """
    _check_size(len(content), name)
    # The role first: a viewer's upload (or sample) is refused before a byte of it is written.
    store.require("upload", "workspace", store.workspace_id or LOCAL_WORKSPACE)
    hashing: Future | None = None
    if store.has_dataset_of_size(len(content)):  # perhaps this very file again: answer at once if so
        sha = hashlib.sha256(content).hexdigest()
        existing = store.dataset_by_hash(sha)
        if existing is not None:
            return existing, False
    else:  # a new file: hashed (outside the GIL) while it is read
        hashing = Future()
        threading.Thread(target=lambda: hashing.set_result(hashlib.sha256(content).hexdigest()), daemon=True).start()
    # The kind that claims the upload most surely reads it (a ZIP of images before any table).
    kind = max((k for k in kinds.KINDS.values() if k.ingest is not None), key=lambda k: k.claims(content, name))
    dataset_id = new_id()
    folder = store.dataset_dir(dataset_id)
    with _leave_nothing(folder):
        values = kind.ingest(folder, content, name)
    if hashing is not None:
        sha = hashing.result()
    writing, frame = values.pop("writing", None), values.pop("frame", None)
    if writing is not None and not answer_first:
        try:
            writing.result()  # a full disk says so here, and the upload fails as a whole
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # no row was stored: nothing of it stays
            raise
    elif writing is not None:
        ready.hold(dataset_id, frame, writing)  # this server's pages use the table meanwhile
    try:
        return _insert(store, folder, sha, dict(id=dataset_id, sha256=sha, size_bytes=len(content), **values))
    except BaseException:  # no row was stored (access taken away meanwhile, a full database): no file stays
        if writing is not None:
            with contextlib.suppress(BaseException):
                writing.result()
        shutil.rmtree(folder, ignore_errors=True)
        raise


@contextlib.contextmanager
def _leave_nothing(folder: Path) -> Iterator[None]:
    """A bad upload leaves no dataset folder behind (its files were still under temporary names)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: the temporary files are already gone
        raise


def _insert(store: Store, folder: Path, sha: str, values: dict) -> tuple[DatasetRecord, bool]:
    try:
        record = store.insert_dataset(**values)
    except sa.exc.IntegrityError:  # the same file registered at the same moment by someone else
        existing = store.dataset_by_hash(sha)
        if existing is None:
            raise
        shutil.rmtree(folder, ignore_errors=True)  # our copy is a duplicate of theirs
        return existing, False
    return record, True


def register_file(store: Store, path: str | Path) -> tuple[DatasetRecord, bool]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"There is no file at {str(path)!r}. Check the path and try again.")
    _check_size(path.stat().st_size, path.name)
    return register_bytes(store, path.read_bytes(), path.name)


def register_sample(store: Store, key: str) -> tuple[DatasetRecord, bool]:
    """Register a sample that ships inside an installed package, with its usual target chosen."""
    if key in images.IMAGE_SAMPLES:
        return register_bytes(store, images.IMAGE_SAMPLES[key].zip_bytes(), f"{key}.zip")
    if key in series.SERIES_SAMPLES:
        sample = series.SERIES_SAMPLES[key]
        record, created = register_bytes(store, series.series_sample_csv_bytes(key), f"{key}.csv")
        if record.target is None:
            store.set_dataset_target(record.id, sample.target, "forecast")
            record = store.dataset(record.id)
        return record, created
    sample = samples.SAMPLES.get(key)
    if sample is None:
        raise DataError(f"Unknown sample {key!r}; available: "
                        f"{', '.join([*samples.SAMPLES, *images.IMAGE_SAMPLES, *series.SERIES_SAMPLES])}.")
    record, created = register_bytes(store, samples.sample_csv_bytes(key), f"{key}.csv")
    if record.target is None:
        column = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet", columns=[sample.default_target])
        task = tabular.infer_task(column[sample.default_target])
        store.set_dataset_target(record.id, sample.default_target, task)
        record = store.dataset(record.id)
    return record, created
