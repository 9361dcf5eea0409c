"""Tabular data: read an analyst's file, profile its columns, check a target column.

Analysts bring CSV exported from anything (Excel on a European Windows machine, a BI tool,
a bank), Excel workbooks and Parquet. This module turns any of them into a clean
``DataFrame`` plus a ``ReadReport`` that says, in plain words, what was detected and fixed;
then describes every column (``profile_frame``) and checks that a chosen target can be
learned (``infer_task``, ``check_target``, ``leakage_warnings``, ``usable_features``).

Every problem the analyst can fix is raised as ``DataError`` (``TooLargeError`` for size);
no pandas, pyarrow or openpyxl exception escapes ``read_table``.

Example::

    df, report = read_table("sales.csv")
    profile = profile_frame(df)
    task = infer_task(df["churned"])
    warnings = check_target(df, "churned", task) + leakage_warnings(df, "churned", task)
    features = usable_features(profile, "churned")
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlcore import config
from dlcore.errors import DataError, DlcoreError, SpecError, TooLargeError

__all__ = [
    "COLUMN_KINDS",
    "FORMATS",
    "MIN_ROWS",
    "TASKS",
    "ColumnProfile",
    "DatasetProfile",
    "ReadReport",
    "check_target",
    "infer_task",
    "leakage_warnings",
    "profile_frame",
    "read_table",
    "usable_features",
]

FORMATS = ("csv", "excel", "parquet")
COLUMN_KINDS = ("numeric", "categorical", "datetime", "text", "identifier")
TASKS = ("binary", "multiclass", "regression")
MIN_ROWS = 20

_SEED = 0
_ACCEPTED = "a CSV or other delimited text file, an Excel workbook (.xlsx) or a Parquet file"
_SNIFF_BYTES = 256 * 1024
_SNIFF_RECORDS = 200
_SAMPLE = 2000
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Number patterns are built from [0-9] and literal characters (no \d, \s, lookarounds) so
# that pandas can run them in pyarrow's RE2 engine instead of falling back to Python.
_SPACES = " \u00a0\u202f"
_CURRENCY_SYMBOLS = "$€£¥₹"
_CURRENCY_CODES = "usd|eur|gbp|chf|jpy|cad|aud|inr|sek|nok|dkk|pln"
_THOUSANDS = {".": ",'" + _SPACES, ",": ".'" + _SPACES}


def _number_pattern(decimal: str) -> str:
    """Regex for one number written the way people do: `$1,200.50`, `€ 3,50`, `(12)`, `12%`."""
    thou = "[" + _THOUSANDS[decimal] + "]"
    dec = re.escape(decimal)
    exp = "(?:[eE][-+]?[0-9]+)?" if decimal == "." else ""
    num = f"(?:[0-9]{{1,3}}(?:{thou}[0-9]{{3}})+|[0-9]+)(?:{dec}[0-9]*)?{exp}|{dec}[0-9]+{exp}"
    cur = f"(?:[{_CURRENCY_SYMBOLS}]|(?i:{_CURRENCY_CODES}))"
    sp = f"[{_SPACES}]*"
    return f"(?:[-+]?\\(?[-+]?(?:{cur}{sp})?[-+]?(?:{num})(?:{sp}{cur})?{sp}%?\\)?)"


_NUMBER_PATTERNS = {d: _number_pattern(d) for d in (".", ",")}
_NUMBER_RES = {d: re.compile(p) for d, p in _NUMBER_PATTERNS.items()}
_CODES_PATTERN = f"(?i:{_CURRENCY_CODES})"
_ID_NAME_RE = re.compile(
    r"(?i:^(?:id|key|uuid|guid|index|row_?id|row_?number|unnamed: ?[0-9]+)$"
    r"|(?:^|[_ .-])(?:id|key|uuid|guid)$|^id[_ .-])"
    r"|[a-z0-9]I[dD]$"
)


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
    if not text.strip(_NO_VALUE) and not inp.all()[start:].strip(_NO_VALUE.encode()):
        # Rows of bare separators, as Excel exports an empty range: no header, no values.
        raise DataError(
            f"The file '{name}' has only blank rows: its lines hold separators but no values. "
            "Upload a file with a header row and at least one data row."
        )
    delimiter, records = _sniff_delimiter(text, sep_hint)
    decimal = _detect_decimal(records, delimiter)
    header = records[0]
    has_header = not _is_headerless(header)
    widths = Counter(len(r) for r in (records[1:] or records))
    n_fields = max(len(header), widths.most_common(1)[0][0])
    raw_names: list[Any] = list(header) if has_header else []
    raw_names += [""] * (n_fields - len(raw_names))

    notes = [_read_as_note(delimiter, decimal)]
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


def _cell_text(value: Any, decimal: str = ".") -> str:
    """Text of one cell used as a header or in a mixed column."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value).replace(".", decimal)
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    return str(value)


# ---- cleaning shared by all formats ---------------------------------------------------


