"""Series: a table with a time column, forecast instead of classified (one series, or several
named by an id column).

- ``times``: read a time column, find time and id columns; ``frequency``: infer and describe
  the frequency; ``checks``: gaps and duplicates found and fixed, settings suggested;
  ``samples``: series that ship inside installed packages.
- ``templates``: LSTM, GRU and 1-D CNN over a look-back window; ``backtest``: windows, splits,
  scaling, the baseline forecasters and their scores; ``run``: a rolling-origin backtest of a
  deep template and the baselines, then the forecast after the last date (a kind with a run
  loop of its own); ``leaderboard``: ranked by MASE across the backtest windows.
- ``explain``: which past steps and columns a forecast leans on; ``charts``: backtests,
  forecasts with their band, each series over time.
"""

from dlcore.base import Kind
from dlcore.series import backtest, explain, run, templates
from dlcore.series.checks import (
    DUPLICATE_FIXES,
    GAP_FIXES,
    MIN_TRAIN_WINDOWS,
    SeriesReport,
    Settings,
    check_series,
    check_settings,
    needed_steps,
    overview,
    regularise,
    suggest_settings,
)
from dlcore.series.frequency import Frequency, frequency_for, infer_frequency
from dlcore.series.samples import (
    SERIES_SAMPLES,
    SeriesSample,
    load_series_sample,
    series_sample_csv_bytes,
)
from dlcore.series.times import (
    MAX_IDS,
    id_columns,
    in_time_order,
    looks_like_id,
    parse_times,
    time_columns,
)

__all__ = [
    "KIND", "DUPLICATE_FIXES", "GAP_FIXES", "MIN_TRAIN_WINDOWS", "MAX_IDS", "SERIES_SAMPLES", "Frequency",
    "SeriesReport", "SeriesSample", "Settings", "check_series", "check_settings", "frequency_for", "id_columns",
    "in_time_order", "infer_frequency", "load_series_sample", "looks_like_id", "needed_steps", "overview", "parse_times", "regularise",
    "series_sample_csv_bytes", "suggest_settings", "time_columns",
]

KIND = Kind(
    name="series",
    title="Series",
    unit="steps",
    reads="tabular",
    templates=templates.TEMPLATES,
    baselines=backtest.baselines,
    check=run.check,
    execute=run.execute_forecast,
    score_upload=run.score_upload,
    explain=explain.explain_model,
    needs=run.NEEDS,
)
