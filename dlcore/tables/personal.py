"""Personal data in a table, found by what the cells hold rather than by column names.

A column is flagged when at least half of a seeded sample of its non-empty cells (``SAMPLE_ROWS``)
is one of: an email address, a phone number (international, or a national format of a common
country), an IBAN (mod-97 check), a payment card number (issuer prefix, length and Luhn check), a
national identity number (US SSN, UK National Insurance and NHS numbers, Dutch BSN, French NIR,
Swedish personnummer, German Steuer-ID, Spanish DNI/NIE, Italian codice fiscale, Polish PESEL,
Belgian, Danish, Norwegian and Finnish numbers: each with its check digits where it has them),
an IP address (v4 or v6), or a person's name (``NAME_SHARE`` of the cells; the first names come
from the lists that ship with Faker for 18 European and American locales). Free text where a
fifth of the cells carry an email address or an IBAN is flagged too.

Check digits are what keeps an ordinary number column apart: about one random number in ten
passes a Luhn or 11-test, so a column of customer numbers never reaches half.

Example::

    finding = detect_personal(df["contact"])      # Finding(kind="email", share=0.98, ...) or None
    masked = mask_personal(df, ["contact"])       # the same frame, that column's cells hidden
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dlcore.tables.columns import _sample

__all__ = ["PERSONAL_KINDS", "SAMPLE_ROWS", "MIN_SHARE", "NAME_SHARE", "MASK", "Finding", "detect_personal",
           "cell_kind", "mask_personal", "describe"]

# What each kind is called in messages.
PERSONAL_KINDS = {
    "email": "email addresses",
    "phone": "phone numbers",
    "iban": "bank account numbers (IBAN)",
    "card": "payment card numbers",
    "national_id": "national identity numbers",
    "ip": "IP addresses",
    "name": "people's names",
}
SAMPLE_ROWS = 2000  # cells looked at per column (seeded, spread over the whole column)
MIN_SHARE = 0.5  # a column is personal when this share of its sampled cells is
NAME_SHARE = 0.6  # names: a higher bar, since single words ("Paris", "Rose") can be names
TEXT_SHARE = 0.2  # free text: this share of cells carrying an email address or an IBAN
MASK = "•••"


@dataclass(frozen=True)
class Finding:
    """What a column holds: ``kind`` (a key of ``PERSONAL_KINDS``), the ``share`` of sampled
    non-empty cells that are personal data, and ``details`` (e.g. ``("US SSN",)``)."""

    kind: str
    share: float
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "share": round(float(self.share), 4), "details": list(self.details)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(kind=data["kind"], share=float(data["share"]), details=tuple(data.get("details", ())))


def describe(finding: Finding) -> str:
    """A few words for a message: "payment card numbers" or "national identity numbers (US SSN)"."""
    words = PERSONAL_KINDS[finding.kind]
    return f"{words} ({', '.join(finding.details)})" if finding.details else words


# --------------------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")
_IBAN_IN_TEXT = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}")
_SEPARATORS = re.compile(r"[ .\-/]")
_PHONE_CHARS = re.compile(r"\+?[0-9 ().\-/]{7,22}")
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ .\-]?[2-9][0-9]{2}[ .\-][0-9]{4}")
_NINO = re.compile(r"(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]")
_SSN = re.compile(r"[0-9]{3}-[0-9]{2}-[0-9]{4}")
# Card issuers by prefix (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro)
# with the lengths they issue.
_CARD = re.compile(r"4[0-9]{12}(?:[0-9]{3}){0,2}|5[1-5][0-9]{14}|2(?:2[2-9][1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]"
                   r"|720)[0-9]{12}|3[47][0-9]{13}|6(?:011|5[0-9]{2})[0-9]{12,15}|3(?:0[0-5]|[68][0-9])[0-9]{11,16}"
                   r"|35(?:2[89]|[3-8][0-9])[0-9]{12,15}|62[0-9]{14,17}|(?:50|5[6-9]|6[0-9])[0-9]{10,17}")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿĀ-ž]+(?:['’\-][A-Za-zÀ-ÖØ-öø-ÿĀ-ž]+)*\.?")
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "del", "della", "di", "da", "das", "dos", "du", "la", "le",
                        "ter", "ten", "bin", "al", "y", "e"})
_EUROPE = ("GB", "DE", "FR", "NL", "ES", "IT", "BE", "CH", "AT", "SE", "DK", "NO", "FI", "PL", "IE", "PT")
_NAME_LOCALES = ("en_US", "en_GB", "en_IE", "de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "pt_PT", "pt_BR", "sv_SE",
                 "da_DK", "no_NO", "fi_FI", "pl_PL", "cs_CZ", "es_MX", "fr_CA")


def _digits(text: str) -> str:
    return _SEPARATORS.sub("", text)


@functools.cache
def _validators() -> list[tuple[str, re.Pattern[str], Any]]:
    """(label, the written form, the check) for every national number we know."""
    # Imported here: python-stdnum's modules load only when a table is profiled.
    from stdnum.be import nn
    from stdnum.de import idnr
    from stdnum.dk import cpr
    from stdnum.es import dni, nie
    from stdnum.fi import hetu
    from stdnum.fr import nir
    from stdnum.gb import nhs
    from stdnum.it import codicefiscale
    from stdnum.nl import bsn
    from stdnum.no import fodselsnummer
    from stdnum.pl import pesel
    from stdnum.se import personnummer
    from stdnum.us import ssn

    return [
        ("US SSN", _SSN, ssn.is_valid),
        ("UK National Insurance number", _NINO, lambda v: True),  # letters and digits; no check digit
        ("UK NHS number", re.compile(r"[0-9]{3} ?[0-9]{3} ?[0-9]{4}"), nhs.is_valid),
        ("Dutch BSN", re.compile(r"[0-9]{4}\.?[0-9]{2}\.?[0-9]{3}|[0-9]{8}"), bsn.is_valid),
        ("French NIR", re.compile(r"[12] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}"), nir.is_valid),
        ("Swedish personnummer", re.compile(r"(?:[0-9]{2})?[0-9]{6}[-+]?[0-9]{4}"), personnummer.is_valid),
        ("Danish CPR", re.compile(r"[0-9]{6}-?[0-9]{4}"), cpr.is_valid),
        ("Finnish HETU", re.compile(r"[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-Y]"), hetu.is_valid),
        ("German Steuer-ID", re.compile(r"[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}"), idnr.is_valid),
        ("Polish PESEL", re.compile(r"[0-9]{11}"), pesel.is_valid),
        ("Norwegian fødselsnummer", re.compile(r"[0-9]{6} ?[0-9]{5}"), fodselsnummer.is_valid),
        ("Belgian national number", re.compile(r"[0-9]{2}\.?[0-9]{2}\.?[0-9]{2}-?[0-9]{3}\.?[0-9]{2}"), nn.is_valid),
        ("Spanish DNI", re.compile(r"[0-9]{8}-?[A-Z]"), dni.is_valid),
        ("Spanish NIE", re.compile(r"[XYZ]-?[0-9]{7}-?[A-Z]"), nie.is_valid),
        ("Italian codice fiscale", re.compile(r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]"),
         codicefiscale.is_valid),
    ]


def _national_id(text: str) -> str | None:
    upper = text.upper()
    for label, form, valid in _validators():
        if form.fullmatch(upper):
            try:
                if valid(upper):
                    return label
            except Exception:  # noqa: BLE001  (a checker that trips on an odd value says "not this kind")
                continue
    return None


def _card(text: str) -> bool:
    from stdnum import luhn

    digits = _digits(text)
    return 13 <= len(digits) <= 19 and digits.isdigit() and bool(_CARD.fullmatch(digits)) and luhn.is_valid(digits)


def _iban(text: str) -> bool:
    from stdnum import iban

    return bool(_IBAN.fullmatch(text.upper())) and iban.is_valid(text)


def _ip(text: str) -> bool:
    if _IPV4.fullmatch(text):
        return True
    if ":" in text and text.count(":") >= 2:
        try:
            return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
        except ValueError:
            return False
    return False


class _Phones:
    """Phone numbers: international ones ("+44 20 7946 0958", "0044 ...") by their country code,
    national ones by a leading 0 (Europe) or North American grouping, each checked against the
    numbering plan of its country (Google's libphonenumber). A bare run of digits without a
    leading 0 or + is an id or an amount, never a phone. The region that matched last is tried
    first, since a column's numbers are mostly from one country."""

    def __init__(self) -> None:
        self.order = list(_EUROPE)

    def __call__(self, text: str) -> bool:
        if not _PHONE_CHARS.fullmatch(text):
            return False
        digits = re.sub(r"[^0-9]", "", text)
        if not 7 <= len(digits) <= 15:
            return False
        import phonenumbers

        def valid(number: str, region: str | None) -> bool:
            try:
                return phonenumbers.is_valid_number(phonenumbers.parse(number, region))
            except phonenumbers.NumberParseException:
                return False

        if text.startswith("+"):
            return valid(text, None)
        if text.startswith("00"):
            return valid("+" + text[2:], None)
        if _NANP.fullmatch(text):
            return valid(text, "US") or valid(text, "CA")
        if text.startswith("0") and not text.startswith("00") and (len(digits) >= 9):
            for i, region in enumerate(self.order):
                if valid(text, region):
                    if i:
                        self.order.insert(0, self.order.pop(i))
                    return True
        return False


def _faker_names(attrs: tuple[str, ...]) -> frozenset[str]:
    """The names of Faker's person providers of ``_NAME_LOCALES`` under ``attrs``, case-folded."""
    names: set[str] = set()
    for locale in _NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except ImportError:
            continue
        for attr in attrs:
            names.update(n.casefold() for n in getattr(provider, attr, ()) or ())
    return frozenset(names)


@functools.cache
def _first_names() -> frozenset[str]:
    return _faker_names(("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"))


@functools.cache
def _last_names() -> frozenset[str]:
    return _faker_names(("last_names", "last_names_male", "last_names_female"))


def _name(text: str) -> bool:
    """A person's name: one to four capitalised words, one of them a known first name ("Anna",
    "Anna Schmidt", "Schmidt, Anna", "J. van der Berg" with a known last name). A single word
    counts only when it is a first name: last names alone are too often ordinary words
    ("Green", "Small")."""
    words = text.replace(",", " ").split()
    if not 1 <= len(words) <= 5:
        return False
    proper = [w for w in words if w.casefold() not in _PARTICLES]
    if not proper or len(proper) > 4:
        return False
    for w in proper:
        if not _WORD.fullmatch(w) or not w[0].isupper():
            return False
    first, last = _first_names(), _last_names()
    folded = [w.rstrip(".").casefold() for w in proper]
    if len(folded) == 1:
        return folded[0] in first
    initials = sum(len(w) == 1 for w in folded)
    if any(w in first for w in folded if len(w) > 1):
        return True
    return initials > 0 and folded[-1] in last


def cell_kind(value: Any, phones: _Phones | None = None) -> tuple[str, str] | None:
    """The kind of personal data one cell is, with a detail (``("national_id", "US SSN")``), or None.

    Example: ``cell_kind("NL91 ABNA 0417 1643 00")`` is ``("iban", "")``.
    """
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if not text or len(text) > 80:
        return None
    if "@" in text:
        return ("email", "") if _EMAIL.fullmatch(text) else None
    if _ip(text):
        return ("ip", "")
    if text[:2].isalpha() and _iban(text):
        return ("iban", "")
    if _card(text):
        return ("card", "")
    label = _national_id(text)
    if label:
        return ("national_id", label)
    if (phones or _Phones())(text):
        return ("phone", "")
    if text[0].isalpha() and _name(text):
        return ("name", "")
    return None


# --------------------------------------------------------------------------------------
# One column
# --------------------------------------------------------------------------------------


def detect_personal(s: pd.Series, sample_rows: int = SAMPLE_ROWS) -> Finding | None:
    """What personal data column ``s`` holds, judged on ``sample_rows`` seeded non-empty cells; None
    for an ordinary column. Floats, dates and booleans are never personal data here (a card or
    national number kept as a float has lost its digits); whole numbers are checked for card and
    national numbers only (a phone number kept as a number has lost its leading 0 or +)."""
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return None
    if pd.api.types.is_float_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype) and \
            pd.api.types.is_float_dtype(s.dtype.categories.dtype):
        return None
    whole = pd.api.types.is_integer_dtype(s.dtype)
    present = s.dropna()
    if present.empty:
        return None
    sample = _sample(present, sample_rows)
    counts: dict[str, int] = {}
    details: dict[str, set[str]] = {}
    phones = _Phones()
    in_text: dict[str, int] = {}
    n = 0
    # Repeated values are judged once: a column of a few hundred names repeated over a sample.
    verdicts: dict[str, tuple[str, str] | None] = {}
    for value in sample.tolist():
        text = str(value).strip()
        if not text:
            continue
        n += 1
        if text not in verdicts:
            if whole:
                found = ("card", "") if _card(text) else None
                if found is None:
                    label = _national_id(text) or (_national_id(text.zfill(9)) if len(text) == 8 else None)
                    found = ("national_id", label) if label else None
            else:
                found = cell_kind(text, phones)
            verdicts[text] = found
        found = verdicts[text]
        if found is None:
            if not whole and len(text) > 20 and " " in text:
                carried = "email" if _EMAIL.search(text) else "iban" if _embedded_iban(text) else None
                if carried:
                    in_text[carried] = in_text.get(carried, 0) + 1
            continue
        kind, detail = found
        counts[kind] = counts.get(kind, 0) + 1
        if detail:
            details.setdefault(kind, set()).add(detail)
    if n == 0:
        return None
    total = sum(counts.values())
    if counts:
        kind = max(counts, key=counts.__getitem__)
        names_only = kind == "name" and total - counts["name"] < MIN_SHARE * n
        bar = NAME_SHARE if names_only else MIN_SHARE
        if total / n >= bar:
            if len(counts) > 1 and total - counts.get("name", 0) >= MIN_SHARE * n:
                counts.pop("name", None)  # a contact column of emails and phones with a name here and there
                kind = max(counts, key=counts.__getitem__)
            shown = tuple(sorted(details.get(kind, ())))
            mixed = tuple(PERSONAL_KINDS[k] for k in sorted(counts, key=counts.__getitem__, reverse=True)
                          if k != kind and counts[k] >= 0.1 * n)
            return Finding(kind=kind, share=total / n, details=shown + tuple(f"also {m}" for m in mixed))
    if sum(in_text.values()) >= TEXT_SHARE * n:
        kind = max(in_text, key=in_text.__getitem__)
        return Finding(kind=kind, share=sum(in_text.values()) / n, details=("inside free text",))
    return None


def _embedded_iban(text: str) -> bool:
    from stdnum import iban

    return any(iban.is_valid(m.group(0)) for m in _IBAN_IN_TEXT.finditer(text.upper()))


# --------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------


def mask_personal(frame: pd.DataFrame, columns: list[str] | tuple[str, ...] | set[str]) -> pd.DataFrame:
    """A copy of ``frame`` with every cell of ``columns`` that has a value replaced by ``MASK``
    (empty cells stay empty, so gaps still show). Columns not in the frame are ignored; the frame
    passed in is left unchanged.

    Example: ``mask_personal(df, ["email"])["email"].tolist()`` is ``["•••", None, "•••"]``.
    """
    hidden = [c for c in frame.columns if c in set(columns)]
    if not hidden:
        return frame
    out = frame.copy()
    for column in hidden:
        values = out[column]
        out[column] = pd.Series(MASK, index=out.index, dtype="object").where(values.notna(), None)
    return out
