"""Score new data with the model in this folder, exactly as the Deep Learning Studio app does.

    python predict.py new.csv -o scored.csv                  # a table: one row in, one row out
    python predict.py new.csv --sep ";" --decimal "," -o scored.csv
    python predict.py photos.zip -o scored.csv               # images: one image, a folder or a ZIP

It reads preprocess.json (how the app turned raw columns or pixels into model inputs, learned
from the training rows only) and model.keras, or model.skops for a scikit-learn baseline; a file
whose columns the app matched to the model's under other names is read the same way (columns.json). It
needs NumPy, pandas and Keras (Pillow for images; skops and scikit-learn for a baseline), and
nothing from the app. Problems you can fix (a missing column, a file that is not an image)
are printed as "error: ..." with exit status 1.

For the app's maintainers: each step mirrors dlcore/tables/preprocess.py, dlcore/tables/scoring.py and
dlcore/images/pixels.py; tests/test_bundle.py checks that both give the same predictions.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MISSING, OTHER = 0, 1  # category codes: a missing value, and a value the model never saw in training
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs such a cell as a formula
TRUSTED = ("sklearn.", "numpy.", "builtins.", "scipy.")  # the only types a baseline file may hold


# Dates written day and month (03.08.2023, 8/3/23), as the app's reader finds them (dlcore/tables/columns.py).
DMY = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})([ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?")
# A number with a decimal comma, and dots (or spaces) between thousands: 1.234,56 or 334,73.
COMMA_NUMBER = re.compile(r"[+-]?[0-9]{1,3}(?:[. ][0-9]{3})*,[0-9]+|[+-]?[0-9]+,[0-9]+|[+-]?[0-9]+")


class Refused(Exception):
    """A problem with the input that the user can fix; printed as 'error: ...'."""


# ---- the model -----------------------------------------------------------------------------
def load_model() -> tuple[object, bool | None]:
    """The model of this bundle, and whether it is a Keras (deep) model; for an ensemble
    (ensemble.json), a list of (weight, model, deep) and None."""
    if (HERE / "ensemble.json").exists():
        weights = json.loads((HERE / "ensemble.json").read_text(encoding="utf-8"))["weights"]
        members = []
        for name, weight in weights.items():
            stem = HERE / "members" / name
            deep = stem.with_suffix(".keras").exists()
            members.append((float(weight), *load_one(stem.with_suffix(".keras" if deep else ".skops"))))
        return members, None
    if (HERE / "model.keras").exists():
        return load_one(HERE / "model.keras")
    return load_one(HERE / "model.skops")


def load_one(path: Path) -> tuple[object, bool]:
    if path.suffix == ".keras":
        import keras

        return keras.saving.load_model(path, safe_mode=True), True
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(TRUSTED)]
    if refused:
        raise Refused(f"model.skops holds types that are not allowed: {', '.join(refused)}.")
    return sio.load(path, trusted=untrusted), False


def model_output(meta: dict, model: object, deep: bool, x: object) -> np.ndarray:
    """Class probabilities (n, k) in the order of the classes, or predicted values (n,)."""
    task, target = meta["task"], meta["target"]
    if not deep:
        if task == "regression":
            return np.asarray(model.predict(x), dtype=np.float64)
        proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        full = np.zeros((len(proba), len(target["classes_"])))
        full[:, model.classes_.astype(int)] = proba  # a class absent from the training rows stays 0
        return full
    batch = 256 if meta.get("kind") == "image" else 2048
    raw = np.asarray(model.predict(x, verbose=0, batch_size=batch), dtype=np.float64)
    if task == "binary":  # one sigmoid: the probability of the second class
        return np.column_stack([1.0 - raw.reshape(-1), raw.reshape(-1)])
    if task == "multiclass":
        return raw
    return raw.reshape(-1) * target["std_"] + target["mean_"]  # the model learned standardised values


# ---- tables --------------------------------------------------------------------------------
def read_csv(path: Path, sep: str | None, decimal: str) -> pd.DataFrame:
    """The CSV as pandas reads it: separator sniffed unless given, UTF-8 or else Windows-1252."""
    try:
        try:
            return pd.read_csv(path, sep=sep, engine="python", decimal=decimal, encoding="utf-8-sig")
        except UnicodeDecodeError:  # a file saved by Excel on Windows
            return pd.read_csv(path, sep=sep, engine="python", decimal=decimal, encoding="cp1252")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise Refused(f"{path.name!r} could not be read as a CSV ({exc}). Name its separator with --sep.") from None


def as_category(values: pd.Series) -> pd.Series:
    """Categories compared as trimmed text, so 1, '1' and ' 1' are one category; '' is missing."""
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def saved_matching(pre: dict, frame: pd.DataFrame) -> dict | None:
    """For a file that names the model's columns differently: the matching the app kept with the
    run (columns.json: the model's column -> the file's, None to score it as missing) whose file
    columns this file has, newest first; None when the file has the model's names or none fits."""
    wanted = pre["numeric"] + pre["datetime"] + pre["categorical"] + pre.get("text", [])
    path = HERE / "columns.json"
    if all(c in frame.columns for c in wanted) or not path.exists():
        return None
    for layout in json.loads(path.read_text(encoding="utf-8"))["mappings"]:
        columns = layout["columns"]
        if all(c in columns for c in wanted) and all(s in frame.columns for s in columns.values() if s is not None):
            return {c: columns[c] for c in wanted}
    return None


