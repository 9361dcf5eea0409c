"""Personal data found by content: each kind with valid and broken check digits, whole columns that
are and are not personal data, the profile that keeps no value of them, masking, the inputs a run
reads by default, and a report and bundle that hold neither the values nor the names."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn

from dlcore import datasets, runner
from dlcore import tables as tabular
from dlcore.handover import bundle, report
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from dlcore.tables.personal import MASK, cell_kind, detect_personal, mask_personal
from tests.conftest import churn_frame

RNG = np.random.default_rng(5)


def _cards(n: int, prefix: str = "4") -> list[str]:
    out = []
    for _ in range(n):
        body = prefix + "".join(map(str, RNG.integers(0, 10, 15 - len(prefix))))
        out.append(body + luhn.calc_check_digit(body))
    return out


def _ibans(n: int) -> list[str]:
    out = []
    for _ in range(n):
        bban = "".join(map(str, RNG.integers(0, 10, 18)))
        number = "DE00" + bban
        out.append(f"DE{stdnum_iban.calc_check_digits(number)}{bban}")
    return out


def _bsns(n: int) -> list[str]:
    out = []
    while len(out) < n:
        digits = [int(d) for d in RNG.integers(0, 10, 8)]
        last = sum((9 - i) * d for i, d in enumerate(digits)) % 11
        if last < 10:
            out.append("".join(map(str, digits)) + str(last))
    return out


FIRST = ["Anna", "Peter", "Maria", "John", "Sophie", "Lukas", "Emma", "Noah", "Chidi", "Aiko", "Fatima", "Jan"]
LAST = ["Schmidt", "Jansen", "Smith", "Dubois", "Rossi", "Garcia", "Nowak", "Okafor", "Tanaka", "van der Berg"]


@pytest.mark.parametrize("value, expected", [
    ("anna.schmidt@example.com", ("email", "")),
    ("anna.schmidt@example", None),
    ("+44 20 7946 0958", ("phone", "")),
    ("0044 20 7946 0958", ("phone", "")),
    ("+1 212-736-5000", ("phone", "")),
    ("(212) 736-5000", ("phone", "")),
    ("030 1234567", ("phone", "")),  # Berlin, national format
    ("06 12345678", ("phone", "")),  # Dutch mobile
    ("+44 20 7946 09", None),  # too short for the UK plan
    ("PRD-4471-22", None),
    ("4471-2219", None),
    ("DE89 3704 0044 0532 0130 00", ("iban", "")),
    ("DE89 3704 0044 0532 0130 01", None),  # one digit off: mod-97 fails
    ("NL91ABNA0417164300", ("iban", "")),
    ("4111 1111 1111 1111", ("card", "")),
    ("4111 1111 1111 1112", None),  # Luhn fails
    ("5500-0055-5555-5559", ("card", "")),
    ("9111111111111111", None),  # Luhn holds, but no issuer starts with 9
    ("536-90-4399", ("national_id", "US SSN")),
    ("666-12-3456", None),  # never issued
    ("AB 12 34 56 C", ("national_id", "UK National Insurance number")),
    ("QQ123456C", None),  # Q is never a prefix letter
    ("111222333", ("national_id", "Dutch BSN")),
    ("111222334", None),  # 11-test fails
    ("2 95 10 99 126 111 93", ("national_id", "French NIR")),
    ("2 95 10 99 126 111 94", None),  # key fails
    ("880320-0016", ("national_id", "Swedish personnummer")),
    ("880320-0017", None),
    ("36574261809", ("national_id", "German Steuer-ID")),
    ("36574261808", None),
    ("54362315K", ("national_id", "Spanish DNI")),
    ("54362315Z", None),
    ("192.168.1.20", ("ip", "")),
    ("2001:db8::8a2e:370:7334", ("ip", "")),
    ("1.2.3", None),
    ("256.1.1.1", None),
    ("Anna Schmidt", ("name", "")),
    ("Schmidt, Anna", ("name", "")),
    ("Green", None),  # a last name alone is too often a word
    ("Berlin", None),
    ("red shoes", None),
    (12.5, None),
])
def test_one_cell(value, expected):
    assert cell_kind(value) == expected


def _column(values: list, n: int = 3000) -> pd.Series:
    return pd.Series([values[i % len(values)] for i in range(n)])


def test_columns_of_personal_data_are_flagged_by_what_they_hold():
    n = 3000
    emails = [f"{f.lower()}.{last.split()[-1].lower()}{i}@mail.example.org" for i, (f, last) in
              enumerate(zip(RNG.choice(FIRST, n), RNG.choice(LAST, n)))]
    emails[::10] = [""] * len(emails[::10])  # gaps and junk do not hide a column
    found = detect_personal(pd.Series(emails))
    assert found.kind == "email" and 0.85 < found.share <= 1.0

    phones = [f"+44 20 7946 {i:04d}" if i % 3 == 0 else f"030 {1000000 + i}" if i % 3 == 1 else f"(212) 736-{i:04d}"
              for i in range(n)]
    assert detect_personal(pd.Series(phones)).kind == "phone"

    ibans = _ibans(n)
    assert detect_personal(pd.Series(ibans)).kind == "iban"

    cards = pd.Series([int(c) for c in _cards(n)])  # read from a CSV as whole numbers
    found = detect_personal(cards)
    assert found.kind == "card" and found.share == 1.0

    ssn = [f"{RNG.integers(1, 665):03d}-{RNG.integers(1, 99):02d}-{RNG.integers(1, 9999):04d}" for _ in range(n)]
    found = detect_personal(pd.Series(ssn))
    assert found.kind == "national_id" and "US SSN" in found.details

    found = detect_personal(pd.Series(_bsns(n)))
    assert found.kind == "national_id" and "Dutch BSN" in found.details

    ips = [f"10.{i % 256}.{(i // 256) % 256}.{i % 200 + 1}" if i % 4 else f"2001:db8::{i:x}" for i in range(n)]
    assert detect_personal(pd.Series(ips)).kind == "ip"

    names = [f"{f} {last}" for f, last in zip(RNG.choice(FIRST, n), RNG.choice(LAST, n))]
    assert detect_personal(pd.Series(names)).kind == "name"
    assert detect_personal(pd.Series(RNG.choice(FIRST, n))).kind == "name"  # first names alone

    # A contact column: emails and phones in one, a name here and there.
    contact = [emails[i] if i % 2 else phones[i] for i in range(n)]
    contact[::7] = ["Anna Schmidt"] * len(contact[::7])
    found = detect_personal(pd.Series(contact))
    assert found.kind in ("email", "phone") and found.share > 0.9 and any("also" in d for d in found.details)

    # Comments that carry an email address in a quarter of the rows.
    notes = [f"Customer asked to be called back, write to {emails[i + 1]} first" if i % 4 == 0
             else "Customer asked about the delivery date and the price" for i in range(n)]
    found = detect_personal(pd.Series(notes))
    assert found.kind == "email" and found.details == ("inside free text",)


def test_ordinary_columns_are_not_flagged():
    n = 5000
    # Customer numbers of card length: a tenth pass Luhn by chance, far from half.
    assert detect_personal(pd.Series(RNG.integers(4 * 10**15, 5 * 10**15, n))) is None
    # Nine-digit order numbers (a BSN's length): a tenth pass the 11-test.
    assert detect_personal(pd.Series(RNG.integers(10**8, 10**9, n).astype(str))) is None
    # Eleven-digit ids (the Steuer-ID's and PESEL's length) as text.
    assert detect_personal(pd.Series(RNG.integers(10**10, 10**11, n).astype(str))) is None
    # Product codes with digits and dashes, shaped like numbers but in no numbering plan.
    codes = [f"{RNG.integers(100, 999)}-{RNG.integers(0, 9999):04d}-{RNG.integers(0, 99):02d}" for _ in range(n)]
    assert detect_personal(pd.Series(codes)) is None
    assert detect_personal(pd.Series([f"PRD-{i:05d}" for i in range(n)])) is None
    # Cities (a few are also first names), colours (many are last names), months (April, May, June).
    cities = ["Austin", "Charlotte", "London", "Berlin", "Madrid", "Rome", "Houston", "Denver", "Boston", "Lyon"]
    assert detect_personal(_column(cities)) is None
    assert detect_personal(_column(["Black", "White", "Brown", "Green", "Grey", "Red", "Blue"])) is None
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]
    assert detect_personal(_column(months)) is None
    # Amounts, dates, yes/no.
    assert detect_personal(pd.Series(RNG.normal(100, 20, n))) is None
    assert detect_personal(pd.Series(pd.date_range("2024-01-01", periods=n, freq="h"))) is None
    assert detect_personal(pd.Series(RNG.integers(0, 2, n).astype(bool))) is None
    # A column where a third of the cells are emails: not mostly personal data.
    third = [f"user{i}@example.com" if i % 3 == 0 else "none given" for i in range(n)]
    assert detect_personal(pd.Series(third)) is None
    # Random sixteen-digit strings that start like Visa cards: about one in ten passes Luhn.
    visa_like = ["4" + "".join(map(str, RNG.integers(0, 10, 15))) for _ in range(n)]
    assert detect_personal(pd.Series(visa_like)) is None


def _people(n: int = 240) -> pd.DataFrame:
    frame = churn_frame(n)
    first, last = RNG.choice(FIRST, n), RNG.choice(LAST, n)
    frame.insert(0, "full_name", [f"{f} {s}" for f, s in zip(first, last)])
    frame.insert(1, "contact", [f"{f.lower()}.{i}@mail.example.org" for i, f in enumerate(first)])
    frame.insert(2, "card", [int(c) for c in _cards(n, "5")])
    return frame


def test_the_profile_flags_keeps_no_value_and_leaves_the_columns_out_of_the_inputs():
    frame = _people()
    profile = tabular.profile_frame(frame)
    assert tabular.personal_columns(profile) == ["full_name", "contact", "card"]
    for name in ("full_name", "contact", "card"):
        col = profile.column(name)
        assert col.stats == {} and col.hist_labels == []
        assert col.warnings[0].startswith(f"Column '{name}' holds personal data")
    assert profile.column("contact").personal["kind"] == "email"
    stored = profile.to_dict()
    text = repr(stored)
    assert "@mail.example.org" not in text and "Schmidt" not in text
    assert tabular.DatasetProfile.from_dict(stored).column("card").personal == profile.column("card").personal
    features = tabular.usable_features(profile, "churn")
    assert not {"full_name", "contact", "card"} & set(features)
    assert "tenure" in features and "plan" in features


def test_mask_personal_hides_values_keeps_gaps_and_leaves_the_frame_alone():
    frame = pd.DataFrame({"email": ["a@example.com", None, "b@example.com"], "amount": [1.0, 2.0, np.nan]})
    original = frame.copy()
    masked = mask_personal(frame, ["email", "not_there"])
    assert masked["email"].tolist() == [MASK, None, MASK]
    assert masked["amount"].equals(frame["amount"])
    assert frame.equals(original)
    assert mask_personal(frame, []) is frame


def _everything_in(store, run_id: str) -> str:
    html = report.build_report(store, run_id)
    archive = zipfile.ZipFile(io.BytesIO(bundle.build_bundle(store, run_id)))
    files = "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
                      if not name.endswith(".keras"))
    return html + "\n" + files


@pytest.mark.slow
def test_a_run_leaves_personal_columns_out_and_its_report_and_bundle_name_them_only_when_put_back(store):
    frame = _people()
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "customers.csv")
    train = TrainSpec(epochs=1, batch_size=32, size="small", seed=3)
    run_id = runner.submit(store, RunSpec(data=DataSpec(record.id, "churn"), template="mlp", train=train,
                                          baselines=False), claim=True)
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    inputs = {c for cols in run.result["features"].values() for c in cols}
    assert inputs and not {"full_name", "contact", "card"} & inputs
    everything = _everything_in(store, run_id)
    for secret in ("full_name", "contact", "'card'", "@mail.example.org", str(frame["card"].iloc[0]),
                   frame["full_name"].iloc[0]):
        assert secret not in everything

    # The analyst puts the email column back: the run says so, the report and card name it.
    features = tuple(tabular.usable_features(tabular.profile_of(record), "churn")) + ("contact",)
    back_id = runner.submit(store, RunSpec(data=DataSpec(record.id, "churn", features=features), template="mlp",
                                           train=train, baselines=False), claim=True)
    runner.execute_run(store, back_id)
    back = store.run(back_id)
    assert back.status == "done", back.message
    note = next(w for w in back.result["warnings"] if "personal data" in w)
    assert "'contact'" in note and "email addresses" in note
    card = bundle.model_card(back, store.dataset(record.id), back.template)
    assert "'contact'" in card and "personal data" in card
    assert "personal data (email addresses)" in report.build_report(store, back_id)
    everything = _everything_in(store, back_id)
    assert "full_name" not in everything and str(frame["card"].iloc[0]) not in everything
