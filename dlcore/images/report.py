"""What reading a ZIP of images found and skipped, in plain words (``ImageReport``), and the
small helpers its notes are written with.
"""


from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dlcore.images.zipfiles import _few

# Reason keys of ImageReport.skipped, with the words a page can show for each.
LAYOUTS = ("folders", "labels_csv")

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

_MAX_SKIPPED_NAMES = 20




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
