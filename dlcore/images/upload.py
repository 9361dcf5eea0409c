"""A ZIP of images uploaded as a dataset: kept as it came, with a manifest (one row per usable
image and its class); a lone picture, or a file named .zip that is not one, is refused with what
to upload instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlcore.images.archive import read_image_zip
from dlcore.images.zipfiles import _not_zip, image_format, looks_like_zip
from dlcore.store import atomic_write

__all__ = ["claims", "ingest"]


def claims(content: bytes, name: str) -> int:
    """2 for a ZIP that is not an Excel workbook (.xlsx is a ZIP too), a picture, or a file named
    .zip; 0 for anything else."""
    if looks_like_zip(content[:4]):
        return 0 if _is_workbook(content, name) else 2
    return 2 if Path(name).suffix.lower() == ".zip" or image_format(content[:32]) else 0


def ingest(folder: Path, content: bytes, name: str) -> dict[str, Any]:
    """Write the dataset's files into ``folder`` and return its row for the store."""
    if not looks_like_zip(content[:4]):
        # A lone picture, or a file named .zip that is not one: say what to upload for images.
        raise _not_zip(Path(name).name, content[:32])
    with atomic_write(folder / "source.zip") as tmp:
        tmp.write_bytes(content)
        manifest, report = read_image_zip(tmp, name)
        with atomic_write(folder / "data.parquet") as parquet:
            manifest.to_parquet(parquet, index=False)
    n_classes = len(report.classes)
    profile = {
        "n_rows": int(len(manifest)), "n_cols": 2, "warnings": [],
        "columns": [{"name": "image", "kind": "image"}, {"name": "label", "kind": "categorical", "n_unique": n_classes}],
    }
    return dict(name=Path(name).name or "images.zip", kind="image", format="zip", n_rows=int(len(manifest)), n_cols=2,
                profile=profile, report=report.to_dict(), target="label",
                task="binary" if n_classes == 2 else "multiclass")


def _is_workbook(content: bytes, name: str) -> bool:
    """Whether a ZIP is an Excel workbook rather than a ZIP of images: by its name, or by the
    entries every workbook has (ZIP entry names are plain text, so nothing is unpacked to tell)."""
    return Path(name).suffix.lower() in (".xlsx", ".xlsm") or (
        b"[Content_Types].xml" in content and b"xl/workbook.xml" in content
    )
