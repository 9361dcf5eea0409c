"""Time series data: date parsing, frequency inference, gap and duplicate fixes, settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlcore import series as ts
from dlcore.errors import DataError, SpecError
from dlcore.tables import read_table


def _dates(*values: str) -> list[str]:
    return [pd.Timestamp(v).isoformat() for v in values]


def _iso(series: pd.Series) -> list[str]:
    return [t.isoformat() for t in series]


# --------------------------------------------------------------------------------------
# parse_times


def test_european_day_first_with_dots_blanks_and_spaces():
    raw = pd.Series([" 31.12.2024", "01.01.2025 ", "", None, "13.01.2025"], name="Datum")
    times, note = ts.parse_times(raw)
    assert _iso(times.dropna()) == _dates("2024-12-31", "2025-01-01", "2025-01-13")
    assert times.isna().tolist() == [False, False, True, True, False]
    assert "day.month.year (European)" in note and "31.12.2024" in note
    assert "2 rows of 'Datum' have no time" in note


def test_day_first_decided_by_a_day_above_12_even_with_slashes():
    times, note = ts.parse_times(pd.Series(["05/01/2024", "13/01/2024"]))
    assert _iso(times) == _dates("2024-01-05", "2024-01-13")
    assert "European" in note


def test_us_month_first_with_time_and_am_pm():
    raw = pd.Series(["12/31/2024 11:30 PM", "01/01/2025 12:15 AM", "1/2/25 9:05"])
    times, note = ts.parse_times(raw)
    assert _iso(times) == _dates("2024-12-31 23:30", "2025-01-01 00:15", "2025-01-02 09:05")
    assert "month/day/year (US)" in note


def test_ambiguous_dates_follow_separator_or_dayfirst_hint():
    dots, note = ts.parse_times(pd.Series(["01.02.2024", "02.02.2024"]))
    assert _iso(dots) == _dates("2024-02-01", "2024-02-02")
    assert "could be read day first or month first" in note
    slashes, _ = ts.parse_times(pd.Series(["01/02/2024", "02/02/2024"]))
    assert _iso(slashes) == _dates("2024-01-02", "2024-02-02")
    hinted, _ = ts.parse_times(pd.Series(["01/02/2024", "02/02/2024"]), dayfirst=True)
    assert _iso(hinted) == _dates("2024-02-01", "2024-02-02")
    # The hint never overrides what the data prove.
    proven, _ = ts.parse_times(pd.Series(["12/31/2024", "01/02/2025"]), dayfirst=True)
    assert _iso(proven) == _dates("2024-12-31", "2025-01-02")


def test_iso_with_time_and_fractions():
    raw = pd.Series(["2024-01-05T10:30:00", "2024-01-05 11:30", "2024/01/05 12:30:15.250"])
    times, note = ts.parse_times(raw)
    assert _iso(times) == _dates("2024-01-05 10:30", "2024-01-05 11:30", "2024-01-05 12:30:15.250")
    assert note == ""


def test_years_as_integers_floats_and_text():
    times, note = ts.parse_times(pd.Series([1749, 1750, 1751], name="year"))
    assert _iso(times) == _dates("1749-01-01", "1750-01-01", "1751-01-01")
    assert "as years (1749 to 1751)" in note
    floats, _ = ts.parse_times(pd.Series([1700.0, 1701.0]))
    assert _iso(floats) == _dates("1700-01-01", "1701-01-01")
    text, note = ts.parse_times(pd.Series(["2020", "2021"]))
    assert _iso(text) == _dates("2020-01-01", "2021-01-01") and "1 January" in note


def test_compact_yyyymmdd_numbers():
    times, _ = ts.parse_times(pd.Series([20240131, 20240201]))
    assert _iso(times) == _dates("2024-01-31", "2024-02-01")


def test_weeks_quarters_and_months_in_words():
    weeks, note = ts.parse_times(pd.Series(["2024-W05", "2024W06", "2024-W07-3"]))
    assert _iso(weeks) == _dates("2024-01-29", "2024-02-05", "2024-02-14")
    assert "Monday" in note
    quarters, _ = ts.parse_times(pd.Series(["2024Q1", "2024-Q2", "Q3 2024"]))
    assert _iso(quarters) == _dates("2024-01-01", "2024-04-01", "2024-07-01")
    months, _ = ts.parse_times(pd.Series(["Jan 2024", "February 2024", "März 2024", "Dec-24"]))
    assert _iso(months) == _dates("2024-01-01", "2024-02-01", "2024-03-01", "2024-12-01")
    numeric_months, _ = ts.parse_times(pd.Series(["2024-01", "2024-02", "03/2024"]))
    assert _iso(numeric_months) == _dates("2024-01-01", "2024-02-01", "2024-03-01")
    days, _ = ts.parse_times(pd.Series(["12 Jan 2024", "Jan 13, 2024", "14-Jan-2024"]))
    assert _iso(days) == _dates("2024-01-12", "2024-01-13", "2024-01-14")


def test_fixed_time_zone_keeps_clock_times():
    raw = pd.Series(["2024-01-05T10:00:00+02:00", "2024-01-05T11:00:00+02:00"], name="ts")
    times, note = ts.parse_times(raw)
    assert _iso(times) == _dates("2024-01-05 10:00", "2024-01-05 11:00")
    assert "UTC+02:00" in note and "dropped" in note


def test_daylight_saving_hours_go_to_utc_but_dates_stay():
    hours = pd.Series(
        ["2024-03-31T01:00+01:00", "2024-03-31T03:00+02:00", "2024-03-31T04:00+02:00"]
    )
    times, note = ts.parse_times(hours)
    assert _iso(times) == _dates("2024-03-31 00:00", "2024-03-31 01:00", "2024-03-31 02:00")
    assert "UTC" in note
    days = pd.Series(["2024-03-30T00:00+01:00", "2024-03-31T00:00+02:00"])
    times, note = ts.parse_times(days)
    assert _iso(times) == _dates("2024-03-30", "2024-03-31") and "dates kept" in note


def test_timezone_aware_column_is_made_naive():
    aware = pd.Series(pd.date_range("2024-01-01", periods=3, freq="D", tz="Europe/Paris"))
    times, note = ts.parse_times(aware)
    assert times.dt.tz is None
    assert _iso(times) == _dates("2024-01-01", "2024-01-02", "2024-01-03")
    assert "Europe/Paris" in note


def test_datetime_column_passes_through():
    dt = pd.Series(pd.date_range("2024-01-01", periods=3, freq="h"))
    times, note = ts.parse_times(dt)
    assert times.equals(dt) and note == ""


def test_unparseable_cells_are_counted_with_examples_and_the_fix():
    raw = pd.Series(["2024-01-01", "soon", "2024-01-03", "31/31/2024", "soon"], name="when")
    with pytest.raises(DataError) as err:
        ts.parse_times(raw)
    message = str(err.value)
    assert "3 of 5 values in 'when'" in message
    assert "'soon'" in message and "'31/31/2024'" in message
    assert "Correct them" in message and "delete those rows" in message


def test_text_that_is_no_date_and_numbers_that_are_no_years():
    with pytest.raises(DataError, match="does not look like dates"):
        ts.parse_times(pd.Series(["north", "south"], name="region"))
    with pytest.raises(DataError, match="not years or dates.*Excel"):
        ts.parse_times(pd.Series([45000, 45001], name="serial"))


def test_mixed_day_and_month_order_is_refused():
    with pytest.raises(DataError, match="mix day-first and month-first"):
        ts.parse_times(pd.Series(["31/01/2024", "01/31/2024"]))


# --------------------------------------------------------------------------------------
# infer_frequency


@pytest.mark.parametrize(
    ("freq", "alias", "season", "words"),
    [
        ("D", "D", 7, "daily"),
        ("W-SAT", "W-SAT", 52, "weekly (Saturdays)"),
        ("W-MON", "W-MON", 52, "weekly (Mondays)"),
        ("MS", "MS", 12, "monthly"),
        ("ME", "ME", 12, "monthly (month ends)"),
        ("QS", "QS", 4, "quarterly"),
        ("QE", "QE", 4, "quarterly (quarter ends)"),
        ("YS", "YS", 1, "yearly"),
        ("h", "h", 24, "hourly"),
        ("15min", "15min", 96, "every 15 minutes"),
        ("B", "B", 5, "business days (Monday to Friday)"),
    ],
)
def test_frequency_of_regular_series(freq, alias, season, words):
    times = pd.Series(pd.date_range("2023-01-02", periods=40, freq=freq))
    f = ts.infer_frequency(times)
    assert (f.alias, f.season_length, f.words, f.confidence) == (alias, season, words, 1.0)
    assert f.grid(times.iloc[0], times.iloc[-1]).equals(pd.DatetimeIndex(times))


def test_frequency_tolerates_gaps_and_reports_confidence():
    days = pd.Series(pd.date_range("2024-01-01", periods=100, freq="D")).drop([10, 11, 50])
    f = ts.infer_frequency(days.sample(frac=1, random_state=0))  # order does not matter
    assert f.alias == "D"
    assert f.confidence == pytest.approx(94 / 96, abs=1e-4)


def test_anchored_steps_keep_their_clock_time_and_day():
    mornings = pd.Series(pd.date_range("2024-01-01 09:00", periods=10, freq="D"))
    f = ts.infer_frequency(mornings)
    assert (f.alias, f.anchor) == ("D", pd.Timedelta(hours=9))
    assert f.future(mornings.iloc[-1], 2).tolist() == [
        pd.Timestamp("2024-01-11 09:00"),
        pd.Timestamp("2024-01-12 09:00"),
    ]
    fifteenth = pd.Series(
        pd.date_range("2024-01-01", periods=12, freq="MS") + pd.Timedelta(days=14)
    )
    f = ts.infer_frequency(fifteenth)
    assert (f.alias, f.anchor) == ("MS", pd.Timedelta(days=14))
    assert f.future(fifteenth.iloc[-1], 1)[0] == pd.Timestamp("2025-01-15")


def test_years_as_integers_are_yearly():
    f = ts.infer_frequency(pd.Series(np.arange(1749, 1800)))
    assert (f.alias, f.season_length, f.unit) == ("YS", 1, "years")


def test_irregular_times_say_how_to_fix_them():
    rng = np.random.default_rng(0)
    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        np.cumsum(rng.integers(1, 90, 50)), unit="min"
    )
    with pytest.raises(DataError, match="not evenly spaced.*Choose a frequency"):
        ts.infer_frequency(pd.Series(stamps))
    with pytest.raises(DataError, match="at least three different times"):
        ts.infer_frequency(pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02"])))


def test_frequency_for_a_chosen_alias_and_round_trip():
    f = ts.frequency_for("W-MON")
    assert (f.words, f.season_length) == ("weekly (Mondays)", 52)
    assert ts.Frequency.from_dict(f.to_dict()) == f
    with pytest.raises(SpecError, match="not a frequency"):
        ts.frequency_for("fortnightly")


# --------------------------------------------------------------------------------------
# check_series and regularise


def _daily_with_problems() -> pd.DataFrame:
    """Ten days: the 4th missing, the 6th twice, the 8th without a value."""
    days = list(pd.date_range("2024-01-01", periods=10, freq="D").strftime("%d.%m.%Y"))
    days.remove("04.01.2024")
    days.insert(5, "06.01.2024")
    sales = [1.0, 2.0, 3.0, 5.0, 6.0, 8.0, 7.0, np.nan, 9.0, 10.0]
    promo = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    return pd.DataFrame({"day": days, "sales": sales, "promo": promo})


def test_check_series_counts_gaps_duplicates_and_missing_values():
    report = ts.check_series(_daily_with_problems(), "day", "sales")
    assert report.frequency.alias == "D"
    assert (report.n_rows, report.n_series, report.n_steps) == (10, 1, 10)
    assert (report.gaps, report.gap_examples) == (1, ["2024-01-04"])
    assert (report.duplicates, report.duplicate_examples) == (1, ["2024-01-06 (2 rows)"])
    assert (report.missing_values, report.missing_examples) == (1, ["2024-01-08"])
    assert report.needs_fixing
    text = " ".join(report.notes)
    assert "1 step is missing" in text and "1 value of 'sales' is missing" in text
    assert "more than one row" in text and "their sum" in text
    assert report.to_dict()["frequency"]["alias"] == "D"


@pytest.mark.parametrize(
    ("duplicates", "gaps", "expected"),
    [
        ("mean", "interpolate", [1, 2, 3, 4, 5, 7, 7, 8, 9, 10]),
        ("sum", "ffill", [1, 2, 3, 3, 5, 14, 7, 7, 9, 10]),
        ("last", "zero", [1, 2, 3, 0, 5, 8, 7, 0, 9, 10]),
    ],
)
def test_regularise_fixes(duplicates, gaps, expected):
    frame = _daily_with_problems()
    out, notes = ts.regularise(
        frame, "day", "sales", covariates=["promo"], duplicates=duplicates, gaps=gaps
    )
    assert out.columns.tolist() == ["day", "sales", "promo"]
    assert out["day"].tolist() == list(pd.date_range("2024-01-01", periods=10, freq="D"))
    assert out["sales"].tolist() == pytest.approx(expected)
    assert out["promo"].notna().all()
    text = " ".join(notes)
    assert "1 missing step (days)" in text and "1 missing value of 'sales'" in text
    assert "Combined 2 rows" in text


def test_regularise_trims_ends_it_cannot_fill_and_handles_several_series():
    frame = pd.DataFrame(
        {
            "store": ["b", "b", "b", "a", "a", "a", "a"],
            "month": ["2024-01", "2024-02", "2024-04", "2024-01", "2024-02", "2024-03", "2024-04"],
            "units": [10.0, 20.0, 40.0, np.nan, 1.0, 2.0, 3.0],
        }
    )
    report = ts.check_series(frame, "month", "units", id_col="store")
    assert (report.n_series, report.gaps, report.missing_values) == (2, 1, 1)
    assert report.gap_examples == ["b: 2024-03-01"]
    out, notes = ts.regularise(frame, "month", "units", id_col="store")
    assert out["store"].tolist() == ["a"] * 3 + ["b"] * 4
    assert out["units"].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 40.0]
    assert any("Dropped 1 step at the start or end" in n for n in notes)


def test_off_grid_times_are_counted_and_moved_into_their_step():
    stamps = pd.Series(pd.date_range("2024-01-01", periods=20, freq="D"))
    stamps[2] = pd.Timestamp("2024-01-03 10:00")
    frame = pd.DataFrame({"t": stamps, "v": np.arange(20.0)})
    report = ts.check_series(frame, "t", "v")
    assert report.frequency.alias == "D"
    assert (report.off_grid, report.off_grid_examples) == (1, ["2024-01-03 10:00"])
    out, notes = ts.regularise(frame, "t", "v")
    assert out["t"].tolist() == list(pd.date_range("2024-01-01", periods=20, freq="D"))
    assert out["v"].tolist() == list(np.arange(20.0))
    assert any("fell between steps" in n for n in notes)


def test_irregular_series_aggregated_to_a_chosen_frequency():
    stamps = pd.to_datetime(
        ["2024-01-01 08:10", "2024-01-01 17:45", "2024-01-02 09:00", "2024-01-04 12:00"]
    )
    frame = pd.DataFrame({"t": stamps, "amount": [1.0, 2.0, 4.0, 8.0]})
    out, _ = ts.regularise(frame, "t", "amount", duplicates="sum", gaps="zero", freq="D")
    assert out["t"].tolist() == list(pd.date_range("2024-01-01", periods=4, freq="D"))
    assert out["amount"].tolist() == [3.0, 4.0, 0.0, 8.0]


def test_regularise_refuses_unknown_options_and_text_targets():
    frame = _daily_with_problems()
    with pytest.raises(SpecError, match="Use one of: mean, sum, last"):
        ts.regularise(frame, "day", "sales", duplicates="median")
    with pytest.raises(SpecError, match="Use one of: interpolate, ffill, zero"):
        ts.regularise(frame, "day", "sales", gaps="spline")
    frame["label"] = "x"
    with pytest.raises(DataError, match="'label' is not numbers"):
        ts.check_series(frame, "day", "label")
    with pytest.raises(DataError, match="no column called 'nope'"):
        ts.check_series(frame, "day", "nope")


# --------------------------------------------------------------------------------------
# Settings


def test_suggested_settings_from_frequency():
    weekly = ts.frequency_for("W-SAT")
    assert ts.suggest_settings(weekly, 2284) == ts.Settings(13, 104, 52, 3)
    monthly = ts.frequency_for("MS")
    assert ts.suggest_settings(monthly, 200) == ts.Settings(12, 36, 12, 3)
    assert ts.suggest_settings(ts.frequency_for("D"), 1000) == ts.Settings(14, 42, 7, 3)
    assert ts.suggest_settings(ts.frequency_for("h"), 5000) == ts.Settings(48, 144, 24, 3)
    assert ts.suggest_settings(ts.frequency_for("QS"), 200) == ts.Settings(8, 24, 4, 3)
    assert ts.suggest_settings(ts.frequency_for("YS"), 309) == ts.Settings(5, 15, 1, 3)


def test_short_series_get_smaller_settings_that_fit():
    monthly = ts.frequency_for("MS")
    s = ts.suggest_settings(monthly, 60)
    assert (s.horizon, s.windows, s.lookback) == (12, 2, 15)
    ts.check_settings(60, s.horizon, s.lookback, s.windows)
    tiny = ts.suggest_settings(monthly, 40)
    assert (tiny.horizon, tiny.windows) == (7, 2)
    ts.check_settings(40, tiny.horizon, tiny.lookback, tiny.windows)
    assert any("rather than the usual 12" in n for n in tiny.notes)
    with pytest.raises(DataError, match="only 5 months"):
        ts.suggest_settings(monthly, 5)


def test_check_settings_names_the_fix():
    with pytest.raises(DataError) as err:
        ts.check_settings(100, horizon=52, lookback=104, windows=3, unit="weeks")
    assert "The series has 100 weeks" in str(err.value)
    assert "at least 321" in str(err.value) and "Shorten the horizon" in str(err.value)
    with pytest.raises(SpecError, match="horizon must be a whole number"):
        ts.check_settings(100, horizon=0, lookback=4, windows=1)
    ts.check_settings(321, horizon=52, lookback=104, windows=3)


# --------------------------------------------------------------------------------------
# time_columns and samples


def test_time_columns_best_first():
    frame = pd.DataFrame(
        {
            "amount": [1.5, 2.5, 3.5, 4.5],
            "year": [2020, 2021, 2022, 2023],
            "label": ["a", "b", "c", "d"],
            "when": ["01.02.2024", "02.02.2024", "03.02.2024", "04.02.2024"],
            "stamp": pd.date_range("2024-01-01", periods=4, freq="D"),
            "units": [1200, 1500, 1333, 2100],
        }
    )
    assert ts.time_columns(frame) == ["stamp", "when", "year"]


def test_co2_sample_is_weekly_with_gaps_kept():
    sample = ts.SERIES_SAMPLES["co2"]
    frame = ts.load_series_sample("co2")
    report = ts.check_series(frame, sample.time_col, sample.target)
    assert report.frequency.alias == "W-SAT" and report.frequency.season_length == 52
    assert (report.n_rows, report.missing_values) == (2284, 59)
    clean, _ = ts.regularise(frame, sample.time_col, sample.target)
    assert len(clean) == 2284 and clean["co2"].notna().all()


def test_sunspots_sample_is_yearly_and_reads_back_from_csv():
    sample = ts.SERIES_SAMPLES["sunspots"]
    frame, _ = read_table(ts.series_sample_csv_bytes("sunspots"), name="sunspots.csv")
    report = ts.check_series(frame, sample.time_col, sample.target)
    assert (report.frequency.alias, report.n_steps) == ("YS", 309)
    assert report.start == pd.Timestamp("1700-01-01")


def test_stocks_samples_wide_and_long():
    wide = ts.load_series_sample("stocks")
    assert ts.check_series(wide, "date", "GOOG").frequency.alias == "W-MON"
    assert {"AAPL", "MSFT"} <= set(wide.columns)
    sample = ts.SERIES_SAMPLES["stocks_long"]
    long = ts.load_series_sample("stocks_long")
    report = ts.check_series(long, sample.time_col, sample.target, id_col=sample.id_col)
    assert (report.n_series, report.n_steps, report.duplicates) == (6, 105, 0)
    with pytest.raises(DataError, match="Pick one of: co2"):
        ts.load_series_sample("nope")


# --------------------------------------------------------------------------------------
# Several series in one file
# --------------------------------------------------------------------------------------


def long_file() -> pd.DataFrame:
    """Two shops × 30 days, with a promo flag (0/1) and a region that is the same for both shops."""
    days = pd.date_range("2024-03-01", periods=30, freq="D").strftime("%Y-%m-%d")
    rows = [{"shop": shop, "store_no": no, "region": "west", "day": d, "sales": float(i + no), "promo": i % 2}
            for shop, no in (("a", 1), ("b", 2)) for i, d in enumerate(days)]
    return pd.DataFrame(rows)


def test_the_column_that_names_each_series_is_found_by_the_shape_of_the_file():
    frame = long_file()
    # shop and store_no both make (id, day) unique; region has one value; promo is a 0/1 flag.
    assert ts.id_columns(frame, "day") == ["shop", "store_no"]
    assert ts.looks_like_id(frame, "day", "shop") and ts.looks_like_id(frame, "day", "store_no")
    assert not ts.looks_like_id(frame, "day", "region")
    one = frame[frame["shop"] == "a"]  # one series: no date repeats, so nothing looks like an id
    assert not ts.looks_like_id(one, "day", "shop") and ts.id_columns(one, "day") == []


def test_overview_gives_each_series_as_it_is_and_the_steps_it_lacks():
    frame = long_file()
    frame.loc[(frame["shop"] == "b") & (frame["day"] == "2024-03-10"), "sales"] = np.nan  # an empty cell
    frame = frame.drop(index=frame.index[(frame["shop"] == "a") & frame["day"].isin(["2024-03-05", "2024-03-06"])])
    values, missing = ts.overview(frame, "day", "sales", "shop")
    assert list(values.columns) == ["series", "time", "value"] and len(values) == 57
    assert missing.astype({"time": str}).values.tolist() == [["a", "2024-03-05"], ["a", "2024-03-06"],
                                                             ["b", "2024-03-10"]]
    report = ts.check_series(frame, "day", "sales", "shop")
    assert (report.n_series, report.n_steps, report.median_steps, report.gaps, report.missing_values) == (2, 30, 30, 2, 1)
