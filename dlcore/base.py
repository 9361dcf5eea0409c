"""What a kind of data gives the shared machinery, and what every template and scorer shares.

A kind of data (``dlcore.tables``, ``dlcore.images``, ``dlcore.series``) is one package that
describes itself with one ``Kind``: which dataset it reads, its templates, how a run of it is
checked, prepared (or executed, when it has a loop of its own such as a backtest), scored and
explained. ``dlcore.kinds`` lists the kinds, one line each; the generic run, the job queue,
scoring and explanations look a kind up there and never name one.

Example: a run of a table goes ``kinds.of_run(spec)`` -> the tables ``Kind`` ->
``kind.prepare(...)`` -> an ``Inputs`` that the generic run feeds to the deep template and to
the baselines alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from dlcore.errors import NotFoundError, SchemaError
from dlcore.targets import TargetEncoder

if TYPE_CHECKING:
    from dlcore.spec import RunSpec
    from dlcore.store import DatasetRecord, RunRecord, Store

__all__ = ["InputInfo", "Template", "template", "model_inputs", "output_layer", "Inputs", "Kind", "Scorer",
           "ScoreSummary", "Scored", "Say", "Progress"]

Say = Callable[[str], None]
Progress = Callable[[float], None]


# ---- templates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class InputInfo:
    """The shape of what a template receives, from the fitted preprocessing."""

    n_dense: int = 0  # numbers plus one-hot categories: the "dense" input
    n_numeric: int = 0  # standardised numbers (and missing flags): part of the "split" input
    cardinalities: tuple[int, ...] = ()  # codes per categorical column: the rest of the "split" input
    image_shape: tuple[int, int, int] | None = None  # images: (height, width, channels), pixels 0..255
    window_shape: tuple[int, int] | None = None  # series: (look-back steps, columns), scaled values
    n_text: int = 0  # free-text columns: inputs "text_0"… of raw strings, shape (1,)
    # Per text column, the (words, character n-grams) vocabularies fitted on the training rows;
    # the model keeps them inside itself, so they are not saved in preprocess.json.
    text_vocab: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "InputInfo":
        """As saved in a run's ``preprocess.json`` (lists for tuples)."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in raw.items()})


@dataclass(frozen=True)
class Template:
    name: str
    kind: str
    title: str
    description: str
    input_format: str  # "dense": one float matrix; "split": numbers plus one code input per category;
    # "image": pixels; "window": a look-back window of a series. A table's text columns come as
    # extra inputs "text_0"… (strings) beside "dense" or "split" ones.
    build: Callable[..., Any]


def template(name: str, *, kind: str, title: str, description: str,
             input_format: str = "dense") -> Callable[[Callable[..., Any]], Template]:
    """Decorator that makes a ``build(settings, inputs, task, n_outputs) -> keras.Model`` function
    a ``Template``, for its kind to list. Keras is imported inside ``build``, in a worker."""

    def wrap(build: Callable[..., Any]) -> Template:
        return Template(name, kind, title, description, input_format, build)

    return wrap


def model_inputs(template: Template, inputs: InputInfo, dense: Callable[[], Any], numeric: Any, codes: Any,
                 texts: Any = None) -> Any:
    """What to feed a template's model: the dense matrix, or a dict of named split inputs; with
    text columns (``texts``: strings (n, n_text)), a dict that adds them as "text_0"…."""
    if inputs.n_text:
        if template.input_format == "split":
            feed = model_inputs(template, InputInfo(n_numeric=inputs.n_numeric, cardinalities=inputs.cardinalities),
                                dense, numeric, codes)
        else:  # "dense", or "text" (which reads the dense columns only when there are some)
            feed = {"features": dense()} if template.input_format == "dense" or inputs.n_dense else {}
        for j in range(inputs.n_text):
            feed[f"text_{j}"] = strings(texts[:, j])
        return feed
    if template.input_format in ("dense", "image", "window"):
        return dense()
    feed = {}
    if inputs.n_numeric:
        feed["numeric"] = numeric
    for j in range(len(inputs.cardinalities)):
        feed[f"cat_{j}"] = codes[:, j : j + 1]
    return feed


def strings(texts: Any) -> Any:
    """A column of text as a model takes it: Keras reads strings only as tensors, shape (n, 1)."""
    import keras

    return keras.ops.convert_to_tensor(np.asarray(texts, dtype=object).astype(str).reshape(-1, 1), dtype="string")


def output_layer(task: str, n_outputs: int, name: str = "output") -> Any:
    """The final layer of every classifier and regressor template: sigmoid, softmax or linear."""
    from keras import layers

    if task == "binary":
        return layers.Dense(1, activation="sigmoid", name=name)
    if task == "multiclass":
        return layers.Dense(n_outputs, activation="softmax", name=name)
    return layers.Dense(1, name=name)


