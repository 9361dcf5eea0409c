"""Decode images to pixels: draft-mode JPEG, EXIF orientation, transparency flattened, grey or
colour, resized to one side; in threads, a batch of ZIP entries at a time. Also the small
flattened pictures the baselines read, and thumbnails for the pages.
"""


from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from dlcore import config
from dlcore.errors import DataError, TooLargeError
from dlcore.images.zipfiles import (
    _HEAD,
    _entries_named,
    _map_entries,
    _open_zip,
    image_format,
)

# Every image is checked against config.max_image_pixels() right after Pillow reads its
# header, with a message for the analyst; Pillow's own warning would only add noise on stderr.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)



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


