"""Sample series that ship inside installed packages (statsmodels' CO₂ and sunspots, Plotly's
stocks), stored as CSV exactly like an upload; no network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dlcore.tables.samples import csv_bytes, load_from

# --------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesSample:
    """One sample series: what it is, its time and target columns, and how to load it."""

    key: str
    title: str
    description: str
    loader: Callable[[], pd.DataFrame]
    time_col: str
    target: str
    id_col: str | None = None


def _co2() -> pd.DataFrame:
    from statsmodels.datasets import co2

    data = co2.load_pandas().data
    # The 59 missing weeks are kept as empty values, as they come, so the gap fix is shown.
    return pd.DataFrame({"week": data.index.to_numpy(), "co2": data["co2"].to_numpy()})


def _sunspots() -> pd.DataFrame:
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    return pd.DataFrame(
        {
            "year": data["YEAR"].astype("int64").to_numpy(),
            "sunspot_activity": data["SUNACTIVITY"].to_numpy(),
        }
    )


def _stocks() -> pd.DataFrame:
    # plotly.data reads a CSV bundled with Plotly; plotly.express would import far more.
    from plotly import data

    return data.stocks()


def _stocks_long() -> pd.DataFrame:
    wide = _stocks()
    return wide.melt(id_vars="date", var_name="company", value_name="price")


SERIES_SAMPLES: dict[str, SeriesSample] = {
    s.key: s
    for s in (
        SeriesSample(
            key="co2",
            title="CO₂ at Mauna Loa (weekly)",
            description="Weekly carbon dioxide in the air at Mauna Loa, Hawaii, in parts per "
            "million, March 1958 to December 2001: a rising trend with a yearly cycle, and 59 "
            "missing weeks (from statsmodels).",
            loader=_co2,
            time_col="week",
            target="co2",
        ),
        SeriesSample(
            key="sunspots",
            title="Sunspots (yearly)",
            description="Yearly sunspot activity from 1700 to 2008, which rises and falls in "
            "cycles of about 11 years (from statsmodels).",
            loader=_sunspots,
            time_col="year",
            target="sunspot_activity",
        ),
        SeriesSample(
            key="stocks",
            title="Tech stock prices (weekly)",
            description="Weekly share prices of Google, Apple, Amazon, Facebook, Netflix and "
            "Microsoft in 2018 and 2019, each divided by its first price (from Plotly); the "
            "other companies can be used as covariates.",
            loader=_stocks,
            time_col="date",
            target="GOOG",
        ),
        SeriesSample(
            key="stocks_long",
            title="Tech stock prices, one series per company",
            description="The same six weekly share prices in long form: one row per company "
            "and week, with the company in its own column, to forecast several series at once.",
            loader=_stocks_long,
            time_col="date",
            target="price",
            id_col="company",
        ),
    )
}


def load_series_sample(key: str) -> pd.DataFrame:
    """A fresh copy of the sample series called ``key`` (one of ``SERIES_SAMPLES``)."""
    return load_from(SERIES_SAMPLES, key, "series")


def series_sample_csv_bytes(key: str) -> bytes:
    """The sample as UTF-8 CSV bytes, so it can be stored and read exactly like an upload."""
    return csv_bytes(load_series_sample(key))
