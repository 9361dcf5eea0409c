"""A table uploaded as a dataset: the file kept as it came, a Parquet copy of the parsed and typed
table (what workers load), and its profile; nothing is written before the file has been read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcore import ready
from dlcore.store import atomic_write
from dlcore.tables.profile import profile_frame
from dlcore.tables.reader import read_table, write_copy

__all__ = ["claims", "ingest"]


def claims(content: bytes, name: str) -> int:
    """Any file may be a table: this kind reads what no other kind claims more surely."""
    return 1


def ingest(folder: Path, content: bytes, name: str) -> dict[str, Any]:
    """Write the dataset's files into ``folder`` and return its row for the store.

    The Parquet copy that workers load is written in a thread of its own, started once the
    table is typed and profiled; the row's ``writing`` future ends when it is written and ``frame`` is the typed table, for ``register_bytes`` to wait on the copy or
    answer first (``dlcore.ready``)."""
    suffix = Path(name).suffix.lower()[:10] or ".bin"
    # Parse from a file, not from memory: pandas reads a file on disk with several threads.
    # The file stays under a temporary name until the table has been read and profiled, so a
    # bad upload leaves nothing behind.
    with atomic_write(folder / f"source{suffix}") as tmp:
        tmp.write_bytes(content)
        frame, report = read_table(tmp, name=name)
        profile = profile_frame(frame)
    # The copy is written (by Arrow, mostly outside the GIL) after the table is read and
    # profiled: an upload answers without waiting for it, and workers wait until it is there.
    writing = ready.write_later(folder, frame, lambda: write_copy(folder, frame))
    # A column problem the profile states (with its column) is not repeated as a reading note.
    said = {w.split(" (for example")[0] for w in profile.warnings}
    report.notes = [n for n in report.notes if n.split(" (for example")[0] not in said]
    return dict(name=Path(name).name or "upload", kind="tabular", format=report.format, n_rows=int(len(frame)),
                n_cols=int(frame.shape[1]), profile=profile.to_dict(), report=report.to_dict(),
                writing=writing, frame=frame)
