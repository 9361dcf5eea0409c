"""Image data: read a ZIP of labelled images, decode images to pixels, check every entry.

Analysts bring photos as a ZIP, in one of two layouts:

* **class folders**, as Keras' ``image_dataset_from_directory`` reads them (``cats/a.png``,
  ``dogs/b.jpg``), under any number of enclosing folders, optionally split into the ZIP's own
  ``train``/``test`` folders (merged here: the app makes its own split);
* **a labels file**: images plus a CSV (or Excel/Parquet) file with a column of file names and
  a column of labels.

``read_image_zip`` returns a manifest (one row per usable image) and an ``ImageReport`` that
says, in plain words, what was found and skipped; ``load_pixels`` later decodes the manifest's
images to a uint8 array. Nothing is unpacked to disk: entries are read one by one, bounded
by their declared size, after the whole archive has been checked (entry count, unpacked size,
compression ratio, paths that escape their folder, symbolic links). Formats are told by
content, never by file name. Every problem the analyst can fix is a ``DataError``
(``TooLargeError`` for limits); no zipfile or Pillow exception escapes.

Example::

    manifest, report = read_image_zip(Path("upload.zip"), "photos.zip")
    x = load_pixels(Path("upload.zip"), list(manifest["image"]), 64, report.channels)
    y = manifest["label"].to_numpy()
"""

from __future__ import annotations

import io
import os
import re
import stat
import struct
import unicodedata
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from dlcore import config
from dlcore.data.tabular import _human_size, read_table
from dlcore.errors import DataError, DlcoreError, TooLargeError

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "MIN_IMAGES_PER_CLASS",
    "SKIP_REASONS",
    "ImageReport",
    "baseline_features",
    "decode_image",
    "image_format",
    "images_from_upload",
    "load_pixels",
    "looks_like_zip",
    "read_image_zip",
    "read_zip_entries",
    "read_zip_entry",
    "sample_digits_zip",
    "thumbnail_png",
]

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
LAYOUTS = ("folders", "labels_csv")
MIN_IMAGES_PER_CLASS = 5

# Reason keys of ImageReport.skipped, with the words a page can show for each.
SKIP_REASONS = {
    "system": "system files (__MACOSX, .DS_Store, Thumbs.db, hidden files)",
    "not_image": "files that are not images",
    "nested_zip": "ZIP files inside the ZIP",
    "encrypted": "password-protected files",
    "corrupt": "damaged or cut-short images",
    "too_large": "images over the pixel limit",
    "no_label": "images without a label",
}
# The same, for a count of one.
_SKIP_REASON_ONE = {
    "system": "system file (__MACOSX, .DS_Store, Thumbs.db, hidden files)",
    "not_image": "file that is not an image",
    "nested_zip": "ZIP file inside the ZIP",
    "encrypted": "password-protected file",
    "corrupt": "damaged or cut-short image",
    "too_large": "image over the pixel limit",
    "no_label": "image without a label",
}

_HEAD = 32  # bytes enough to tell every supported format and a ZIP apart
_MAX_SKIPPED_NAMES = 20
_NOTE_NAMES = 5
_BOMB_RATIO = 100
_BOMB_MIN_BYTES = 50 * 1024 * 1024
_LABELS_FILE_MAX_BYTES = 20 * 1024 * 1024
_LABELS_FILE_TRIES = 10
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")
_LABEL_COLUMNS = ("label", "class", "category", "target", "y")
_SPLIT_FOLDERS = {"train", "test", "val", "valid", "validation", "training", "testing"}
_SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini"}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_SEPARATORS = re.compile(r"[/\\]")  # ZIPs made on Windows may use backslashes
_DRIVE = re.compile(r"[A-Za-z]:")
# Images are decoded in threads (Pillow releases the GIL), a batch of entries at a time.
_BATCH = 256
_BATCH_BYTES = 64 * 1024 * 1024
_WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)

# Every image is checked against config.max_image_pixels() right after Pillow reads its
# header, with a message for the analyst; Pillow's own warning would only add noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_LAYOUT_HELP = (
    "Either put the images of each class in a folder named after the class (cats/a.jpg, "
    "dogs/b.jpg) and zip those folders together, or put the images next to a CSV file with a "
    "column of file names and a column named 'label'."
)


# --------------------------------------------------------------------------------------
# Sniffing
# --------------------------------------------------------------------------------------


