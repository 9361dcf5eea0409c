"""One metric code path for Keras and scikit-learn models, and an honest leaderboard.

Every model on a board, deep or baseline, is scored from its test-set output by the same code
(``metrics``), so the numbers are comparable by construction; the primary metric gets a
percentile-bootstrap interval on the same resampled rows for every model (a paired
bootstrap), so the interval for "deep minus best baseline" reflects the difference between
models, not the noise each one has alone. ``ranking`` orders the models and words the
verdict. Forecasts are ranked by ``dlcore.series.leaderboard`` with a t-interval across
backtest windows, paired by window.
"""

from dlcore.evaluate.metrics import (
    FAMILIES,
    FORECAST_METRICS,
    OUTCOMES,
    TASKS,
    Metric,
    bootstrap_ci,
    bootstrap_indices,
    bootstrap_values,
    mae,
    mase,
    metrics_for,
    predicted_labels,
    primary_metric,
    rmse,
    score,
    smape,
)
from dlcore.evaluate.ranking import (
    DISPLAY_NAMES,
    Leaderboard,
    Row,
    Verdict,
    best_by,
    display_name,
    leaderboard,
    nothing_predicts,
    per_class,
    recommended,
)

__all__ = [
    "TASKS", "FAMILIES", "OUTCOMES", "FORECAST_METRICS", "Metric", "metrics_for", "primary_metric", "score",
    "predicted_labels", "per_class", "bootstrap_indices", "bootstrap_values", "bootstrap_ci", "mae", "rmse", "smape",
    "mase", "Row", "Verdict", "Leaderboard", "leaderboard", "display_name", "best_by", "recommended",
    "nothing_predicts", "DISPLAY_NAMES",
]