def _unique_names(raw: list[Any]) -> tuple[list[str], set[str], list[tuple[str, str]]]:
    """Strip header names, name blank ones ``column_N`` and make duplicates ``name_2``."""
    cleaned = [" ".join(str(r).split()) if r is not None else "" for r in raw]
    taken = {c for c in cleaned if c}
    names: list[str] = []
    blanks: set[str] = set()
    renames: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, base in enumerate(cleaned):
        if not base:
            new = f"column_{i + 1}"
            while new in taken or new in seen:
                new += "_"
            blanks.add(new)
        elif base in seen:
            k = 2
            while f"{base}_{k}" in taken or f"{base}_{k}" in seen:
                k += 1
            new = f"{base}_{k}"
            renames.append((base, new))
        else:
            new = base
        seen.add(new)
        names.append(new)
    return names, blanks, renames


def _tidy(
    df: pd.DataFrame,
    name: str,
    decimal: str,
    dayfirst: bool | None,
    blanks: set[str],
    renames: list[tuple[str, str]],
) -> tuple[pd.DataFrame, list[str], str | None]:
    """Strip text, drop empty rows/columns, and turn number/date text into real types."""
    notes: list[str] = []
    for col in df.columns:
        s = df[col]
        if s.dtype == object:
            # Mixed cells: Excel numbers next to text, bools with gaps, or a CSV column the
            # parser typed chunk by chunk. One text column lets the inference below decide.
            s = _as_text(s, decimal)
        if isinstance(s.dtype, pd.StringDtype):
            s = s.str.strip()
            s = s.mask(s.eq(""))
            df[col] = s
        elif isinstance(s.dtype, pd.DatetimeTZDtype):
            # Models need one clock; UTC keeps the order of events from any time zone.
            df[col] = s.dt.tz_convert(None)

    empty_rows = _all_missing_rows(df)
    n_empty = int(empty_rows.sum())
    if n_empty:
        df = df.loc[~empty_rows]
        # Blank rows turned whole-number columns into floats; give them back their type.
        for col in df.columns:
            s = df[col]
            if s.dtype == np.float64 and _whole(s):
                df[col] = s.astype("int64")
        notes.append(f"Removed {n_empty:,} blank row{'s' if n_empty != 1 else ''}.")
    # Only unnamed empty columns (a trailing delimiter, an empty header) go: a named column
    # that is empty is kept, so choosing it as the target says so plainly.
    empty_cols = [c for c in df.columns if c in blanks and df[c].count() == 0]
    if empty_cols and len(empty_cols) < df.shape[1]:
        df = df.drop(columns=empty_cols)
        shown = ", ".join(f"'{c}'" for c in empty_cols if c not in blanks)
        notes.append(
            f"Removed {len(empty_cols)} empty column{'s' if len(empty_cols) != 1 else ''}"
            + (f" ({shown})" if shown else " (from a trailing delimiter or an empty header)")
            + "."
        )
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise DataError(
            f"The file '{name}' has a header but no data rows. Add rows below the header "
            "and upload again."
        )
    named = [c for c in df.columns if c in blanks]
    if named:
        notes.append(
            f"Named {len(named)} column{'s' if len(named) != 1 else ''} that had no header: "
            + ", ".join(f"'{c}'" for c in named)
            + "."
        )
    for old, new in renames:
        if new in df.columns:
            notes.append(f"Renamed duplicate column '{old}' to '{new}'.")

    thousands: str | None = None
    for col in df.columns:
        if isinstance(df[col].dtype, pd.StringDtype):
            converted, col_notes, thou = _infer_text_column(df[col], col, decimal, dayfirst)
            if converted is not None:
                df[col] = converted
            notes += col_notes
            thousands = thousands or thou
    return df.reset_index(drop=True), notes, thousands


def _as_text(s: pd.Series, decimal: str = ".") -> pd.Series:
    """An object column (mixed numbers and text, bools with gaps) as one text column.

    Floats are written back with the file's decimal mark so they parse like their
    neighbours that stayed text.
    """
    values = [None if _missing(v) else _cell_text(v, decimal) for v in s.to_numpy(dtype=object)]
    return pd.Series(values, index=s.index, dtype="str")


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _all_missing_rows(df: pd.DataFrame) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for col in df.columns:
        mask &= df[col].isna().to_numpy()
        if not mask.any():
            break
    return mask


def _to_number(s: pd.Series, decimal: str) -> pd.Series:
    """Parse numbers written as text (`1.234,56`, `$1,200`, `12%`, `(5)`); NaN elsewhere."""
    valid = s.str.fullmatch(_NUMBER_PATTERNS[decimal]).fillna(False).astype(bool)
    t = s.where(valid).str.replace(_CODES_PATTERN, "", regex=True)
    t = t.str.replace(f"[{_CURRENCY_SYMBOLS}{_THOUSANDS[decimal]}%()]", "", regex=True)
    if decimal == ",":
        t = t.str.replace(",", ".", regex=False)
    values = pd.to_numeric(t, errors="coerce").astype("float64")
    negative = s.str.contains("(", regex=False).fillna(False).astype(bool) & valid
    percent = s.str.endswith("%").fillna(False).astype(bool) & valid
    values = values.mask(negative, -values.abs())
    return values.mask(percent, values / 100)


