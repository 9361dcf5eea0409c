"""Sample images that ship inside installed packages: scikit-learn's handwritten digits, stored
as a ZIP of class folders exactly like an upload.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["IMAGE_SAMPLES", "ImageSample", "sample_digits_zip"]


@dataclass(frozen=True)
class ImageSample:
    """One sample set of images, stored as a ZIP of class folders like an upload."""

    key: str
    title: str
    description: str
    zip_bytes: Callable[[], bytes]


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


IMAGE_SAMPLES: dict[str, ImageSample] = {
    "digits": ImageSample(
        key="digits",
        title="Handwritten digits (images)",
        description="1,797 scanned handwritten digits, 8×8 grey pixels, in one folder per digit 0 to 9 "
        "(from scikit-learn).",
        zip_bytes=sample_digits_zip,
    ),
}
