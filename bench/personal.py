"""Personal data detection on a million rows: what finding emails, phones, IBANs, card numbers,
national ids, IP addresses and names adds to profiling a table, and what it costs per column.

    python bench/personal.py [--rows 1000000] [--reps 3]

The table has ten columns of personal data (one per kind, phones in three national formats) and
ten ordinary ones (amounts, categories, dates, numeric ids of card length, product codes). Each
column is judged on ``SAMPLE_ROWS`` seeded cells, so the cost is a fixed amount per column on
top of one ``dropna`` over the column; the bare reference is ``profile_frame`` with detection off
on the same frame. Prints medians and the ratio, and which columns were flagged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from stdnum import iban as stdnum_iban
from stdnum import luhn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dlcore.tables import personal, profile  # noqa: E402  (after the path to the repository is added)


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    k = 5000  # distinct values per personal column, repeated over the rows
    first = np.array(["Anna", "Peter", "Maria", "John", "Sophie", "Lukas", "Emma", "Noah", "Fatima", "Jan"])
    last = np.array(["Schmidt", "Jansen", "Smith", "Dubois", "Rossi", "Garcia", "Nowak", "Okafor", "Berg", "Olsen"])

    def card() -> str:
        body = "4" + "".join(map(str, rng.integers(0, 10, 14)))
        return body + luhn.calc_check_digit(body)

    def iban() -> str:
        bban = "".join(map(str, rng.integers(0, 10, 18)))
        return f"DE{stdnum_iban.calc_check_digits('DE00' + bban)}{bban}"

    def bsn() -> str:
        while True:
            d = rng.integers(0, 10, 8)
            c = int(sum((9 - i) * int(x) for i, x in enumerate(d)) % 11)
            if c < 10:
                return "".join(map(str, d)) + str(c)

    pools = {
        "name": [f"{a} {b}" for a, b in zip(rng.choice(first, k), rng.choice(last, k))],
        "email": [f"user{i}@mail.example.org" for i in range(k)],
        "phone_uk": [f"+44 20 7946 {i % 10000:04d}" for i in range(k)],
        "phone_de": [f"030 {1000000 + i}" for i in range(k)],
        "phone_us": [f"(212) 736-{i % 10000:04d}" for i in range(k)],
        "iban": [iban() for _ in range(k)],
        "card": [card() for _ in range(k)],
        "ssn": [f"{rng.integers(1, 665):03d}-{rng.integers(1, 99):02d}-{rng.integers(1, 9999):04d}" for _ in range(k)],
        "bsn": [bsn() for _ in range(k)],
        "ip": [f"10.{i % 256}.{i // 256 % 256}.{i % 200 + 1}" for i in range(k)],
    }
    out = {name: np.asarray(pool, dtype=object)[rng.integers(0, k, n)] for name, pool in pools.items()}
    out.update({
        "amount": rng.normal(100, 30, n).round(2),
        "quantity": rng.integers(1, 20, n),
        "plan": rng.choice(["basic", "plus", "premium"], n),
        "region": rng.choice(["north", "south", "east", "west"], n),
        "city": rng.choice(["Austin", "London", "Berlin", "Madrid", "Lyon", "Denver"], n),
        "signup": pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "customer_no": rng.integers(4 * 10**15, 5 * 10**15, n),
        "order_id": rng.integers(10**8, 10**9, n).astype(str),
        "product": np.asarray([f"{a}-{b:04d}-{c:02d}" for a, b, c in zip(rng.integers(100, 999, 5000),
                                                                      rng.integers(0, 9999, 5000),
                                                                      rng.integers(0, 99, 5000))])[rng.integers(0, 5000, n)],
        "churn": rng.choice(["yes", "no"], n),
    })
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    df = frame(args.rows)
    for col in df.columns:  # text columns as an upload stores them
        if df[col].dtype == object:
            df[col] = df[col].astype("string")
    profile.profile_frame(df.head(1000))  # warm: imports, name lists
    with_, without = [], []
    for _ in range(args.reps):
        with mock.patch.object(profile, "detect_personal", lambda s: None):
            t = time.perf_counter()
            profile.profile_frame(df)
            without.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = profile.profile_frame(df)
        with_.append(time.perf_counter() - t)
    columns = []
    for col in df.columns:
        t = time.perf_counter()
        personal.detect_personal(df[col])
        columns.append((time.perf_counter() - t, col))
    flagged = profile.personal_columns(result)
    a, b = statistics.median(with_), statistics.median(without)
    print(f"{args.rows:,} rows x {df.shape[1]} columns, {personal.SAMPLE_ROWS:,} cells looked at per column")
    print(f"profile with detection {a:.2f} s, without {b:.2f} s: ratio {a / b:.2f} (+{a - b:.2f} s)")
    print("slowest columns alone: " + ", ".join(f"{c} {s:.3f} s" for s, c in sorted(columns, reverse=True)[:4]))
    print(f"flagged ({len(flagged)}): {', '.join(flagged)}")


if __name__ == "__main__":
    main()