def _infer_text_column(
    s: pd.Series, name: str, decimal: str, dayfirst: bool | None
) -> tuple[pd.Series | None, list[str], str | None]:
    """Decide if a text column is really numbers or dates.

    Returns (the converted column or None to keep it as text, notes, thousands separator).
    """
    present = s.dropna()
    if present.empty:
        return None, [], None
    sample = _sample(present, _SAMPLE)
    if not sample.str.contains("[0-9]", regex=True).any():
        # Words with no digit ("north", "yes") are neither numbers nor dates: most text
        # columns of a big file are categories, and this skips the number and date patterns.
        return None, [], None
    # The cheap sample decides whether the whole column is worth a full conversion.
    style, parsed = decimal, _to_number(sample, decimal)
    if parsed.notna().mean() < 0.95:
        other = _to_number(sample, "," if decimal == "." else ".")
        if other.notna().mean() > parsed.notna().mean():
            style, parsed = ("," if decimal == "." else "."), other
    share = float(parsed.notna().mean())
    if share >= 0.9:
        numbers = _to_number(s, style)
        bad = s.notna() & numbers.isna()
        share = 1 - bad.sum() / len(present)
        if share >= 0.95:
            notes = _number_notes(s, bad, sample, name)
            if _whole(numbers) and not s.str.contains(_fraction_pattern(style)).any():
                # "1", "1.234" (thousands) or "$12" are whole numbers: keep them integers,
                # as the parser would have if nothing had needed cleaning.
                numbers = numbers.astype("int64")
            return numbers, notes, _thousands_seen(sample, style)
        example = s[bad].iloc[0]
    elif share >= 0.2:
        example = sample[parsed.isna()].iloc[0]
    else:
        dates, notes = _to_dates(s, sample, name, dayfirst)
        return dates, notes, None
    return (
        None,
        [
            f"Column '{name}' mixes numbers and words (for example '{example}'), so it was "
            "kept as text. If it should be numbers, fix or clear the values that are not."
        ],
        None,
    )


def _whole(numbers: pd.Series) -> bool:
    """No gaps and only whole numbers small enough to be exact as integers."""
    values = numbers.to_numpy()
    return bool(
        numbers.notna().all()
        and np.all(np.abs(values) < 2**53)
        and np.all(values == np.round(values))
    )


def _fraction_pattern(decimal: str) -> str:
    """Text that makes a number non-whole: a decimal mark between digits, an exponent, %."""
    dec = re.escape(decimal)
    return f"[0-9]{dec}|{dec}[0-9]|[0-9][eE][-+]?[0-9]|%"


def _sample(s: pd.Series, k: int) -> pd.Series:
    """About ``k`` rows drawn with a fixed seed, in their original order.

    Drawing positions with replacement is O(k); ``Series.sample`` shuffles all n rows.
    """
    if len(s) <= k:
        return s
    positions = np.unique(np.random.default_rng(_SEED).integers(0, len(s), k))
    return s.iloc[positions]


def _number_notes(s: pd.Series, bad: pd.Series, sample: pd.Series, name: str) -> list[str]:
    notes = []
    if sample.str.contains(f"[{_CURRENCY_SYMBOLS}]|{_CODES_PATTERN}", regex=True).any():
        notes.append(f"Removed currency signs from '{name}' and read it as numbers.")
    if sample.str.endswith("%").any():
        notes.append(f"Read the percentages in '{name}' as fractions (12% becomes 0.12).")
    n_bad = int(bad.sum())
    if n_bad:
        example = s[bad].iloc[0]
        notes.append(
            f"Column '{name}': {n_bad:,} value{'s' if n_bad != 1 else ''} that are not "
            f"numbers (for example '{example}') were left empty."
        )
    return notes


def _thousands_seen(sample: pd.Series, style: str) -> str | None:
    for sep in _THOUSANDS[style]:
        pattern = f"[0-9]{re.escape(sep)}[0-9]{{3}}(?:[^0-9]|$)"
        if sample.str.contains(pattern, regex=True).any():
            return sep
    return None


_ISO_DATE = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)
_YMD_SLASH = re.compile(r"[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}(?: [0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?")
_DMY = re.compile(
    r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})"
    # Group 5: an optional time, after a space or a "T".
    r"([ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)?"
)


def _to_dates(
    s: pd.Series, sample: pd.Series, name: str, dayfirst: bool | None
) -> tuple[pd.Series | None, list[str]]:
    """Parse a text column as dates when the sample is mostly in one known layout.

    Returns (the dates, or None to keep the column as text, notes). ``dayfirst`` is the
    file's hint for dates like 01/02/2024 (True in a decimal-comma file); the data decide
    whenever a day above 12 shows which field is the day.
    """
    values = [str(v) for v in sample.tolist()]
    notes: list[str] = []
    kwargs: dict[str, Any]
    if _share(values, _ISO_DATE) >= 0.95:
        fast = _iso_dates_fast(s)
        if fast is not None:
            return fast, notes
        # utc=True accepts mixed offsets ("Z", "+02:00"); naive times keep their clock.
        kwargs = {"format": "ISO8601", "utc": True}
    elif _share(values, _YMD_SLASH) >= 0.95:
        kwargs = {"format": "mixed", "dayfirst": False}
    elif _share(values, _DMY) >= 0.95:
        parts = [m for v in values if (m := _DMY.fullmatch(v))]
        first = max(int(m.group(1)) for m in parts)
        second = max(int(m.group(3)) for m in parts)
        if first > 12 and second > 12:
            return None, []
        if first > 12 or second > 12:
            day_first = first > 12
        else:
            day_first = parts[0].group(2) == "." or bool(dayfirst)
            notes.append(
                f"The dates in '{name}' could be day/month or month/day; read them as "
                + ("day/month (European style)." if day_first else "month/day (US style).")
            )
        kwargs = {"format": _dmy_format(parts, day_first) or "mixed", "dayfirst": day_first}
        if kwargs["format"] != "mixed":
            del kwargs["dayfirst"]
    else:
        return None, []
    try:
        dates = pd.to_datetime(s, errors="coerce", **kwargs)
    except (ValueError, TypeError, OverflowError):
        return None, []
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_convert(None)
    present = int(s.notna().sum())
    bad = s.notna() & dates.isna()
    n_bad = int(bad.sum())
    if n_bad > 0.05 * present:
        return None, []
    if n_bad:
        notes.append(
            f"Column '{name}': {n_bad:,} value{'s' if n_bad != 1 else ''} that are not dates "
            f"(for example '{s[bad].iloc[0]}') were left empty."
        )
    return dates, notes


