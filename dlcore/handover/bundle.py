"""A finished run's model as one ZIP that scores new data outside the app.

The bundle holds the model (``model.keras``, or ``model.skops`` for a baseline chosen by
name), the run's saved preprocessing (``preprocess.json``, as the app wrote it), a model card
in plain words (``model_card.md``), ``predict.py`` (``dlcore/handover/predict_script.py``: NumPy,
pandas and Keras only, never dlcore) and a ``README.txt`` that says how to run it. The same
run and model always give the same bytes, so a bundle can be checked against another.

>>> data = build_bundle(store, run_id)                  # the run's deep model
>>> name = bundle_name(store, run_id)                   # "model-churn-mlp-<run id>.zip"
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

from dlcore import evaluate
from dlcore.errors import NotFoundError, RunError
from dlcore.handover.decision import load_decision
from dlcore.store import EVALUATED, DatasetRecord, RunRecord, Store

__all__ = ["build_bundle", "bundle_name", "model_card"]

_PREDICT = Path(__file__).with_name("predict_script.py")
_REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def build_bundle(store: Store, run_id: str, model: str | None = None) -> bytes:
    """The ZIP bytes of ``model`` (default: the run's deep model) of finished run ``run_id``.

    Raises ``RunError`` for a forecasting run or a run that has not finished with models, and
    ``NotFoundError`` for a model name the run does not have or a model file that is gone.
    Asked for by a user, the download is checked (editors and owners only) and audited.
    """
    if store.actor is not None:
        store.note_download("model", run_id)
    run = store.run(run_id)
    model = _chosen_model(run, model)
    deep = model == run.spec["template"]
    folder = store.run_dir(run_id)
    if model == "ensemble":  # its members travel with it, under members/
        weights = json.loads((folder / "ensemble.json").read_text())["weights"]
        member_files = {name: folder / (f"{name}.keras" if name == run.spec["template"] else f"{name}.skops")
                        for name in weights}
        model_files = {"ensemble.json": folder / "ensemble.json",
                       **{f"members/{path.name}": path for path in member_files.values()}}
        deep = run.spec["template"] in weights
    else:
        model_files = {"model.keras" if deep else "model.skops": folder / (f"{model}.keras" if deep else f"{model}.skops")}
    for path in (*model_files.values(), folder / "preprocess.json"):
        if not path.is_file():
            raise NotFoundError(f"Run {run_id!r} has lost its file {path.name} from the data folder {folder}; "
                                "rerun it to train the model again.")
    dataset = store.dataset(run.dataset_id)
    files = {
        **{name: path.read_bytes() for name, path in model_files.items()},
        "preprocess.json": (folder / "preprocess.json").read_bytes(),
        "model_card.md": model_card(run, dataset, model).encode("utf-8"),
        "predict.py": _PREDICT.read_bytes(),
        "README.txt": _readme(run, deep, ensemble=model == "ensemble").encode("utf-8"),
    }
    if (folder / "columns.json").is_file():
        # The file columns matched to the model's on Predict (or with --map): predict.py reads a file
        # named the same way, as the app does.
        files["columns.json"] = (folder / "columns.json").read_bytes()
    chosen = load_decision(store, run_id)
    if chosen is not None and chosen.model == model and run.task in ("binary", "multiclass"):
        # The threshold chosen from money travels with its model: predict.py adds the same
        # 'decision' column as the app.
        files["decision.json"] = json.dumps(chosen.to_dict(), indent=1).encode("utf-8")
    # A fixed time stamp (the run's end) for every entry: the same run gives the same bytes.
    stamp = time.gmtime(run.finished_at or run.created_at)[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=max(stamp, (1980, 1, 1, 0, 0, 0)))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def bundle_name(store: Store, run_id: str, model: str | None = None) -> str:
    """A file name for the bundle that says what it predicts and with which model and run."""
    run = store.run(run_id)
    return f"model-{_slug(run.target)}-{_chosen_model(run, model)}-{run_id}.zip"


def _chosen_model(run: RunRecord, model: str | None) -> str:
    """The model to bundle, after refusing runs and names that cannot be bundled."""
    if (run.result or {}).get("kind") == "series" or run.spec.get("forecast"):
        raise RunError(f"Run {run.id!r} is a forecast; model bundles cover tables and images for now. "
                       "Download the forecast itself from the Predict page.")
    if run.status not in EVALUATED:
        raise RunError(f"Run {run.id!r} is {run.status}; only a finished run (done, or stopped early and "
                       "evaluated) has a model to download. Wait for it to finish, or pick a finished run.")
    model = model or run.spec["template"]
    known = list(run.result["models"])
    if model not in known:
        raise NotFoundError(f"Run {run.id!r} has no model named {model!r}; pick one of its models: "
                            f"{', '.join(known)}.")
    return model


def _slug(text: str) -> str:
    """A piece of a file name: letters and digits of any script kept ("Kündigung", not "K-ndigung")."""
    return re.sub(r"[^\w-]+", "-", text).strip("-")[:40] or "target"


# ---- the model card --------------------------------------------------------------------------
def model_card(run: RunRecord, dataset: DatasetRecord, model: str) -> str:
    """The model card in Markdown, for an analyst: what the model predicts, from which data,
    how well every model of the run did on the test rows, what it is for and where it stops."""
    result, spec = run.result, run.spec
    board = result["leaderboard"]
    deep_name = spec["template"]
    image = result.get("kind") == "image"
    classes = result.get("classes") or []
    family = ("deep learning" if model == deep_name else "an ensemble of the run's models" if model == "ensemble"
              else "scikit-learn baseline")
    rows = result["rows"]
    level = f"{board['confidence']:.0%}"
    lines = [
        f"# Model card: {run.target} from {dataset.name}",
        "",
        f"Model **{evaluate.display_name(model)}** (`{model}`, {family}) of run `{run.id}`, "
        f"trained {_date(run.started_at or run.created_at)}.",
        "",
        *_not_for_use(board),
        "## What it predicts",
        "",
        _what(run, image, classes),
        "",
        "## The data it learned from",
        "",
        f"- Dataset: **{dataset.name}**, {dataset.n_rows:,} {'images' if image else 'rows'}"
        f"{'' if image else f' x {dataset.n_cols} columns'}, uploaded {_date(dataset.created_at)}.",
        f"- SHA-256 of the file: `{dataset.sha256}` (the same file always gives the same fingerprint).",
        *_inputs(result, image),
        f"- Rows split once, at random with seed {spec['train']['seed']}: {rows['train']:,} to train, "
        f"{rows['validation']:,} to stop training at the right time, {rows['test']:,} to test"
        + (f"; {rows['dropped_missing_target']:,} rows without a {run.target!r} were left out."
           if rows.get("dropped_missing_target") else "."),
        "",
        "## How well it did",
        "",
        f"Every model below was scored on the same {board['n_test']:,} test {'images' if image else 'rows'}, "
        "which none of them saw "
        f"while training. The ranking uses {board['metric_title']} "
        f"({'higher' if board['higher_is_better'] else 'lower'} is better); the {level} interval shows how "
        f"much that score could move with another test set of the same size ({board['n_boot']:,} bootstrap "
        "resamples).",
        "",
        *_metrics_table(board, model),
        "",
        f"**Verdict:** {_verdict(board, deep_name)}",
        "",
        *_search_lines(result),
        "## Intended use",
        "",
        f"- Scoring new {'images' if image else 'rows'} of the same kind as {dataset.name}: "
        + ("pictures like the training ones, of the same classes." if image else
           "the same columns, measured the same way, from the same population and period."),
        "- A decision aid to rank or screen cases; a person reviews the cases that matter. "
        + ("The probabilities show how sure the model is; check them before acting on one prediction."
           if classes else "Expect errors of about the size shown above on single predictions."),
        "",
        "## Limits",
        "",
        *_limits(run, dataset, result, image),
        "",
        "## How it was made",
        "",
        "The run's settings (with the same dataset and seed, the app trains the same models):",
        "",
        "```json",
        json.dumps(spec, indent=2, sort_keys=True),
        "```",
        "",
        "Library versions it was trained with: "
        + (", ".join(f"{k} {v}" for k, v in sorted((run.versions or {}).items())) or "not recorded") + ".",
        "",
    ]
    return "\n".join(lines)


def _date(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(stamp)) if stamp else "on an unrecorded date"


def _what(run: RunRecord, image: bool, classes: list[str]) -> str:
    thing = "image" if image else "row"
    if run.task == "regression":
        return (f"For each {thing}, a number: its expected **{run.target}** (in the same units as in the data). "
                "The output's `prediction` column holds it.")
    kind = "two classes (binary classification)" if len(classes) == 2 else f"{len(classes)} classes"
    return (f"For each {thing}, which class of **{run.target}** it belongs to, one of {kind}: "
            f"{', '.join(f'`{c}`' for c in classes)}. The output has the predicted class (`prediction`) and "
            "a probability for each class (`probability <class>`); the predicted class is the most "
            "probable one.")


def _inputs(result: dict, image: bool) -> list[str]:
    if image:
        info = result["image"]
        counts = ", ".join(f"{c}: {n:,}" for c, n in info.get("classes", {}).items())
        return [f"- Images, read {'in grey' if info['channels'] == 1 else 'in colour'} and squashed to "
                f"{info['size']} x {info['size']} pixels." + (f" Images per class: {counts}." if counts else "")]
    feats = result["features"]
    out = []
    for kind, words in (("numeric", "Numbers"), ("datetime", "Dates"), ("categorical", "Categories")):
        if feats.get(kind):
            out.append(f"- {words}: {', '.join(map(repr, feats[kind]))}.")
    if feats.get("text"):
        out.append(f"- Free text, read word by word (vocabulary learned from the training rows only; unseen words "
                   "are read as unknown, texts longer than preprocess.json's max_chars are cut): "
                   f"{', '.join(map(repr, feats['text']))}.")
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"


def _metrics_table(board: dict, model: str) -> list[str]:
    others = [m for m in evaluate.metrics_for(board["task"]) if m.key != board["metric"]]
    level = f"{board['confidence']:.0%}"
    head = ["Model", "Kind", board["metric_title"], f"{level} interval", *(m.title for m in others)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in board["rows"]:
        low, high = row["ci"]
        name = evaluate.display_name(row["model"]) + (" (this bundle)" if row["model"] == model else "")
        cells = [name, row["family"], _fmt(row["test_score"]), f"{_fmt(low)} to {_fmt(high)}",
                 *(_fmt(row["metrics"].get(m.key)) for m in others)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _not_for_use(board: dict) -> list[str]:
    """Lines saying plainly, before anything else, that this model is not recommended for use when
    nothing on the run's board predicts the target (``evaluate.nothing_predicts``)."""
    nothing = evaluate.nothing_predicts(board)
    return [f"**Not recommended for use.** {nothing}", ""] if nothing else []


def _verdict(board: dict, deep_name: str) -> str:
    for verdict in board["verdicts"]:
        if verdict["deep_model"] == deep_name:
            return verdict["text"]
    return "None: the run trained no baselines to compare the deep model with."


def _limits(run: RunRecord, dataset: DatasetRecord, result: dict, image: bool) -> list[str]:
    out = [f"- Warning from training: {w}" for w in result.get("warnings", [])]
    ends = []
    for column in dataset.profile.get("columns", []):
        if column["name"] in result.get("features", {}).get("datetime", []) and column.get("stats", {}).get("max"):
            ends.append(f"{column['name']!r} up to {column['stats']['max'][:10]}")
    thing = "images" if image else "rows"
    out.append(f"- Trained on {result['rows']['train']:,} {thing} of data uploaded {_date(dataset.created_at)}"
               + (f", with {', '.join(ends)}" if ends else "")
               + ". Cases unlike those (later periods, new products, changed processes) may be scored badly.")
    if image:
        out.append("- It only knows the classes above: every image gets one of them, even a picture of "
                   "something else.")
    else:
        out.append("- A category never seen in training (a new product, a typo) is scored as 'other', like the "
                   "rare categories of the training rows; the script says how many rows had one.")
        out.append("- A missing number is filled with the training rows' median; cells that are not numbers are "
                   "treated as missing.")
    out.append(f"- Not for other populations: it learned from {dataset.name} only, and its scores above hold "
               "for data like that.")
    if result["leaderboard"]["n_test"] < 100:
        out.append(f"- The test set has only {result['leaderboard']['n_test']} {thing}, so the intervals above "
                   "are wide.")
    return out


# ---- README ------------------------------------------------------------------------------------
def _readme(run: RunRecord, deep: bool, ensemble: bool = False) -> str:
    image = (run.result or {}).get("kind") == "image"
    wanted = (["keras", "tensorflow-cpu"] if deep else []) + (["scikit-learn", "scipy", "skops"] if ensemble or not deep else [])
    wanted += ["pandas", "numpy"] + (["pillow"] if image else [])
    pins = _pins(run.versions or {})
    install = " ".join(f"{name}=={pins[name]}" if name in pins else name for name in wanted)
    example = "python predict.py photos.zip -o scored.csv" if image else "python predict.py new.csv -o scored.csv"
    python = (run.versions or {}).get("python")
    return "\n".join([
        f"Model bundle of run {run.id}: predicts {run.target!r}. See model_card.md for what it does and how well.",
        "",
        *[line.replace("**", "") for line in _not_for_use((run.result or {}).get("leaderboard") or {})],
        f"1. Install Python{f' {python}' if python else ' 3.11'} and the libraries, at the versions the app uses:",
        "",
        f"   pip install {install}",
        "",
        "2. Score new data (the same columns as the training file; extra columns are kept):",
        "",
        f"   {example}",
        "",
        "   Images: one image, a folder of images, or a ZIP of them." if image else
        "   A file with ';' between columns and decimal commas: add --sep \";\" --decimal \",\"",
        "",
        "scored.csv gets " + ("one row per image: file, prediction, confidence and a probability per class."
                              if image else "your rows plus 'prediction' (and 'probability <class>' per class)."),
        "Text cells that start with = + - @ get an apostrophe, so a spreadsheet does not run them as formulas.",
        "",
        ("Files: ensemble.json (the weights) and members/ (its models), preprocess.json (" if ensemble else
         "Files: model." + ("keras" if deep else "skops") + " (the model), preprocess.json (")
        + ("the image size and classes" if image else "how raw columns become model inputs, learned from the "
                                                     "training rows")
        + "), predict.py, model_card.md.",
        "",
    ])


def _pins(versions: dict[str, str]) -> dict[str, str]:
    """Exact versions from the app's requirements.txt, else the ones the run was trained with."""
    pins = {"tensorflow-cpu": versions.get("tensorflow"), **versions}
    if _REQUIREMENTS.is_file():
        for line in _REQUIREMENTS.read_text().splitlines():
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                pins[name.lower()] = version.strip()
    return {name: version for name, version in pins.items() if version}


def _search_lines(result: dict) -> list[str]:
    """How the models were chosen, for a run searched within a time budget (nothing otherwise)."""
    from dlcore.search import search_lines

    lines = search_lines(result)
    return [*lines, ""] if lines else []
