"""The upload's faster path gives the table, report and profile the earlier path gave: the
uploaded bytes are parsed as they are (not written to disk and read back), the file kept as it
came is written after the answer with the Parquet copy, and the numeric profile sorts a column
once without a filtered copy first."""

import numpy as np
import pandas as pd
import pytest

from dlcore import datasets, ready
from dlcore.errors import DataError
from dlcore.tables import profile as table_profile
from dlcore.tables.reader import read_table, rebuild_copy
from tests.conftest import churn_frame


def _messy_files() -> dict[str, bytes]:
    """Files as exported by Excel on a European machine, by a BI tool, by hand."""
    rng = np.random.default_rng(7)
    n = 400
    amount = [f"{v:.2f}".replace(".", ",") for v in rng.normal(1200, 300, n)]
    city = rng.choice(["Köln", "Málaga", "Zürich", "Besançon"], n)
    day = [f"{d:02d}.{m:02d}.2023" for d, m in zip(rng.integers(1, 29, n), rng.integers(1, 13, n), strict=True)]
    semicolon = "id;amount;city;day\r\n" + "".join(
        f"{i};{a};{c};{d}\r\n" + ("\r\n" if i % 97 == 0 else "")  # blank rows in between
        for i, (a, c, d) in enumerate(zip(amount, city, day, strict=True)))
    quoted = "name,comment,score\n" + "".join(
        f'"Smith, J{i}","said ""fine""\non two lines",{i % 7}\n' for i in range(n))
    spaced = "code , label ,value\n" + "".join(f"  A{i % 5} , yes ,{i * 0.5}\n" for i in range(n))
    mixed = "when,qty,flag\n" + "".join(
        f"2024-01-{1 + i % 28:02d},{'n/a' if i % 50 == 0 else i},{'TRUE' if i % 3 else 'FALSE'}\n" for i in range(n))
    late_accent = "a,b\n" + "x,1\n" * 80_000 + "caf\xe9,2\n"  # a Windows byte after the sniffed head
    return {
        "semicolon-decimal-comma-cp1252.csv": semicolon.encode("cp1252"),
        "quoted-utf8-bom.csv": b"\xef\xbb\xbf" + quoted.encode("utf-8"),
        "spaces-around-values.csv": spaced.encode(),
        "missing-markers-and-bools.csv": mixed.encode(),
        "late-windows-byte.csv": late_accent.encode("cp1252"),
        "extra-values-on-a-row.csv": ("a,b,c\n" + "1,2,3\n" * 200 + "4,5,6,7\n" + "8,9,10\n" * 50).encode(),
    }


@pytest.mark.parametrize("name", list(_messy_files()))
def test_the_uploaded_bytes_read_as_the_file_on_disk_did(tmp_path, name):
    content = _messy_files()[name]
    path = tmp_path / name
    path.write_bytes(content)
    from_disk, report_disk = read_table(path, name=name)
    from_bytes, report_bytes = read_table(content, name=name)
    pd.testing.assert_frame_equal(from_bytes, from_disk)
    assert report_bytes.to_dict() == report_disk.to_dict()
    assert table_profile.profile_frame(from_bytes).to_dict() == table_profile.profile_frame(from_disk).to_dict()