# ---- runs --------------------------------------------------------------------------------
@dataclass
class Inputs:
    """What every candidate of one run shares, whatever the kind of data: the split, the
    encoded target, and how to feed rows to the deep model and to the baselines."""

    task: str
    enc: TargetEncoder
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    y: np.ndarray  # the target as the deep model learns it
    y_raw: np.ndarray  # float target (regression) or class codes (classification)
    info: InputInfo
    deep_x: Callable[[np.ndarray], Any]  # row positions -> the deep model's input
    baseline_x: Callable[[np.ndarray], Any]  # row positions -> the baselines' matrix (or DataFrame, with text)
    meta: dict[str, Any]  # saved in preprocess.json: what scoring needs to rebuild the inputs
    result: dict[str, Any]  # extra keys of the run's result
    dropped_missing_target: int
    warnings: list[str]
    n_rows: int
    predict_batch: int = 1024  # rows per batch when the deep model scores the test rows
    # The baselines for this run when its data needs its own (a table with text columns reads a
    # DataFrame); None: the kind's ``baselines``.
    baselines: Callable[..., dict[str, Any]] | None = None


# ---- scoring -----------------------------------------------------------------------------
@dataclass
class ScoreSummary:
    n_rows: int
    model: str
    extra_columns: list[str] = field(default_factory=list)
    unseen: dict[str, int] = field(default_factory=dict)
    not_numbers: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # images: file name -> why it was not scored
    empty_text: dict[str, int] = field(default_factory=dict)  # text column -> rows with no text
    long_text: dict[str, int] = field(default_factory=dict)  # text column -> texts cut at the length read
    unknown_words: dict[str, int] = field(default_factory=dict)  # text column -> words never seen in training
    threshold: float | None = None  # the saved threshold from money behind the decision column
    columns: list[str] = field(default_factory=list)  # tables: how the file's columns were matched to the model's

    def notes(self) -> list[str]:
        out = list(self.columns)
        if self.unreadable:
            names = ", ".join(list(self.unreadable)[:8]) + (" …" if len(self.unreadable) > 8 else "")
            out.append(f"{len(self.unreadable)} file(s) could not be read as images and have no prediction "
                       f"(the 'problem' column says why): {names}.")
        if self.extra_columns:
            shown = ", ".join(map(repr, self.extra_columns[:8])) + (" …" if len(self.extra_columns) > 8 else "")
            out.append(f"{len(self.extra_columns)} column(s) the model does not use were ignored (kept in the output): {shown}.")
        for col, n in self.unseen.items():
            out.append(f"{n} row(s) have a value in {col!r} that the model never saw in training; they were scored as 'other'.")
        for col, n in self.not_numbers.items():
            out.append(f"{n} cell(s) in {col!r} were not numbers and were treated as missing.")
        for col, n in self.empty_text.items():
            out.append(f"{n} row(s) have no text in {col!r}; they were scored from their other columns.")
        for col, n in self.long_text.items():
            out.append(f"{n} text(s) in {col!r} are longer than the model reads; only their first "
                       "characters were used.")
        for col, n in self.unknown_words.items():
            out.append(f"{n} word(s) in {col!r} never appeared in the training rows; the model reads them as unknown.")
        if self.threshold is not None:
            out.append(f"The 'decision' column applies the threshold saved on the Decide page: probability "
                       f"{self.threshold:.3f} or more.")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"n_rows": self.n_rows, "model": self.model, "extra_columns": self.extra_columns,
                "unseen": self.unseen, "not_numbers": self.not_numbers, "unreadable": self.unreadable,
                "threshold": self.threshold, "notes": self.notes(),
                **({"empty_text": self.empty_text, "long_text": self.long_text, "unknown_words": self.unknown_words}
                   if self.empty_text or self.long_text or self.unknown_words else {})}


@dataclass
class Scored:
    """An uploaded file scored by one model: the table to write back, what happened on the way,
    and the separator and decimal mark to write it with (the input's own)."""

    table: Any  # pandas.DataFrame
    summary: ScoreSummary
    delimiter: str = ","
    decimal: str = "."
    described: str = ""  # what was written, in words ("120 rows", "a 14-step forecast after 730 rows")

    def __post_init__(self) -> None:
        self.described = self.described or f"{len(self.table)} rows"


