"""Where the labels of a ZIP's images come from: class folders (``cats/a.png``), under any
enclosing folders and the ZIP's own ``train``/``test`` folders, or a labels file (CSV, Excel or
Parquet) with a column of file names and a column of labels.
"""


from __future__ import annotations

import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pandas as pd

from dlcore.errors import DataError, DlcoreError
from dlcore.images.report import _Skips
from dlcore.images.zipfiles import (
    _LAYOUT_HELP,
    _common_prefix,
    _count,
    _few,
    _is_blank,
    _label_text,
    _parts,
    _read,
)
from dlcore.tables.reader import read_table

MIN_IMAGES_PER_CLASS = 5


_LABELS_FILE_MAX_BYTES = 20 * 1024 * 1024
_LABELS_FILE_TRIES = 10
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")
_LABEL_COLUMNS = ("label", "class", "category", "target", "y")
_SPLIT_FOLDERS = {"train", "test", "val", "valid", "validation", "training", "testing"}




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