def _dmy_format(parts: list[re.Match[str]], day_first: bool) -> str | None:
    """One strptime format for all sampled dates, or None if they vary (pandas then guesses
    per value, which is slower)."""
    seps = {m.group(2) for m in parts}
    years = {len(m.group(4)) for m in parts}
    times = {
        ""
        if not m.group(5)
        else m.group(5)[0] + ("%H:%M:%S" if m.group(5).count(":") == 2 else "%H:%M")
        for m in parts
    }
    if len(seps) != 1 or len(years) != 1 or len(times) != 1:
        return None
    sep = seps.pop()
    day, month = ("%d", "%m") if day_first else ("%m", "%d")
    return f"{day}{sep}{month}{sep}{'%Y' if years == {4} else '%y'}{times.pop()}"


def _iso_dates_fast(s: pd.Series) -> pd.Series | None:
    """ISO dates through pyarrow's cast, about ten times faster than ``pd.to_datetime``.

    The cast refuses the whole column on any odd value (a typo, a time zone); ``None`` then
    sends the column to pandas, which can leave the odd values empty.
    """
    import pyarrow as pa

    try:
        stamps = pa.array(s, from_pandas=True).cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return pd.Series(stamps.to_numpy(zero_copy_only=False), index=s.index, name=s.name)


def _share(values: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for v in values if pattern.fullmatch(v)) / max(1, len(values))


# --------------------------------------------------------------------------------------
# Profile
# --------------------------------------------------------------------------------------