class Scorer:
    """One model of one finished run, loaded as it was saved: the deep model (``.keras``, safe
    mode) or a baseline (skops), the target encoding, and the saved input description. Each
    kind subclasses it with how raw data becomes the model's input (``setup`` reads the rest
    of ``preprocess.json``)."""

    def __init__(self, folder: Path, run_id: str, model: str) -> None:
        from dlcore import baselines

        meta_path = folder / "preprocess.json"
        if not meta_path.exists():
            raise NotFoundError(f"Run {run_id!r} has no saved model yet: wait until it finishes, or pick a finished run.")
        meta = json.loads(meta_path.read_text())
        self.kind: str = meta.get("kind", "tabular")
        self.task: str = meta["task"]
        self.target_column: str = meta["target_column"]
        self.target = TargetEncoder.from_dict(meta["target"])
        self.model_name = model
        self.template_name = meta["template"]
        if model == "ensemble" and (folder / "ensemble.json").exists():
            # The weighted average of other models of the run (``dlcore.ensemble``), each loaded as itself.
            self.family = "ensemble"
            self.weights: dict[str, float] = json.loads((folder / "ensemble.json").read_text())["weights"]
            self.members = {name: type(self)(folder, run_id, name) for name in self.weights}
            if meta["template"] in self.members:
                self.info = self.members[meta["template"]].info
        elif model == meta["template"]:
            import keras

            self.family = "deep"
            self.keras_model = keras.saving.load_model(folder / f"{model}.keras", safe_mode=True)
            self.info = InputInfo.from_dict(meta["input_info"])
        else:
            path = folder / f"{model}.skops"
            if not path.exists():
                known = sorted([meta["template"]] + [p.stem for p in folder.glob("*.skops")])
                raise NotFoundError(f"Run {run_id!r} has no model named {model!r}; its models are: {', '.join(known)}.")
            self.family = "baseline"
            self.pipeline = baselines.load(path)
        self.setup(meta)

    upload_hint = "data like the training data."  # what to upload instead, said when the data is of another kind

    def setup(self, meta: dict[str, Any]) -> None:
        """Read what this kind saved beside the model (its preprocessing)."""

    # One interface for every kind; each kind implements what it reads and refuses the rest.
    def output(self, frame: Any) -> tuple[np.ndarray, ScoreSummary]:
        """Raw model output for the rows of a table: probabilities (n, k) or values (n,)."""
        raise self._reads_not("tabular")

    def score(self, frame: Any, decision: Any = None) -> tuple[Any, ScoreSummary]:
        """The rows of a table with the model's prediction added."""
        raise self._reads_not("tabular")

    def score_images(self, items: list[tuple[str, bytes]]) -> tuple[Any, ScoreSummary]:
        """One row per image with the predicted class and each class's probability."""
        raise self._reads_not("image")

    def _reads_not(self, other: str) -> SchemaError:
        return SchemaError(f"This run's models read {self.kind} data, not {other} data: upload {self.upload_hint}")

    @classmethod
    def for_run(cls, store: "Store", run_id: str, model: str | None = None) -> "Scorer":
        """``model`` of a finished run (default: the one its verdict recommends), cached per process."""
        from dlcore.errors import RunError
        from dlcore.outputs import best_model, check_model
        from dlcore.store import EVALUATED

        run = store.run(run_id)
        if run.status not in EVALUATED:
            raise RunError(f"Run {run_id!r} is {run.status}; only a finished run's models can score new data.")
        model = model or best_model(run.result)
        check_model(run, model)
        return _cached(cls, str(store.run_dir(run_id)), run_id, model)

    @property
    def classes(self) -> list[str]:
        return self.target.classes_

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task != "regression" else 1


@lru_cache(maxsize=8)
def _cached(cls: type[Scorer], folder: str, run_id: str, model: str) -> Scorer:
    return cls(Path(folder), run_id, model)


# ---- the kind interface ------------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """One kind of data, as the shared machinery sees it.

    ``name`` is what runs record (``result["kind"]``, ``preprocess.json``); ``reads`` is the
    kind of dataset its runs train on (a forecast reads a table). A kind either ``prepare``s
    ``Inputs`` for the generic run (split, deep model, baselines, leaderboard), or
    ``execute``s runs with a loop of its own and the same store records.
    """

    name: str
    title: str
    unit: str  # what one example is called in messages: "rows", "images", "steps"
    reads: str
    templates: tuple[Template, ...]
    check: Callable[["Store", "RunSpec", "DatasetRecord"], None]  # at submit, quickly: refuse what cannot run
    explain: Callable[["Store", "RunRecord", str, Progress | None], dict[str, Any]]  # the global explanation
    score_upload: Callable[["Store", "RunRecord", str, bytes, str], Scored]  # a file uploaded for scoring
    prepare: Callable[["Store", str, "RunSpec", "DatasetRecord", Template], Inputs] | None = None
    execute: Callable[["Store", str, "RunSpec", Say], None] | None = None
    scorer: type[Scorer] | None = None  # None: the kind's models are used through score_upload only
    explain_row: Callable[..., dict[str, Any]] | None = None  # one row's explanation, where a kind has rows
    explains_any_model: bool = False  # False: only the deep model is explained (heat maps, lag importance)
    needs: str = ""  # said when a template or dataset does not fit a run of this kind (default: a generic line)
    # What it reads: how surely an upload (its bytes and name) is this kind's data (0 not, 1 could
    # be, 2 surely), and how it is written into a new dataset's folder (returning the dataset's row).
    # None: the kind trains on datasets another kind reads (a forecast reads a table).
    claims: Callable[[bytes, str], int] | None = None
    ingest: Callable[[Path, bytes, str], dict[str, Any]] | None = None
    # The scikit-learn baselines it offers, unfitted, by name: (task, seed, n_rows) -> pipelines for the
    # generic run; a kind with a loop of its own fits its own (a forecast's lag models).
    baselines: Callable[..., dict[str, Any]] | None = None
    # Whether a run with a time budget searches, cross-validates and ensembles its candidates
    # (``dlcore.search``); False: the budget is not used and the run trains its settings once.
    searches: bool = False
    # A kind's own search within a budget, in place of ``dlcore.search.run_searched`` (images: one
    # validation split rather than folds); same arguments as that function.
    search_run: Callable[..., None] | None = None
