"""Tabular sample data sets that ship inside installed packages, for "try it with sample data".

Every sample loads from files bundled with scikit-learn or Plotly, so it works on a server
with no network. Column names are made readable (``mean_radius``, not ``mean radius``) and
class targets hold names, not codes, because an analyst reads them in every chart.

Example::

    df = load_sample("iris")           # 150 rows, target "species"
    raw = sample_csv_bytes("iris")     # the same table as CSV, stored like an upload
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dlcore.errors import DataError

__all__ = ["SAMPLES", "Sample", "load_sample", "sample_csv_bytes", "load_from", "csv_bytes"]


@dataclass(frozen=True)
class Sample:
    """One sample table: what it is, which column to predict, and how to load it."""

    key: str
    title: str
    description: str
    default_target: str
    loader: Callable[[], pd.DataFrame]


def _snake(name: str) -> str:
    """'sepal length (cm)' -> 'sepal_length_cm', 'od280/od315_of_x' -> 'od280_od315_of_x'."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _tips() -> pd.DataFrame:
    # plotly.data reads a CSV bundled with Plotly; plotly.express would import far more.
    from plotly import data

    return data.tips()


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    df = bunch.data.rename(columns=_snake)
    # sklearn codes 0 = malignant, 1 = benign; target_names holds the words in that order.
    df["diagnosis"] = pd.Categorical.from_codes(bunch.target, bunch.target_names).astype("str")
    return df


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    # scaled=False keeps real units (age in years, BMI), which an analyst can read.
    bunch = load_diabetes(as_frame=True, scaled=False)
    df = bunch.data.rename(
        columns={
            "bp": "blood_pressure",
            "s1": "total_cholesterol",
            "s2": "ldl",
            "s3": "hdl",
            "s4": "cholesterol_hdl_ratio",
            "s5": "log_triglycerides",
            "s6": "blood_sugar",
        }
    )
    df["disease_progression"] = bunch.target
    return df


def _iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    df = bunch.data.rename(columns=_snake)
    df["species"] = pd.Categorical.from_codes(bunch.target, bunch.target_names).astype("str")
    return df


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    bunch = load_wine(as_frame=True)
    df = bunch.data.rename(columns=_snake)
    names = [f"cultivar_{i + 1}" for i in range(len(bunch.target_names))]
    df["cultivar"] = pd.Categorical.from_codes(bunch.target, names).astype("str")
    return df


SAMPLES: dict[str, Sample] = {
    s.key: s
    for s in (
        Sample(
            key="tips",
            title="Restaurant tips",
            description="244 restaurant bills with the tip left, the party size, the day and "
            "whether the table was smoking.",
            default_target="tip",
            loader=_tips,
        ),
        Sample(
            key="breast_cancer",
            title="Breast cancer diagnosis",
            description="569 breast tissue samples described by 30 cell measurements, each "
            "diagnosed as malignant or benign.",
            default_target="diagnosis",
            loader=_breast_cancer,
        ),
        Sample(
            key="diabetes",
            title="Diabetes progression",
            description="442 diabetes patients with age, BMI, blood pressure and blood tests, "
            "and how far the disease progressed one year later.",
            default_target="disease_progression",
            loader=_diabetes,
        ),
        Sample(
            key="iris",
            title="Iris flowers",
            description="150 iris flowers measured by petal and sepal size, each one of three "
            "species.",
            default_target="species",
            loader=_iris,
        ),
        Sample(
            key="wine",
            title="Wine cultivars",
            description="178 Italian wines described by 13 chemical measurements, each made "
            "from one of three grape cultivars.",
            default_target="cultivar",
            loader=_wine,
        ),
    )
}


def load_from(registry: dict[str, Any], key: str, what: str) -> pd.DataFrame:
    """A fresh copy of the sample called ``key`` in ``registry`` (anything with a ``loader``)."""
    sample = registry.get(key)
    if sample is None:
        raise DataError(f"There is no sample {what} called '{key}'. Pick one of: {', '.join(registry)}.")
    return sample.loader().reset_index(drop=True)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A sample as UTF-8 CSV bytes, so it can be stored and read exactly like an upload."""
    return frame.to_csv(index=False).encode("utf-8")


def load_sample(key: str) -> pd.DataFrame:
    """A fresh copy of the sample table called ``key`` (one of ``SAMPLES``)."""
    return load_from(SAMPLES, key, "data set")


def sample_csv_bytes(key: str) -> bytes:
    """The sample as UTF-8 CSV bytes, so it can be stored and read exactly like an upload."""
    return csv_bytes(load_sample(key))