@dataclass
class ColumnProfile:
    """What one column holds: its kind, gaps, distinct values, summary and a small histogram.

    ``stats`` holds min/max/mean/median/std for numeric columns, min/max and ``top`` for
    datetime, and ``top`` (up to 5 ``{"value", "count"}``) for the others.
    """

    name: str
    kind: str
    dtype: str
    n_missing: int
    missing_share: float
    n_unique: int
    stats: dict[str, Any] = field(default_factory=dict)
    hist_counts: list[int] = field(default_factory=list)
    hist_labels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain numbers and text; NaN becomes None)."""
        return _json_safe(
            {
                "name": self.name,
                "kind": self.kind,
                "dtype": self.dtype,
                "n_missing": self.n_missing,
                "missing_share": self.missing_share,
                "n_unique": self.n_unique,
                "stats": self.stats,
                "hist_counts": self.hist_counts,
                "hist_labels": self.hist_labels,
                "warnings": self.warnings,
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """Rebuild a column profile written by ``to_dict``."""
        return cls(
            name=data["name"],
            kind=data["kind"],
            dtype=data["dtype"],
            n_missing=int(data["n_missing"]),
            missing_share=float(data["missing_share"]),
            n_unique=int(data["n_unique"]),
            stats=dict(data.get("stats", {})),
            hist_counts=list(data.get("hist_counts", [])),
            hist_labels=list(data.get("hist_labels", [])),
            warnings=list(data.get("warnings", [])),
        )


@dataclass
class DatasetProfile:
    """A profile of a whole table.

    ``warnings`` lists the table-level warnings first, then every column's warnings (each
    names its column), so a page can show one list; ``ColumnProfile.warnings`` has them per
    column.
    """

    n_rows: int
    n_cols: int
    columns: list[ColumnProfile]
    warnings: list[str] = field(default_factory=list)

    def column(self, name: str) -> ColumnProfile:
        """The profile of the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        names = _few_names([c.name for c in self.columns])
        raise DataError(f"There is no column named '{name}'. Columns: {names}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain numbers and text; NaN becomes None)."""
        return {
            "n_rows": int(self.n_rows),
            "n_cols": int(self.n_cols),
            "columns": [c.to_dict() for c in self.columns],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        """Rebuild a profile written by ``to_dict``."""
        return cls(
            n_rows=int(data["n_rows"]),
            n_cols=int(data["n_cols"]),
            columns=[ColumnProfile.from_dict(c) for c in data["columns"]],
            warnings=list(data.get("warnings", [])),
        )


_THREADED_CELLS = 1_000_000  # a table this big is profiled two columns at a time (1M x 20: 0.45 s -> 0.27 s)


def profile_frame(df: pd.DataFrame) -> DatasetProfile:
    """Profile every column: kind (one of ``COLUMN_KINDS``), gaps, summary, warnings.

    Expensive checks (text length, numbers hidden in text) run on a seeded sample, so a
    million-row table profiles in about a second.
    """
    n = len(df)

    def one(i: int) -> ColumnProfile:
        return _profile_column(df.iloc[:, i], str(df.columns[i]), n)

    if n * df.shape[1] < _THREADED_CELLS:
        columns = [one(i) for i in range(df.shape[1])]
    else:  # NumPy's sorts and pandas' counts release the GIL: two columns at a time
        with ThreadPoolExecutor(2) as pool:
            columns = list(pool.map(one, range(df.shape[1])))
    table_warnings: list[str] = []
    if n < MIN_ROWS:
        table_warnings.append(
            f"The table has only {n} row{'s' if n != 1 else ''}; at least {MIN_ROWS} are "
            "needed to train and test a model. Add more rows."
        )
    for col in columns:
        table_warnings += col.warnings
    return DatasetProfile(n_rows=n, n_cols=df.shape[1], columns=columns, warnings=table_warnings)


def _profile_column(s: pd.Series, name: str, n: int) -> ColumnProfile:
    n_missing = int(s.isna().sum())
    present = n - n_missing
    if pd.api.types.is_bool_dtype(s.dtype):
        prof = _profile_categorical(s, name, present, force_categorical=True)
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        prof = _profile_datetime(s)
    elif pd.api.types.is_numeric_dtype(s.dtype):
        prof = _profile_numeric(s, name)
    else:
        prof = _profile_categorical(s, name, present)
    kind, n_unique, stats, counts, labels, col_warnings = prof
    if n_unique == 0:
        col_warnings.insert(0, f"Column '{name}' is empty in every row; it will be ignored.")
    elif n_unique == 1 and n_missing == 0:
        col_warnings.insert(
            0, f"Column '{name}' has the same value in every row; it will be ignored."
        )
    elif n and n_missing / n > 0.5:
        col_warnings.append(
            f"Column '{name}' is mostly missing ({_pct(n_missing / n)} of rows are empty); "
            "it may add little. Fill it in or remove it if the gaps are not meaningful."
        )
    return ColumnProfile(
        name=name,
        kind=kind,
        dtype=str(s.dtype),
        n_missing=n_missing,
        missing_share=float(n_missing / n) if n else 0.0,
        n_unique=int(n_unique),
        stats=stats,
        hist_counts=[int(c) for c in counts],
        hist_labels=[str(label) for label in labels],
        warnings=col_warnings,
    )


_ProfileParts = tuple[str, int, dict[str, Any], list[int], list[str], list[str]]


def _profile_numeric(s: pd.Series, name: str) -> _ProfileParts:
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    # One sort gives the distinct count, median, range and histogram; it is several times
    # faster on a million rows than hashing for pd.unique plus np.histogram.
    ordered = np.sort(values[~np.isnan(values)])
    if ordered.size == 0:
        return "numeric", 0, {}, [], [], []
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    n_unique = int(starts.size)
    # Infinities sort to the ends; the finite values are the slice between them.
    finite = ordered[
        np.searchsorted(ordered, -np.inf, side="right") : np.searchsorted(ordered, np.inf)
    ]
    integer_like = pd.api.types.is_integer_dtype(s.dtype) or bool(
        finite.size == ordered.size and np.all(finite == np.round(finite))
    )
    stats: dict[str, Any] = {}
    if finite.size:
        mid = finite.size // 2
        median = finite[mid] if finite.size % 2 else (finite[mid - 1] + finite[mid]) / 2
        stats = {
            "min": float(finite[0]),
            "max": float(finite[-1]),
            "mean": float(finite.mean()),
            "median": float(median),
            "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        }
    col_warnings: list[str] = []
    kind = "numeric"
    if integer_like and n_unique == ordered.size and n_unique > 1:
        lo, hi = float(ordered[0]), float(ordered[-1])
        row_number = lo in (0.0, 1.0) and hi - lo == n_unique - 1 and n_unique >= MIN_ROWS
        # Customer or order numbers under any name: unique whole numbers that fill most of
        # their range (1000..1299). Amounts or incomes that happen to be unique spread thinly.
        dense_code = n_unique >= 50 and hi - lo + 1 <= 2 * n_unique
        if _ID_NAME_RE.search(name) or row_number or dense_code:
            kind = "identifier"
            col_warnings.append(_identifier_warning(name))
    if kind == "identifier" or finite.size == 0:
        return kind, n_unique, stats, [], [], col_warnings
    if integer_like and n_unique <= 20:
        counts = np.diff(np.r_[starts, ordered.size])
        labels = [_fmt_num(v) for v in ordered[starts]]
        return kind, n_unique, stats, counts.tolist(), labels, col_warnings
    bins = min(20, n_unique)
    edges = np.linspace(finite[0], finite[-1], bins + 1)
    # Bins are [left, right) like np.histogram, the last one closed on the right.
    cuts = np.searchsorted(finite, edges[1:-1], side="left")
    counts = np.diff(np.r_[0, cuts, finite.size])
    labels = [f"{_fmt_num(a)} to {_fmt_num(b)}" for a, b in itertools.pairwise(edges)]
    return kind, n_unique, stats, counts.tolist(), labels, col_warnings


def _profile_datetime(s: pd.Series) -> _ProfileParts:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert(None)
    present = s.dropna()
    if present.empty:
        return "datetime", 0, {}, [], [], []
    n_unique = int(present.nunique())
    ms = present.to_numpy().astype("datetime64[ms]").astype("int64")
    lo, hi = int(ms.min()), int(ms.max())
    # Day labels unless the whole range is within two days; numpy formats any year, where
    # Timestamp.strftime fails outside years 1-9999 (seen in damaged files).
    width = 10 if hi - lo > 2 * 86_400_000 else 16
    stats: dict[str, Any] = {
        "min": str(np.datetime64(lo, "ms")),
        "max": str(np.datetime64(hi, "ms")),
        "top": _top_values(present.value_counts().head(5)),
    }
    counts, edges = np.histogram(ms, bins=min(20, max(1, n_unique)))
    labels = [str(np.datetime64(int(e), "ms"))[:width].replace("T", " ") for e in edges[:-1]]
    return "datetime", n_unique, stats, counts.tolist(), labels, []


def _profile_categorical(
    s: pd.Series, name: str, present: int, force_categorical: bool = False
) -> _ProfileParts:
    try:
        counts = s.value_counts(dropna=True)
    except TypeError:
        # Unhashable cells (lists from a Parquet file) are compared by their text.
        s = s.map(lambda v: v if _missing(v) else str(v))
        counts = s.value_counts(dropna=True)
    n_unique = len(counts)
    stats = {"top": _top_values(counts.head(5))}
    if n_unique == 0:
        return "categorical", 0, stats, [], [], []
    col_warnings: list[str] = []
    kind = "categorical"
    if not force_categorical:
        sample = _sample(s.dropna(), 10_000)
        text = sample.astype("str")
        mean_len = float(text.str.len().mean())
        spaced = float(text.str.contains(" ", regex=False).mean())
        unique_share = n_unique / present
        if mean_len > 30 and spaced >= 0.5 and unique_share >= 0.5:
            kind = "text"
            col_warnings.append(
                f"Column '{name}' holds free text (sentences, comments); it will be ignored "
                "because the tabular models use numbers and categories."
            )
        elif (
            unique_share >= 0.95
            and n_unique > 1
            and mean_len <= 40
            and spaced < 0.5
            and (present >= MIN_ROWS or _ID_NAME_RE.search(name))
        ):
            kind = "identifier"
            col_warnings.append(_identifier_warning(name))
        else:
            if n_unique > 100 and unique_share > 0.5:
                col_warnings.append(
                    f"Column '{name}' has {n_unique:,} different values, most of them seen "
                    "only once or twice; the models will learn little from it. Group rare "
                    "values or remove it."
                )
            mixed = _mixed_warning(text, name)
            if mixed:
                col_warnings.append(mixed)
    if kind != "categorical":
        return kind, n_unique, stats, [], [], col_warnings
    top = counts.head(20)
    return kind, n_unique, stats, top.tolist(), [str(v) for v in top.index], col_warnings


def _mixed_warning(text: pd.Series, name: str) -> str | None:
    numbers = _to_number(text, ".")
    share = float(numbers.notna().mean())
    if share < 0.2 or share >= 0.95:
        return None
    example = text[numbers.isna()].iloc[0]
    return (
        f"Column '{name}' mixes numbers and words (for example '{example}'); it is treated "
        "as categories. If it should be numbers, fix or clear the values that are not."
    )


def _identifier_warning(name: str) -> str:
    return (
        f"Column '{name}' looks like an identifier (a different value in every row); it "
        "will be ignored because it cannot help predict new rows."
    )


def _top_values(counts: pd.Series) -> list[dict[str, Any]]:
    return [{"value": _label(v), "count": int(c)} for v, c in counts.items()]


def _label(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value if isinstance(value, (int, float)) else str(value)


def _fmt_num(x: float) -> str:
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _pct(share: float) -> str:
    if 0 < share < 0.01:
        return f"{share * 100:.1f}%"
    return f"{share * 100:.0f}%"


def _few_names(names: list[Any], limit: int = 8) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


# --------------------------------------------------------------------------------------
# Target
# --------------------------------------------------------------------------------------


def infer_task(y: pd.Series) -> str:
    """Guess the task for a target column: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Numbers with more than 20 distinct values (or non-whole numbers with more than 10) are a
    regression; otherwise 2 values is binary and 3 to 50 is multiclass. Raises ``DataError``
    for an empty or one-value column, dates, or text with more than 50 distinct values.
    """
    name = y.name
    present = y.dropna()
    if present.empty:
        raise _empty_target(name)
    if pd.api.types.is_datetime64_any_dtype(present.dtype):
        raise DataError(
            f"The target column '{name}' holds dates, which cannot be predicted here. Pick "
            "a column of numbers or categories as the target."
        )
    n_unique = int(present.nunique())
    if n_unique == 1:
        raise _one_value_target(name, present.iloc[0])
    if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(
        present.dtype
    ):
        values = present.to_numpy(dtype="float64")
        whole = bool(np.all(values == np.round(values)))
        if n_unique > 20 or (not whole and n_unique > 10):
            return "regression"
        return "binary" if n_unique == 2 else "multiclass"
    if n_unique == 2:
        return "binary"
    if n_unique <= 50:
        return "multiclass"
    raise DataError(
        f"The target column '{name}' holds {n_unique:,} different values, too many to "
        "predict as categories (50 at most). If they are amounts, make the column numbers "
        "and predict it as a regression; otherwise pick another target."
    )


def check_target(df: pd.DataFrame, target: str, task: str) -> list[str]:
    """Check that ``target`` can be learned as ``task``; return warnings, raise on blockers.

    Raises ``DataError`` when the column is missing, empty, has one value, has fewer than
    ``MIN_ROWS`` rows with a value, is not numbers for a regression, or has a class seen in
    only one row. Returns plain-language warnings (rows without a target, strong imbalance).
    """
    _check_task(task)
    y = _target_column(df, target)
    n_missing = int(y.isna().sum())
    present = y.dropna()
    if present.empty:
        raise _empty_target(target)
    if len(present) < MIN_ROWS:
        raise DataError(
            f"Only {len(present)} {'rows have' if len(present) != 1 else 'row has'} a value in the "
            f"target column '{target}'; at least {MIN_ROWS} are needed to train and test a "
            "model. Add more rows or pick another target."
        )
    out: list[str] = []
    if task == "regression":
        numbers = _target_numbers(present, target)
        if numbers.nunique() == 1:
            raise _one_value_target(target, present.iloc[0])
        n_distinct = int(numbers.nunique())
        if n_distinct <= 10:
            out.append(
                f"The target '{target}' has only {n_distinct} different values; predicting "
                "it as categories (binary or multiclass) may fit better."
            )
    else:
        counts = present.value_counts()
        if len(counts) == 1:
            raise _one_value_target(target, counts.index[0])
        if task == "binary" and len(counts) > 2:
            raise DataError(
                f"A two-value (binary) prediction needs exactly two values in '{target}', but "
                f"it has {len(counts)}: {_few_names(list(counts.index), 5)}. Choose "
                "multiclass instead, or pick another target."
            )
        if len(counts) > 50:
            raise DataError(
                f"The target '{target}' has {len(counts):,} different values, too many to "
                "predict as categories (50 at most). Predict it as a regression if it holds "
                "amounts, or pick another target."
            )
        rare = counts[counts < 2]
        if len(rare):
            which = (
                f"The value {_few_names(list(rare.index), 5)} of the target '{target}' appears"
                if len(rare) == 1
                else f"The values {_few_names(list(rare.index), 5)} of the target '{target}' "
                "each appear"
            )
            raise DataError(
                f"{which} in only one row; every value needs at least 2 rows so it can be in "
                "both the training and the test data. Remove those rows, merge the value "
                "with a similar one, or add more rows."
            )
        smallest, share = counts.index[-1], counts.iloc[-1] / len(present)
        limit = 0.10 if task == "binary" else 0.05
        if share < limit:
            out.append(
                f"The target is imbalanced: only {_pct(share)} of rows are '{smallest}'. "
                f"Accuracy will look good even for a model that never predicts '{smallest}'; "
                "compare the models on ROC AUC or balanced accuracy."
            )
    if n_missing:
        out.insert(
            0,
            f"{n_missing:,} row{'s have' if n_missing != 1 else ' has'} no target value and "
            "will be left out.",
        )
    return out


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise SpecError(f"The task '{task}' is not one of {', '.join(TASKS)}. Pick one of them.")


def _target_column(df: pd.DataFrame, target: str) -> pd.Series:
    if target not in df.columns:
        raise DataError(
            f"There is no column named '{target}' to use as the target. Available columns: "
            f"{_few_names(list(df.columns))}. Pick one of them."
        )
    y = df[target]
    return y.iloc[:, 0] if isinstance(y, pd.DataFrame) else y


def _empty_target(name: Any) -> DataError:
    return DataError(
        f"The target column '{name}' is empty in every row. Pick a column that has values, "
        "or fill it in and upload again."
    )


def _one_value_target(name: Any, value: Any) -> DataError:
    return DataError(
        f"The target column '{name}' has the same value ('{value}') in every row, so there "
        "is nothing to predict. Pick another target, or add rows with other values."
    )


def _target_numbers(present: pd.Series, target: str) -> pd.Series:
    """The target as floats for a regression, or a DataError naming a value that is not."""
    if pd.api.types.is_numeric_dtype(present.dtype) and not pd.api.types.is_bool_dtype(
        present.dtype
    ):
        return present.astype("float64")
    if pd.api.types.is_bool_dtype(present.dtype) or pd.api.types.is_datetime64_any_dtype(
        present.dtype
    ):
        bad = present
    else:
        numbers = pd.to_numeric(present.astype("str"), errors="coerce")
        bad = present[numbers.isna()]
        if bad.empty:
            # Numbers stored as text (a frame not read by read_table) are still numbers.
            return numbers.astype("float64")
    example = bad.iloc[0]
    raise DataError(
        f"A regression needs numbers in the target column '{target}', but it holds "
        f"'{example}' ({len(bad):,} value{'s' if len(bad) != 1 else ''} are not numbers). "
        "Predict it as categories (binary or multiclass) instead, or fix those values."
    )


def leakage_warnings(df: pd.DataFrame, target: str, task: str) -> list[str]:
    """Warn about columns that give the target away (a copy, or a near-perfect predictor).

    Such a column makes every model look far better than it will be on new data, typically
    because its value is only known after the outcome. Runs on at most 50,000 rows (seeded).
    """
    _check_task(task)
    y_all = _target_column(df, target)
    keep = y_all.notna().to_numpy()
    data = df.loc[keep]
    if len(data) > 50_000:
        data = data.sample(50_000, random_state=_SEED)
    y = _target_column(data, target)
    if y.nunique() < 2:
        return []
    out = []
    for i, col in enumerate(data.columns):
        if col == target:
            continue
        reason = _leak_reason(data.iloc[:, i], y, task)
        if reason:
            out.append(
                f"Column '{col}' {reason}, so it gives the target away. It will likely make "
                "the model look better than it is; remove it if its value is only known after "
                "the outcome."
            )
    return out


def _leak_reason(x: pd.Series, y: pd.Series, task: str) -> str | None:
    mask = x.notna().to_numpy()
    if mask.sum() < 10:
        return None
    numeric_x = pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(x.dtype)
    numeric_y = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    xs, ys = x[mask], y[mask]
    if numeric_x and numeric_y:
        same = np.isclose(xs.to_numpy(dtype="float64"), ys.to_numpy(dtype="float64")).mean()
    else:
        same = (xs.astype("str").to_numpy() == ys.astype("str").to_numpy()).mean()
    if same >= 0.99 and mask.mean() >= 0.5:
        return (
            "is a copy of the target"
            if same == 1
            else (f"is almost a copy of the target (the same in {_pct(same)} of rows)")
        )
    if numeric_x and task == "binary":
        auc = _single_feature_auc(xs.to_numpy(dtype="float64"), ys)
        if auc is not None and auc > 0.99:
            return f"on its own predicts the target almost perfectly (ROC AUC {auc:.3f})"
    if numeric_x and task == "regression" and numeric_y:
        a, b = xs.to_numpy(dtype="float64"), ys.to_numpy(dtype="float64")
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() >= 10 and a[ok].std() > 0 and b[ok].std() > 0:
            corr = float(np.corrcoef(a[ok], b[ok])[0, 1])
            if abs(corr) > 0.99:
                return f"moves almost exactly with the target (correlation {corr:.3f})"
    groups = x.astype("str").where(x.notna(), "(empty)")
    n_groups = groups.nunique()
    if 1 < n_groups <= min(1000, len(x) / 10):
        if task == "regression":
            if numeric_y and _eta_squared(groups, y.astype("float64")) > 0.99:
                return "fixes the target almost exactly (each value goes with one target value)"
        else:
            purity, baseline = _purity(groups, y)
            # Compare with always guessing the commonest class, so a 99%-one-class target
            # does not flag every column.
            if purity >= 0.99 and (1 - purity) <= 0.1 * (1 - baseline):
                return (
                    "maps almost one-to-one onto the target values (its value fixes the "
                    f"target in {_pct(purity)} of rows)"
                )
    return None


def _single_feature_auc(x: np.ndarray, y: pd.Series) -> float | None:
    """ROC AUC of one column on its own, from its ranks (the Mann-Whitney U, ties averaged:
    the same value as scikit-learn's ``roc_auc_score``). It runs once per column: the input
    checks of ``roc_auc_score`` took over 10 s on a file of 1,000 columns and 40 rows."""
    ok = np.isfinite(x)
    labels = y.to_numpy()[ok]
    classes = pd.unique(labels)
    if len(classes) != 2 or ok.sum() < 10:
        return None
    positive = labels == classes[0]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = pd.Series(x[ok]).rank().to_numpy()
    auc = float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return max(auc, 1 - auc)


def _purity(groups: pd.Series, y: pd.Series) -> tuple[float, float]:
    table = pd.crosstab(groups.to_numpy(), y.astype("str").to_numpy())
    n = table.to_numpy().sum()
    return float(table.max(axis=1).sum() / n), float(table.sum(axis=0).max() / n)


def _eta_squared(groups: pd.Series, y: pd.Series) -> float:
    ok = y.notna().to_numpy() & np.isfinite(y.to_numpy(dtype="float64", na_value=np.nan))
    values = y.to_numpy(dtype="float64", na_value=np.nan)[ok]
    g = groups.to_numpy()[ok]
    total = ((values - values.mean()) ** 2).sum()
    if total == 0:
        return 0.0
    means = pd.Series(values).groupby(g).transform("mean").to_numpy()
    return float(1 - ((values - means) ** 2).sum() / total)


def usable_features(profile: DatasetProfile, target: str) -> list[str]:
    """Columns a model can learn from: all but the target, identifiers, free text,
    constant and fully-missing columns."""
    return [
        c.name
        for c in profile.columns
        if c.name != target
        and c.kind in ("numeric", "categorical", "datetime")
        and not _constant(c)
    ]


def _constant(col: ColumnProfile) -> bool:
    """Empty, or one value in every row. One value plus gaps is kept: a column of "x" marks
    and blanks, as Excel check lists are often written, says something in each row."""
    return col.n_unique == 0 or (col.n_unique == 1 and col.n_missing == 0)
