"""Tests for dlcore.tables: reading messy files, profiling columns, checking targets.

Every tricky file is made here, in bytes or in tmp_path, so each test shows exactly what
an analyst's file looks like and what we expect back.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import zipfile
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from dlcore.errors import DataError, SpecError, TooLargeError
from dlcore.tables import (
    COLUMN_KINDS,
    MIN_ROWS,
    DatasetProfile,
    ReadReport,
    check_target,
    infer_task,
    leakage_warnings,
    profile,
    profile_frame,
    read_table,
    usable_features,
)


def read(data: bytes, **kwargs):
    return read_table(data, **kwargs)


def notes_text(report: ReadReport) -> str:
    return " ".join(report.notes)


# ---- delimiters, decimals, thousands ----------------------------------------------------


def test_semicolon_with_decimal_comma():
    df, report = read(b"name;price;qty\nA;3,14;1\nB;2,5;2\nC;10;3\n")
    assert df["price"].tolist() == [3.14, 2.5, 10.0]
    assert df["qty"].tolist() == [1, 2, 3]
    assert pd.api.types.is_integer_dtype(df["qty"])
    assert (report.format, report.delimiter, report.decimal) == ("csv", ";", ",")
    assert "semicolon-separated with decimal commas (European format)" in notes_text(report)


@pytest.mark.parametrize("sep, word", [("\t", "tab"), ("|", "pipe"), (",", "comma")])
def test_other_delimiters(sep, word):
    text = sep.join(["city", "sales", "note"]) + "\n"
    text += sep.join(["Paris", "1.5", "a, b"]) + "\n" if sep != "," else 'Paris,1.5,"a, b"\n'
    text += sep.join(["Rome", "2", "c"]) + "\n"
    df, report = read(text.encode())
    assert list(df.columns) == ["city", "sales", "note"]
    assert df["sales"].tolist() == [1.5, 2.0]
    assert df["note"].tolist() == ["a, b", "c"]
    assert report.delimiter == sep
    assert f"{word}-separated" in report.notes[0]


def test_thousands_european_style():
    df, report = read(b"item;price\nA;1.234,56\nB;3,5\n")
    assert df["price"].tolist() == [1234.56, 3.5]
    assert report.thousands == "."


def test_thousands_us_style_in_quotes():
    df, report = read(b'item,price\nA,"1,234.56"\nB,3.5\n')
    assert df["price"].tolist() == [1234.56, 3.5]
    assert report.thousands == ","


def test_thousands_with_spaces():
    df, _ = read(b"item;amount\nA;1 234\nB;12 345 678,5\nC;7\n")
    assert df["amount"].tolist() == [1234.0, 12345678.5, 7.0]


def test_currency_percent_and_parentheses():
    data = b'item,price,rate,loss\nA,"$1,200.50",12%,(5)\nB,$3.00,7.5%,10\nC,12 EUR,100%,(0.5)\n'
    df, report = read(data)
    assert df["price"].tolist() == [1200.50, 3.0, 12.0]
    assert df["rate"].tolist() == pytest.approx([0.12, 0.075, 1.0])
    assert df["loss"].tolist() == [-5.0, 10.0, -0.5]
    text = notes_text(report)
    assert "currency signs from 'price'" in text
    assert "percentages in 'rate'" in text


def test_euro_sign_with_decimal_comma():
    df, _ = read("item;price\nA;€ 3,50\nB;€ 1.200,00\nC;4 €\n".encode())
    assert df["price"].tolist() == [3.5, 1200.0, 4.0]


# ---- encodings ----------------------------------------------------------------------------


def test_utf8_bom_is_not_part_of_the_first_header():
    df, report = read("\ufeffcity,sales\nZürich,1\nOslo,2\n".encode("utf-8"))
    assert list(df.columns) == ["city", "sales"]
    assert df["city"].tolist() == ["Zürich", "Oslo"]
    assert report.encoding == "utf-8-sig"


def test_windows_1252_with_accents_in_headers_and_text():
    text = "Café;Prix €;Catégorie\nCrème brûlée;3,50;Dessert\nThé;2,00;Boisson\n"
    df, report = read(text.encode("cp1252"))
    assert list(df.columns) == ["Café", "Prix €", "Catégorie"]
    assert df["Café"].tolist() == ["Crème brûlée", "Thé"]
    assert df["Prix €"].tolist() == [3.5, 2.0]
    assert report.encoding == "cp1252"
    assert "Windows-1252" in notes_text(report)


def test_windows_1252_byte_after_a_long_utf8_looking_head():
    # The head is plain ASCII; the only accented byte is far beyond it.
    rows = "".join(f"{i};plain\n" for i in range(40_000))
    data = ("id;label\n" + rows + "40000;déjà vu\n").encode("cp1252")
    assert len(data) > 300_000
    df, report = read(data)
    assert report.encoding == "cp1252"
    assert df["label"].iloc[-1] == "déjà vu"
    assert len(df) == 40_001


def test_latin1_fallback_for_bytes_undefined_in_cp1252():
    df, report = read(b"name;v\nA\x81B;1\nC;2\n")
    assert report.encoding == "latin-1"
    assert df["name"].tolist() == ["A\x81B", "C"]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le"])
def test_utf16_with_and_without_bom(codec):
    text = "name\tscore\nÅsa\t1,5\nBo\t2,5\n"
    df, report = read(text.encode(codec))
    assert df["name"].tolist() == ["Åsa", "Bo"]
    assert df["score"].tolist() == [1.5, 2.5]
    assert report.encoding == "utf-16"


# ---- blank rows, headers, empty columns ---------------------------------------------------


def test_blank_lines_and_all_empty_rows_are_removed():
    data = b"\n\na;b;c\n1;2;x\n\n;;\n  \n3;4;y\n;;\n"
    df, report = read(data)
    assert df.to_dict("list") == {"a": [1, 3], "b": [2, 4], "c": ["x", "y"]}
    # Rows that were all-empty must not leave the whole-number columns as floats.
    assert pd.api.types.is_integer_dtype(df["a"])
    assert "Removed 4 blank rows." in report.notes


def test_duplicate_blank_and_padded_headers():
    df, report = read(b" price ;;price;price\n1;2;3;4\n5;6;7;8\n")
    assert list(df.columns) == ["price", "column_2", "price_2", "price_3"]
    assert df["price_2"].tolist() == [3, 7]
    text = notes_text(report)
    assert "Renamed duplicate column 'price' to 'price_2'." in text
    assert "'column_2'" in text


def test_trailing_delimiter_leaves_no_empty_column():
    df, report = read(b"a,b,\n1,2,\n3,4,\n")
    assert list(df.columns) == ["a", "b"]
    assert df["b"].tolist() == [2, 4]
    assert "Removed 1 empty column" in notes_text(report)
    assert "column_3" not in notes_text(report)


def test_trailing_delimiter_on_data_rows_only():
    df, _ = read(b"a,b\n1,2,\n3,4,\n")
    assert df.to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_named_empty_column_is_kept_so_the_profile_can_say_it_is_empty():
    df, _ = read(b"a,unused,b\n1,,2\n3,,4\n")
    assert list(df.columns) == ["a", "unused", "b"]
    assert df["unused"].isna().all()


def test_excel_sep_line_sets_the_delimiter():
    df, report = read(b"sep=;\na;b\n1,5;x\n2,5;y\n")
    assert df["a"].tolist() == [1.5, 2.5]
    assert report.delimiter == ";"


def test_first_row_of_numbers_is_data_not_a_header():
    df, report = read(b"1,2.5,3\n4,5.5,6\n")
    assert list(df.columns) == ["column_1", "column_2", "column_3"]
    assert df["column_2"].tolist() == [2.5, 5.5]
    assert "looks like data" in notes_text(report)


def test_text_values_are_stripped():
    df, _ = read(b"color,n\n red ,1\nblue  ,2\n   ,3\n")
    assert df["color"].tolist()[:2] == ["red", "blue"]
    assert pd.isna(df["color"].iloc[2])


# ---- ragged rows and broken quoting ---------------------------------------------------------


def test_a_few_rows_with_extra_values_are_skipped_with_a_note():
    data = b"a,b\n" + b"1,2\n" * 30 + b"3,4,5\n" + b"6,7\n"
    df, report = read(data)
    assert len(df) == 31
    assert "line 32" in notes_text(report)


def test_many_rows_with_extra_values_are_an_error_naming_the_first_line():
    data = b"a,b\n" + b"1,2\n" * 30 + b"3,4,5,6\n" * 12 + b"1,2\n" * 5
    with pytest.raises(DataError, match="first: line 32"):
        read(data)


def test_unclosed_quote_is_a_clear_error():
    with pytest.raises(DataError, match="quotation mark that is never closed"):
        read(b'a,b\n1,2\n"oops,3\n4,5\n')


# ---- types: numbers, dates, mixed ---------------------------------------------------------


def test_day_first_dates_are_detected():
    df, _ = read(b"when,v\n31/12/2024,1\n01/02/2024,2\n15/06/2023,3\n")
    assert pd.api.types.is_datetime64_any_dtype(df["when"])
    assert df["when"].tolist() == [
        pd.Timestamp("2024-12-31"),
        pd.Timestamp("2024-02-01"),
        pd.Timestamp("2023-06-15"),
    ]


def test_month_first_dates_are_detected():
    df, _ = read(b"when,v\n12/31/2024,1\n01/02/2024,2\n")
    assert df["when"].tolist() == [pd.Timestamp("2024-12-31"), pd.Timestamp("2024-01-02")]


def test_ambiguous_dates_in_a_european_file_are_day_first_with_a_note():
    df, report = read(b"when;v\n01/02/2024;1,5\n03/04/2024;2,5\n")
    assert df["when"].tolist() == [pd.Timestamp("2024-02-01"), pd.Timestamp("2024-04-03")]
    assert "day/month" in notes_text(report)


def test_iso_dates_with_times():
    df, _ = read(b"when,v\n2024-12-31 13:45,1\n2024-01-02 08:00,2\n")
    assert df["when"].tolist() == [
        pd.Timestamp("2024-12-31 13:45"),
        pd.Timestamp("2024-01-02 08:00"),
    ]


def test_dotted_european_dates():
    df, _ = read(b"when;v\n31.12.2024;1\n01.02.2024;2\n")
    assert df["when"].tolist() == [pd.Timestamp("2024-12-31"), pd.Timestamp("2024-02-01")]


def test_mixed_numbers_and_words_stay_text_with_a_note():
    values = ["12", "15", "n/a yet", "20", "pending", "7", "30", "unknown", "1", "2"]
    data = ("code,v\n" + "".join(f"{v},{i}\n" for i, v in enumerate(values))).encode()
    df, report = read(data)
    assert pd.api.types.is_string_dtype(df["code"])
    text = notes_text(report)
    assert "Column 'code' mixes numbers and words" in text
    assert any(f"'{w}'" in text for w in ("n/a yet", "pending", "unknown"))


def test_mostly_numbers_become_numeric_and_the_odd_value_is_named():
    values = [str(i) for i in range(40)] + ["ask Bob"]
    data = ("amount\n" + "\n".join(values) + "\n").encode()
    df, report = read(data)
    assert pd.api.types.is_float_dtype(df["amount"])
    assert df["amount"].iloc[:3].tolist() == [0.0, 1.0, 2.0]
    assert pd.isna(df["amount"].iloc[-1])
    assert "'ask Bob'" in notes_text(report)


def test_categorical_text_stays_str_dtype():
    df, _ = read(b"grade,v\nA,1\nB,2\nA,3\n")
    assert isinstance(df["grade"].dtype, pd.StringDtype)


# ---- Excel and Parquet, detected by content -----------------------------------------------


def test_xlsx_named_csv_is_read_as_excel_first_sheet():
    frame = pd.DataFrame({"price": [1.5, 2.5], "name": ["a", "b"]})
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="Sales")
        pd.DataFrame({"x": [9]}).to_excel(writer, index=False, sheet_name="Notes")
    df, report = read(buf.getvalue(), name="sales.csv")
    assert report.format == "excel"
    assert df.to_dict("list") == {"price": [1.5, 2.5], "name": ["a", "b"]}
    assert "2 sheets" in notes_text(report) and "'Sales'" in notes_text(report)
    assert report.delimiter is None and report.encoding is None


def test_xlsx_with_mixed_cells_duplicate_headers_and_text_numbers():
    rows = [["id", "amount", "amount"], [1, 10, "1,234.5"], [2, "ask Bob", "2"], [3, 30, "3"]]
    buf = io.BytesIO()
    pd.DataFrame(rows).to_excel(buf, index=False, header=False)
    df, report = read(buf.getvalue())
    assert list(df.columns) == ["id", "amount", "amount_2"]
    assert df["amount_2"].tolist() == [1234.5, 2.0, 3.0]
    assert df["amount"].tolist() == ["10", "ask Bob", "30"]
    assert "'amount' mixes numbers and words (for example 'ask Bob')" in notes_text(report)


def test_parquet_named_csv_is_read_as_parquet(tmp_path):
    frame = pd.DataFrame(
        {"a": [1, 2], "b": ["x", "y"], "when": pd.to_datetime(["2024-01-01", "2024-02-01"])}
    )
    path = tmp_path / "upload.csv"
    frame.to_parquet(path)
    df, report = read_table(path)
    assert report.format == "parquet"
    assert df["a"].tolist() == [1, 2]
    assert df["b"].tolist() == ["x", "y"]
    assert pd.api.types.is_datetime64_any_dtype(df["when"])


# ---- files that are not tables -------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\r\n\t ", "\ufeff".encode()])
def test_empty_file(data):
    with pytest.raises(DataError, match="is empty"):
        read(data, name="blank.csv")


def test_header_only():
    with pytest.raises(DataError, match="has a header but no data rows"):
        read(b"a;b;c\n", name="h.csv")


def test_header_and_only_blank_rows():
    with pytest.raises(DataError, match="has a header but no data rows"):
        read(b"a;b\n;\n\n")


def test_binary_junk_named_csv():
    junk = bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    with pytest.raises(DataError, match="does not look like a table") as info:
        read(junk, name="photo.csv")
    assert "photo.csv" in str(info.value) and "Parquet" in str(info.value)


def test_legacy_xls_is_refused_with_the_fix():
    with pytest.raises(DataError, match=r"old-style Excel workbook \(\.xls\)") as info:
        read(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, name="old.xls")
    assert "save it as .xlsx or CSV" in str(info.value)


def test_zip_that_is_not_a_workbook():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="ZIP archive"):
        read(buf.getvalue())


def test_damaged_workbook_and_parquet_become_data_errors():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<nonsense")
        zf.writestr("xl/workbook.xml", "<nonsense")
    with pytest.raises(DataError, match="could not be opened"):
        read(buf.getvalue(), name="book.xlsx")
    good = io.BytesIO()
    pd.DataFrame({"a": range(100)}).to_parquet(good)
    with pytest.raises(DataError, match="Parquet"):
        read(good.getvalue()[:60])


@pytest.mark.slow
def test_damaged_files_only_ever_raise_data_errors():
    """Seeded mutations of good files: whatever breaks, the analyst gets a DataError."""
    frame = pd.DataFrame(
        {
            "a": [1.5, 2.5, None, 4.0] * 10,
            "b": ["x", "y", "z", "é"] * 10,
            "d": pd.date_range("2024-01-01", periods=40),
        }
    )
    xlsx, parquet = io.BytesIO(), io.BytesIO()
    frame.to_excel(xlsx, index=False)
    frame.to_parquet(parquet)
    seeds = [
        xlsx.getvalue(),
        parquet.getvalue(),
        frame.to_csv(index=False, sep=";", decimal=",").encode("cp1252"),
        frame.to_csv(index=False, sep="\t").encode("utf-16"),
    ]
    rng = np.random.default_rng(0)
    outcomes = Counter()
    for i in range(60):
        data = bytearray(seeds[i % len(seeds)])
        if i % 3 == 0:
            data = data[: rng.integers(1, len(data))]
        else:
            for pos in rng.integers(0, len(data), rng.integers(1, 20)):
                data[pos] = rng.integers(0, 256)
        try:
            df, _ = read(bytes(data))
            profile_frame(df)
            outcomes["read"] += 1
        except DataError:
            outcomes["refused"] += 1
    assert outcomes["read"] > 0 and outcomes["refused"] > 0


def test_too_large_names_size_limit_and_fix():
    with pytest.raises(TooLargeError) as info:
        read(b"a,b\n" + b"1,2\n" * 1000, name="big.csv", max_bytes=1000)
    message = str(info.value)
    assert "big.csv" in message and "3.9 KB" in message and "1000 bytes" in message
    assert "smaller" in message


def test_too_large_path_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"a\n" + b"1\n" * (1024 * 1024))
    with pytest.raises(TooLargeError, match=r"2\.0 MB.*1\.0 MB"):
        read_table(path, max_bytes=1024 * 1024)


def test_path_input_uses_the_file_name_in_messages(tmp_path):
    path = tmp_path / "q3 sales.csv"
    path.write_bytes(b"a,b\n")
    with pytest.raises(DataError, match="'q3 sales.csv' has a header"):
        read_table(path)


def test_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="could not be opened"):
        read_table(tmp_path / "nope.csv")


def test_path_and_bytes_read_the_same(tmp_path):
    data = "\ufeffk;v\n\nA;1,5\nB;2,5\n".encode()
    path = tmp_path / "x.txt"
    path.write_bytes(data)
    from_path, report_path = read_table(path)
    from_bytes, report_bytes = read(data)
    pd.testing.assert_frame_equal(from_path, from_bytes)
    assert report_path == report_bytes


def test_report_round_trips_through_a_dict():
    _, report = read(b"a;b\n1,5;2\n")
    data = json.loads(json.dumps(report.to_dict()))
    assert ReadReport.from_dict(data) == report


# ---- profile --------------------------------------------------------------------------------


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sentences = [
        f"Customer {i} called about the delivery of order number {i * 7} and was unhappy"
        for i in range(n)
    ]
    return pd.DataFrame(
        {
            "customer_id": np.arange(1000, 1000 + n),
            "amount": np.round(rng.normal(50, 10, n), 2),
            "rating": rng.integers(1, 6, n),
            "region": rng.choice(["north", "south", "east"], n),
            "signup": pd.date_range("2024-01-01", periods=n, freq="D"),
            "comment": sentences,
            "is_member": rng.random(n) > 0.5,
            "country": ["FR"] * n,
            "ticket": [f"T{i:05d}" for i in range(n)],
            "promo": [None] * (n - 10) + ["spring"] * 10,
        }
    )


def test_profile_kinds():
    profile = profile_frame(_frame())
    kinds = {c.name: c.kind for c in profile.columns}
    assert kinds == {
        "customer_id": "identifier",
        "amount": "numeric",
        "rating": "numeric",
        "region": "categorical",
        "signup": "datetime",
        "comment": "text",
        "is_member": "categorical",
        "country": "categorical",
        "ticket": "identifier",
        "promo": "categorical",
    }
    assert set(kinds.values()) <= set(COLUMN_KINDS)
    assert (profile.n_rows, profile.n_cols) == (200, 10)


def test_profile_numeric_stats_and_histogram():
    s = pd.Series([1.0, 2.0, 3.0, 4.0, 100.0, np.nan, 2.5, 7.25, 9.0, 11.0, 0.5, 3.0])
    col = profile_frame(pd.DataFrame({"x": s})).column("x")
    present = s.dropna()
    assert col.stats["min"] == 0.5 and col.stats["max"] == 100.0
    assert col.stats["mean"] == pytest.approx(present.mean())
    assert col.stats["median"] == present.median()
    assert col.stats["std"] == pytest.approx(present.std())
    assert (col.n_missing, col.n_unique) == (1, 10)
    assert col.missing_share == pytest.approx(1 / 12)
    assert sum(col.hist_counts) == 11
    assert len(col.hist_counts) == len(col.hist_labels) <= 20
    assert col.hist_counts[-1] == 1  # 100 alone in the top bin


def test_profile_small_integer_column_histogram_per_value():
    col = profile_frame(pd.DataFrame({"stars": [1, 2, 2, 3, 3, 3, 5]})).column("stars")
    assert col.kind == "numeric"
    assert col.hist_labels == ["1", "2", "3", "5"]
    assert col.hist_counts == [1, 2, 3, 1]


def test_profile_categorical_top_values():
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + [None]})
    col = profile_frame(df).column("c")
    assert col.stats["top"] == [
        {"value": "a", "count": 5},
        {"value": "b", "count": 3},
        {"value": "c", "count": 2},
    ]
    assert col.hist_labels == ["a", "b", "c"] and col.hist_counts == [5, 3, 2]
    assert col.n_missing == 1


def test_profile_datetime_range_and_histogram():
    df = pd.DataFrame({"d": pd.date_range("2024-01-01", periods=100, freq="D")})
    col = profile_frame(df).column("d")
    assert col.stats["min"].startswith("2024-01-01") and col.stats["max"].startswith("2024-04-09")
    assert sum(col.hist_counts) == 100 and len(col.hist_counts) == 20
    assert col.hist_labels[0] == "2024-01-01"


def test_profile_warnings():
    n = 300
    df = pd.DataFrame(
        {
            "const": ["same"] * n,
            "order_id": np.arange(n),
            "sku": [f"sku-{i % 250}" for i in range(n)],
            "sparse": [1.0] * 100 + [np.nan] * 200,
            "code": [str(i % 20) if i % 2 else f"X{i % 10}" for i in range(n)],
        }
    )
    profile = profile_frame(df)
    w = {c.name: " ".join(c.warnings) for c in profile.columns}
    assert "'const' has the same value in every row; it will be ignored" in w["const"]
    assert "'order_id' looks like an identifier" in w["order_id"]
    assert "will be ignored" in w["order_id"]
    assert "'sku' has 250 different values" in w["sku"]
    # One value with gaps is not constant: "x" marks and blanks say something per row.
    assert "'sparse' is mostly missing (67% of rows are empty)" in w["sparse"]
    assert "same value" not in w["sparse"]
    assert "'code' mixes numbers and words (for example 'X" in w["code"]
    assert all(any(name in msg for msg in profile.warnings) for name in w)


def test_profile_row_number_column_is_an_identifier_whatever_its_name():
    df = pd.DataFrame({"Unnamed: 0": range(50), "n": range(100, 150), "spread": range(100, 600, 10), "v": [1, 2] * 25})
    kinds = {c.name: c.kind for c in profile_frame(df).columns}
    assert kinds["Unnamed: 0"] == "identifier"
    assert kinds["n"] == "identifier"  # unique whole numbers filling their range: a code
    assert kinds["spread"] == "numeric"  # unique, but spread thinly like an amount


def test_profile_small_table_warning():
    profile = profile_frame(pd.DataFrame({"a": range(5)}))
    assert f"only 5 rows; at least {MIN_ROWS}" in profile.warnings[0]


def test_profile_is_json_safe_and_round_trips():
    df = _frame(60)
    df["all_missing"] = np.nan
    df.loc[3, "amount"] = np.inf
    profile = profile_frame(df)
    data = profile.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert DatasetProfile.from_dict(json.loads(text)) == DatasetProfile.from_dict(data)
    assert DatasetProfile.from_dict(data).column("all_missing").stats == {}
    again = DatasetProfile.from_dict(json.loads(text))
    assert again.column("amount").stats["max"] == profile.column("amount").stats["max"]
    assert not math.isinf(again.column("amount").stats["max"])


def test_profile_column_lookup_error_names_columns():
    profile = profile_frame(pd.DataFrame({"a": [1], "b": [2]}))
    with pytest.raises(DataError, match="no column named 'zz'.*'a', 'b'"):
        profile.column("zz")


def test_usable_features():
    df = _frame()
    df["empty"] = np.nan
    df["target"] = np.arange(len(df)) % 2
    features = usable_features(profile_frame(df), "target")
    # Free text is read (its words); identifiers, empty and constant columns are left out.
    assert features == ["amount", "rating", "region", "signup", "comment", "is_member", "promo"]


# ---- target ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, task",
    [
        (np.linspace(0, 1, 100), "regression"),
        ([0, 1] * 20, "binary"),
        (["yes", "no"] * 20, "binary"),
        ([True, False] * 20, "binary"),
        (["setosa", "versicolor", "virginica"] * 10, "multiclass"),
        ([1, 2, 3, 4, 5] * 8, "multiclass"),
        (list(range(25)) * 2, "regression"),
        ([i + 0.5 for i in range(11)] * 3, "regression"),
        ([0.5, 1.5, 2.5] * 10, "multiclass"),
        ([f"class_{i}" for i in range(50)] * 2, "multiclass"),
    ],
)
def test_infer_task(values, task):
    assert infer_task(pd.Series(values, name="y")) == task


def test_infer_task_refuses_too_many_text_classes():
    with pytest.raises(DataError, match="'city' holds 60 different values.*regression"):
        infer_task(pd.Series([f"c{i}" for i in range(60)], name="city"))


def test_infer_task_refuses_empty_and_single_value():
    with pytest.raises(DataError, match="'y' is empty in every row"):
        infer_task(pd.Series([None, None], name="y", dtype=float))
    with pytest.raises(DataError, match=r"same value \('yes'\) in every row"):
        infer_task(pd.Series(["yes"] * 30, name="y"))


def _target_frame(y, n_extra: int = 0) -> pd.DataFrame:
    y = list(y)
    return pd.DataFrame({"x": np.arange(len(y)), "y": y})


def test_check_target_missing_column_names_available_ones():
    with pytest.raises(DataError, match="no column named 'churn'.*'x', 'y'"):
        check_target(_target_frame([1, 0] * 20), "churn", "binary")


def test_check_target_all_missing():
    with pytest.raises(DataError, match="The target column 'y' is empty in every row"):
        check_target(_target_frame([None] * 30), "y", "binary")


def test_check_target_one_class_names_the_value():
    with pytest.raises(DataError, match=r"same value \('yes'\) in every row.*another target"):
        check_target(_target_frame(["yes"] * 30), "y", "binary")


def test_check_target_too_few_rows():
    with pytest.raises(DataError, match=f"Only 10 rows have a value.*at least {MIN_ROWS}"):
        check_target(_target_frame(["a", "b"] * 5), "y", "binary")


def test_check_target_regression_on_text_names_a_bad_value():
    values = [str(i) for i in range(28)] + ["unknown", "tbd"]
    with pytest.raises(DataError, match=r"numbers in the target column 'y'.*'unknown' \(2 values"):
        check_target(_target_frame(values), "y", "regression")


def test_check_target_class_with_one_row_is_named():
    with pytest.raises(DataError, match="'rare'.*appears in only one row"):
        check_target(_target_frame(["a", "b"] * 15 + ["rare"]), "y", "multiclass")


def test_check_target_binary_with_three_values():
    with pytest.raises(DataError, match="exactly two values.*has 3.*multiclass"):
        check_target(_target_frame(["a", "b", "c"] * 10), "y", "binary")


def test_check_target_warns_about_missing_targets_and_imbalance():
    values = ["no"] * 97 + ["yes"] * 3 + [None] * 5
    warnings = check_target(_target_frame(values), "y", "binary")
    assert warnings[0] == "5 rows have no target value and will be left out."
    assert "only 3% of rows are 'yes'" in warnings[1]


def test_check_target_clean_regression_has_no_warnings():
    assert check_target(_target_frame(np.linspace(0, 10, 50)), "y", "regression") == []


def test_check_target_unknown_task_lists_allowed():
    with pytest.raises(SpecError, match="'forecast'.*binary, multiclass, regression"):
        check_target(_target_frame([0, 1] * 20), "y", "forecast")


# ---- leakage --------------------------------------------------------------------------------


def _leaky_frame(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    churned = rng.choice(["yes", "no"], n)
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "spend": rng.normal(100, 30, n),
            "churned_copy": churned,
            "refund_amount": np.where(
                churned == "yes", rng.uniform(50, 100, n), rng.uniform(0, 10, n)
            ),
            "status": np.where(churned == "yes", "closed", "open"),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "customer_id": np.arange(n),
            "churned": churned,
        }
    )


def test_leakage_flags_copies_and_near_perfect_predictors():
    warnings = leakage_warnings(_leaky_frame(), "churned", "binary")
    flagged = {w.split("'")[1] for w in warnings}
    assert flagged == {"churned_copy", "refund_amount", "status"}
    copy = next(w for w in warnings if "'churned_copy'" in w)
    assert "is a copy of the target" in copy
    assert "look better than it is" in copy and "remove it" in copy


def test_leakage_regression_correlation():
    rng = np.random.default_rng(2)
    price = rng.uniform(100, 200, 300)
    df = pd.DataFrame(
        {
            "price_with_tax": price * 1.2 + rng.normal(0, 0.1, 300),
            "rooms": rng.integers(1, 6, 300),
            "price": price,
        }
    )
    warnings = leakage_warnings(df, "price", "regression")
    assert len(warnings) == 1 and "'price_with_tax'" in warnings[0]
    assert "correlation 1.000" in warnings[0]


def test_no_leakage_on_honest_data():
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    y = np.where(x + rng.normal(size=500) > 0, "a", "b")
    df = pd.DataFrame({"x": x, "group": rng.choice(list("pqr"), 500), "y": y})
    assert leakage_warnings(df, "y", "binary") == []


# ---- layering -------------------------------------------------------------------------------


@pytest.mark.slow  # a real Python process
def test_modules_import_neither_streamlit_nor_tensorflow():
    code = (
        "import sys, dlcore.tables, dlcore.tables.samples; "
        "bad = [m for m in ('streamlit', 'tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_unique_dense_whole_numbers_are_identifiers_whatever_their_name():
    frame = pd.DataFrame({
        "Kundennr": np.arange(1000, 1300),
        "income": np.random.default_rng(0).integers(20_000, 200_000, 300),
        "y": ["a", "b"] * 150,
    })
    profile = profile_frame(frame)
    assert profile.column("Kundennr").kind == "identifier"
    assert profile.column("income").kind == "numeric"


def test_xlsx_with_a_cover_sheet_first_reads_the_sheet_with_the_table():
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        pd.DataFrame({"note": ["Quarterly churn extract"]}).to_excel(writer, index=False, sheet_name="Cover")
        pd.DataFrame({"tenure": range(30), "churn": ["yes", "no"] * 15}).to_excel(writer, index=False, sheet_name="Data")
    df, report = read_table(buf.getvalue(), "two_sheets.xlsx")
    assert list(df.columns) == ["tenure", "churn"] and len(df) == 30
    assert "read 'Data', the one with the most data" in notes_text(report)


def test_a_big_table_is_profiled_two_columns_at_a_time_with_the_same_result(monkeypatch):
    from dlcore import tables as tab

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"amount": rng.normal(50, 9, 3000).round(2), "count": rng.integers(0, 9, 3000),
                          "region": rng.choice(["north", "south", None], 3000), "code": np.arange(3000),
                          "day": pd.date_range("2024-01-01", periods=3000, freq="h"), "flag": rng.random(3000) < 0.3})
    one_at_a_time = tab.profile_frame(frame).to_dict()
    monkeypatch.setattr(profile, "_THREADED_CELLS", 1)  # every table counts as big
    assert tab.profile_frame(frame).to_dict() == one_at_a_time
    assert [c["name"] for c in one_at_a_time["columns"]] == list(frame.columns)


# ---- files that are almost tables: gzip-compressed CSV, JSON -----------------------------------


def _table() -> pd.DataFrame:
    return pd.DataFrame({"tenure": [1, 24, 60, 5] * 5, "plan": ["basic", "plus", "premium", "basic"] * 5,
                         "charges": [19.5, 70.25, 105.0, 20.0] * 5})


@pytest.mark.parametrize("name", ["export.csv.gz", "export.csv", "export.gz"])
def test_a_gzip_compressed_csv_is_read_whatever_its_name(name):
    import gzip

    plain = _table().to_csv(index=False, sep=";", decimal=",").encode("cp1252")
    df, report = read(gzip.compress(plain), name=name)
    expected, _ = read(plain)
    pd.testing.assert_frame_equal(df, expected)
    assert report.format == "csv" and report.delimiter == ";" and report.decimal == ","
    assert report.notes[0].startswith("Unpacked from gzip (")


def test_a_gzip_file_is_read_from_a_path_and_as_an_upload(tmp_path, store):
    import gzip

    from dlcore import datasets

    path = tmp_path / "sales.csv.gz"
    path.write_bytes(gzip.compress(_table().to_csv(index=False).encode()))
    df, _ = read_table(path)
    assert df.shape == (20, 3) and df["charges"].dtype == np.float64
    record, created = datasets.register_file(store, path)
    assert created and record.n_rows == 20 and record.n_cols == 3


def test_a_damaged_or_doubly_compressed_gzip_file_is_refused_with_the_fix():
    import gzip

    packed = gzip.compress(_table().to_csv(index=False).encode() * 20)
    with pytest.raises(DataError, match="'cut.csv.gz' is gzip-compressed but could not be unpacked.*Compress it again"):
        read(packed[: len(packed) // 2], name="cut.csv.gz")
    with pytest.raises(DataError, match="compressed twice.*Unpack it once"):
        read(gzip.compress(packed), name="twice.csv.gz")


def test_a_gzip_file_that_unpacks_beyond_the_upload_limit_is_refused_before_it_is_all_unpacked():
    import gzip

    bomb = gzip.compress(b"a,b\n" + b"1,2\n" * 2_000_000)  # 8 MB of rows in about 8 KB
    assert len(bomb) < 50_000
    with pytest.raises(TooLargeError, match="gzip-compressed and unpacks to more than the upload limit of 1.0 MB"):
        read(bomb, name="bomb.csv.gz", max_bytes=1024 * 1024)


def test_a_json_array_of_records_is_read_as_a_table_and_typed_like_a_csv():
    records = [{"when": f"2024-03-{d:02d}", "amount": f"{d * 1.5}", "plan": "plus" if d % 2 else "basic",
                "customer": {"city": "Lyon" if d % 3 else "Nantes", "age": 30 + d}, "tags": ["a", "b"]}
               for d in range(1, 26)]
    df, report = read(json.dumps(records).encode(), name="orders.json")
    assert list(df.columns) == ["when", "amount", "plan", "customer.city", "customer.age", "tags"]
    assert pd.api.types.is_datetime64_any_dtype(df["when"]) and df["amount"].dtype == np.float64
    assert df["amount"].iloc[3] == 6.0 and df["customer.age"].iloc[0] == 31 and df["tags"].iloc[0] == '["a", "b"]'
    assert report.format == "json" and report.notes[0] == "Read as JSON: an array of 25 records."
    # A CSV whose header starts with a bracket (SQL Server's "[id]") is still a CSV.
    df, report = read(b"[id],[name]\n1,x\n2,y\n")
    assert list(df.columns) == ["[id]", "[name]"] and report.format == "csv"


def test_json_lines_and_a_bom_are_read_too():
    lines = "\n".join(json.dumps({"x": i, "y": "ab"[i % 2]}) for i in range(30))
    df, report = read(b"\xef\xbb\xbf" + lines.encode(), name="rows.jsonl")
    assert df.shape == (30, 2) and df["x"].sum() == sum(range(30))
    assert report.notes[0] == "Read as JSON Lines: 30 records, one per line."


@pytest.mark.parametrize("content, words", [
    (b'{"rows": 3, "source": "crm"}', r"is JSON holding one object \(with 'rows', 'source'\), not a table"),
    (b'{"data": [{"a": 1}, {"a": 2}]}', r"is JSON holding one object.*The records seem to be under 'data'"),
    (b"[[1, 2], [3, 4]]", r"is JSON, an array of 2 items, but 2 of them are arrays, not records"),
    (b"[]", r"is JSON holding an empty array: no rows to read"),
    (b'[{"a": 1}, {"a": ', r"looks like JSON but could not be read: Expecting value at line 1, column 18"),
])
def test_json_that_is_not_an_array_of_records_is_refused_saying_it_is_json(content, words):
    with pytest.raises(DataError, match=words) as caught:
        read(content, name="api.json")
    assert "has a header but no data rows" not in str(caught.value)
    assert "array of records, one object per row" in str(caught.value) or "could not be read" in str(caught.value)


# ---- targets with extreme values ------------------------------------------------------------


def test_check_target_refuses_infinite_targets_naming_the_rows():
    values = list(np.linspace(0, 10, 40))
    values[3], values[17] = math.inf, -math.inf
    with pytest.raises(DataError) as caught:
        check_target(_target_frame(values), "y", "regression")
    message = str(caught.value)
    assert "The target column 'y' holds 2 infinite values (rows 4 (inf) and 18 (-inf))" in message
    assert "Correct those cells, or clear them (rows with an empty target are left out" in message


def test_check_target_refuses_targets_too_large_for_32_bit_training_and_keeps_large_ones_that_fit():
    values = list(np.linspace(0, 10, 40))
    values[9] = 1e300
    values[30] = -2e31
    with pytest.raises(DataError, match=r"2 values larger than 1e\+30 in size \(rows 10 \(1e\+300\) and 31 "
                                        r"\(-2e\+31\)\), beyond what training in 32-bit numbers can hold.*"
                                        r"in a larger unit \(thousands, millions\) or as their logarithm"):
        check_target(_target_frame(values), "y", "regression")
    # Up to 1e30 trains (tested through every baseline), and rows without a target are left out as before.
    values = list(np.linspace(0, 10, 40) * 1e29) + [None, None]
    assert check_target(_target_frame(values), "y", "regression") == [
        "2 rows have no target value and will be left out."]


def test_a_run_with_an_infinite_target_is_refused_at_submit_before_anything_is_queued(store):
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec
    from tests.conftest import regression_frame

    frame = regression_frame(60)
    frame["price"] = frame["price"].astype(object)
    frame.loc[4, "price"] = "inf"
    frame.loc[7, "price"] = "1e300"
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "prices.csv")
    with pytest.raises(DataError, match=r"'price' holds 1 infinite value \(row 5 \(inf\)\) and 1 value larger than "
                                        r"1e\+30 in size \(row 8 \(1e\+300\)\)"):
        runner.submit(store, RunSpec(DataSpec(record.id, "price", task="regression")))
    assert store.list_runs() == []


def test_a_title_line_above_the_header_is_skipped_and_said():
    raw = b"Quarterly sales report Q3;;;\n\nregion;units;revenue;returned\nnorth;10;100,5;no\nsouth;20;200,25;yes\n" \
          b"east;5;50;no\nwest;7;70;no\n"
    df, report = read_table(raw, name="report.csv")
    assert list(df.columns) == ["region", "units", "revenue", "returned"]
    assert df["revenue"].tolist() == [100.5, 200.25, 50.0, 70.0]
    assert any("'Quarterly sales report Q3'" in n and "title" in n for n in report.notes)


def test_a_totals_row_is_left_out_only_when_it_adds_up_the_rows_above():
    raw = b"region,units,revenue\nnorth,10,100.5\nsouth,20,200.25\neast,5,50\nTOTAL,35,350.75\n"
    df, report = read_table(raw, name="ledger.csv")
    assert df["region"].tolist() == ["north", "south", "east"]
    assert any("('TOTAL') adds up the rows above it" in n for n in report.notes)
    # A last row named like a total whose numbers are not the sum is data: kept.
    kept, notes = read_table(b"item,cost\nshipping,3\ntax,2\nTotal cost review,9\n", name="costs.csv")
    assert len(kept) == 3 and not any("adds up" in n for n in notes.notes)
