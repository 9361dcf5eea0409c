"""Register uploads and samples as datasets: written to the store at once, keyed by content.

The same bytes uploaded twice are the same dataset (one SHA-256, one id). The original file is
kept as it came, beside a Parquet copy of the parsed table that workers load quickly.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pandas as pd
import sqlalchemy as sa

from dlcore import config, images, series
from dlcore import tables as tabular
from dlcore.errors import DataError, TooLargeError
from dlcore.images.zipfiles import _not_zip
from dlcore.store import DatasetRecord, Store, atomic_write, new_id
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


def register_bytes(store: Store, content: bytes, name: str) -> tuple[DatasetRecord, bool]:
    """Store an upload and return its dataset record, and whether it is new.

    The file is parsed and profiled before anything is written, so a bad file changes nothing.
    """
    _check_size(len(content), name)
    sha = hashlib.sha256(content).hexdigest()
    existing = store.dataset_by_hash(sha)
    if existing is not None:
        return existing, False
    is_zip = images.looks_like_zip(content[:4])
    if is_zip and not _is_workbook(content, name):
        return _register_images(store, content, name, sha)
    if not is_zip and (Path(name).suffix.lower() == ".zip" or images.image_format(content[:32])):
        # A lone picture, or a file named .zip that is not one: say what to upload for images.
        raise _not_zip(Path(name).name, content[:32])
    dataset_id = new_id()
    folder = store.dataset_dir(dataset_id)
    suffix = Path(name).suffix.lower()[:10] or ".bin"
    # Parse from a file, not from memory: pandas reads a file on disk with several threads.
    # The file stays under a temporary name until the table has been read and profiled, so a
    # bad upload leaves nothing behind.
    with _leave_nothing(folder):
        with atomic_write(folder / f"source{suffix}") as tmp:
            tmp.write_bytes(content)
            frame, report = tabular.read_table(tmp, name=name)
            # The Parquet copy is written (by Arrow, outside the GIL) while the profile is made:
            # on a million rows that overlap saves about a third of the upload's time.
            with atomic_write(folder / "data.parquet") as parquet, ThreadPoolExecutor(1) as pool:
                writing = pool.submit(_to_parquet, frame, parquet)
                profile = tabular.profile_frame(frame)
                writing.result()
    # A column problem the profile states (with its column) is not repeated as a reading note.
    said = {w.split(" (for example")[0] for w in profile.warnings}
    report.notes = [n for n in report.notes if n.split(" (for example")[0] not in said]
    return _insert(store, folder, sha, dict(
        id=dataset_id, sha256=sha, name=Path(name).name or "upload", kind="tabular", format=report.format,
        n_rows=int(len(frame)), n_cols=int(frame.shape[1]), size_bytes=len(content),
        profile=profile.to_dict(), report=report.to_dict(),
    ))


def _is_workbook(content: bytes, name: str) -> bool:
    """Whether a ZIP is an Excel workbook (.xlsx is a ZIP too) rather than a ZIP of images: by its
    name, or by the entries every workbook has (ZIP entry names are plain text, so nothing is
    unpacked to tell)."""
    return Path(name).suffix.lower() in (".xlsx", ".xlsm") or (
        b"[Content_Types].xml" in content and b"xl/workbook.xml" in content
    )


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


def _register_images(store: Store, content: bytes, name: str, sha: str) -> tuple[DatasetRecord, bool]:
    """A ZIP of images: kept as it came, with a manifest (one row per usable image and its class)."""
    dataset_id = new_id()
    folder = store.dataset_dir(dataset_id)
    with _leave_nothing(folder):
        with atomic_write(folder / "source.zip") as tmp:
            tmp.write_bytes(content)
            manifest, report = images.read_image_zip(tmp, name)
            with atomic_write(folder / "data.parquet") as parquet:
                manifest.to_parquet(parquet, index=False)
    n_classes = len(report.classes)
    profile = {
        "n_rows": int(len(manifest)), "n_cols": 2, "warnings": [],
        "columns": [{"name": "image", "kind": "image"}, {"name": "label", "kind": "categorical", "n_unique": n_classes}],
    }
    return _insert(store, folder, sha, dict(
        id=dataset_id, sha256=sha, name=Path(name).name or "images.zip", kind="image", format="zip",
        n_rows=int(len(manifest)), n_cols=2, size_bytes=len(content), profile=profile,
        report=report.to_dict(), target="label", task="binary" if n_classes == 2 else "multiclass",
    ))


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


def _to_parquet(frame: pd.DataFrame, path: Path) -> None:
    try:
        frame.to_parquet(path, index=False)
    except (TypeError, ValueError, ArithmeticError):
        # A column of mixed Python objects: store it as text rather than refuse the file.
        fixed = frame.copy()
        for col in fixed.columns:
            if fixed[col].dtype == object:
                fixed[col] = fixed[col].astype("string")
        fixed.to_parquet(path, index=False)
