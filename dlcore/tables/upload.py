"""A table uploaded as a dataset: the file kept as it came, a Parquet copy of the parsed and typed
table (what workers load), and its profile; nothing is written before the file has been read.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import Any

from dlcore import ready
from dlcore.store import atomic_write, folder_with_room
from dlcore.tables.profile import profile_frame
from dlcore.tables.reader import read_table, write_copy

__all__ = ["claims", "ingest"]

# glibc serves a block of this size or more from its own mapping, handed back when freed.
_MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_malloc_set = threading.Lock()
_malloc_done = False


def claims(content: bytes, name: str) -> int:
    """Any file may be a table: this kind reads what no other kind claims more surely."""
    return 1


def ingest(folder: Path, content: bytes, name: str) -> dict[str, Any]:
    """Read and profile the upload, then return its row for the store.

    Nothing is written before the table is typed and profiled, so a bad upload leaves nothing.
    The file kept as it came and the Parquet copy that workers load are then written in a
    thread of their own; the row's ``writing`` future ends when both are, and ``frame`` is the
    typed table, for ``register_bytes`` to wait on them or answer first (``dlcore.ready``)."""
    _freed_blocks_go_back()
    suffix = Path(name).suffix.lower()[:10] or ".bin"
    # Parsed from the bytes the upload already holds: writing them to disk first cost 0.2-1.1 s
    # on a shared machine, and pandas reading a file path held 126 MB more (1M x 20, 125 MB).
    frame, report = read_table(content, name=name)
    profile = profile_frame(frame)

    def write() -> None:
        # The source first: a copy whose writer died is written again from it (rebuild_copy).
        with atomic_write(folder / f"source{suffix}") as tmp:
            tmp.write_bytes(content)
        write_copy(folder, frame)

    # Written after the answer: whether they can be is checked now (a read-only or full data folder
    # refuses the upload here, before its row is stored).
    folder_with_room(folder, f"source{suffix}", len(content))
    writing = ready.write_later(folder, frame, write)
    # A column problem the profile states (with its column) is not repeated as a reading note.
    said = {w.split(" (for example")[0] for w in profile.warnings}
    report.notes = [n for n in report.notes if n.split(" (for example")[0] not in said]
    return dict(name=Path(name).name or "upload", kind="tabular", format=report.format, n_rows=int(len(frame)),
                n_cols=int(frame.shape[1]), profile=profile.to_dict(), report=report.to_dict(),
                writing=writing, frame=frame)


def _freed_blocks_go_back() -> None:
    """Keep glibc serving big blocks from mappings of their own, returned to the system when freed.

    By default glibc raises that threshold each time such a block is freed (up to 32 MB), after
    which the parser's many short-lived column pieces are carved from the heap and, freed, stay
    in the process: reading the 1M x 20 benchmark file held 297 MB for a 182 MB table, and 194 MB
    with the threshold fixed at glibc's default of 128 KB (pandas.read_csv of those bytes). The same
    for every later upload or table this process reads. Elsewhere than glibc, nothing changes."""
    global _malloc_done
    with _malloc_set:
        if _malloc_done:
            return
        _malloc_done = True
        try:
            ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)  # the C library this process runs on
        except (OSError, AttributeError):
            pass
