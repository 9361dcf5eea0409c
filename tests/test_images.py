"""Tests for dlcore.images: ZIPs of labelled images, their refusals, and decoding.

Every ZIP is made here, in tmp_path, so each test shows exactly what an analyst uploads
and what we expect back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlcore.errors import DataError, TooLargeError
from dlcore.images import (
    MIN_IMAGES_PER_CLASS,
    SKIP_REASONS,
    ImageReport,
    baseline_features,
    decode_image,
    image_format,
    images_from_upload,
    load_pixels,
    looks_like_zip,
    read_image_zip,
    read_zip_entries,
    read_zip_entry,
    sample_digits_zip,
    thumbnail_png,
    zipfiles,
)

# ---- helpers --------------------------------------------------------------------------


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def png(value: int | tuple = 0, size: tuple[int, int] = (8, 8), mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, size, value))


def noisy(seed: int, size: tuple[int, int] = (12, 10), grey: bool = False) -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if grey else (size[1], size[0], 3)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def class_images(prefix: str, labels: dict[str, int], grey: bool = False) -> dict[str, bytes]:
    """``{prefix}{label}/img{i}.png`` for each label, count images each, all different."""
    out = {}
    for k, (label, n) in enumerate(labels.items()):
        for i in range(n):
            out[f"{prefix}{label}/img{i}.png"] = encode(noisy(100 * k + i, grey=grey))
    return out


def make_zip(path: Path, entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def two_classes(n: int = MIN_IMAGES_PER_CLASS) -> dict[str, bytes]:
    return class_images("", {"cats": n, "dogs": n})


def read(tmp_path: Path, entries: dict[str, bytes], name: str = "photos.zip"):
    return read_image_zip(make_zip(tmp_path / "upload.zip", entries), name)


def notes_text(report: ImageReport) -> str:
    return "\n".join(report.notes)


# ---- sniffing -------------------------------------------------------------------------


def test_formats_and_zips_are_told_by_content():
    img = noisy(0)
    assert image_format(encode(img, "PNG")[:32]) == "PNG"
    assert image_format(encode(img, "JPEG")[:32]) == "JPEG"
    assert image_format(encode(img, "GIF")[:32]) == "GIF"
    assert image_format(encode(img, "BMP")[:32]) == "BMP"
    assert image_format(encode(img, "WEBP")[:32]) == "WEBP"
    assert image_format(b"BMW,Audi,VW\n1,2,3\n" * 3) is None  # starts with BM, is a CSV
    assert image_format(b"hello") is None
    assert image_format(b"") is None
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    assert looks_like_zip(buf.getvalue())  # an empty ZIP starts with PK\x05\x06
    assert looks_like_zip(b"PK\x03\x04rest")
    assert not looks_like_zip(b"PK")
    assert not looks_like_zip(png())


# ---- layouts --------------------------------------------------------------------------


def test_class_folders_under_enclosing_folders_with_deeper_images(tmp_path):
    entries = class_images("myzip/photos/", {"cats": 5, "dogs": 6})
    entries["myzip/photos/cats/indoor/sofa.png"] = png((10, 20, 30))
    manifest, report = read(tmp_path, entries)

    assert report.layout == "folders"
    assert report.classes == {"cats": 6, "dogs": 6}
    assert report.n_images == 12 == len(manifest)
    assert list(manifest.columns) == ["image", "label", "width", "height"]
    assert list(manifest["image"]) == sorted(entries)
    assert (
        manifest.loc[manifest["image"] == "myzip/photos/cats/indoor/sofa.png", "label"].item()
        == "cats"
    )
    assert manifest["width"].dtype == "int64" and manifest["height"].dtype == "int64"
    assert (report.width_min, report.width_max, report.height_min, report.height_max) == (
        8,
        12,
        8,
        10,
    )
    assert (report.width_median, report.height_median) == (12, 10)
    assert report.channels == 3
    assert report.formats == {"PNG": 12}
    assert report.skipped_counts == {}
    assert "myzip/photos" in notes_text(report)


def test_the_zips_own_train_and_test_folders_are_merged(tmp_path):
    entries = {}
    entries.update(class_images("data/train/", {"cats": 3, "dogs": 3}))
    entries.update(class_images("data/Test/", {"cats": 2}))
    entries.update(
        {k.replace("img", "v"): v for k, v in class_images("data/val/", {"dogs": 2}).items()}
    )
    manifest, report = read(tmp_path, entries)
    assert report.classes == {"cats": 5, "dogs": 5}
    assert (
        "The ZIP's own train/test folders were merged; the app makes its own split." in report.notes
    )


def test_backslash_folders_from_old_windows_tools_are_class_folders(tmp_path):
    entries = {
        k.replace("/", "\\"): v for k, v in class_images("export/", {"a": 5, "b": 5}).items()
    }
    entries["stray.png"] = png()
    path = make_zip(tmp_path / "upload.zip", entries)
    manifest, report = read_image_zip(path, "photos.zip")
    assert report.classes == {"a": 5, "b": 5}
    assert manifest["image"].iloc[0] == "export\\a\\img0.png"  # as named in the ZIP
    assert read_zip_entry(path, manifest["image"].iloc[0]) == entries["export\\a\\img0.png"]
    assert "1 image is not inside a class folder and was skipped ('stray.png')." in report.notes


def test_classes_are_in_natural_order(tmp_path):
    _, report = read(tmp_path, class_images("", {"10": 5, "2": 5, "1": 5}))
    assert list(report.classes) == ["1", "2", "10"]


def test_labels_csv_with_semicolons_matched_by_base_name(tmp_path):
    entries = {
        f"pics/{c}{i}.PNG": encode(noisy(i + (50 if c == "b" else 0)))
        for c in "ab"
        for i in range(6)
    }
    entries["pics/extra.png"] = png(1)  # in the ZIP, not in the CSV
    rows = ["file;label"] + [
        f"{c}{i}.png;{'cat' if c == 'a' else 'dog'}" for c in "ab" for i in range(6)
    ]
    rows[-1] = "b5.png;"  # blank label: that image is skipped
    rows.append("gone.png;cat")  # names a file that is not in the ZIP
    entries["labels.csv"] = ("\n".join(rows) + "\n").encode()
    manifest, report = read(tmp_path, entries)

    assert report.layout == "labels_csv"
    assert report.classes == {"cat": 6, "dog": 5}
    assert set(manifest["image"]) == {f"pics/a{i}.PNG" for i in range(6)} | {
        f"pics/b{i}.PNG" for i in range(5)
    }
    assert report.skipped_counts == {"no_label": 2}
    assert report.skipped["no_label"] == ["pics/b5.PNG", "pics/extra.png"]
    text = notes_text(report)
    assert "'labels.csv'" in text and "column 'file'" in text and "column 'label'" in text
    assert "1 row of 'labels.csv' names a file that is not in the ZIP ('gone.png')" in text
    assert "not_image" not in report.skipped_counts  # the labels file itself is not "skipped"


def test_labels_file_with_two_columns_and_full_paths(tmp_path):
    entries = {f"set/img/{i:02d}.png": encode(noisy(i)) for i in range(10)}
    lines = ["name,species"] + [f"SET/IMG/{i:02d}.png,{'A' if i < 5 else 'B'}" for i in range(10)]
    entries["set/meta.csv"] = "\n".join(lines).encode()
    entries["set/readme.md"] = b"# About these photos\n"
    manifest, report = read(tmp_path, entries)
    assert report.layout == "labels_csv"
    assert report.classes == {"A": 5, "B": 5}
    assert report.skipped == {"not_image": ["set/readme.md"]}


def test_a_labels_file_without_a_header_row_keeps_its_first_row(tmp_path):
    entries = {f"im{i}.jpg": encode(noisy(i), "JPEG") for i in range(10)}
    lines = [f"im{i}.jpg,{'x' if i % 2 else 'y'}" for i in range(10)]
    entries["labels.csv"] = "\n".join(lines).encode()
    manifest, report = read(tmp_path, entries)
    assert report.classes == {"x": 5, "y": 5}
    assert manifest.set_index("image").loc["im0.jpg", "label"] == "y"


def test_numeric_labels_from_a_csv_read_as_whole_numbers(tmp_path):
    entries = {f"{i}.png": encode(noisy(i)) for i in range(10)}
    lines = ["file,label,notes"] + [f"{i}.png,{i % 2},x" for i in range(10)]
    lines.append("missing.png,,")  # a gap makes pandas read the labels as floats
    entries["labels.csv"] = "\n".join(lines).encode()
    _, report = read(tmp_path, entries)
    assert report.classes == {"0": 5, "1": 5}


# ---- what images are found -------------------------------------------------------------


def grey_palette_png(value: int) -> bytes:
    img = Image.new("P", (8, 8), value)
    img.putpalette([v for i in range(256) for v in (i, i, i)])
    return encode(img)


@pytest.mark.parametrize(
    ("odd_one", "channels"),
    [
        (png(128, mode="L"), 1),
        (png((90, 90, 90)), 1),  # RGB whose pixels are all grey
        (grey_palette_png(60), 1),
        (encode(Image.new("LA", (8, 8), (30, 200))), 1),
        (encode(Image.new("1", (8, 8), 1)), 1),
        (png((90, 91, 90)), 3),
        (encode(Image.new("RGBA", (8, 8), (255, 0, 0, 128))), 3),
    ],
    ids=["L", "RGB grey", "P grey", "LA", "1", "RGB colour", "RGBA colour"],
)
def test_channels_is_1_only_when_every_image_is_grey(tmp_path, odd_one, channels):
    entries = class_images("", {"a": 5, "b": 5}, grey=True)
    entries["a/odd.png"] = odd_one
    _, report = read(tmp_path, entries)
    assert report.channels == channels


def test_formats_modes_and_sizes_are_all_read(tmp_path):
    colour = noisy(1, size=(30, 20))
    entries = {
        "a/1.png": encode(colour),
        "a/2.jpg": encode(colour, "JPEG"),
        "a/3.bmp": encode(colour, "BMP"),
        "a/4.gif": encode(colour, "GIF"),
        "a/5.webp": encode(colour, "WEBP"),
        "b/1.png": encode(Image.new("RGBA", (40, 10), (0, 0, 255, 100))),
        "b/2.png": encode(colour.convert("P")),
        "b/3.jpg": encode(noisy(2, size=(8, 50), grey=True), "JPEG"),
        "b/4.webp": encode(Image.new("RGBA", (16, 16), (0, 0, 0, 0)), "WEBP", lossless=True),
        "b/5.dat": encode(colour),  # a PNG by content: the name does not matter
    }
    manifest, report = read(tmp_path, entries)
    assert report.classes == {"a": 5, "b": 5}
    assert report.formats == {"PNG": 4, "JPEG": 2, "GIF": 1, "BMP": 1, "WEBP": 2}
    assert report.channels == 3
    assert (report.width_min, report.width_max) == (8, 40)
    assert (report.height_min, report.height_max) == (10, 50)
    assert manifest.set_index("image").loc["b/3.jpg", ["width", "height"]].tolist() == [8, 50]


def test_exif_orientation_gives_the_displayed_size_and_pixels(tmp_path):
    stored = np.full((20, 40), 255, dtype=np.uint8)
    stored[:10] = 0  # top half black as stored; orientation 6 shows it rotated 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = encode(Image.fromarray(stored), "JPEG", exif=exif, quality=95)
    entries = class_images("", {"a": 5, "b": 5})
    entries["a/phone.jpg"] = rotated
    manifest, _ = read(tmp_path, entries)
    assert manifest.set_index("image").loc["a/phone.jpg", ["width", "height"]].tolist() == [20, 40]
    pixels = decode_image(rotated, 20, 1)[:, :, 0]
    assert pixels[:, :8].mean() > 200 and pixels[:, 12:].mean() < 50  # black now on the right


def test_system_files_are_skipped_silently_but_counted(tmp_path):
    entries = two_classes()
    entries.update(
        {
            "__MACOSX/cats/._img0.png": b"\x00\x05\x16\x07 apple double",
            "cats/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "dogs/Thumbs.db": b"\xd0\xcf\x11\xe0",
            "desktop.ini": b"[.ShellClassInfo]",
            ".ipynb_checkpoints/img0-checkpoint.png": png(),
        }
    )
    _, report = read(tmp_path, entries)
    assert report.classes == {"cats": 5, "dogs": 5}
    assert report.skipped_counts == {"system": 5}
    assert "DS_Store" not in notes_text(report) and "MACOSX" not in notes_text(report)


def test_files_that_are_not_images_by_content_are_skipped_and_named(tmp_path):
    entries = two_classes()
    entries["cats/fake.png"] = b"this is not a picture, whatever its name says\n"
    entries["readme.txt"] = b"photos of pets\n"
    _, report = read(tmp_path, entries)
    assert report.classes == {"cats": 5, "dogs": 5}
    assert report.skipped == {"not_image": ["cats/fake.png", "readme.txt"]}
    assert (
        "2 files that are not images were skipped ('cats/fake.png', 'readme.txt')." in report.notes
    )


def test_a_zip_inside_the_zip_is_skipped_with_its_own_note(tmp_path):
    entries = two_classes()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("birds/a.png", png())
    entries["more/birds.png"] = inner.getvalue()  # a ZIP, whatever its name
    _, report = read(tmp_path, entries)
    assert report.skipped == {"nested_zip": ["more/birds.png"]}
    assert (
        "'more/birds.png' is a ZIP inside the ZIP; it was skipped. Unpack it and zip the "
        "folders together."
    ) in report.notes


def test_a_truncated_image_is_skipped_and_named(tmp_path):
    entries = two_classes()
    whole = encode(noisy(7, size=(64, 64)))
    entries["dogs/cut.png"] = whole[: len(whole) // 2]
    _, report = read(tmp_path, entries)
    assert report.classes == {"cats": 5, "dogs": 5}
    assert report.skipped == {"corrupt": ["dogs/cut.png"]}
    assert "'dogs/cut.png'" in notes_text(report) and "damaged or cut short" in notes_text(report)


def test_password_protected_entries_are_skipped(tmp_path):
    entries = two_classes()
    entries["cats/secret.png"] = png()
    data = bytearray(make_zip(tmp_path / "upload.zip", entries).read_bytes())
    # zipfile cannot write encrypted entries: set the "encrypted" flag in the central directory.
    at = bytes(data).rfind(b"PK\x01\x02", 0, bytes(data).rfind(b"cats/secret.png"))
    data[at + 8] |= 0x1
    (tmp_path / "locked.zip").write_bytes(bytes(data))
    _, report = read_image_zip(tmp_path / "locked.zip", "photos.zip")
    assert report.skipped == {"encrypted": ["cats/secret.png"]}
    assert "password" in notes_text(report)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_images_over_the_pixel_limit_are_skipped_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_MAX_IMAGE_PIXELS", "1000")
    entries = two_classes()
    entries["cats/big.png"] = png(size=(40, 40))  # 1,600 pixels: Pillow only warns
    entries["dogs/huge.png"] = png(size=(50, 50))  # 2,500: over twice the limit, Pillow refuses
    _, report = read(tmp_path, entries)
    assert report.classes == {"cats": 5, "dogs": 5}
    assert report.skipped == {"too_large": ["cats/big.png", "dogs/huge.png"]}
    assert "'cats/big.png', 'dogs/huge.png'" in notes_text(report)
    assert "DLCORE_MAX_IMAGE_PIXELS" in notes_text(report)


def test_skip_reasons_are_all_described():
    assert set(SKIP_REASONS) == {
        "system",
        "not_image",
        "nested_zip",
        "encrypted",
        "corrupt",
        "too_large",
        "no_label",
    }


def test_skipped_names_are_capped_but_all_counted(tmp_path):
    entries = two_classes()
    entries.update({f"docs/{i:02d}.txt": b"text" for i in range(25)})
    _, report = read(tmp_path, entries)
    assert report.skipped_counts == {"not_image": 25}
    assert len(report.skipped["not_image"]) == 20
    assert "and 20 more" in notes_text(report)


def test_report_round_trips_through_json(tmp_path):
    entries = two_classes()
    entries["notes.txt"] = b"x"
    _, report = read(tmp_path, entries)
    again = ImageReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


# ---- refusals: the archive --------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "../evil.png",
        "cats/../../evil.png",
        "/etc/evil.png",
        "..\\evil.png",
        "C:/evil.png",
        "\\\\server\\evil.png",
    ],
)
def test_an_entry_escaping_its_folder_refuses_the_whole_zip(tmp_path, entry):
    entries = two_classes()
    entries[entry] = png()
    with pytest.raises(DataError, match="outside its folder") as err:
        read(tmp_path, entries)
    assert entry in str(err.value)


def test_a_symbolic_link_refuses_the_whole_zip(tmp_path):
    path = make_zip(tmp_path / "upload.zip", two_classes())
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("cats/passwd.png")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataError, match="symbolic link") as err:
        read_image_zip(path, "photos.zip")
    assert "cats/passwd.png" in str(err.value)


def test_declared_unpacked_size_over_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_MAX_UNZIPPED_MB", "1")
    entries = two_classes()
    entries["cats/big.bin"] = np.random.default_rng(0).bytes(2 * 1024 * 1024)
    with pytest.raises(TooLargeError, match="unpacks to 2.0 MB") as err:
        read(tmp_path, entries)
    assert "decompression bomb" in str(err.value) and "DLCORE_MAX_UNZIPPED_MB" in str(err.value)


def test_a_highly_compressed_entry_is_refused_as_a_bomb(tmp_path):
    entries = two_classes()
    entries["cats/zeros.png"] = bytes(51 * 1024 * 1024)
    with pytest.raises(TooLargeError, match="decompression bomb") as err:
        read(tmp_path, entries)
    assert "cats/zeros.png" in str(err.value)


def test_too_many_entries_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_MAX_ZIP_FILES", "10")
    with pytest.raises(TooLargeError, match="holds 11 files") as err:
        read(tmp_path, class_images("", {"a": 6, "b": 5}))
    assert "DLCORE_MAX_ZIP_FILES" in str(err.value)


def test_two_entries_with_the_same_name_are_refused(tmp_path):
    path = make_zip(tmp_path / "upload.zip", two_classes())
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "a") as zf:
        zf.writestr("cats/img0.png", png())
    with pytest.raises(DataError, match="two entries named 'cats/img0.png'"):
        read_image_zip(path, "photos.zip")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "x.zip").write_bytes(png())
    with pytest.raises(DataError, match="'cat.png' is a single PNG image"):
        read_image_zip(tmp_path / "x.zip", "cat.png")
    (tmp_path / "t.zip").write_bytes(b"name,label\na,b\n")
    with pytest.raises(DataError, match="not a ZIP archive"):
        read_image_zip(tmp_path / "t.zip", "data.zip")


def test_a_cut_short_zip_is_refused(tmp_path):
    whole = make_zip(tmp_path / "whole.zip", two_classes()).read_bytes()
    (tmp_path / "cut.zip").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="damaged or cut short"):
        read_image_zip(tmp_path / "cut.zip", "photos.zip")


def test_a_zip_with_a_bad_checksum_is_refused_naming_the_entry(tmp_path):
    entries = two_classes()
    payload = encode(noisy(99, size=(20, 20)))
    entries["dogs/flipped.png"] = payload
    data = bytearray(make_zip(tmp_path / "ok.zip", entries, zipfile.ZIP_STORED).read_bytes())
    at = bytes(data).find(payload) + len(payload) - 20
    data[at] ^= 0xFF
    (tmp_path / "bad.zip").write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged") as err:
        read_image_zip(tmp_path / "bad.zip", "photos.zip")
    assert "dogs/flipped.png" in str(err.value)


# ---- refusals: what is inside ------------------------------------------------------------


def test_a_class_with_too_few_images_is_named(tmp_path):
    entries = class_images("", {"cats": 6, "dogs": 3, "owls": 2})
    with pytest.raises(DataError) as err:
        read(tmp_path, entries)
    message = str(err.value)
    assert "'dogs' (3)" in message and "'owls' (2)" in message and "'cats'" not in message
    assert f"at least {MIN_IMAGES_PER_CLASS}" in message
    assert "add images to it or remove the folder" in message


def test_a_class_made_too_small_by_broken_images_is_named(tmp_path):
    entries = two_classes()
    entries["dogs/img0.png"] = entries["dogs/img0.png"][:40]
    with pytest.raises(DataError, match="'dogs' \\(4\\)"):
        read(tmp_path, entries)


def test_a_single_class_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="only one class") as err:
        read(tmp_path, class_images("export/", {"cats": 8}))
    assert "export/cats" in str(err.value) and "label" in str(err.value)


def test_images_at_the_top_with_no_labels_file_are_refused(tmp_path):
    entries = {f"photo{i}.png": encode(noisy(i)) for i in range(10)}
    with pytest.raises(DataError, match="no labels file") as err:
        read(tmp_path, entries)
    message = str(err.value)
    assert "folder named after the class" in message and "column named 'label'" in message


def test_a_zip_without_images_says_what_it_holds(tmp_path):
    entries = {"report.pdf": b"%PDF-1.4 ...", "data/notes.txt": b"hello", "__MACOSX/._x": b""}
    with pytest.raises(DataError, match="holds no images") as err:
        read(tmp_path, entries)
    message = str(err.value)
    assert (
        "'data/notes.txt'" in message
        and "'report.pdf'" in message
        and "2 files that are not images" in message
    )


def test_a_zip_whose_images_are_all_broken_is_refused(tmp_path):
    entries = {f"{c}/{i}.png": png()[:30] for c in "ab" for i in range(5)}
    with pytest.raises(DataError, match="None of the images") as err:
        read(tmp_path, entries)
    assert "10 damaged or cut-short images" in str(err.value)


# ---- decoding -------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_decode_image_squashes_to_the_requested_shape(channels):
    pixels = decode_image(encode(noisy(3, size=(60, 20))), 16, channels)
    assert pixels.shape == (16, 16, channels) and pixels.dtype == np.uint8
    assert pixels.flags.writeable


def test_decode_image_puts_transparency_over_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 0, 255))
    pixels = decode_image(encode(img), 4, 3)
    assert pixels[3, 3].tolist() == [255, 255, 255]
    assert pixels[0, 0].tolist() == [0, 0, 0]
    half = decode_image(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128))), 4, 1)
    assert np.all(np.abs(half.astype(int) - 127) <= 1)


def test_decode_image_takes_the_first_frame_of_a_gif():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    pixels = decode_image(out.getvalue(), 8, 3)
    assert pixels[..., 0].min() > 200 and pixels[..., 2].max() < 50


def test_decode_image_scales_16_bit_grey():
    values = np.array([[0, 65535], [257 * 100, 257 * 200]], dtype=np.uint16)
    pixels = decode_image(encode(Image.fromarray(values)), 2, 1)[..., 0]
    assert pixels.tolist() == [[0, 255], [100, 200]]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decode_image_refuses_what_it_cannot_read(monkeypatch):
    with pytest.raises(DataError, match="'notes.txt' is not a readable image"):
        decode_image(b"plain text", 8, 3, name="notes.txt")
    whole = encode(noisy(4, size=(64, 64)))
    with pytest.raises(DataError, match="not a readable image"):
        decode_image(whole[: len(whole) // 2], 8, 3)
    monkeypatch.setenv("DLCORE_MAX_IMAGE_PIXELS", "3000")
    with pytest.raises(TooLargeError, match="is 64 x 64 pixels, over the limit of 3,000"):
        decode_image(whole, 8, 3)
    monkeypatch.setenv("DLCORE_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(TooLargeError, match="has over 200 pixels, over the limit of 100"):
        decode_image(whole, 8, 3)


def test_load_pixels_decodes_the_manifest_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(zipfiles, "_WORKERS", 3)  # threads and several batches, on any machine
    monkeypatch.setattr(zipfiles, "_BATCH", 4)
    entries = two_classes()
    path = make_zip(tmp_path / "upload.zip", entries)
    manifest, report = read_image_zip(path, "photos.zip")
    calls = []
    pixels = load_pixels(
        path, list(manifest["image"]), 6, 3, progress=lambda d, t: calls.append((d, t))
    )
    assert pixels.shape == (10, 6, 6, 3) and pixels.dtype == np.uint8
    for i, entry in enumerate(manifest["image"]):
        assert np.array_equal(pixels[i], decode_image(entries[entry], 6, 3))
    assert calls[-1] == (10, 10) and calls == sorted(calls)
    with pytest.raises(DataError, match="no entry 'cats/nope.png'"):
        load_pixels(path, ["cats/nope.png"], 6, 3)


def test_baseline_features_are_small_scaled_and_repeatable():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    features = baseline_features(pixels)
    assert features.shape == (5, 16 * 16 * 3) and features.dtype == np.float32
    assert 0 <= features.min() and features.max() <= 1
    assert np.array_equal(features, baseline_features(pixels.copy()))
    flat = np.full((2, 32, 32, 1), 51, dtype=np.uint8)
    assert np.allclose(baseline_features(flat), 0.2)
    small = rng.integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    assert np.array_equal(baseline_features(small), small.reshape(3, 64) / np.float32(255))
    with pytest.raises(ValueError):
        baseline_features(pixels.astype(np.float32))


def test_thumbnail_is_a_small_png_keeping_the_shape():
    thumb = Image.open(io.BytesIO(thumbnail_png(encode(noisy(5, size=(200, 100)), "JPEG"))))
    assert thumb.format == "PNG" and thumb.size == (96, 48)
    with pytest.raises(DataError):
        thumbnail_png(b"not an image")


def test_read_zip_entry_gives_the_exact_bytes(tmp_path):
    entries = two_classes()
    path = make_zip(tmp_path / "upload.zip", entries)
    assert read_zip_entry(path, "dogs/img2.png") == entries["dogs/img2.png"]
    wanted = ["dogs/img2.png", "cats/img0.png"]
    assert read_zip_entries(path, wanted) == [entries[e] for e in wanted]
    with pytest.raises(DataError, match="no entry"):
        read_zip_entry(path, "dogs/missing.png")


# ---- scoring uploads ----------------------------------------------------------------------


def test_images_from_upload_takes_one_image_as_it_is():
    data = encode(noisy(6), "JPEG")
    assert images_from_upload(data, "new.jpg") == [("new.jpg", data)]


def test_images_from_upload_takes_every_image_of_a_zip(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("x.png", png())
    entries = {
        "batch/b.png": png(1),
        "a.jpg": encode(noisy(1), "JPEG"),
        "batch/deeper/c.bin": png(2),
        "batch/notes.txt": b"hello",
        "__MACOSX/batch/._b.png": b"junk",
        "inner.zip": inner.getvalue(),
    }
    content = make_zip(tmp_path / "score.zip", entries).read_bytes()
    got = images_from_upload(content, "score.zip")
    assert [n for n, _ in got] == ["a.jpg", "batch/b.png", "batch/deeper/c.bin"]
    assert dict(got)["batch/b.png"] == entries["batch/b.png"]


def test_images_from_upload_refuses_what_holds_no_image(tmp_path):
    content = make_zip(
        tmp_path / "docs.zip", {"notes.txt": b"x", "a.zip": b"PK\x05\x06" + bytes(18)}
    ).read_bytes()
    with pytest.raises(DataError, match="holds no images") as err:
        images_from_upload(content, "docs.zip")
    assert "'notes.txt'" in str(err.value) and "'a.zip'" in str(err.value)
    with pytest.raises(DataError, match="neither an image"):
        images_from_upload(b"a,b\n1,2\n", "table.csv")
    with pytest.raises(DataError, match="outside its folder"):
        images_from_upload(
            make_zip(tmp_path / "evil.zip", {"../x.png": png()}).read_bytes(), "evil.zip"
        )


# ---- the sample ----------------------------------------------------------------------------


def test_sample_digits_zip_is_stable_and_reads_back(tmp_path):
    from sklearn.datasets import load_digits

    first = sample_digits_zip()
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(sample_digits_zip()).hexdigest()
    path = tmp_path / "digits.zip"
    path.write_bytes(first)
    manifest, report = read_image_zip(path, "digits.zip")

    digits = load_digits()
    assert report.n_images == 1797 and report.channels == 1 and report.layout == "folders"
    assert list(report.classes) == [str(d) for d in range(10)]
    assert report.classes == {str(d): int((digits.target == d).sum()) for d in range(10)}
    assert report.formats == {"PNG": 1797}
    assert (report.width_min, report.width_max, report.height_median) == (8, 8, 8)
    assert manifest["image"].iloc[0] == "digits/0/0001.png"
    expected = np.round(digits.images[0] * 255 / 16).astype(np.uint8)
    assert np.array_equal(
        decode_image(read_zip_entry(path, "digits/0/0001.png"), 8, 1)[..., 0], expected
    )


# ---- real-world ZIPs: names, labels files, refusals ---------------------------------------


def unflagged_utf8_zip(path: Path, entries: dict[str, bytes]) -> Path:
    """A ZIP whose names are UTF-8 without the UTF-8 flag, as macOS' Archive Utility writes
    them (accents decomposed): zipfile reads such names as cp437."""
    raw = {}
    for i, (name, data) in enumerate(entries.items()):
        utf8 = unicodedata.normalize("NFD", name).encode("utf-8")
        placeholder = f"~{i:04d}~".encode().ljust(len(utf8), b"Q")  # ASCII: no flag written
        raw[placeholder] = (utf8, data)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for placeholder, (_, data) in raw.items():
            zf.writestr(placeholder.decode(), data)
    data = buf.getvalue()
    for placeholder, (utf8, _) in raw.items():
        assert data.count(placeholder) == 2  # local header and central directory
        data = data.replace(placeholder, utf8)
    path.write_bytes(data)
    return path


def test_utf8_names_without_the_utf8_flag_are_not_garbled(tmp_path):
    entries = class_images("Dossier Été/", {"Café Crème": 5, "Thé vert": 5})
    path = unflagged_utf8_zip(tmp_path / "mac.zip", entries)
    with zipfile.ZipFile(path) as zf:
        assert "Cafe╠ü" in zf.namelist()[0]  # what zipfile alone makes of it
    manifest, report = read_image_zip(path, "mac.zip")
    assert report.classes == {"Café Crème": 5, "Thé vert": 5}  # one spelling (NFC)
    assert "The enclosing folder 'Dossier Été' was ignored." in [
        unicodedata.normalize("NFC", n) for n in report.notes
    ]
    first = manifest["image"].iloc[0]
    assert unicodedata.normalize("NFC", first) == "Dossier Été/Café Crème/img0.png"
    # The manifest's names open the entries, for training, thumbnails and scoring alike.
    assert read_zip_entry(path, first) == entries["Dossier Été/Café Crème/img0.png"]
    assert load_pixels(path, list(manifest["image"]), 4, 3).shape == (10, 4, 4, 3)
    names = [n for n, _ in images_from_upload(path.read_bytes(), "mac.zip")]
    assert unicodedata.normalize("NFC", names[0]) == "Dossier Été/Café Crème/img0.png"


def test_a_manifest_stored_with_garbled_names_still_opens_its_entries(tmp_path):
    entries = class_images("", {"Crème": 5, "Thé": 5})
    path = unflagged_utf8_zip(tmp_path / "mac.zip", entries)
    with zipfile.ZipFile(path) as zf:
        garbled = sorted(zf.namelist())  # names as a dataset stored before the fix has them
    assert load_pixels(path, garbled, 4, 3).shape == (10, 4, 4, 3)


def test_a_labels_file_naming_a_file_that_is_in_two_folders_says_so(tmp_path):
    entries = {f"batch{i % 2}/part{i}.png": encode(noisy(i)) for i in range(10)}
    entries["batch0/dup.png"] = png(1)
    entries["batch1/dup.png"] = png(2)
    rows = ["filename,label"] + [f"part{i}.png,{'ok' if i < 5 else 'bad'}" for i in range(10)]
    entries["meta/labels.csv"] = ("\n".join(rows + ["dup.png,ok"]) + "\n").encode()
    manifest, report = read(tmp_path, entries)
    assert report.classes == {"bad": 5, "ok": 5}
    text = notes_text(report)
    assert "not in the ZIP" not in text
    assert (
        "1 row of 'meta/labels.csv' names a file that is in several folders of the ZIP "
        "('dup.png': 'batch0/dup.png', 'batch1/dup.png')"
    ) in text
    assert "Write the folder too (for example 'batch0/dup.png')." in text


def test_labels_file_names_match_whatever_the_accents_are_composed_of(tmp_path):
    entries = {
        unicodedata.normalize("NFD", f"photos/crème {i}.png"): encode(noisy(i)) for i in range(10)
    }
    rows = ["file,label"] + [f"crème {i}.png,{'a' if i < 5 else 'b'}" for i in range(10)]
    entries["labels.csv"] = ("\n".join(rows) + "\n").encode()  # typed in Excel: composed
    _, report = read(tmp_path, entries)
    assert report.classes == {"a": 5, "b": 5}


def test_a_refusal_for_one_class_names_the_files_that_were_skipped(tmp_path):
    entries = class_images("", {"cats": 5})
    entries.update({f"dogs/{i}.png": png(i) for i in range(5)})
    data = bytearray(make_zip(tmp_path / "upload.zip", entries).read_bytes())
    for i in range(5):  # the dogs are password-protected
        at = bytes(data).rfind(b"PK\x01\x02", 0, bytes(data).rfind(f"dogs/{i}.png".encode()))
        data[at + 8] |= 0x1
    (tmp_path / "locked.zip").write_bytes(bytes(data))
    with pytest.raises(DataError) as caught:
        read_image_zip(tmp_path / "locked.zip", "photos.zip")
    text = str(caught.value)
    assert "only one class" in text
    assert "Also skipped: 5 password-protected files ('dogs/0.png', 'dogs/1.png'" in text

    entries = two_classes()
    whole = encode(noisy(3, size=(32, 32)))
    entries.update({f"dogs/cut{i}.png": whole[:100] for i in range(2)})
    entries.update({f"dogs/img{i}.png": whole[:100] for i in range(2)})  # 1 dog left
    with pytest.raises(DataError, match=r"too few usable images.*Also skipped: 4 damaged"):
        read(tmp_path, entries)


def test_a_zip_holding_one_zip_says_one_zip_file():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("cats/a.png", png())
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("my photos.zip", inner.getvalue())
    with pytest.raises(DataError, match=r"Found: 1 ZIP file inside the ZIP \('my photos.zip'\)"):
        images_from_upload(outer.getvalue(), "photos.zip")


@pytest.mark.slow  # a real Python process
def test_pillows_own_bomb_warning_does_not_reach_the_analyst(tmp_path):
    # In a fresh process (pytest resets warning filters per test): the CLI's stderr stays clean.
    entries = two_classes()
    entries["cats/big.png"] = png(size=(40, 40))  # over the limit, under twice it
    path = make_zip(tmp_path / "upload.zip", entries)
    code = (
        "import sys; from dlcore.images import read_image_zip; "
        "print(read_image_zip(sys.argv[1], 'x.zip')[1].skipped_counts)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "DLCORE_MAX_IMAGE_PIXELS": "1000"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "'too_large': 1" in done.stdout
    assert "DecompressionBombWarning" not in done.stderr
