"""Read an analyst's table: CSV exported from anything, Excel workbooks and Parquet.

Analysts bring CSV exported from anything (Excel on a European Windows machine, a BI tool, a
bank), sometimes gzip-compressed (``.csv.gz``), sometimes as JSON records from an API.
``read_table`` finds the encoding, the separator, the decimal mark and the header, and returns
a clean ``DataFrame`` (every column typed by ``dlcore.tables.columns``) plus a ``ReadReport``
that says, in plain words, what was detected and fixed.

Every problem the analyst can fix is raised as ``DataError`` (``TooLargeError`` for size); no
pandas, pyarrow or openpyxl exception escapes ``read_table``.

Example::

    df, report = read_table("sales.csv")
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlcore import config
from dlcore.errors import DataError, DlcoreError, TooLargeError
from dlcore.tables.columns import (
    _CODES_PATTERN,
    _CURRENCY_SYMBOLS,
    _NUMBER_RES,
    _SPACES,
    _cell_text,
    _tidy,
    _unique_names,
)

__all__ = ["FORMATS", "ReadReport", "read_table", "load_frame"]

FORMATS = ("csv", "excel", "parquet", "json")
COLUMN_KINDS = ("numeric", "categorical", "datetime", "text", "identifier")
TASKS = ("binary", "multiclass", "regression")
MIN_ROWS = 20

_ACCEPTED = ("a CSV or other delimited text file (gzip-compressed is fine), an Excel workbook (.xlsx), a Parquet "
             "file or a JSON array of records")
_SNIFF_BYTES = 256 * 1024
_SNIFF_RECORDS = 200
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_GZIP_MAGIC = b"\x1f\x8b"


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


@dataclass
class ReadReport:
    """What ``read_table`` detected and fixed, so the analyst can check it was read right.

    ``encoding``, ``delimiter``, ``decimal`` and ``thousands`` are ``None`` where they do not
    apply (Excel, Parquet) or, for ``thousands``, where no thousands separator was seen.
    """

    format: str
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict, to store next to the dataset."""
        return {
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "decimal": self.decimal,
            "thousands": self.thousands,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadReport:
        """Rebuild a report written by ``to_dict``."""
        return cls(
            format=data["format"],
            encoding=data.get("encoding"),
            delimiter=data.get("delimiter"),
            decimal=data.get("decimal"),
            thousands=data.get("thousands"),
            notes=list(data.get("notes", [])),
        )


def read_table(
    source: str | Path | bytes, name: str = "data.csv", max_bytes: int | None = None
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a CSV/text, Excel (.xlsx) or Parquet file into a clean DataFrame.

    The format is detected from the content, never the file name (``name`` is only used in
    messages; for a path it defaults to the file's own name). Text files get their encoding,
    delimiter, decimal mark and thousands separator detected; blank rows and empty columns
    are removed; header names are made unique; columns that are numbers or dates written as
    text become numeric or datetime. Raises ``TooLargeError`` over ``max_bytes`` (default
    ``config.max_upload_bytes()``) and ``DataError`` for anything else that cannot be read.

    Pass a path rather than bytes for big files: pandas then parses a UTF-8 file with
    several threads, and the bytes are never all held in memory at once.
    """
    limit = config.max_upload_bytes() if max_bytes is None else int(max_bytes)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if name == "data.csv":
            name = path.name
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise DataError(
                f"The file '{path}' could not be opened ({exc.strerror or 'unreadable'}). "
                "Check the path and that the file exists."
            ) from exc
        _check_size(size, limit, name)
        inp = _Input(name=name, size=size, path=path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_size(len(data), limit, name)
        inp = _Input(name=name, size=len(data), data=data)
    else:
        raise TypeError(f"read_table expects a path or bytes, got {type(source).__name__}")

    try:
        if inp.head(2) == _GZIP_MAGIC:
            return _read_gzip(inp, limit)
        return _read_input(inp)
    except DlcoreError:
        raise
    except MemoryError as exc:
        raise DataError(
            f"The file '{name}' is too large to read into this server's memory. "
            "Upload a smaller extract (fewer rows or columns)."
        ) from exc
    except OSError as exc:
        raise DataError(
            f"The file '{name}' could not be read from disk ({exc.strerror or 'unreadable'}). "
            "Check that it is not open in another program, and try again."
        ) from exc
    except Exception as exc:  # broad on purpose: the contract: no library exception escapes
        raise DataError(
            f"The file '{name}' could not be read as a table. Check that it is {_ACCEPTED}, "
            "that it opens in Excel or a text editor, and upload it again."
        ) from exc


def _check_size(size: int, limit: int, name: str) -> None:
    if size > limit:
        raise TooLargeError(
            f"The file '{name}' is {_human_size(size)}, over the upload limit of "
            f"{_human_size(limit)}. Upload a smaller extract (only the rows and columns you "
            "need, or a Parquet file, which is smaller), or ask your administrator to raise "
            "the limit (DLCORE_MAX_UPLOAD_MB)."
        )


def _human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:,.1f} MB"
    if n >= 1024:
        return f"{n / 1024:,.1f} KB"
    return f"{n} bytes"


@dataclass
class _Input:
    """The file being read: bytes in memory, or a path read in slices when that is enough."""

    name: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    def head(self, n: int) -> bytes:
        if self.data is not None:
            return self.data[:n]
        assert self.path is not None
        with self.path.open("rb") as fh:
            return fh.read(n)

    def chunks(self, step: int = 16 * 1024 * 1024) -> Iterator[bytes]:
        if self.data is not None:
            for i in range(0, len(self.data), step):
                yield self.data[i : i + step]
            return
        assert self.path is not None
        with self.path.open("rb") as fh:
            while chunk := fh.read(step):
                yield chunk

    def all(self) -> bytes:
        if self.data is None:
            assert self.path is not None
            self.data = self.path.read_bytes()
        return self.data


_NO_VALUE = " \t\r\n,;|\""  # what a line of blank cells is made of
_EMPTY = "The file '{name}' is empty. Upload a file with a header row and at least one data row."


def _read_input(inp: _Input) -> tuple[pd.DataFrame, ReadReport]:
    head = inp.head(_SNIFF_BYTES)
    # bytes.isspace stops at the first non-space byte, so this is cheap on a real file.
    if not head or (head.isspace() and (len(head) == inp.size or inp.all().isspace())):
        raise DataError(_EMPTY.format(name=inp.name))
    if head.startswith(b"PK\x03\x04"):
        data = inp.all()
        if _is_xlsx(data):
            return _read_excel(data, inp.name)
        if inp.name.lower().endswith((".xlsx", ".xlsm")):
            raise _unopenable_workbook(inp.name)
        raise DataError(
            f"The file '{inp.name}' is a ZIP archive, not a table. If it holds a CSV or "
            "Excel file, unzip it and upload that file."
        )
    if head.startswith(_OLE_MAGIC):
        if inp.name.lower().endswith((".xlsx", ".xlsm")):
            # Excel saves a workbook protected with a password in this older container.
            raise _unopenable_workbook(inp.name)
        raise DataError(
            f"The file '{inp.name}' is an old-style Excel workbook (.xls), which is not "
            "supported. Open it in Excel and save it as .xlsx or CSV, then upload that."
        )
    if head.startswith(b"PAR1"):
        return _read_parquet(inp.all(), inp.name)
    return _read_text(inp, head)


def _read_gzip(inp: _Input, limit: int) -> tuple[pd.DataFrame, ReadReport]:
    """A gzip-compressed file (``.csv.gz``, or any name: the content says it), unpacked in slices so
    that a small file which unpacks to far more than the upload limit is refused before it fills
    the memory, then read like the file inside."""
    parts: list[bytes] = []
    size = 0
    source: Any = inp.path.open("rb") if inp.path is not None else io.BytesIO(inp.all())
    try:
        with source, gzip.GzipFile(fileobj=source) as packed:
            while chunk := packed.read(16 * 1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise TooLargeError(
                        f"The file '{inp.name}' is gzip-compressed and unpacks to more than the upload "
                        f"limit of {_human_size(limit)}. Upload a smaller extract (only the rows and "
                        "columns you need, or a Parquet file), or ask your administrator to raise the "
                        "limit (DLCORE_MAX_UPLOAD_MB)."
                    )
                parts.append(chunk)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(
            f"The file '{inp.name}' is gzip-compressed but could not be unpacked: it is damaged or cut "
            "short. Compress it again (or upload the file inside as it is) and upload it again."
        ) from exc
    data = b"".join(parts)
    if data[:2] == _GZIP_MAGIC:
        raise DataError(
            f"The file '{inp.name}' is compressed twice (gzip inside gzip). Unpack it once and upload "
            "the .csv.gz, or the CSV itself."
        )
    df, report = _read_input(_Input(name=inp.name, size=len(data), data=data))
    report.notes.insert(0, f"Unpacked from gzip ({_human_size(inp.size)} to {_human_size(len(data))}).")
    return df, report


def _is_xlsx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


# ---- text -----------------------------------------------------------------------------


def _read_text(inp: _Input, head: bytes) -> tuple[pd.DataFrame, ReadReport]:
    label, encoding, utf16_body = _detect_encoding(inp, head)
    if utf16_body is not None:
        # Everything after this works on an ASCII-compatible byte stream.
        inp = _Input(name=inp.name, size=len(utf16_body), data=utf16_body)
        head = utf16_body[:_SNIFF_BYTES]
    name = inp.name
    bom = len(codecs.BOM_UTF8) if label == "utf-8-sig" else 0
    start, lines_before, sep_hint = _skip_preamble(head, bom)
    text = _head_text(head, start, encoding, complete=inp.size <= len(head))
    if not text.strip():
        raise DataError(_EMPTY.format(name=name))
    if _JSON_START.match(text):
        return _read_json(inp, start, "utf-8-sig" if label == "utf-8-sig" else encoding, label)
    if not text.strip(_NO_VALUE) and not inp.all()[start:].strip(_NO_VALUE.encode()):
        # Rows of bare separators, as Excel exports an empty range: no header, no values.
        raise DataError(
            f"The file '{name}' has only blank rows: its lines hold separators but no values. "
            "Upload a file with a header row and at least one data row."
        )
    delimiter, records = _sniff_delimiter(text, sep_hint)
    title = _title_line(records)
    if title is not None:
        # A report's title above the header ("Quarterly sales report Q3"): the header is the next line.
        after = head.index(b"\n", start) + 1
        blank = _BLANK_LINES.match(head, after)
        start = blank.end() if blank else after
        lines_before += head.count(b"\n", 0, start) - head.count(b"\n", 0, after) + 1
        text = _head_text(head, start, encoding, complete=inp.size <= len(head))
        delimiter, records = _sniff_delimiter(text, sep_hint)
    decimal = _detect_decimal(records, delimiter)
    header = records[0]
    has_header = not _is_headerless(header)
    widths = Counter(len(r) for r in (records[1:] or records))
    n_fields = max(len(header), widths.most_common(1)[0][0])
    raw_names: list[Any] = list(header) if has_header else []
    raw_names += [""] * (n_fields - len(raw_names))

    notes = [_read_as_note(delimiter, decimal)]
    if title is not None:
        notes.append(f"The first line ('{title[:60]}') is a title, not column names: it was skipped, and the "
                     "column names were read from the line below it.")
    if not has_header:
        notes.append(
            "The first row looks like data, not column names, so the columns were named "
            "column_1, column_2, ... Add a header row to name them yourself."
        )
    names, blanks, renames = _unique_names(raw_names)
    if not has_header:
        blanks = set()

    # header=0 with names replaces the header in place; skipping it with skiprows is ~40%
    # slower, so that is kept for a header shorter than the rows.
    replace_header = has_header and len(header) == n_fields
    skip = lines_before + (1 if has_header and not replace_header else 0)
    options: dict[str, Any] = dict(
        sep=delimiter,
        decimal=decimal,
        encoding="utf-8-sig" if label == "utf-8-sig" else encoding,
        header=0 if replace_header else None,
        skiprows=skip or None,
        names=names,
        index_col=False,
        # Blank lines become all-empty rows so they are counted and reported below.
        skip_blank_lines=False,
        engine="c",
    )

    def parse(on_bad_lines: str) -> pd.DataFrame:
        # A path lets pandas parse a UTF-8 file with several threads; bytes are read serially.
        src: Any = str(inp.path) if inp.path is not None else io.BytesIO(inp.all())
        try:
            return pd.read_csv(src, on_bad_lines=on_bad_lines, **options)
        except pd.errors.EmptyDataError:
            return pd.DataFrame(columns=names)

    def parse_checked() -> pd.DataFrame:
        try:
            # "error" first: on_bad_lines="warn" turns off pandas' parallel parsing.
            return parse("error")
        except pd.errors.ParserError as exc:
            if "Expected" not in str(exc):
                raise _parser_error(exc, name) from exc
            return parse("warn")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = parse_checked()
        except UnicodeDecodeError:
            if encoding != "utf-8":
                raise
            # A bad UTF-8 byte after the head: a Windows export with a few accents.
            label = encoding = options["encoding"] = _windows_encoding(inp)
            caught.clear()
            df = parse_checked()
    notes += _encoding_notes(label)
    notes += _bad_line_notes(caught, df, name)

    dayfirst = True if decimal == "," else None
    df, more_notes, thousands = _tidy(df, name, decimal, dayfirst, blanks, renames)
    df, total_note = _drop_totals_row(df)
    more_notes += total_note
    if df.shape[1] == 1:
        more_notes.append(
            "Found a single column. If the file has several, check that its values are "
            "separated by commas, semicolons, tabs or |."
        )
    report = ReadReport(
        format="csv",
        encoding=label,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        notes=notes + more_notes,
    )
    return df, report


# An array of records ([{"a": 1}, ...]), an object, or JSON Lines ({"a": 1} per line). A CSV never
# starts like this: a header such as "[id],[name]" (SQL Server's style) has a letter after "[".
_JSON_START = re.compile(r'\s*(?:\[\s*(?:[\[{"\]\d-]|true|false|null|$)|\{\s*(?:"|}))')
_RECORDS = 'an array of records, one object per row: [{"column": value, ...}, ...]'


def _read_json(inp: _Input, start: int, encoding: str, label: str) -> tuple[pd.DataFrame, ReadReport]:
    """A JSON array of records (or JSON Lines, one record per line) as a table, typed like a CSV's
    columns; any other JSON is refused with a message that says it is JSON and what shape reads."""
    name = inp.name
    text = inp.all()[start:].decode(encoding, errors="replace")
    lines_format = False
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        value = _json_lines(text)
        if value is None:
            raise DataError(
                f"The file '{name}' looks like JSON but could not be read: {exc.msg} at line "
                f"{exc.lineno}, column {exc.colno}. Fix it there, or save the table as CSV, and upload "
                "it again."
            ) from exc
        lines_format = True
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:5]) + (" …" if len(value) > 5 else "")
        inner = [k for k, v in value.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
        hint = f" The records seem to be under {inner[0]!r}: save that array alone." if inner else ""
        raise DataError(
            f"The file '{name}' is JSON holding one object (with {keys or 'no keys'}), not a table. "
            f"A table in JSON is {_RECORDS}.{hint} Save it in that shape, or as CSV, and upload it again."
        )
    if not isinstance(value, list) or not value:
        raise DataError(
            f"The file '{name}' is JSON holding {'an empty array' if value == [] else 'a single value'}: "
            f"no rows to read. A table in JSON is {_RECORDS}. Save it in that shape, or as CSV, and "
            "upload it again."
        )
    others = [v for v in value if not isinstance(v, dict)]
    if others:
        what = {list: "arrays", str: "text values", bool: "true/false values", type(None): "nulls"}.get(
            type(others[0]), "numbers")
        raise DataError(
            f"The file '{name}' is JSON, an array of {len(value):,} items, but {len(others):,} of them "
            f"are {what}, not records. A table in JSON is {_RECORDS}. Save it in that shape, or as "
            "CSV, and upload it again."
        )
    raw = pd.json_normalize(value, sep=".")  # nested objects become "address.city" columns...
    keys = list(dict.fromkeys(k for record in value for k in record))

    def place(col: str) -> int:  # ...kept where their object was, not moved to the end
        return min((i for i, k in enumerate(keys) if col == k or col.startswith(f"{k}.")), default=len(keys))

    raw = raw[sorted(raw.columns, key=place)]
    for col in raw.columns:
        if raw[col].dtype == object:  # a list in a cell is kept as its JSON text
            raw[col] = raw[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    names, blanks, renames = _unique_names([_cell_text(c) for c in raw.columns])
    raw.columns = names
    df, notes, _ = _tidy(raw.infer_objects(), name, ".", None, blanks, renames)
    read_as = (f"Read as JSON Lines: {len(value):,} records, one per line." if lines_format
               else f"Read as JSON: an array of {len(value):,} records.")
    return df, ReadReport(format="json", encoding=label, notes=[read_as, *_encoding_notes(label), *notes])


def _json_lines(text: str) -> list[Any] | None:
    """The records of a JSON Lines file, or None when it is not one."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError:
        return None


def _detect_encoding(inp: _Input, head: bytes) -> tuple[str, str, bytes | None]:
    """Return (label for the report, encoding to parse with, UTF-16 text as UTF-8 or None)."""
    probe = head[:65536]
    utf16 = None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        utf16 = "utf-16"
    elif b"\x00" in probe and len(probe) >= 4:
        # UTF-16 without a byte-order mark: every other byte of ASCII text is NUL.
        even, odd = probe[0::2], probe[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            utf16 = "utf-16-le"
        elif even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            utf16 = "utf-16-be"
    if utf16:
        try:
            text = inp.all().decode(utf16)
        except UnicodeDecodeError as exc:
            raise _not_a_table(inp.name) from exc
        _check_control_chars(text[:65536], inp.name)
        return "utf-16", "utf-8", text.encode("utf-8")
    if b"\x00" in probe:
        raise _not_a_table(inp.name)

    if _head_is_utf8(head, complete=inp.size <= len(head)):
        # Only the head is checked here; the parser decodes the rest strictly and
        # _read_text falls back to a Windows encoding if it meets a bad byte. This saves a
        # whole pass over big UTF-8 files, by far the most common kind.
        label = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        encoding = "utf-8"
    else:
        encoding = label = _windows_encoding(inp)
    _check_control_chars(probe.decode(encoding, errors="replace"), inp.name, c1=label == "latin-1")
    return label, encoding, None


def _head_is_utf8(head: bytes, complete: bool) -> bool:
    try:
        # Not final unless it is the whole file: the head may end inside a character.
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _windows_encoding(inp: _Input) -> str:
    """cp1252 when every byte is defined there, else latin-1 (which accepts any byte)."""
    return "cp1252" if _decodes(inp, "cp1252") else "latin-1"


def _decodes(inp: _Input, encoding: str) -> bool:
    """Whether the whole file decodes strictly, streamed so memory stays flat."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        for chunk in inp.chunks():
            # Plain ASCII (most exports) is valid in every candidate encoding and is checked
            # at memory speed; a multi-byte character cut at the slice edge is not skipped.
            if chunk.isascii() and not decoder.getstate()[0]:
                continue
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_C1_RE = re.compile("[\x80-\x9f]")


def _check_control_chars(text: str, name: str, c1: bool = False) -> None:
    """Raise if the text is full of control characters: it is binary data, not a table."""
    bad = len(_CONTROL_RE.findall(text)) + (len(_C1_RE.findall(text)) if c1 else 0)
    if bad > max(2, 0.01 * len(text)):
        raise _not_a_table(name)


def _not_a_table(name: str) -> DataError:
    return DataError(
        f"The file '{name}' does not look like a table: it contains binary data, not text. "
        f"Upload {_ACCEPTED}."
    )


_BLANK_LINES = re.compile(rb"(?:[ \t]*\r?\n)*")
_SEP_LINE = re.compile(rb"sep=(.)[ \t]*\r?\n")


def _title_line(records: list[list[str]]) -> str | None:
    """The first line when it is a title above the header: one filled cell, while the next line
    and the lines below it hold several (a report exported with its heading)."""
    if len(records) < 3:
        return None
    filled = [cell.strip() for cell in records[0] if cell.strip()]
    widths = Counter(sum(1 for cell in r if cell.strip()) for r in records[1:])
    typical = widths.most_common(1)[0][0]
    below = sum(1 for cell in records[1] if cell.strip())
    if len(filled) == 1 and typical >= 2 and below >= typical and not _is_headerless(records[1]):
        return filled[0]
    return None


_TOTAL_WORDS = re.compile(r"(?i)^\s*(?:grand\s+)?(?:total|totals|sum|summe|gesamt|insgesamt|gesamtsumme|totaal|"
                          r"totale|somme|suma|total\s+g[ée]n[ée]ral)\b")


def _drop_totals_row(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop a last row that sums the rows above it ("TOTAL", "Summe" ...): it is not an example,
    and its numbers would look like an outlier that gives the target away."""
    if len(df) < 3:
        return df, []
    last = df.iloc[-1]
    label = next((str(v) for v in last if isinstance(v, str) and _TOTAL_WORDS.match(v)), None)
    if label is None:
        return df, []
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    for col in numeric:
        above = pd.to_numeric(df[col].iloc[:-1], errors="coerce").sum()
        value = last[col]
        if pd.notna(value) and abs(float(value) - float(above)) <= max(1e-9, 0.005 * abs(float(above))):
            return df.iloc[:-1].reset_index(drop=True), [
                f"The last row ('{label.strip()[:40]}') adds up the rows above it, so it was left out: it is not "
                "an example to learn from."]
    return df, []


def _skip_preamble(head: bytes, bom: int) -> tuple[int, int, str | None]:
    """Byte offset where the header starts, lines before it, and a `sep=` hint."""
    m = _BLANK_LINES.match(head, bom)
    start = m.end() if m else bom
    lines = head.count(b"\n", bom, start)
    sep = _SEP_LINE.match(head, start)
    hint = None
    if sep:
        # Excel writes "sep=;" as the first line to say which delimiter the file uses.
        hint = sep.group(1).decode("latin-1")
        start += sep.end()
        lines += 1
    return start, lines, hint


def _head_text(head: bytes, start: int, encoding: str, complete: bool) -> str:
    chunk = head[start:]
    if not complete:
        # Drop the last, probably cut, line so it does not skew the field counts.
        cut = chunk.rfind(b"\n")
        if cut > 0:
            chunk = chunk[:cut]
    return chunk.decode(encoding, errors="replace")


def _sniff_delimiter(head: str, hint: str | None) -> tuple[str, list[list[str]]]:
    """Pick the delimiter whose field counts are most consistent over the first records.

    csv.Sniffer alone is easily fooled by decimal commas and text in values; counting
    fields per record with a real CSV reader (quotes respected) is not.
    """
    candidates = [hint] if hint else list(_DELIMITERS)
    best: tuple[tuple[Any, ...], str, list[list[str]]] | None = None
    for delim in candidates:
        records: list[list[str]] = []
        try:
            for rec in csv.reader(io.StringIO(head, newline=""), delimiter=delim):
                if any(f.strip() for f in rec):
                    records.append(rec)
                    if len(records) >= _SNIFF_RECORDS:
                        break
        except csv.Error:
            continue
        if not records:
            continue
        widths = [len(r) for r in records]
        mode, freq = Counter(widths).most_common(1)[0]
        score = (mode > 1, round(freq / len(widths), 2), widths[0] == mode, mode)
        if best is None or score > best[0]:
            best = (score, delim, records)
    if best is None:
        # Only reachable with pathological quoting; a plain split still gives one column.
        lines = [ln for ln in head.splitlines() if ln.strip()]
        return hint or ",", [[ln] for ln in lines[:_SNIFF_RECORDS]]
    return best[1], best[2]


_EU_FULL = re.compile(r"[-+]?[0-9]{1,3}(?:\.[0-9]{3})+,[0-9]+")
_US_FULL = re.compile(r"[-+]?[0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+")
_COMMA_DEC = re.compile(r"[-+]?([0-9]*),([0-9]+)")
_DOT_DEC = re.compile(r"[-+]?([0-9]*)\.([0-9]+)")
_DECORATION = re.compile(f"[{_CURRENCY_SYMBOLS}%{_SPACES}()]|{_CODES_PATTERN}")


def _detect_decimal(records: list[list[str]], delimiter: str) -> str:
    """Vote between '.' and ',' as the decimal mark from the values in the first records."""
    if delimiter == ",":
        return "."
    comma = dot = ambiguous_comma = 0
    for rec in records[1:]:
        for raw in rec:
            value = _DECORATION.sub("", raw)
            if not value or len(value) > 30:
                continue
            if _EU_FULL.fullmatch(value):
                comma += 1
            elif _US_FULL.fullmatch(value):
                dot += 1
            elif m := _COMMA_DEC.fullmatch(value):
                if _maybe_thousands(m):
                    ambiguous_comma += 1
                else:
                    comma += 1
            elif (m := _DOT_DEC.fullmatch(value)) and not _maybe_thousands(m):
                dot += 1
    if comma > dot:
        return ","
    if dot > comma:
        return "."
    # A semicolon file is almost always a European export, where "1,234" means 1.234.
    return "," if ambiguous_comma and delimiter == ";" else "."


def _maybe_thousands(m: re.Match[str]) -> bool:
    """ "1,234" or "1.234" may be one thousand and more; "3,14", "0,5" or "12,5" cannot."""
    return len(m.group(2)) == 3 and 1 <= len(m.group(1)) <= 3 and m.group(1) != "0"


def _is_headerless(header: list[str]) -> bool:
    """True when every cell of the first row is a number (and not a row of year labels)."""
    cells = [c.strip() for c in header]
    if not cells or not all(cells):
        return False
    if not all(_NUMBER_RES["."].fullmatch(c) or _NUMBER_RES[","].fullmatch(c) for c in cells):
        return False
    years = all(c.isdigit() and len(c) == 4 and 1900 <= int(c) <= 2100 for c in cells)
    return not years


def _read_as_note(delimiter: str, decimal: str) -> str:
    note = f"Read as {_DELIMITERS[delimiter]}-separated"
    if decimal == ",":
        note += " with decimal commas (European format)"
    return note + "."


def _encoding_notes(label: str) -> list[str]:
    return {
        "cp1252": [
            "Read with the Windows-1252 character set (files saved by Excel on Windows "
            "often use it)."
        ],
        "latin-1": ["Read with the Latin-1 character set."],
        "utf-16": ["Read as UTF-16 text (what Excel writes as 'Unicode text')."],
    }.get(label, [])


def _parser_error(exc: Exception, name: str) -> DataError:
    """A parser failure other than rows with extra values (those are skipped with a note)."""
    m = re.search(r"EOF inside string starting at row (\d+)", str(exc))
    if m:
        return DataError(
            f"'{name}' has a quotation mark that is never closed, near line "
            f"{int(m.group(1)) + 1}. Remove the stray quote or close it, then "
            "upload again."
        )
    return DataError(
        f"The file '{name}' could not be read as a table: its rows are not laid out "
        "consistently. Open it in Excel, save it as CSV or .xlsx and upload it again."
    )


def _bad_line_notes(
    caught: list[warnings.WarningMessage], df: pd.DataFrame, name: str
) -> list[str]:
    """Turn the parser's 'Skipping line N' warnings into one note, or an error if many."""
    lines: list[int] = []
    truncated = False
    for w in caught:
        message = str(w.message)
        lines += [int(n) for n in re.findall(r"Skipping line (\d+)", message)]
        truncated |= "Length of header or names does not match" in message
    notes = []
    if truncated:
        notes.append(
            "The first data row had more values than there are columns; the extra values "
            "were left out."
        )
    if not lines:
        return notes
    if len(lines) > max(10, 0.01 * (len(df) + len(lines))):
        raise DataError(
            f"{len(lines):,} lines of '{name}' (first: line {lines[0]}) have more values "
            "than the table has columns. The file may mix delimiters, or hold values with "
            "the delimiter in them that are not in quotes. Fix those lines, or save the file "
            "from Excel as CSV, and upload again."
        )
    shown = ", ".join(str(n) for n in lines[:5]) + (" ..." if len(lines) > 5 else "")
    notes.append(
        f"Skipped {len(lines)} row(s) with more values than there are columns (line "
        f"{shown}). Check those lines for a stray delimiter."
    )
    return notes


# ---- Excel and Parquet ----------------------------------------------------------------


def _read_excel(data: bytes, name: str) -> tuple[pd.DataFrame, ReadReport]:
    notes: list[str] = []
    with warnings.catch_warnings():
        # openpyxl warns about styles and data validation it ignores; none matter here.
        warnings.simplefilter("ignore")
        try:
            with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as book:
                sheets = book.sheet_names
                if not sheets:
                    raise DataError(
                        f"The workbook '{name}' has no sheets. Add a sheet with a table."
                    )
                # A workbook often has a cover or notes sheet first: read the sheet that
                # holds the most filled cells, which is where the table is.
                parsed = {sheet: book.parse(sheet, header=None) for sheet in sheets}
                chosen = max(sheets, key=lambda sheet: (int(parsed[sheet].count().sum()), -sheets.index(sheet)))
                raw = parsed[chosen]
        except DlcoreError:
            raise
        except Exception as exc:  # broad on purpose: openpyxl raises many kinds on a bad file
            raise _unopenable_workbook(name) from exc
    if len(sheets) > 1:
        notes.append(
            f"The workbook has {len(sheets)} sheets ({', '.join(repr(x) for x in sheets[:6])}); read "
            f"'{chosen}', the one with the most data. To use another sheet, save it as CSV."
        )
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        raise DataError(
            f"Every sheet of '{name}' is empty. Put the table on a sheet, with the column names "
            "in the top row, and upload again."
        )
    names, blanks, renames = _unique_names([_cell_text(v) for v in raw.iloc[0].tolist()])
    df = raw.iloc[1:].reset_index(drop=True)
    df.columns = names
    df = df.infer_objects()
    df, more, _ = _tidy(df, name, ".", None, blanks, renames)
    return df, ReadReport(format="excel", notes=notes + more)


def _unopenable_workbook(name: str) -> DataError:
    return DataError(
        f"The workbook '{name}' could not be opened (it may be damaged or protected "
        "with a password). Open it in Excel, save it again as .xlsx or CSV, and "
        "upload that."
    )


def _read_parquet(data: bytes, name: str) -> tuple[pd.DataFrame, ReadReport]:
    try:
        df = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # broad on purpose: pyarrow raises several kinds on a bad file
        raise DataError(
            f"The file '{name}' looks like a Parquet file but could not be read (it may be "
            "damaged or cut short). Save it again and upload it."
        ) from exc
    if not isinstance(df.index, pd.RangeIndex) or any(n is not None for n in df.index.names):
        # A named index written by pandas is data the analyst expects to see as columns.
        df = df.reset_index()
    names, blanks, renames = _unique_names([_cell_text(c) for c in df.columns])
    df.columns = names
    df, notes, _ = _tidy(df, name, ".", None, blanks, renames)
    return df, ReadReport(format="parquet", notes=notes)


def load_frame(store: Any, dataset_id: str) -> pd.DataFrame:
    """A stored table as it was read and typed at upload (its Parquet copy)."""
    from dlcore import ready

    store.dataset(dataset_id)  # a clear NotFoundError first
    held = ready.fresh(dataset_id)  # uploaded to this process, its copy still being written
    if held is not None:
        return held
    ready.wait(store, dataset_id, rebuild_copy)
    return pd.read_parquet(store.dataset_dir(dataset_id) / "data.parquet")


def write_copy(folder: Path, frame: pd.DataFrame) -> None:
    """Write a dataset's Parquet copy (what workers load) into ``folder``, atomically."""
    from dlcore.store import atomic_write

    with atomic_write(folder / "data.parquet") as path:
        try:
            frame.to_parquet(path, index=False)
        except (TypeError, ValueError, ArithmeticError):
            # A column of mixed Python objects: store it as text rather than refuse the file.
            fixed = frame.copy()
            for col in fixed.columns:
                if fixed[col].dtype == object:
                    fixed[col] = fixed[col].astype("string")
            fixed.to_parquet(path, index=False)


def rebuild_copy(folder: Path) -> None:
    """Write a dataset's Parquet copy again from the file kept as it came (its writer died)."""
    source = next(iter(sorted(folder.glob("source*"))), None)
    if source is None:  # the server stopped before it had kept the upload: nothing to write it from
        raise DataError(
            "This dataset's files were never written: the server stopped while it was saving the upload. "
            "Upload the file again and use the new dataset."
        )
    frame, _ = read_table(source, name=source.name)
    write_copy(folder, frame)