def looks_like_zip(head: bytes) -> bool:
    """True if ``head`` (the first bytes of a file) starts a ZIP archive, empty or not."""
    return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def image_format(head: bytes) -> str | None:
    """The image format of a file from its first bytes (at least 32), or ``None``.

    Returns one of ``FORMATS``. The name of the file plays no part: a PNG named ``photo.dat``
    is a PNG, and a text file named ``a.png`` is not an image.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    # "BM" alone starts many text files; the size of the header that follows pins it down.
    if head[:2] == b"BM" and len(head) >= 18:
        if struct.unpack_from("<I", head, 14)[0] in _BMP_HEADER_SIZES:
            return "BMP"
    return None


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


@dataclass
class ImageReport:
    """What ``read_image_zip`` found, so the analyst can check the images were read right.

    ``classes`` maps each label to its number of usable images, in natural order ("2" before
    "10"). ``channels`` is 1 when every image is grey, else 3. ``skipped`` keeps up to 20
    entry names per reason (keys of ``SKIP_REASONS``); ``skipped_counts`` counts them all.
    """

    layout: str
    n_images: int
    classes: dict[str, int]
    channels: int
    width_median: int
    height_median: int
    width_min: int
    width_max: int
    height_min: int
    height_max: int
    formats: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    skipped_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict, to store next to the dataset."""
        return {
            "layout": self.layout,
            "n_images": self.n_images,
            "classes": dict(self.classes),
            "channels": self.channels,
            "width_median": self.width_median,
            "height_median": self.height_median,
            "width_min": self.width_min,
            "width_max": self.width_max,
            "height_min": self.height_min,
            "height_max": self.height_max,
            "formats": dict(self.formats),
            "skipped": {k: list(v) for k, v in self.skipped.items()},
            "skipped_counts": dict(self.skipped_counts),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageReport:
        """Rebuild a report written by ``to_dict``."""
        return cls(
            layout=data["layout"],
            n_images=int(data["n_images"]),
            classes={str(k): int(v) for k, v in data["classes"].items()},
            channels=int(data["channels"]),
            width_median=int(data["width_median"]),
            height_median=int(data["height_median"]),
            width_min=int(data["width_min"]),
            width_max=int(data["width_max"]),
            height_min=int(data["height_min"]),
            height_max=int(data["height_max"]),
            formats={str(k): int(v) for k, v in data.get("formats", {}).items()},
            skipped={k: list(v) for k, v in data.get("skipped", {}).items()},
            skipped_counts={k: int(v) for k, v in data.get("skipped_counts", {}).items()},
            notes=list(data.get("notes", [])),
        )


class _Skips:
    """Entries left out, by reason: every one counted, the first few named."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.counts: Counter[str] = Counter()

    def add(self, reason: str, entry: str) -> None:
        self.counts[reason] += 1
        names = self.names.setdefault(reason, [])
        if len(names) < _MAX_SKIPPED_NAMES:
            names.append(entry)

    def found(self, exclude: tuple[str, ...] = ()) -> str:
        """What was skipped, in words, for a message about a ZIP with nothing usable."""
        parts = [
            f"{self.counts[r]:,} "
            f"{(_SKIP_REASON_ONE if self.counts[r] == 1 else SKIP_REASONS)[r]} "
            f"({_few(self.names[r], 3, self.counts[r])})"
            for r in SKIP_REASONS
            if self.counts[r] and r not in exclude
        ]
        return "; ".join(parts) if parts else "no files at all"

    def hint(self) -> str:
        """" Also skipped: ..." for a refusal, when files that might have helped were left out."""
        if not any(self.counts[r] for r in SKIP_REASONS if r != "system"):
            return ""
        return f" Also skipped: {self.found(exclude=('system',))}."


# --------------------------------------------------------------------------------------
# Reading a ZIP of labelled images
# --------------------------------------------------------------------------------------


def read_image_zip(path: Path, name: str) -> tuple[pd.DataFrame, ImageReport]:
    """Read a ZIP of labelled images into a manifest and an ``ImageReport``.

    The manifest has one row per usable image, sorted by entry path, with the columns
    ``image`` (the entry's path inside the ZIP), ``label``, ``width`` and ``height`` (as
    displayed, after the EXIF orientation). Every image is decoded once to check it can be
    read. ``name`` is the file name the analyst uploaded, used in messages. Raises
    ``TooLargeError`` over the limits in ``dlcore.config`` and ``DataError`` for a ZIP that
    cannot be used (see the module docstring).
    """
    skips = _Skips()
    with _open_zip(Path(path), name) as (zf, infos):
        images: list[tuple[zipfile.ZipInfo, str]] = []
        others: list[zipfile.ZipInfo] = []
        for info in infos:
            kind = _sniff_entry(zf, info, name, skips)
            if kind in FORMATS:
                images.append((info, kind))
            elif kind == "other":
                others.append(info)
        if not images:
            raise DataError(
                f"The ZIP '{name}' holds no images. Found: {_found(skips, others)}. "
                f"Upload a ZIP of PNG, JPEG, GIF, BMP or WEBP images. {_LAYOUT_HELP}"
            )
        source = _find_labels(zf, name, [i for i, _ in images], others, skips)
        for info in others:
            if source.table_entry != info.filename:
                skips.add("not_image", info.filename)

        labelled = []
        for info, fmt in images:
            if info.filename in source.labels:
                labelled.append((info, fmt))
            else:
                skips.add("no_label", info.filename)
        _check_classes_found(source, name, skips)

        rows: list[tuple[str, str, int, int]] = []
        formats: Counter[str] = Counter()
        grey = True
        infos_only = [info for info, _ in labelled]
        for (info, fmt), result in zip(labelled, _map_entries(zf, infos_only, name, _inspect)):
            if isinstance(result, str):
                skips.add(result, info.filename)
                continue
            width, height, is_grey = result
            rows.append((info.filename, source.labels[info.filename], width, height))
            formats[fmt] += 1
            grey = grey and is_grey

    if not rows:
        raise DataError(
            f"None of the images in '{name}' could be used. Found: {skips.found()}. "
            "Check that the images open in an image viewer, and upload the ZIP again."
        )
    manifest = pd.DataFrame(rows, columns=["image", "label", "width", "height"])
    manifest["width"] = manifest["width"].astype("int64")
    manifest["height"] = manifest["height"].astype("int64")
    counts = Counter(manifest["label"])
    classes = {k: counts[k] for k in sorted(counts, key=_natural_key)}
    _check_class_sizes(classes, source, name, skips)

    notes = [_summary_note(len(rows), classes, source)] + source.notes
    notes += _skip_notes(skips, source)
    widths, heights = manifest["width"].to_numpy(), manifest["height"].to_numpy()
    report = ImageReport(
        layout=source.layout,
        n_images=len(rows),
        classes=classes,
        channels=1 if grey else 3,
        width_median=int(round(float(np.median(widths)))),
        height_median=int(round(float(np.median(heights)))),
        width_min=int(widths.min()),
        width_max=int(widths.max()),
        height_min=int(heights.min()),
        height_max=int(heights.max()),
        formats={f: formats[f] for f in FORMATS if formats[f]},
        skipped={r: list(skips.names[r]) for r in SKIP_REASONS if skips.counts[r]},
        skipped_counts={r: skips.counts[r] for r in SKIP_REASONS if skips.counts[r]},
        notes=notes,
    )
    return manifest, report


def _found(skips: _Skips, others: list[zipfile.ZipInfo]) -> str:
    """What a ZIP without images holds, counting its other files as not images."""
    for info in others:
        skips.add("not_image", info.filename)
    return skips.found()


def _sniff_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, skips: _Skips) -> str:
    """One of FORMATS, "other", or "" for an entry already counted as skipped."""
    if _is_system(info.filename):
        skips.add("system", info.filename)
        return ""
    if info.flag_bits & 0x1:
        skips.add("encrypted", info.filename)
        return ""
    head = _read(zf, info, name, _HEAD)
    if looks_like_zip(head):
        skips.add("nested_zip", info.filename)
        return ""
    return image_format(head) or "other"


def _inspect(data: bytes, entry: str) -> tuple[int, int, bool] | str:
    """(width, height, grey) of one image, or the reason key it has to be skipped."""
    try:
        img = _open_image(data, f"'{entry}'")
        width, height = img.size
        # JPEG at 1/8 scale: the whole stream is still decoded (a cut-short file still
        # fails), at a fraction of the cost; grey-ness does not depend on the scale.
        img, turned = _load(img, f"'{entry}'", None, (max(1, width // 8), max(1, height // 8)))
    except TooLargeError:
        return "too_large"
    except DataError:
        return "corrupt"
    return (height, width, _is_grey(img)) if turned else (width, height, _is_grey(img))


# ---- labels ---------------------------------------------------------------------------


@dataclass
class _LabelSource:
    """Where the labels came from and what they are, by entry name."""

    layout: str
    labels: dict[str, str]
    notes: list[str] = field(default_factory=list)
    table_entry: str | None = None
    file_column: str | None = None
    label_column: str | None = None
    root: str = ""
    columns: list[Any] = field(default_factory=list)


def _find_labels(
    zf: zipfile.ZipFile,
    name: str,
    images: list[zipfile.ZipInfo],
    others: list[zipfile.ZipInfo],
    skips: _Skips,
) -> _LabelSource:
    """Labels from a labels file when the ZIP has one that names its images, else folders."""
    entries = [i.filename for i in images]
    table = _labels_from_table(zf, name, entries, others)
    if table is not None and table.label_column is not None:
        return table
    source = _labels_from_folders(entries)
    if not source.labels:
        if table is not None:
            raise DataError(
                f"The file '{table.table_entry}' in '{name}' lists the images in its column "
                f"'{table.file_column}', but has no column of labels (its columns: "
                f"{_few([str(c) for c in table.columns], 8)}). Name the column that holds the "
                f"labels 'label' and upload the ZIP again."
            )
        if source.root:
            raise _one_class_error(name, f"the folder '{source.root}'", len(entries), skips.hint())
        raise DataError(
            f"The {len(entries):,} images in '{name}' sit at the top of the ZIP with no labels "
            f"file, so their classes are unknown. {_LAYOUT_HELP}"
        )
    return source


def _labels_from_folders(entries: list[str]) -> _LabelSource:
    """The class of each image is the first folder under the folders all images share.

    Images at the very top of the ZIP have no class; they do not count in the shared
    folders, so one stray image beside ``export/`` leaves ``export/cats`` class "cats".
    """
    parts = {e: _parts(e) for e in entries}
    root = _common_prefix([p[:-1] for p in parts.values() if len(p) > 1])
    rest = {e: p[len(root) :] for e, p in parts.items()}
    notes = []
    if root:
        notes.append(f"The enclosing folder '{'/'.join(root)}' was ignored.")
    tops = {r[0].casefold() for r in rest.values() if len(r) > 1}
    if tops and tops <= _SPLIT_FOLDERS:
        rest = {e: r[1:] if len(r) > 1 else r for e, r in rest.items()}
        notes.append("The ZIP's own train/test folders were merged; the app makes its own split.")
    # macOS writes accents decomposed ("e" plus an accent): one spelling for each class.
    labels = {e: unicodedata.normalize("NFC", r[0]) for e, r in rest.items() if len(r) > 1}
    return _LabelSource("folders", labels, notes, root="/".join(root))


def _labels_from_table(
    zf: zipfile.ZipFile, name: str, entries: list[str], others: list[zipfile.ZipInfo]
) -> _LabelSource | None:
    """The best labels file among the non-image entries: the one naming the most images."""
    candidates = [i for i in others if 0 < i.file_size <= _LABELS_FILE_MAX_BYTES]
    candidates.sort(key=lambda i: (not i.filename.lower().endswith(_TABLE_SUFFIXES), i.file_size))
    index = _EntryIndex(entries)
    best: tuple[int, _LabelSource] | None = None
    for info in candidates[:_LABELS_FILE_TRIES]:
        data = _read(zf, info, name)
        try:
            frame, _ = read_table(data, name=PurePosixPath(info.filename).name)
        except DlcoreError:
            continue
        found = _match_table(frame, index, info.filename)
        if found is not None and (best is None or found[0] > best[0]):
            best = found
    return None if best is None else best[1]


def _match_table(
    frame: pd.DataFrame, index: _EntryIndex, table_entry: str
) -> tuple[int, _LabelSource] | None:
    """(number of images named, labels) for a table with a column of image file names."""
    folder = "/".join(_parts(table_entry)[:-1]).casefold()
    file_column, hits = None, 0
    for col in frame.columns:
        values = frame[col]
        if not pd.api.types.is_string_dtype(values.dtype):
            continue
        n = sum(index.find(v, folder) is not None for v in values.dropna())
        if n > hits:
            file_column, hits = col, n
    if file_column is None:
        return None
    source = _LabelSource(
        "labels_csv", {}, table_entry=table_entry, file_column=str(file_column),
        columns=list(frame.columns),
    )
    by_name = {str(c).strip().casefold(): c for c in frame.columns if c != file_column}
    label_column = next((by_name[k] for k in _LABEL_COLUMNS if k in by_name), None)
    if label_column is None and frame.shape[1] == 2:
        label_column = next(c for c in frame.columns if c != file_column)
    if label_column is None:
        return hits, source
    source.label_column = str(label_column)

    rows: list[tuple[Any, Any]] = list(zip(frame[file_column], frame[label_column]))
    if index.find(file_column, folder) is not None:
        rows.insert(0, (file_column, label_column))  # no header: the first row is data
    missing: list[str] = []
    ambiguous: list[str] = []
    for value, label in rows:
        if _is_blank(value):
            continue
        entry = index.find(value, folder)
        if entry is None:
            same = index.same_name(value)
            (ambiguous if len(same) > 1 else missing).append(str(value).strip())
            continue
        text = _label_text(label)
        if text is not None and entry not in source.labels:
            source.labels[entry] = text
    if missing:
        source.notes.append(
            f"{_count(len(missing), 'row')} of '{table_entry}' "
            f"{'name files that are' if len(missing) > 1 else 'names a file that is'} not in "
            f"the ZIP ({_few(missing)}); {'they were' if len(missing) > 1 else 'it was'} "
            "ignored."
        )
    if ambiguous:
        n = len(ambiguous)
        example = index.same_name(ambiguous[0])
        more = f" and {n - 1:,} more" if n > 1 else ""
        source.notes.append(
            f"{_count(n, 'row')} of '{table_entry}' {'name files' if n > 1 else 'names a file'} "
            f"that {'are' if n > 1 else 'is'} in several folders of the ZIP ('{ambiguous[0]}': "
            f"{_few(example, 3)}{more}), so which image {'each' if n > 1 else 'it'} means is "
            f"unknown; {'they were' if n > 1 else 'it was'} ignored. Write the folder too (for "
            f"example '{example[0]}')."
        )
    return hits, source


class _EntryIndex:
    """Finds an image entry from a file name written in a labels file.

    By full path (case-insensitive), by path from the labels file's folder, or by base name
    when only one image has that name.
    """

    def __init__(self, entries: list[str]) -> None:
        self.full: dict[str, str] = {}
        self.base: dict[str, str | None] = {}
        self.bases: dict[str, list[str]] = {}
        for entry in entries:
            key = _key(entry)
            self.full[key] = entry
            base = key.rsplit("/", 1)[-1]
            self.base[base] = None if base in self.base else entry
            self.bases.setdefault(base, []).append(entry)

    def same_name(self, value: Any) -> list[str]:
        """Every image whose file name (without folders) is the one ``value`` ends with."""
        return [] if _is_blank(value) else self.bases.get(_key(str(value)).rsplit("/", 1)[-1], [])

    def find(self, value: Any, folder: str) -> str | None:
        if _is_blank(value):
            return None
        key = _key(str(value))
        if not key:
            return None
        found = self.full.get(key)
        if found is None and folder:
            found = self.full.get(f"{folder}/{key}")
        return found if found is not None else self.base.get(key.rsplit("/", 1)[-1])


def _key(path: str) -> str:
    """A path as a labels file may write it: any separator, any case, accents composed or not
    (macOS writes "é" as "e" plus an accent)."""
    return unicodedata.normalize("NFC", "/".join(_parts(path.strip()))).casefold()


def _check_classes_found(source: _LabelSource, name: str, skips: _Skips) -> None:
    """Fail before decoding anything when the layout gives fewer than two classes."""
    found = set(source.labels.values())
    if len(found) == 1:
        (only,) = found
        where = (
            f"the class '{only}'"
            if source.layout == "labels_csv"
            else f"the folder '{'/'.join(filter(None, [source.root, only]))}'"
        )
        raise _one_class_error(name, where, len(source.labels), skips.hint())
    if not found:
        raise DataError(
            f"Every label in '{source.table_entry}' is blank for the images of '{name}'. Fill "
            f"in the column '{source.label_column}' and upload the ZIP again.{skips.hint()}"
        )


def _one_class_error(name: str, where: str, n: int, hint: str = "") -> DataError:
    # The hint names files left out (password-protected, damaged...): often the other class.
    return DataError(
        f"All {n:,} labelled images in '{name}' are in {where}, so there is only one class; "
        f"a classifier needs at least two.{hint} {_LAYOUT_HELP}"
    )


def _check_class_sizes(
    classes: dict[str, int], source: _LabelSource, name: str, skips: _Skips
) -> None:
    if len(classes) < 2:
        (only,) = classes
        raise DataError(
            f"Only the class '{only}' has usable images in '{name}' ({classes[only]:,}); a "
            f"classifier needs at least two classes.{skips.hint()} Add images of another "
            f"class. {_LAYOUT_HELP}"
        )
    small = [(k, n) for k, n in classes.items() if n < MIN_IMAGES_PER_CLASS]
    if small:
        listed = ", ".join(f"'{k}' ({n})" for k, n in small[:8])
        listed += f" and {len(small) - 8} more" if len(small) > 8 else ""
        fix = (
            "add images to it or remove its rows from the labels file"
            if source.layout == "labels_csv"
            else "add images to it or remove the folder"
        )
        raise DataError(
            f"{'The class' if len(small) == 1 else 'The classes'} {listed} in '{name}' "
            f"{'has' if len(small) == 1 else 'have'} too few usable images; each class needs "
            f"at least {MIN_IMAGES_PER_CLASS} so that some can be held out to test the model. "
            f"For each, {fix}.{skips.hint()}"
        )


# ---- notes ----------------------------------------------------------------------------


def _summary_note(n: int, classes: dict[str, int], source: _LabelSource) -> str:
    where = (
        f"with labels from '{source.table_entry}' (file names in column "
        f"'{source.file_column}', labels in column '{source.label_column}')"
        if source.layout == "labels_csv"
        else "one folder per class"
    )
    return f"Read {_count(n, 'image')} in {len(classes)} classes, {where}."


def _skip_notes(skips: _Skips, source: _LabelSource) -> list[str]:
    """One plain sentence per reason entries were skipped (system files go unmentioned)."""
    notes = []
    for reason in SKIP_REASONS:
        n = skips.counts[reason]
        if not n or reason == "system":
            continue
        listed = _few(skips.names[reason], total=n)
        it, are, were = ("it", "is", "was") if n == 1 else ("them", "are", "were")
        if reason == "not_image":
            text = (f"1 file that is not an image was skipped ({listed})." if n == 1
                    else f"{n:,} files that are not images were skipped ({listed}).")
        elif reason == "nested_zip":
            text = (
                f"{listed} is a ZIP inside the ZIP; it was skipped."
                if n == 1
                else f"{n:,} files are ZIPs inside the ZIP ({listed}); they were skipped."
            ) + f" Unpack {it} and zip the folders together."
        elif reason == "encrypted":
            text = (
                f"{_count(n, 'file')} {are} password-protected and {were} skipped ({listed}). "
                "Zip the folders again without a password."
            )
        elif reason == "corrupt":
            text = (
                f"{_count(n, 'image')} could not be read (damaged or cut short) and {were} "
                f"skipped: {listed}. Open {it} in an image viewer and save again if needed."
            )
        elif reason == "too_large":
            text = (
                f"{_count(n, 'image')} {are} larger than the limit of "
                f"{config.max_image_pixels():,} pixels and {were} skipped: {listed}. Make {it} "
                "smaller (for example 2,000 pixels wide), or ask your administrator to raise "
                "DLCORE_MAX_IMAGE_PIXELS."
            )
        elif source.layout == "labels_csv":
            text = (
                f"{_count(n, 'image')} {are} not listed in '{source.table_entry}' or "
                f"{'have' if n > 1 else 'has'} a blank label, and {were} skipped ({listed})."
            )
        else:
            text = (
                f"{_count(n, 'image')} {are} not inside a class folder and {were} skipped "
                f"({listed})."
            )
        notes.append(text)
    return notes


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'s' if n != 1 else ''}"


def _few(names: list[str], limit: int = _NOTE_NAMES, total: int | None = None) -> str:
    """The first names, quoted, and how many more there are of ``total`` (default: all)."""
    total = len(names) if total is None else total
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {total - min(limit, len(names)):,} more" if total > limit else "")


def _natural_key(text: str) -> tuple[tuple[Any, ...], str]:
    """Sort key putting "2" before "10": digit runs compare as numbers."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), text


def _is_blank(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _label_text(value: Any) -> str | None:
    """A label as text: 3.0 read from a column with gaps is "3"; blank is None."""
    if _is_blank(value):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


# --------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------


def load_pixels(
    zip_path: Path,
    entries: list[str],
    size: int,
    channels: int,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Decode the named ZIP entries to a uint8 array of shape (n, size, size, channels).

    Each image goes through ``decode_image``; images are decoded in a few threads (Pillow
    releases the GIL), in order. ``progress(done, total)`` is called about a hundred times
    along the way and once at the end. Raises ``DataError`` for an entry that is not in the
    ZIP or not a readable image.
    """
    _check_shape(size, channels)
    zip_path = Path(zip_path)
    out = np.empty((len(entries), size, size, channels), dtype=np.uint8)
    total = len(entries)
    step = max(1, total // 100)
    with _open_zip(zip_path, zip_path.name) as (zf, infos):
        chosen = _entries_named(infos, entries, zip_path.name)

        def decode(data: bytes, entry: str) -> np.ndarray:
            return decode_image(data, size, channels, name=entry)

        for i, pixels in enumerate(_map_entries(zf, chosen, zip_path.name, decode)):
            out[i] = pixels
            if progress is not None and ((i + 1) % step == 0 or i + 1 == total):
                progress(i + 1, total)
    return out


def decode_image(data: bytes, size: int, channels: int, *, name: str | None = None) -> np.ndarray:
    """Decode one image file to a uint8 array of shape (size, size, channels).

    The same steps at training and at scoring time: the first frame of a GIF, the EXIF
    orientation applied, transparency over white, grey ("L") or colour ("RGB"), squashed
    to size x size with bilinear resampling (no crop). ``name`` is used in messages. Raises
    ``TooLargeError`` for an image over ``config.max_image_pixels()`` (checked before any
    pixel is decoded) and ``DataError`` for a file that is not a readable image.
    """
    _check_shape(size, channels)
    what = f"'{name}'" if name else "The file"
    mode = "L" if channels == 1 else "RGB"
    img, _ = _load(_open_image(data, what), what, mode, (size, size))
    if img.mode != mode:
        img = img.convert(mode)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.array(img, dtype=np.uint8).reshape(size, size, channels)


def baseline_features(pixels: np.ndarray, side: int = 16) -> np.ndarray:
    """Flattened small pixels, float32 in 0..1, for scikit-learn baselines.

    Each (size, size, c) image is resized to (side, side, c) with bilinear resampling (kept
    as is when it is no larger than that), then flattened: shape (n, side * side * c). The
    result depends only on the pixels, so it is the same at training and scoring time.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.dtype != np.uint8:
        raise ValueError(
            f"baseline_features expects uint8 pixels of shape (n, size, size, channels), got "
            f"{pixels.dtype} {pixels.shape}"
        )
    n, height, width, channels = pixels.shape
    if height <= side and width <= side:
        small = pixels
    else:
        small = np.empty((n, side, side, channels), dtype=np.uint8)
        for i in range(n):
            img = Image.fromarray(pixels[i, :, :, 0] if channels == 1 else pixels[i])
            img = img.resize((side, side), Image.Resampling.BILINEAR)
            small[i] = np.asarray(img).reshape(side, side, channels)
    return small.reshape(n, -1).astype(np.float32) / np.float32(255)


def thumbnail_png(data: bytes, max_side: int = 96) -> bytes:
    """PNG bytes of a preview of an image, at most ``max_side`` pixels on its longer side.

    Shown upright (EXIF orientation) with transparency over white. Raises ``DataError`` for
    a file that is not a readable image.
    """
    img = _open_image(data, "The file")
    img, _ = _load(img, "The file", None, (max_side, max_side))
    img.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _entries_named(
    infos: list[zipfile.ZipInfo], entries: list[str], name: str
) -> list[zipfile.ZipInfo]:
    by_name = {i.orig_filename: i for i in infos}  # manifests stored before _fix_names
    by_name.update((i.filename, i) for i in infos)
    missing = [e for e in entries if e not in by_name]
    if missing:
        raise DataError(
            f"The ZIP '{name}' has no entry {_few(missing)}. Read the ZIP again with "
            "read_image_zip and use the entries of its manifest."
        )
    return [by_name[e] for e in entries]


def _check_shape(size: int, channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    if int(size) < 1:
        raise ValueError(f"size must be at least 1, got {size!r}")


def _open_image(data: bytes, what: str) -> Image.Image:
    """Open an image lazily (header only) and check its pixel count before any decoding."""
    fmt = image_format(data[:_HEAD])
    if fmt is None:
        raise _unreadable(what, "it is not a PNG, JPEG, GIF, BMP or WEBP file")
    limit = config.max_image_pixels()
    # Pillow's own guard, for every caller in this process: it warns over the limit and
    # refuses to open an image over twice the limit, so a bomb is never decoded.
    Image.MAX_IMAGE_PIXELS = limit
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(what, None, limit) from exc
    except Exception as exc:  # broad on purpose: no Pillow exception escapes this module
        raise _unreadable(what, "its header is damaged") from exc
    width, height = img.size
    if width * height > limit:
        raise _too_many_pixels(what, (width, height), limit)
    return img


def _load(
    img: Image.Image, what: str, mode: str | None, draft: tuple[int, int] | None
) -> tuple[Image.Image, bool]:
    """Decode the first frame, upright, transparency over white, as "L" or "RGB".

    Also says whether turning it upright swapped its width and height. ``draft`` lets a
    JPEG decode at 1/2, 1/4 or 1/8 scale, still at least that size.
    """
    try:
        if draft is not None:
            img.draft(mode, draft)
        img.load()
        turned = _apply_orientation(img)
        return _flatten(img), turned
    except Exception as exc:  # broad on purpose: a cut-short file fails in many ways
        raise _unreadable(what, "it is damaged or cut short") from exc


def _apply_orientation(img: Image.Image) -> bool:
    """Turn a loaded image upright as its EXIF says; True if width and height swapped."""
    try:
        orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # damaged EXIF: the image is still good, shown as stored
        return False
    if orientation not in range(2, 9):
        return False
    ImageOps.exif_transpose(img, in_place=True)
    return orientation >= 5


def _flatten(img: Image.Image) -> Image.Image:
    """The image as "L" (grey kinds) or "RGB" (all others), transparency over white."""
    mode = img.mode
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("La", "RGBa"):
        img = img.convert("LA" if mode == "La" else "RGBA")
    mode = img.mode
    if mode in ("LA", "RGBA"):
        background = Image.new(mode[0] if mode == "LA" else "RGB", img.size, "white")
        background.paste(img.convert(background.mode), mask=img.getchannel("A"))
        return background
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I"):
        # 16-bit grey (PNG): Pillow's own conversion clips at 255 and would turn it white.
        values = np.clip(np.asarray(img, dtype=np.float64), 0, 65535) / 257
        return Image.fromarray(np.round(values).astype(np.uint8))
    if mode == "F":
        return Image.fromarray(np.round(np.clip(np.asarray(img), 0, 255)).astype(np.uint8))
    return img.convert("RGB")  # CMYK and YCbCr JPEGs, RGBX, ...


def _is_grey(img: Image.Image) -> bool:
    if img.mode == "L":
        return True
    rgb = np.asarray(img)
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _unreadable(what: str, why: str) -> DataError:
    return DataError(
        f"{what} is not a readable image: {why}. Open it in an image viewer, save it again as "
        "PNG or JPEG, and upload it again."
    )


def _too_many_pixels(what: str, size: tuple[int, int] | None, limit: int) -> TooLargeError:
    shown = f"is {size[0]:,} x {size[1]:,} pixels" if size else f"has over {2 * limit:,} pixels"
    return TooLargeError(
        f"{what} {shown}, over the limit of {limit:,} pixels per image (very large images "
        "can be decompression bombs). Make it smaller, for example 2,000 pixels wide, or ask "
        "your administrator to raise DLCORE_MAX_IMAGE_PIXELS."
    )


# --------------------------------------------------------------------------------------
# Single entries and scoring uploads
# --------------------------------------------------------------------------------------


def read_zip_entry(zip_path: Path, entry: str) -> bytes:
    """The bytes of one entry of a ZIP (for a thumbnail), after the same checks as reading.

    Raises ``DataError`` when the entry is not in the ZIP.
    """
    return read_zip_entries(zip_path, [entry])[0]


def read_zip_entries(zip_path: Path, entries: list[str]) -> list[bytes]:
    """The bytes of several entries, checking the ZIP once: for a page of thumbnails.

    Opening a ZIP reads its whole directory (about a second for 100,000 entries), so ask
    for all the entries a page shows in one call. Raises ``DataError`` for a missing entry.
    """
    zip_path = Path(zip_path)
    with _open_zip(zip_path, zip_path.name) as (zf, infos):
        chosen = _entries_named(infos, entries, zip_path.name)
        return [_read(zf, info, zip_path.name) for info in chosen]


def images_from_upload(content: bytes, name: str) -> list[tuple[str, bytes]]:
    """The images of an upload to score: [(name, bytes)], for one image or a ZIP of them.

    A single image (told by content) gives itself. A ZIP gives every image entry in it,
    whatever its folder, named by its path in the ZIP and in path order; it gets the same
    checks as ``read_image_zip``, and nested ZIPs, system files and other files are left
    out. Raises ``DataError`` when the upload holds no image, saying what it does hold.
    """
    content = bytes(content)
    if image_format(content[:_HEAD]) is not None:
        return [(name, content)]
    if not looks_like_zip(content[:4]):
        raise DataError(
            f"'{name}' is neither an image (PNG, JPEG, GIF, BMP or WEBP) nor a ZIP of images. "
            "Upload one image, or a ZIP of the images to score."
        )
    out: list[tuple[str, bytes]] = []
    skips = _Skips()
    with _open_zip(content, name) as (zf, infos):
        for info in infos:
            kind = _sniff_entry(zf, info, name, skips)
            if kind in FORMATS:
                out.append((info.filename, _read(zf, info, name)))
            elif kind == "other":
                skips.add("not_image", info.filename)
    if not out:
        raise DataError(
            f"The ZIP '{name}' holds no images. Found: {skips.found()}. Upload a ZIP of PNG, "
            "JPEG, GIF, BMP or WEBP images."
        )
    return out


# --------------------------------------------------------------------------------------
# The sample
# --------------------------------------------------------------------------------------


def sample_digits_zip() -> bytes:
    """scikit-learn's 1,797 handwritten digits as a ZIP of class folders of 8x8 grey PNGs.

    Entries are ``digits/<digit>/<row>.png`` (row numbered from 0001 in the data set's
    order), values 0..16 scaled to 0..255. The bytes are the same on every call (fixed
    dates, no PNG timestamps), so the upload's content hash is stable.
    """
    from sklearn.datasets import load_digits  # ships with scikit-learn; no download

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    order = sorted(range(len(pixels)), key=lambda i: (int(digits.target[i]), i))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for i in order:
            png = io.BytesIO()
            Image.fromarray(pixels[i]).save(png, "PNG")
            info = zipfile.ZipInfo(
                f"digits/{int(digits.target[i])}/{i + 1:04d}.png", date_time=(1980, 1, 1, 0, 0, 0)
            )
            info.create_system = 3  # the default depends on the platform writing it
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, png.getvalue())
    return out.getvalue()


# --------------------------------------------------------------------------------------
# ZIP safety
# --------------------------------------------------------------------------------------


@contextmanager
def _open_zip(
    source: Path | bytes, name: str
) -> Iterator[tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]]:
    """Open a ZIP after checking it as a whole; yield it with its file entries by path.

    Refuses a file that is not a ZIP, a damaged ZIP, too many entries, too many unpacked
    bytes, a bomb-like entry, an entry whose path escapes its folder, and symbolic links.
    """
    with ExitStack() as stack:
        if isinstance(source, (bytes, bytearray)):
            fh: Any = io.BytesIO(source)
        else:
            try:
                fh = stack.enter_context(Path(source).open("rb"))
            except OSError as exc:
                raise DataError(
                    f"The ZIP '{name}' could not be opened ({exc.strerror or 'unreadable'}). "
                    "Upload it again."
                ) from exc
        head = fh.read(_HEAD)
        if not looks_like_zip(head):
            raise _not_zip(name, head)
        declared = _declared_entries(fh)
        if declared is not None:
            # Checked before zipfile lists every entry, which takes memory per entry.
            _check_count(declared, name)
        fh.seek(0)
        try:
            zf = stack.enter_context(zipfile.ZipFile(fh))
        except Exception as exc:  # broad on purpose: zipfile fails in many ways on bad input
            raise _corrupt(name, None) from exc
        infos = zf.infolist()
        _fix_names(infos)
        _check_entries(infos, name)
        files = sorted((i for i in infos if not i.is_dir()), key=lambda i: i.filename)
        yield zf, files


def _fix_names(infos: list[zipfile.ZipInfo]) -> None:
    """Read as UTF-8 the names written in UTF-8 without the ZIP's UTF-8 flag.

    macOS' Archive Utility and many Linux and Java tools do that; zipfile then reads them as
    cp437 and "Café" becomes "Cafe╠ü". A name that is not valid UTF-8 (an old Windows tool's
    code page) is kept as read. Entries are still opened by their stored name.
    """
    for info in infos:
        if info.flag_bits & 0x800 or info.filename.isascii():
            continue
        try:
            info.filename = info.filename.encode("cp437").decode("utf-8")
        except UnicodeError:
            continue


def _declared_entries(fh: Any) -> int | None:
    """The entry count the end-of-archive record declares, or None if it cannot be found."""
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    tail_size = min(size, 22 + 65535)
    fh.seek(size - tail_size)
    tail = fh.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (count,) = struct.unpack_from("<H", tail, at + 10)
    if count != 0xFFFF:
        return count
    locator = at - 20  # ZIP64: the real count is in a record the locator points to
    if locator < 0 or tail[locator : locator + 4] != b"PK\x06\x07":
        return None
    (offset,) = struct.unpack_from("<Q", tail, locator + 8)
    fh.seek(offset)
    record = fh.read(56)
    if len(record) < 56 or record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack_from("<Q", record, 32)[0]


def _check_count(count: int, name: str) -> None:
    limit = config.max_zip_files()
    if count > limit:
        raise TooLargeError(
            f"The ZIP '{name}' holds {count:,} files and folders, over the limit of {limit:,}. "
            "Upload fewer images (a sample of each class is often enough), or ask your "
            "administrator to raise DLCORE_MAX_ZIP_FILES."
        )


def _check_entries(infos: list[zipfile.ZipInfo], name: str) -> None:
    _check_count(len(infos), name)
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            # Which of the two is meant is anyone's guess; tools that append make these.
            raise DataError(
                f"The ZIP '{name}' has two entries named '{info.filename}'. Zip the folders "
                "again into a new file and upload that."
            )
        seen.add(info.filename)
        if _escapes(info.filename):
            raise DataError(
                f"The ZIP '{name}' has an entry whose path points outside its folder "
                f"('{info.filename}'), a trick used to overwrite files when unpacking; the "
                "whole ZIP was refused. Zip your folders again with an ordinary ZIP tool and "
                "upload that."
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(
                f"The ZIP '{name}' holds a symbolic link ('{info.filename}'), which could point "
                "at files on this server; the whole ZIP was refused. Zip the image files "
                "themselves, not links to them, and upload that."
            )
        if info.file_size > _BOMB_MIN_BYTES and info.file_size > _BOMB_RATIO * info.compress_size:
            raise TooLargeError(
                f"The entry '{info.filename}' in '{name}' unpacks from "
                f"{_human_size(info.compress_size)} to {_human_size(info.file_size)}, which is "
                "how a decompression bomb looks (images barely compress); the ZIP was refused. "
                "Remove that file from the ZIP and upload it again."
            )
    total = sum(i.file_size for i in infos)
    limit = config.max_unzipped_bytes()
    if total > limit:
        raise TooLargeError(
            f"The ZIP '{name}' unpacks to {_human_size(total)}, over the limit of "
            f"{_human_size(limit)}: a decompression bomb or an archive too big for this "
            "server. Upload fewer or smaller images (for example resized to 1,000 pixels "
            "wide), or ask your administrator to raise DLCORE_MAX_UNZIPPED_MB."
        )


def _escapes(entry: str) -> bool:
    """True for an absolute path, a drive letter or a '..' step, with / or \\ separators."""
    if entry.startswith(("/", "\\")) or _DRIVE.match(entry):
        return True
    return ".." in _SEPARATORS.split(entry)


def _is_system(entry: str) -> bool:
    """Files an OS or a tool adds to a folder: __MACOSX, .DS_Store, ._*, hidden files..."""
    parts = _parts(entry)
    if not parts:
        return True
    if any(p.casefold() == "__macosx" or p.startswith(".") for p in parts):
        return True
    return parts[-1].casefold() in _SYSTEM_FILES


def _parts(entry: str) -> list[str]:
    """The path's folders and file name; ZIPs made on Windows may use backslashes."""
    return [p for p in _SEPARATORS.split(entry) if p not in ("", ".")]


def _common_prefix(paths: list[list[str]]) -> list[str]:
    if not paths:
        return []
    prefix = paths[0]
    for p in paths[1:]:
        n = 0
        while n < len(prefix) and n < len(p) and prefix[n] == p[n]:
            n += 1
        prefix = prefix[:n]
    return list(prefix)


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, n: int | None = None) -> bytes:
    """The entry's bytes (or its first ``n``), never more than it declares."""
    want = info.file_size + 1 if n is None else min(n, info.file_size + 1)
    try:
        with zf.open(info) as fh:
            data = fh.read(want)
    except NotImplementedError as exc:
        raise DataError(
            f"The entry '{info.filename}' in '{name}' is packed with a compression method "
            "this app cannot read (such as Deflate64, used by Windows for big files). Zip the "
            "folders again with standard compression and upload that."
        ) from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as exc:
        raise _corrupt(name, info.filename) from exc
    if n is None and len(data) != info.file_size:
        raise _corrupt(name, info.filename)
    return data


_R = TypeVar("_R")


def _map_entries(
    zf: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    name: str,
    fn: Callable[[bytes, str], _R],
) -> Iterator[_R]:
    """``fn(bytes, entry)`` for each entry, in order; entries read here, ``fn`` in threads."""
    if _WORKERS == 1 or len(infos) < 2:
        for info in infos:
            yield fn(_read(zf, info, name), info.filename)
        return
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        for batch in _batches(infos):
            data = [_read(zf, info, name) for info in batch]
            yield from pool.map(fn, data, [info.filename for info in batch])


def _batches(infos: list[zipfile.ZipInfo]) -> Iterator[list[zipfile.ZipInfo]]:
    """Runs of entries short enough to hold in memory together."""
    batch: list[zipfile.ZipInfo] = []
    size = 0
    for info in infos:
        if batch and (len(batch) == _BATCH or size + info.file_size > _BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(info)
        size += info.file_size
    if batch:
        yield batch


def _not_zip(name: str, head: bytes) -> DataError:
    fmt = image_format(head)
    what = f"a single {fmt} image" if fmt else "not a ZIP archive"
    return DataError(
        f"The file '{name}' is {what}. To train on images, upload a ZIP. {_LAYOUT_HELP}"
    )


def _corrupt(name: str, entry: str | None) -> DataError:
    where = f" (at the entry '{entry}')" if entry else ""
    return DataError(
        f"The ZIP '{name}' is damaged or cut short{where} and cannot be read. Zip the folders "
        "again and upload the new file; if it came by e-mail or download, fetch it again."
    )