def table_inputs(pre: dict, frame: pd.DataFrame, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Standardised numbers (plus missing-value flags), float32 (n, m), and category codes, int32 (n, c)."""
    lacking = [c for c in pre["numeric"] + pre["datetime"] + pre["categorical"] + pre.get("text", [])
               if c not in frame.columns]
    if lacking:
        raise Refused(f"The file lacks {len(lacking)} column(s) the model was trained on: "
                      f"{', '.join(map(repr, lacking))}. Add them with their values and run again "
                      "(renamed columns: rename them back, or match them once on the app's Predict page and download "
                      "the bundle again; a column left empty is scored as missing in every row).")
    num = {}
    for col in pre["numeric"]:
        raw = frame[col]
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            values = raw.astype("float64")
        else:
            text = raw.astype("string").str.strip()
            present = text[text.notna() & (text != "")]
            if len(present) and present.str.contains(",", regex=False).any() and \
                    present.str.fullmatch(COMMA_NUMBER.pattern).mean() >= 0.95:  # decimal commas, as the app reads them
                text = text.str.replace(r"[. ](?=[0-9]{3}(?:[,. ]|$))", "", regex=True).str.replace(",", ".", regex=False)
            values = pd.to_numeric(text, errors="coerce").astype("float64")
            bad = int((values.isna() & raw.notna() & (text != "")).sum())
            if bad:
                notes.append(f"{bad} cell(s) in {col!r} were not numbers and were treated as missing "
                             "(a file with decimal commas needs --decimal ,).")
        num[col] = values.replace([np.inf, -np.inf], np.nan)
    for col in pre["datetime"]:  # a date becomes days since 1970, its month and its day of the week
        stamp = frame[col]
        if not pd.api.types.is_datetime64_any_dtype(stamp):
            stamp = as_dates(stamp)
        if getattr(stamp.dt, "tz", None) is not None:
            stamp = stamp.dt.tz_localize(None)
        num[f"{col} (days)"] = (stamp - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
        num[f"{col} (month)"] = stamp.dt.month.astype("float64")
        num[f"{col} (day of week)"] = stamp.dt.day_of_week.astype("float64")
    num = pd.DataFrame(num, index=frame.index).reindex(columns=pre["num_names_"])
    flags = num[pre["flags_"]].isna().to_numpy(dtype=np.float32)  # columns that had gaps in training
    values = num.fillna(dict(zip(pre["num_names_"], pre["medians_"]))).to_numpy(dtype=np.float64)
    values = (values - np.asarray(pre["means_"])) / np.asarray(pre["stds_"])
    numeric = np.hstack([np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), flags])

    codes = np.zeros((len(frame), len(pre["categorical"])), dtype=np.int32)
    for j, col in enumerate(pre["categorical"]):  # code k + 2 for the k-th category kept in training
        text = as_category(frame[col])
        found = pd.Index(pre["vocab_"][col]).get_indexer(text)
        missing = text.isna().to_numpy()
        codes[:, j] = np.where(missing, MISSING, np.where(found < 0, OTHER, found + 2))
        unseen = int(((found < 0) & ~missing).sum())
        if unseen:
            notes.append(f"{unseen} row(s) have a value in {col!r} that the model never saw in training; "
                         "they were scored as 'other'.")
    return numeric, codes


def as_dates(raw: pd.Series) -> pd.Series:
    """Text as dates the way the app reads them: day and month told apart by a value above 12,
    else day first when they are written with dots (03.08.2023 is 3 August), else month first."""
    text = [str(v).strip() for v in raw.dropna().tolist()]
    parts = [m for v in text if (m := DMY.fullmatch(v))]
    if text and len(parts) >= 0.95 * len(text):
        first, second = max(int(m.group(1)) for m in parts), max(int(m.group(3)) for m in parts)
        day_first = first > 12 if max(first, second) > 12 else parts[0].group(2) == "."
        return pd.to_datetime(raw, errors="coerce", format="mixed", dayfirst=day_first)
    return pd.to_datetime(raw, errors="coerce", format="mixed")


def text_inputs(pre: dict, frame: pd.DataFrame, notes: list[str]) -> np.ndarray:
    """Free-text columns as strings (n, t): missing cells empty, each cut at the length the model reads."""
    limit = int(pre.get("max_chars", 2000))
    out = np.empty((len(frame), len(pre.get("text", []))), dtype=object)
    for j, col in enumerate(pre.get("text", [])):
        text = frame[col].astype("string").fillna("").str.strip()
        if (text == "").any():
            notes.append(f"{int((text == '').sum())} row(s) have no text in {col!r}; scored from their other columns")
        if (text.str.len() > limit).any():
            notes.append(f"{int((text.str.len() > limit).sum())} text(s) in {col!r} were cut to their first {limit} characters")
        out[:, j] = text.str.slice(0, limit).to_numpy(dtype=object)
    return out


def one_hot(pre: dict, numeric: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Numbers plus an on/off column per category: what the plain MLP and the baselines read."""
    blocks = [numeric]
    for j, col in enumerate(pre["categorical"]):
        onehot = np.zeros((len(codes), len(pre["vocab_"][col]) + 2), dtype=np.float32)
        onehot[np.arange(len(codes)), codes[:, j]] = 1.0
        blocks.append(onehot)
    return np.hstack(blocks)


def score_table(meta: dict, model: object, deep: bool, frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The input columns plus 'prediction' (and 'probability <class>' per class)."""
    if len(frame) == 0:
        raise Refused("The file has no rows to score. Add rows and run again.")
    pre = meta["preprocessor"]
    columns = saved_matching(pre, frame)
    inputs = frame
    if columns is not None:  # the file names the model's columns as one the app matched: read them from there
        blank = pd.Series(np.nan, index=frame.index)
        inputs = pd.DataFrame({c: frame[s] if s is not None else blank for c, s in columns.items()}, index=frame.index)
        renamed = [f"{s!r} as {c!r}" if s is not None else f"{c!r} scored as missing"
                   for c, s in columns.items() if s != c]
        notes.append(f"the file's columns were matched as in the app for this run (columns.json): {', '.join(renamed)}")
    numeric, codes = table_inputs(pre, inputs, notes)
    texts = text_inputs(pre, inputs, notes)
    if deep is None:  # an ensemble: the weighted average of its members' outputs
        out = sum(w * table_output(meta, m, d, numeric, codes, texts) for w, m, d in model)
    else:
        out = table_output(meta, model, deep, numeric, codes, texts)
    scored = frame.copy()
    return finish_table(meta, scored, out, notes)


def table_output(meta: dict, model: object, deep: bool, numeric: np.ndarray, codes: np.ndarray,
                 texts: np.ndarray) -> np.ndarray:
    """One model's output for the prepared columns of a table."""
    pre = meta["preprocessor"]
    if deep and meta.get("input_format") == "split":  # numbers, and one code input per category
        x = {"numeric": numeric} if meta["input_info"]["n_numeric"] else {}
        x.update({f"cat_{j}": codes[:, j : j + 1] for j in range(codes.shape[1])})
    else:
        x = one_hot(pre, numeric, codes)
    if texts.shape[1] and deep:  # raw strings: the model holds its own vocabulary
        import keras

        if not isinstance(x, dict):
            x = {"features": x} if meta["input_format"] == "dense" or x.shape[1] else {}
        x.update({f"text_{j}": keras.ops.convert_to_tensor(texts[:, j].astype(str).reshape(-1, 1), dtype="string")
                  for j in range(texts.shape[1])})
    elif texts.shape[1]:  # a baseline reads the numbers as x0, x1, … and the texts by column
        x = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        for j in range(texts.shape[1]):
            x[f"text_{j}"] = texts[:, j].astype(str)
    return model_output(meta, model, deep, x)


def finish_table(meta: dict, scored: pd.DataFrame, out: np.ndarray, notes: list[str]) -> pd.DataFrame:
    """The scored rows: 'prediction', the class probabilities and the decision column."""

    def fresh(name: str) -> str:  # never overwrite a column the input already has
        while name in scored.columns:
            name = f"{name} (model)"
        return name

    classes = meta["target"]["classes_"]
    if meta["task"] == "regression":
        scored[fresh("prediction")] = out
    else:
        scored[fresh("prediction")] = np.asarray(classes, dtype=object)[out.argmax(axis=1)]
        for k, label in enumerate(classes):
            scored[fresh(f"probability {label}")] = out[:, k]
        chosen = HERE / "decision.json"
        if chosen.is_file():  # the threshold saved on the app's Decide page: yes/no, or one class against the rest
            rule = json.loads(chosen.read_text(encoding="utf-8"))
            labels = [str(c) for c in classes]
            if not rule.get("positive") and len(labels) == 2:  # saved before the class was recorded: the second
                rule = {**rule, "positive": labels[1], "negative": rule.get("negative") or labels[0]}
            k = labels.index(str(rule["positive"]))
            scored[fresh("decision")] = np.where(out[:, k] >= rule["threshold"], rule["positive"], rule["negative"])
            notes.append(f"the 'decision' column flags '{rule['positive']}' at probability {rule['threshold']:.3f} or more")
    return scored


# ---- images --------------------------------------------------------------------------------
def image_format(head: bytes) -> str | None:
    """PNG, JPEG, GIF, WEBP or BMP, told by the first bytes (never by the file name)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "BMP"
    return None


def is_system(name: str) -> bool:
    """Files an OS adds to a folder or ZIP: __MACOSX, .DS_Store, Thumbs.db, hidden files."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return (not parts or any(p.startswith(".") or p.casefold() == "__macosx" for p in parts)
            or parts[-1].casefold() in ("thumbs.db", "desktop.ini"))


def list_images(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of one image, or of every image in a folder or ZIP, in path order."""
    if path.is_dir():
        files = [(p.relative_to(path).as_posix(), p) for p in path.rglob("*") if p.is_file()]
        items = [(name, p.read_bytes()) for name, p in sorted(files) if not is_system(name)]
    else:
        data = path.read_bytes()
        if image_format(data[:32]):
            return [(path.name, data)]
        if data[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise Refused(f"{path.name!r} is neither an image (PNG, JPEG, GIF, BMP or WEBP), a folder, nor a ZIP.")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = sorted((i for i in archive.infolist() if not i.is_dir()), key=lambda i: i.filename)
            items = [(i.filename, archive.read(i)) for i in entries
                     if not is_system(i.filename) and not i.flag_bits & 0x1]  # 0x1: password-protected
    images = [(name, data) for name, data in items if image_format(data[:32])]
    if not images:
        raise Refused(f"{path.name!r} holds no PNG, JPEG, GIF, BMP or WEBP images.")
    return images


def flatten(img: object) -> object:
    """The image as grey ("L") or colour ("RGB"), transparency over white."""
    from PIL import Image

    mode = img.mode
    if mode in ("P", "PA"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
    elif mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert("LA" if mode == "L" else "RGBA")
    elif mode in ("La", "RGBa"):
        img = img.convert("LA" if mode == "La" else "RGBA")
    mode = img.mode
    if mode in ("LA", "RGBA"):
        background = Image.new("L" if mode == "LA" else "RGB", img.size, "white")
        background.paste(img.convert(background.mode), mask=img.getchannel("A"))
        return background
    if mode in ("L", "RGB"):
        return img
    if mode == "1":
        return img.convert("L")
    if mode.startswith("I"):  # 16-bit grey: Pillow's own conversion would clip it to white
        values = np.clip(np.asarray(img, dtype=np.float64), 0, 65535) / 257
        return Image.fromarray(np.round(values).astype(np.uint8))
    if mode == "F":
        return Image.fromarray(np.round(np.clip(np.asarray(img), 0, 255)).astype(np.uint8))
    return img.convert("RGB")  # CMYK and YCbCr JPEGs, RGBX, ...


def decode_image(data: bytes, size: int, channels: int) -> np.ndarray:
    """uint8 pixels (size, size, channels): first frame, upright as its EXIF says, transparency
    over white, squashed to size x size with bilinear resampling (no crop)."""
    from PIL import Image, ImageOps

    mode = "L" if channels == 1 else "RGB"
    img = Image.open(io.BytesIO(data), formats=[image_format(data[:32])])
    img.draft(mode, (size, size))  # a big JPEG decodes at 1/2, 1/4 or 1/8 scale, still at least size
    img.load()
    try:
        orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # damaged EXIF: the image is still good, used as stored
        orientation = 1
    if orientation in range(2, 9):
        ImageOps.exif_transpose(img, in_place=True)
    img = flatten(img)
    if img.mode != mode:
        img = img.convert(mode)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.array(img, dtype=np.uint8).reshape(size, size, channels)


def small_pixels(pixels: np.ndarray, side: int = 16) -> np.ndarray:
    """What an image baseline reads: each image at most 16 x 16 (bilinear), flattened, 0..1."""
    from PIL import Image

    n, height, width, channels = pixels.shape
    if height > side or width > side:
        small = np.empty((n, side, side, channels), dtype=np.uint8)
        for i in range(n):
            img = Image.fromarray(pixels[i, :, :, 0] if channels == 1 else pixels[i])
            small[i] = np.asarray(img.resize((side, side), Image.Resampling.BILINEAR)).reshape(side, side, channels)
        pixels = small
    return pixels.reshape(n, -1).astype(np.float32) / np.float32(255)


def score_images(meta: dict, model: object, deep: bool, items: list[tuple[str, bytes]]) -> pd.DataFrame:
    """One row per image: file, prediction, confidence and each class's probability; an image
    that cannot be read keeps its row, with the reason in 'problem'."""
    size, channels = meta["image"]["size"], meta["image"]["channels"]
    classes = meta["target"]["classes_"]
    pixels, problems = [], {}
    for name, data in items:
        try:
            pixels.append(decode_image(data, size, channels))
        except Exception as exc:  # broad on purpose: a damaged file fails in many ways
            problems[name] = f"not a readable image ({type(exc).__name__}: {exc})"
    out = np.zeros((0, len(classes)))
    if pixels:
        stacked = np.stack(pixels)
        out = model_output(meta, model, deep, stacked if deep else small_pixels(stacked))
    row = dict(zip([name for name, _ in items if name not in problems], range(len(out))))
    pick = [row.get(name) for name, _ in items]
    table = pd.DataFrame({"file": [name for name, _ in items]})
    table["prediction"] = [classes[out[i].argmax()] if i is not None else None for i in pick]
    table["confidence"] = [float(out[i].max()) if i is not None else None for i in pick]
    for k, label in enumerate(classes):
        table[f"probability {label}"] = [float(out[i, k]) if i is not None else None for i in pick]
    if problems:
        table["problem"] = [problems.get(name) for name, _ in items]
    return table


# ---- output --------------------------------------------------------------------------------
def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix with an apostrophe the text cells (and headers) a spreadsheet would run as a formula."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_datetime64_any_dtype(out[col]):
            continue
        text = out[col].astype("string")
        risky = text.str.startswith(FORMULA_START, na=False) & pd.to_numeric(text, errors="coerce").isna()
        if risky.any():
            out[col] = text.mask(risky, "'" + text)
    return out.rename(columns={c: f"'{c}" for c in out.columns if isinstance(c, str) and c.startswith(FORMULA_START)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a CSV (or images) with the model in this folder.")
    parser.add_argument("data", help="a CSV file; for an image model, an image, a folder of images or a ZIP")
    parser.add_argument("-o", "--output", default="scored.csv", help="the CSV to write (default: scored.csv)")
    parser.add_argument("--sep", default=None, help="the CSV's column separator (default: detected)")
    parser.add_argument("--decimal", default=".", help="the CSV's decimal mark (default: .)")
    args = parser.parse_args(argv)
    meta = json.loads((HERE / "preprocess.json").read_text(encoding="utf-8"))
    data, notes = Path(args.data), []
    image = meta.get("kind", "tabular") == "image"
    try:
        if not data.exists():
            raise Refused(f"There is no file or folder at {args.data!r}.")
        if data.is_dir() and not image:
            raise Refused(f"{args.data!r} is a folder; this model scores a table: give a CSV file.")
        inputs = list_images(data) if image else read_csv(data, args.sep, args.decimal)
        model, deep = load_model()
        if image:
            scored = score_images(meta, model, deep, inputs)
        else:
            scored = score_table(meta, model, deep, inputs, notes)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # A decimal comma needs another separator than a comma, or the columns would run together.
    sep = args.sep or (";" if args.decimal == "," else ",")
    text = neutralise_formulas(scored).to_csv(index=False, sep=sep, decimal=args.decimal)
    Path(args.output).write_bytes(text.encode("utf-8-sig"))  # the byte-order mark makes Excel read UTF-8
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {len(scored)} rows to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
