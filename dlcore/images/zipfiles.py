"""Open an uploaded ZIP safely and tell image formats by content.

The whole archive is checked before any entry is read: entry count, unpacked size, compression
ratio (decompression bombs), paths that escape their folder, symbolic links. Entries are read
one by one, bounded by their declared size; nothing is unpacked to disk.
"""


from __future__ import annotations

import io
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from dlcore import config
from dlcore.errors import DataError, TooLargeError
from dlcore.tables.reader import _human_size

_HEAD = 32  # bytes enough to tell every supported format and a ZIP apart
_NOTE_NAMES = 5
_BOMB_RATIO = 100
_BOMB_MIN_BYTES = 50 * 1024 * 1024
_SYSTEM_FILES = {".ds_store", "thumbs.db", "desktop.ini"}
_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}
_SEPARATORS = re.compile(r"[/\\]")  # ZIPs made on Windows may use backslashes
_DRIVE = re.compile(r"[A-Za-z]:")
# Images are decoded in threads (Pillow releases the GIL), a batch of entries at a time.
_BATCH = 256
_BATCH_BYTES = 64 * 1024 * 1024
_WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


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
