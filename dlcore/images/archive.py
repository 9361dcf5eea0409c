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

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from dlcore import config
from dlcore.errors import DataError, TooLargeError
from dlcore.images.labels import (
    _check_class_sizes,
    _check_classes_found,
    _find_labels,
    _LabelSource,
)
from dlcore.images.pixels import _is_grey, _load, _open_image
from dlcore.images.report import SKIP_REASONS, ImageReport, _Skips
from dlcore.images.zipfiles import (
    _HEAD,
    _LAYOUT_HELP,
    _count,
    _few,
    _is_system,
    _map_entries,
    _natural_key,
    _open_zip,
    _read,
    image_format,
    looks_like_zip,
)

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")






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
