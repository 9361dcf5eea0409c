"""A table uploaded as a dataset: the file kept as it came, a Parquet copy of the parsed and typed
table (what workers load), and its profile; nothing is written before the file has been read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from dlcore.store import atomic_write
from dlcore.tables.profile import profile_frame
from dlcore.tables.reader import read_table

__all__ = ["claims", "ingest"]


def claims(content: bytes, name: str) -> int:
    """Any file may be a table: this kind reads what no other kind claims more surely."""
    return 1


def ingest(folder: Path, content: bytes, name: str) -> dict[str, Any]:
    """Write the dataset's files into ``folder`` and return its row for the store."""
    suffix = Path(name).suffix.lower()[:10] or ".bin"
    # Parse from a file, not from memory: pandas reads a file on disk with several threads.
    # The file stays under a temporary name until the table has been read and profiled, so a
    # bad upload leaves nothing behind.
    with atomic_write(folder / f"source{suffix}") as tmp:
        tmp.write_bytes(content)
        frame, report = read_table(tmp, name=name)
        # The Parquet copy is written (by Arrow, outside the GIL) while the profile is made:
        # on a million rows that overlap saves about a third of the upload's time.
        with atomic_write(folder / "data.parquet") as parquet, ThreadPoolExecutor(1) as pool:
            writing = pool.submit(_to_parquet, frame, parquet)
            profile = profile_frame(frame)
            writing.result()
    # A column problem the profile states (with its column) is not repeated as a reading note.
    said = {w.split(" (for example")[0] for w in profile.warnings}
    report.notes = [n for n in report.notes if n.split(" (for example")[0] not in said]
    return dict(name=Path(name).name or "upload", kind="tabular", format=report.format, n_rows=int(len(frame)),
                n_cols=int(frame.shape[1]), profile=profile.to_dict(), report=report.to_dict())


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