@pytest.mark.parametrize("late_text", [False, True])
def test_a_big_file_read_from_its_bytes_equals_pandas_reading_it_from_disk_in_parallel(tmp_path, late_text):
    """Over pandas' 5 MB line, a path is parsed by several threads a piece at a time (or serially
    again when the pieces' types disagree: a column of numbers that turns to text late); the bytes
    are parsed in one pass. Quoted fields with separators in them, gaps and dates read the same."""
    rng = np.random.default_rng(3)
    n = 200_000
    codes = np.arange(n).astype(str)
    frame = pd.DataFrame({
        "amount": rng.normal(50, 10, n).round(3),
        "code": np.where(np.arange(n) > 0.8 * n, np.char.add("X-", codes), codes) if late_text else codes,
        "who": rng.choice(["Doe, Jane", "Roe, R.", "plain"], n),
        "when": pd.Timestamp("2021-03-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
    })
    frame.loc[rng.random(n) < 0.05, "amount"] = np.nan
    content = frame.to_csv(index=False).encode()
    assert len(content) > 6 * 1024 * 1024
    path = tmp_path / "big.csv"
    path.write_bytes(content)
    from_disk, report_disk = read_table(path)
    from_bytes, report_bytes = read_table(content, name="big.csv")
    pd.testing.assert_frame_equal(from_bytes, from_disk)
    assert report_bytes.to_dict() == report_disk.to_dict()
    assert from_bytes["code"].dtype == ("str" if late_text else "int64") and from_bytes["when"].dtype.kind == "M"


def _numeric_profile_by_hand(values: np.ndarray, integer_dtype: bool) -> dict:
    """The numeric profile computed the plain way: drop the gaps, np.unique, np.histogram."""
    present = np.sort(values[~np.isnan(values)])
    finite = present[np.isfinite(present)]
    distinct = np.unique(present)
    out = {"n_unique": int(distinct.size)}
    if finite.size:
        out["stats"] = {"min": float(finite[0]), "max": float(finite[-1]), "mean": float(finite.mean()),
                        "median": float(np.median(finite)),
                        "std": float(finite.std(ddof=1)) if finite.size > 1 else None}
    whole = integer_dtype or (finite.size == present.size and bool(np.all(present == np.round(present))))
    if finite.size and whole and distinct.size <= 20:
        out["hist_counts"] = [int((present == v).sum()) for v in distinct]
    elif finite.size and not (whole and distinct.size == present.size and distinct.size >= 50):
        out["hist_counts"] = np.histogram(finite, bins=min(20, distinct.size))[0].tolist()
    return out


def _columns():
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 60, 3_000):
        yield rng.normal(size=n)
        yield rng.integers(0, 6, n).astype(float)
        yield rng.integers(0, 6, n)
        yield np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n).round(1))
        yield np.full(n, np.nan)
        yield np.full(n, 2.5)
        yield rng.integers(0, 4, n) + 0.5
        if n > 3:
            with_inf = rng.normal(size=n)
            with_inf[:3] = [np.inf, -np.inf, np.nan]
            yield with_inf
            yield pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64")
            yield np.arange(n, dtype=float) + 1000  # unique whole numbers: a code


@pytest.mark.parametrize("name", ["amount", "customer_id"])
def test_the_numeric_profile_equals_the_plain_computation(name):
    checked = 0
    for values in _columns():
        s = pd.Series(values)
        col = table_profile._profile_column(s, name, len(s))
        plain = _numeric_profile_by_hand(s.to_numpy(dtype="float64", na_value=np.nan),
                                         pd.api.types.is_integer_dtype(s.dtype))
        assert col.n_unique == plain["n_unique"]
        assert col.n_missing == int(s.isna().sum())
        if "stats" in plain:
            assert {k: col.stats[k] for k in plain["stats"]} == plain["stats"]
        if col.kind == "numeric" and "hist_counts" in plain:
            assert col.hist_counts == plain["hist_counts"], (values, col)
        checked += 1
    assert checked == 44


def test_the_kept_file_and_the_copy_are_written_after_the_answer(store):
    content = churn_frame(150, seed=5).to_csv(index=False).encode()
    record, created = datasets.register_bytes(store, content, "churn.csv", answer_first=True)
    assert created and record.n_rows == 150
    ready.wait(store, record.id, rebuild_copy, poll=0.01)
    folder = store.dataset_dir(record.id)
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "source.csv"]
    assert (folder / "source.csv").read_bytes() == content
    pd.testing.assert_frame_equal(datasets.load_frame(store, record.id), read_table(content, name="churn.csv")[0])


def test_a_dataset_whose_server_stopped_before_keeping_the_file_says_to_upload_again(store):
    record, _ = datasets.register_bytes(store, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    folder = store.dataset_dir(record.id)
    for path in folder.iterdir():
        path.unlink()
    with pytest.raises(DataError, match="never written: the server stopped while it was saving the upload. "
                                        "Upload the file again"):
        rebuild_copy(folder)


def test_the_datetime_profile_counts_distinct_days_and_the_top_ones_from_one_count():
    rng = np.random.default_rng(2)
    days = pd.Series(pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 40, 5_000), unit="D"))
    days[rng.random(days.size) < 0.1] = pd.NaT
    col = table_profile._profile_column(days, "signup", len(days))
    assert col.kind == "datetime" and col.n_unique == days.nunique() == 40
    top = days.value_counts().head(5)
    assert col.stats["top"] == [{"value": v.isoformat(), "count": int(c)} for v, c in top.items()]
    assert sum(col.hist_counts) == days.notna().sum()
