"""What a training run is: frozen dataclasses with validation and a dict round trip.

The UI turns widgets into a ``RunSpec``; the worker and the CLI consume it. A spec is all a
run needs to be repeated: with the same dataset and seed it trains the same models.

>>> spec = RunSpec(data=DataSpec(dataset_id="d1", target="churn"), template="mlp")
>>> RunSpec.from_dict(spec.to_dict()) == spec
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from dlcore.errors import SpecError

__all__ = ["DataSpec", "TrainSpec", "ForecastSpec", "RunSpec", "TASK_CHOICES", "SIZES", "suggested_batch_size",
           "suggested_image_size", "suggested_flip", "IMAGE_SIZES"]

TASK_CHOICES = ("auto", "binary", "multiclass", "regression", "classification", "forecast")
SIZES = ("small", "medium", "large")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise SpecError(f"{name} is {value!r}; it must be between {low} and {high}.")


@dataclass(frozen=True)
class DataSpec:
    """Which data a run learns from, and how its rows are split.

    ``task`` "auto" infers binary / multiclass / regression from the target; "classification"
    means binary or multiclass, whichever the target has. ``features`` None means every usable
    column (identifiers, free text and constant columns are left out).
    """

    dataset_id: str
    target: str
    task: str = "auto"
    features: tuple[str, ...] | None = None
    test_share: float = 0.2
    validation_share: float = 0.2
    image_size: int | None = None  # images: side in pixels the models see; None picks one from the data

    def __post_init__(self) -> None:
        if not self.dataset_id:
            raise SpecError("No dataset was chosen: upload a file or pick a sample first.")
        if not self.target:
            raise SpecError("No target column was chosen: pick the column the model should predict.")
        if self.task not in TASK_CHOICES:
            raise SpecError(f"task is {self.task!r}; allowed values: {', '.join(TASK_CHOICES)}.")
        _check_range("test_share", self.test_share, 0.05, 0.5)
        _check_range("validation_share", self.validation_share, 0.05, 0.5)
        if self.image_size is not None:
            if isinstance(self.image_size, bool) or not isinstance(self.image_size, int):
                raise SpecError(f"image_size is {self.image_size!r}; it must be a whole number of pixels.")
            _check_range("image_size", self.image_size, 8, 256)
        if self.features is not None:
            object.__setattr__(self, "features", tuple(self.features))
            if not self.features:
                raise SpecError("No input columns were chosen: keep at least one column besides the target.")
            if self.target in self.features:
                raise SpecError(f"The target {self.target!r} is also listed as an input column; remove it from the inputs.")


@dataclass(frozen=True)
class TrainSpec:
    """How the deep model trains. Defaults suit a few thousand rows on a laptop CPU."""

    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    size: str = "medium"
    dropout: float = 0.1
    l2: float = 1e-5
    patience: int = 8
    seed: int = 42
    augment: bool = True  # images: show each training image slightly changed every epoch
    flip: bool = True  # images: mirroring left-right is one of those changes
    # Tables: seconds the whole run may take (search, folds, baselines, ensemble, evaluation);
    # None trains the settings above once, for ``epochs`` (the advanced way, and the old one).
    budget: float | None = None
    embed_scale: float = 1.0  # embeddings: their size, times the rule of thumb (the search tunes it)
    augment_strength: float = 1.0  # images: how far each change goes, times the usual (the search tunes it)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(f"{name} is {value!r}; it must be a whole number.")
        _check_range("epochs", self.epochs, 1, 1000)
        _check_range("batch_size", self.batch_size, 1, 65536)
        _check_range("learning_rate", self.learning_rate, 1e-6, 1.0)
        _check_range("dropout", self.dropout, 0.0, 0.9)
        _check_range("l2", self.l2, 0.0, 1.0)
        _check_range("patience", self.patience, 1, 1000)
        _check_range("seed", self.seed, 0, 2**31 - 1)
        if self.size not in SIZES:
            raise SpecError(f"size is {self.size!r}; allowed values: {', '.join(SIZES)}.")
        if self.budget is not None:
            if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)):
                raise SpecError(f"budget is {self.budget!r}; it must be a number of seconds (or empty).")
            _check_range("budget", self.budget, 10.0, 86_400.0)
        _check_range("embed_scale", self.embed_scale, 0.1, 10.0)
        _check_range("augment_strength", self.augment_strength, 0.0, 3.0)
        for name in ("augment", "flip"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"{name} is {getattr(self, name)!r}; it must be true or false.")


@dataclass(frozen=True)
class ForecastSpec:
    """How a time series is read and backtested. Settings left as None are suggested from the
    series' frequency and length (see ``dlcore.series.suggest_settings``)."""

    time_col: str
    horizon: int | None = None  # steps to forecast
    lookback: int | None = None  # steps the deep models read
    windows: int | None = None  # backtest windows at the end of the series
    season_length: int | None = None  # steps in one cycle (52 for weekly data)
    duplicates: str = "mean"  # two values at one time: mean, sum or last
    gaps: str = "interpolate"  # missing steps: interpolate, ffill or zero
    freq: str | None = None  # add up an irregular series per day ("D"), week ("W-MON"), month ("MS")...
    interval: float = 0.9  # coverage of the forecast's prediction interval
    id_col: str | None = None  # several series in one file: the column that names each one

    def __post_init__(self) -> None:
        if not self.time_col:
            raise SpecError("No time column was chosen: pick the column that holds the dates.")
        for name in ("horizon", "lookback", "windows", "season_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise SpecError(f"{name} is {value!r}; it must be a whole number of steps, at least 1.")
        if self.duplicates not in ("mean", "sum", "last"):
            raise SpecError(f"duplicates is {self.duplicates!r}; allowed values: mean, sum, last.")
        if self.gaps not in ("interpolate", "ffill", "zero"):
            raise SpecError(f"gaps is {self.gaps!r}; allowed values: interpolate, ffill, zero.")
        _check_range("interval", self.interval, 0.5, 0.99)
        if self.id_col is not None and (not self.id_col or self.id_col == self.time_col):
            raise SpecError(f"id_col is {self.id_col!r}; name the column that tells the series apart, "
                            "not the time column (or leave it empty for one series).")


@dataclass(frozen=True)
class RunSpec:
    """One run: the data, the deep template, its training settings, and the baselines."""

    data: DataSpec
    template: str = "mlp"
    train: TrainSpec = field(default_factory=TrainSpec)
    baselines: bool = True
    forecast: ForecastSpec | None = None  # time series: how to read and backtest the series

    def __post_init__(self) -> None:
        if not isinstance(self.data, DataSpec):
            raise SpecError("data must be a DataSpec.")
        if not isinstance(self.train, TrainSpec):
            raise SpecError("train must be a TrainSpec.")
        if (self.data.task == "forecast") != (self.forecast is not None):
            raise SpecError("A forecast needs its time settings (a time column), and only a forecast has them.")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["data"]["features"] is not None:
            out["data"]["features"] = list(out["data"]["features"])
        if out["forecast"] is None:
            del out["forecast"]  # tables and images: the spec reads as it always did
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunSpec":
        """Build a spec from a dict (JSON), naming any key that is not a setting."""
        if not isinstance(raw, dict):
            raise SpecError("A run spec must be a mapping of settings.")
        data = _only_known(DataSpec, raw.get("data") or {}, "data")
        train = _only_known(TrainSpec, raw.get("train") or {}, "train")
        extra = set(raw) - {"data", "template", "train", "baselines", "forecast"}
        if extra:
            raise SpecError(f"Unknown run setting(s): {', '.join(sorted(extra))}.")
        if data.get("features") is not None:
            data["features"] = tuple(data["features"])
        forecast = _only_known(ForecastSpec, raw["forecast"], "forecast") if raw.get("forecast") else None
        try:
            return cls(
                data=DataSpec(**data),
                template=raw.get("template", "mlp"),
                train=TrainSpec(**train),
                baselines=bool(raw.get("baselines", True)),
                forecast=ForecastSpec(**forecast) if forecast is not None else None,
            )
        except TypeError as exc:  # a required field is missing
            raise SpecError(f"The run spec is incomplete: {exc}.") from None


def _only_known(kind: type, raw: dict[str, Any], where: str) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    extra = set(raw) - names
    if extra:
        raise SpecError(
            f"Unknown {where} setting(s): {', '.join(sorted(extra))}; allowed: {', '.join(sorted(names))}."
        )
    return dict(raw)


def suggested_batch_size(n_rows: int) -> int:
    """A batch size that gives a small table enough learning steps per epoch.

    With 150 rows and batches of 64, an epoch is two steps and the model barely moves; aim
    for 20 to 40 steps per epoch on small tables, between 16 and 256 rows per batch.
    """
    train_rows = max(1, int(n_rows * 0.6))
    for size in (16, 32, 64, 128):
        if train_rows <= size * 40:
            return size
    return 256


IMAGE_SIZES = (16, 24, 32, 48, 64, 96, 128)


def suggested_image_size(width: float, height: float) -> int:
    """A side in pixels for the models, from the images' typical size.

    Small images keep about their size (at least 32, so three blocks of filters still fit);
    bigger ones are scaled down to 64: on a CPU, every doubling of the side makes training
    about four times slower, and most photo classes can be told apart at 64 pixels.
    """
    side = max(width, height)
    return 32 if side <= 40 else 48 if side <= 56 else 64


# A class named like one character: a digit or a letter, bare or after a word that says so
# ("7", "b", "digit_7", "letter B", "char-x"), or a small number ("10", "42").
_CHARACTER_CLASS = re.compile(r"^(?:(?:digit|number|letter|char(?:acter)?|sign)[\s_-]*)?(?:[^\W_]|\d{1,2})$",
                              re.IGNORECASE)


def suggested_flip(classes: Iterable[Any]) -> bool:
    """Whether mirroring pictures left-right suits these classes (the augmentation's default).

    Not when every class looks like a character or a digit (``0``…``9``, ``a``, ``B``,
    ``digit_3``): a mirrored 2, 3 or b is another shape, or no character at all, so mirroring
    teaches the model the wrong thing. Cats, dogs, defects and the like look alike mirrored.

    >>> suggested_flip(["0", "1", "2"]), suggested_flip(["cats", "dogs"])
    (False, True)
    """
    names = [str(c).strip() for c in classes]
    return not (names and all(_CHARACTER_CLASS.match(n) for n in names))
