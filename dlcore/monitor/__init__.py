"""A model at work: the model in use, drift on every scored file, outcomes that come back,
and a retrained challenger against the champion.

- ``model_in_use(store, run)``: the one answer to "which model scores for this run" that pages,
  scoring jobs, the CLI and the REST endpoint ask: the model a person promoted (possibly of a
  retrained run), else the verdict's recommendation (``dlcore.evaluate.recommended``).
- ``drift_of_scoring``: a scored table against the training rows of the model that scored it
  (``dlcore.monitor.drift``), kept with the scoring (``drift.json`` and its summary).
- ``record_outcomes``: true outcomes for a scored file (joined by a key column, or the file's own
  target column): the realized score beside the interval the test rows promised, in words.
- ``retrain`` / ``challenge.start_challenge`` / ``challenge_result`` / ``promote`` / ``revert``: the same
  spec on newer data; both models scored on the newest labelled rows; a paired verdict; an
  audited, reversible change of the model in use.

Tables (text columns included) are monitored column by column; other kinds of data keep their
scorings and outcomes without a drift report (``drift_of_scoring`` returns None for them).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlcore.errors import DataError, DlcoreError, NotFoundError, SchemaError
from dlcore.formats import number
from dlcore.monitor.drift import DriftReport, Reference, compare
from dlcore.store import EVALUATED, RunRecord, Store, atomic_write

__all__ = [
    "DriftReport",
    "ModelInUse",
    "Reference",
    "alerts",
    "challenge_result",
    "challengers",
    "compare",
    "drift_of_scoring",
    "keep_drift",
    "load_drift",
    "model_in_use",
    "promised_interval",
    "promote",
    "record_outcomes",
    "reference_of",
    "resolve",
    "retrain",
    "revert",
    "scorings_report",
]

CHALLENGE_PREFIX = "newest labelled rows: "


@dataclass(frozen=True)
class ModelInUse:
    """Which model scores for a run: ``model`` of run ``run_id`` (the run itself unless a
    retrained challenger was promoted), and why, in words."""

    run_id: str
    model: str
    why: str
    promoted: bool

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "model": self.model, "why": self.why, "promoted": self.promoted}


def model_in_use(store: Store, run: RunRecord | str) -> ModelInUse:
    """The run's model in use: the newest promotion that still names a finished run's model,
    else the model its verdict recommends."""
    from dlcore.evaluate import recommended

    run = store.run(run) if isinstance(run, str) else run
    for change in store.model_changes(run.id)[:1]:
        try:
            used = store.run(change["use_run_id"])
        except NotFoundError:  # the promoted run was deleted: back to the run's own rule
            break
        if used.status in EVALUATED and change["use_model"] in (used.result or {}).get("models", {}):
            own = used.id == run.id
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(change["created_at"]))
            where = "" if own else f" of the retrained run {used.id}"
            return ModelInUse(used.id, change["use_model"],
                              f"chosen{where} by {change['created_by']} on {when} UTC", not own)
    if not run.result or "leaderboard" not in run.result:
        raise DataError(f"Run {run.id!r} is {run.status} and has no models yet; wait until it finishes.")
    model, why = recommended(run.result["leaderboard"])
    return ModelInUse(run.id, model, why, False)


def resolve(store: Store, run_id: str, model: str | None) -> tuple[str, str | None]:
    """The (run, model) that scores for ``run_id`` when a caller names no model: the model in use
    where a person chose one, else ``(run_id, None)`` (the kind's own default, the recommended
    model). A named model is used as named. ``dlcore.scoring`` asks this, so every caller that
    scores without naming a model (the REST endpoint too) follows a promotion."""
    if model is not None:
        return run_id, model
    run = store.run(run_id)
    if not store.model_changes(run.id):
        return run_id, None
    use = model_in_use(store, run)
    return use.run_id, use.model


# ---- drift ------------------------------------------------------------------------------
def _is_table(run: RunRecord) -> bool:
    return (run.result or {}).get("kind", "tabular") == "tabular"


def reference_of(store: Store, run_id: str, model: str) -> Reference | None:
    """The training rows of a table run summarised for drift, with ``model``'s answers on the
    test rows; worked out once and kept in the run's folder. None for other kinds of data."""
    run = store.run(run_id)
    if not _is_table(run):
        return None
    path = store.run_dir(run_id) / "monitor" / f"reference-{model}.json"
    if path.exists():
        try:
            return Reference.from_dict(json.loads(path.read_text()))
        except (DataError, ValueError, KeyError):
            pass  # an older summary: worked out again below
    from dlcore.outputs import load_test_outputs
    from dlcore.spec import RunSpec
    from dlcore.tables.run import prepare

    prep = prepare(store, RunSpec.from_dict(run.spec))
    pre = prep.pre
    kinds = ({c: "number" for c in pre.numeric} | {c: "date" for c in pre.datetime}
             | {c: "category" for c in pre.categorical} | {c: "text" for c in pre.text})
    outputs = None
    try:
        _, by_model, _ = load_test_outputs(store, run_id)
        outputs = by_model.get(model)
    except OSError:
        pass
    classes = [str(c) for c in (run.result or {}).get("classes") or []] or None
    ref = Reference.from_frame(prep.frame.iloc[prep.train], kinds, predictions=outputs,
                               classes=classes if run.task in ("binary", "multiclass") else None)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(ref.to_dict()))
    return ref


def _output_column(table: pd.DataFrame, name: str) -> str | None:
    """The model's output column (scoring names it ``name``, or ``name (model)`` beside an input
    column already called so)."""
    found = [c for c in table.columns if c == name or (isinstance(c, str) and c.startswith(f"{name} (model)"))]
    return found[-1] if found else None


def drift_of_scoring(store: Store, run: RunRecord, model_run_id: str, model: str,
                     table: pd.DataFrame) -> DriftReport | None:
    """A scored table (inputs plus the model's columns) against the training rows of the run whose
    model scored it; None for kinds of data other than tables."""
    used = store.run(model_run_id)
    ref = reference_of(store, used.id, model) if _is_table(run) and _is_table(used) else None
    if ref is None:
        return None
    classes = [str(c) for c in (used.result or {}).get("classes") or []]
    predictions = None
    if used.task in ("binary", "multiclass") and classes:
        cols = [_output_column(table, f"probability {c}") for c in classes]
        if all(cols):
            predictions = table[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    else:
        col = _output_column(table, "prediction")
        if col is not None:
            predictions = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
    if predictions is not None and not np.all(np.isfinite(predictions)):
        predictions = None
    inputs = table[[c for c in ref.columns if c in table.columns]]
    return compare(ref, inputs, predictions=predictions, classes=classes or None)


def keep_drift(store: Store, scoring_id: str, report: DriftReport | None, summary: dict) -> dict:
    """Write the drift report beside the scored file; the summary gains its sentence and names."""
    if report is None:
        return summary
    with atomic_write(store.scoring_dir(scoring_id) / "drift.json") as tmp:
        tmp.write_text(json.dumps(report.to_dict()))
    return {**summary, "drift": {"sentence": report.sentence, "drifted_columns": report.drifted_columns}}


def load_drift(store: Store, scoring_id: str) -> DriftReport | None:
    """The drift report kept with a scoring (not found unless the acting user sees it)."""
    store.scoring(scoring_id)
    path = store.scoring_dir(scoring_id) / "drift.json"
    if not path.exists():
        return None
    return DriftReport.from_dict(json.loads(path.read_text()))


# ---- outcomes ---------------------------------------------------------------------------
def promised_interval(store: Store, run_id: str, model: str) -> tuple[float, float] | None:
    """The interval of ``model``'s score that the run's test rows gave (the leaderboard's)."""
    board = (store.run(run_id).result or {}).get("leaderboard") or {}
    row = next((r for r in board.get("rows") or [] if r["model"] == model), None)
    if row is None or row.get("ci") is None or None in row["ci"]:
        return None
    return float(row["ci"][0]), float(row["ci"][1])


def _scored_table(store: Store, scoring_id: str) -> pd.DataFrame:
    from dlcore.tables.reader import read_table

    path = store.scoring_dir(scoring_id) / "scored.csv"
    if not path.exists():
        raise NotFoundError(f"The scored file of scoring {scoring_id!r} is gone; score the file again.")
    frame, _ = read_table(path.read_bytes(), name="scored.csv")
    return frame


def _keys(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.removeprefix("'")
    as_number = pd.to_numeric(text, errors="coerce")
    whole = (as_number.notna() & (as_number % 1 == 0)).fillna(False).astype(bool)  # 17 and 17.0: one key
    return text.mask(whole, as_number.where(whole).round().astype("Int64").astype("string"))


def record_outcomes(store: Store, run_id: str, *, scoring_id: str | None = None, content: bytes | None = None,
                    name: str = "outcomes.csv", key: str | None = None) -> dict[str, Any]:
    """Keep the true outcomes of a scored file and say how the model did: either ``scoring_id``
    alone (the scored file held the target column: a labelled file scored at once), or a file
    ``content`` with ``key`` (a column in both) and the target, joined to ``scoring_id`` or to the
    newest scoring of the run that holds the key. Returns the outcome's summary (``realized_score``,
    ``promised_interval``, ``sentence``, ...), also kept in the store with the scoring."""
    from dlcore.tables.reader import read_table

    run = store.run(run_id)
    store.require("score", "run", run_id)  # viewers may not record outcomes
    target = run.target
    if content is None:
        if scoring_id is None:
            raise DataError("Give the outcomes: a file with a key column matching a scored file, or a scored "
                            "file that held the target column.")
        scoring = store.scoring(scoring_id)
        table = _scored_table(store, scoring.id)
        if target not in table.columns:
            raise SchemaError(f"The scored file {scoring.input_name} has no column {target!r} with the true "
                              "outcomes; upload them with a key column that matches a column of the scored file.")
        truth = table[target]
        joined = table
        source = scoring.input_name
    else:
        given, _ = read_table(content, name=name)
        if target not in given.columns:
            raise SchemaError(f"The outcomes file has no column {target!r} (the target the model predicts); "
                              f"its columns are {', '.join(map(repr, list(given.columns)[:10]))}.")
        if key is None:
            raise SchemaError("Name the key column that the outcomes file shares with the scored file "
                              "(--key COLUMN), or score the labelled file and compare it at once.")
        if key not in given.columns:
            raise SchemaError(f"The outcomes file has no key column {key!r}; its columns are "
                              f"{', '.join(map(repr, list(given.columns)[:10]))}.")
        scoring, table = _scoring_with_key(store, run, scoring_id, key, given)
        left = table.assign(_key=_keys(table[key]))
        right = given[[key, target]].assign(_key=_keys(given[key])).drop_duplicates("_key", keep="last")
        joined = left.drop(columns=[target], errors="ignore").merge(right[["_key", target]], on="_key", how="inner")
        if joined.empty:
            raise DataError(f"No value of {key!r} in the outcomes file matches one in the scored file "
                            f"{scoring.input_name}; check that the key column holds the same ids.")
        truth = joined[target]
        source = scoring.input_name
    summary = _realized(store, run, scoring, joined, truth)
    summary.update(source=source, key=key, n_scored=len(table), outcomes_file=name if content else None)
    outcome_id = store.add_outcome(run.id, scoring.id, summary)
    labelled = joined.drop(columns=["_key"], errors="ignore").assign(**{target: truth.to_numpy()})
    with atomic_write(store.scoring_dir(scoring.id) / f"labelled-{outcome_id}.parquet") as tmp:
        labelled.astype({c: "string" for c in labelled.columns if labelled[c].dtype == object}).to_parquet(tmp)
    return {"outcome_id": outcome_id, "scoring_id": scoring.id, **summary}


def _scoring_with_key(store: Store, run: RunRecord, scoring_id: str | None, key: str,
                      given: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
    """The scoring the outcomes belong to: the one named, else the newest whose scored file holds the key."""
    candidates = [store.scoring(scoring_id)] if scoring_id else [
        s for s in store.list_scorings(run.id) if s.status == "done" and not s.input_name.startswith(CHALLENGE_PREFIX)]
    wanted = set(_keys(given[key]).dropna())
    for scoring in candidates:
        if scoring.run_id != run.id:
            raise NotFoundError(f"Scoring {scoring.id!r} is not a scoring of run {run.id!r}.")
        try:
            table = _scored_table(store, scoring.id)
        except NotFoundError:
            continue
        if key in table.columns and wanted & set(_keys(table[key]).dropna()):
            return scoring, table
    raise DataError(f"No scored file of run {run.id} has a column {key!r} with values of the outcomes file: score "
                    "the file first (Predict), then upload its outcomes.")


def _realized(store: Store, run: RunRecord, scoring: Any, joined: pd.DataFrame, truth: pd.Series) -> dict[str, Any]:
    from dlcore import evaluate

    used_id = scoring.model_run_id or run.id
    used = store.run(used_id)
    board = used.result["leaderboard"]
    task = used.task
    y, out, dropped = _truth_and_output(used, joined, truth)
    if len(y) == 0:
        raise DataError(f"None of the outcomes can be compared: the {run.target!r} values are missing or are classes "
                        "the model does not know.")
    metric = evaluate.primary_metric(task)
    value = float(evaluate.score(task, y, out)[metric.key])
    ci = evaluate.bootstrap_ci(task, metric.key, y, out, n_boot=500) if len(y) >= 10 else None
    promised = promised_interval(store, used_id, scoring.model)
    title = board.get("metric_title") or metric.key
    higher = bool(board.get("higher_is_better", True))
    outside = promised is not None and not (promised[0] <= value <= promised[1])
    worse = promised is not None and ((value < promised[0]) if higher else (value > promised[1]))
    when = time.strftime("%Y-%m-%d", time.gmtime(scoring.created_at))
    if promised is None:
        where = "(the test rows gave no interval to compare with)"
    else:
        side = "below" if value < promised[0] else "above" if value > promised[1] else "within"
        where = f"{side} the {number(promised[0])}–{number(promised[1])} the test rows promised"
        if outside:
            where += ": worse than promised" if worse else ": better than promised"
    sentence = f"{title} {number(value)} on {len(y):,} rows scored {when}, {where}."
    if dropped:
        sentence += f" {dropped:,} row(s) had no usable outcome and were left out."
    return {"metric": metric.key, "metric_title": title, "realized_score": value,
            "realized_interval": list(ci) if ci is not None else None,
            "promised_interval": list(promised) if promised is not None else None,
            "outside": outside, "worse": worse, "n_rows": len(y), "dropped": int(dropped),
            "model": scoring.model, "model_run_id": used_id, "scored_at": scoring.created_at, "sentence": sentence}


def _truth_and_output(used: RunRecord, joined: pd.DataFrame, truth: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    if used.task == "regression":
        y = pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float)
        col = _output_column(joined, "prediction")
        out = pd.to_numeric(joined[col], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(out)
        return y[ok], out[ok], int((~ok).sum())
    classes = [str(c) for c in used.result.get("classes") or []]
    cols = [_output_column(joined, f"probability {c}") for c in classes]
    if not all(cols):
        raise SchemaError("The scored file has lost its probability columns; score the file again.")
    code = {c: i for i, c in enumerate(classes)}
    labels = truth.astype("string").str.strip()
    y = labels.map(code)
    out = joined[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    ok = y.notna().to_numpy() & np.isfinite(out).all(axis=1)
    return y[ok].to_numpy(dtype=np.int64), out[ok], int((~ok).sum())


def alerts(store: Store, run_id: str) -> list[str]:
    """What the run's pages say first: the newest realized score, when it fell outside the promise."""
    found = store.outcomes_of(run_id)
    if not found:
        return []
    latest = found[-1]["summary"]
    return [latest["sentence"]] if latest.get("outside") and latest.get("worse") else []


# ---- the monitor: every scoring ----------------------------------------------------------
def scorings_report(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every scoring of a run, newest first: id, time, file, rows, who, the model, the drift (its
    sentence, the drifted columns, each column's figures) and, once outcomes came back, the
    realized score beside the promised interval. What the Monitor page and ``monitor --json`` show."""
    outcomes: dict[str, dict] = {}
    for o in store.outcomes_of(run_id):
        outcomes[o["scoring_id"]] = o["summary"]  # oldest first: the newest wins
    rows = []
    for s in store.list_scorings(run_id):
        summary = s.summary or {}
        report = load_drift(store, s.id) if s.status == "done" else None
        got = outcomes.get(s.id)
        rows.append({
            "scoring_id": s.id, "created_at": s.created_at, "status": s.status, "input_name": s.input_name,
            "rows": summary.get("n_rows"), "model": s.model, "model_run_id": s.model_run_id or run_id,
            "created_by": s.created_by,
            "drift_sentence": report.sentence if report else None,
            "drifted_columns": report.drifted_columns if report else [],
            "drift": {c.name: {"kind": c.kind, "drifted": c.drifted, "psi": c.to_dict()["psi"],
                               "p_value": c.to_dict()["p_value"], "words": c.words,
                               "missing_training": c.missing_reference, "missing_file": c.missing_current}
                      for c in report.columns} if report else {},
            "realized_score": got["realized_score"] if got else None,
            "promised_interval": got["promised_interval"] if got else None,
            "outcome_sentence": got["sentence"] if got else None,
            "outside": bool(got and got.get("outside")),
        })
    return rows


# ---- retraining: champion and challenger --------------------------------------------------
def _challengers_path(store: Store, run_id: str) -> Any:
    return store.run_dir(run_id) / "monitor" / "challengers.json"


def challengers(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The runs retrained from this one, oldest first, each with its newest comparison."""
    store.run(run_id)
    path = _challengers_path(store, run_id)
    return json.loads(path.read_text()) if path.exists() else []


def _save_challengers(store: Store, run_id: str, entries: list[dict[str, Any]]) -> None:
    with atomic_write(_challengers_path(store, run_id)) as tmp:
        tmp.write_text(json.dumps(entries))


def retrain(store: Store, run_id: str, dataset_id: str, combine: bool = False) -> str:
    """Queue the run's spec again on newer data (``dataset_id``; with ``combine``, the old rows plus
    the new as one new dataset): the challenger. Its id."""
    from dataclasses import replace

    from dlcore import runner
    from dlcore.spec import RunSpec

    run = store.run(run_id)
    store.require("train", "run", run_id)
    if not _is_table(run):
        raise DataError("Retraining from the Monitor page is for tables; train the new data from the Train page.")
    new = store.dataset(dataset_id)
    if new.workspace_id != run.workspace_id:
        raise NotFoundError(f"No dataset with id {dataset_id!r} in the run's workspace: upload the newer data there.")
    if combine:
        new = _combined(store, run.dataset_id, dataset_id)
    spec = RunSpec.from_dict(run.spec)
    spec = replace(spec, data=replace(spec.data, dataset_id=new.id))
    challenger = runner.submit(store, spec)
    entries = challengers(store, run_id)
    entries.append({"run_id": challenger, "dataset_id": new.id, "combined": combine, "created_at": time.time()})
    _save_challengers(store, run_id, entries)
    return challenger


def _combined(store: Store, old_id: str, new_id: str) -> Any:
    from dlcore.datasets import register_bytes
    from dlcore.tables.reader import load_frame

    old, new = load_frame(store, old_id), load_frame(store, new_id)
    missing = [c for c in old.columns if c not in new.columns]
    if missing:
        raise SchemaError(f"The newer data lacks the column(s) {', '.join(map(repr, missing[:8]))} of the training "
                          "data; add them, or retrain on the newer data alone.")
    both = pd.concat([old, new[old.columns]], ignore_index=True)
    buffer = io.BytesIO()
    both.to_parquet(buffer)
    names = store.dataset_names([old_id, new_id])
    record, _ = register_bytes(store, buffer.getvalue(), f"{names.get(old_id, old_id)} + {names.get(new_id, new_id)}"
                               .replace(".csv", "").replace(".parquet", "") + ".parquet")
    return record


def _newest_labelled(store: Store, run_id: str) -> tuple[dict, pd.DataFrame]:
    found = [o for o in store.outcomes_of(run_id)
             if (store.scoring_dir(o["scoring_id"]) / f"labelled-{o['id']}.parquet").exists()]
    if not found:
        raise DataError("No labelled rows yet: upload the true outcomes of a scored file first, so the champion "
                        "and the challenger are compared on the newest rows whose outcomes are known.")
    newest = found[-1]
    return newest, pd.read_parquet(store.scoring_dir(newest["scoring_id"]) / f"labelled-{newest['id']}.parquet")


def challenge_result(store: Store, run_id: str, challenger_run_id: str, confidence: float = 0.95) -> dict[str, Any] | None:
    """The paired verdict of the newest challenge: both models' scores on the same labelled rows,
    the challenger's difference with its paired bootstrap interval, and a sentence. None while
    the two scorings run; a ``DlcoreError`` when one failed."""
    from dlcore import evaluate
    from dlcore.evaluate.metrics import _percentile_ci, _resampled
    from dlcore.evaluate.ranking import _outcome

    run = store.run(run_id)
    entry = next((e for e in challengers(store, run_id) if e["run_id"] == challenger_run_id), None)
    if entry is None or "challenge" not in entry:
        return None
    chal = entry["challenge"]
    jobs_ = {side: store.scoring(chal[f"{side}_scoring"]) for side in ("champion", "challenger")}
    for side, job in jobs_.items():
        if job.status == "failed":
            raise DlcoreError(f"Scoring the labelled rows with the {side} failed: {job.message}")
    if any(job.status != "done" for job in jobs_.values()):
        return None
    tables = {side: _scored_table(store, job.id) for side, job in jobs_.items()}
    y_c, out_champion, _ = _truth_and_output(store.run(jobs_["champion"].model_run_id or run.id),
                                             tables["champion"], tables["champion"][run.target])
    y_n, out_challenger, _ = _truth_and_output(store.run(challenger_run_id), tables["challenger"],
                                               tables["challenger"][run.target])
    if len(y_c) != len(y_n) or not np.array_equal(y_c, y_n):
        raise DataError("The two models could not be scored on the same labelled rows (their classes differ); "
                        "compare them on the Compare pages instead.")
    task = run.task
    metric = evaluate.primary_metric(task)
    board = run.result["leaderboard"]
    higher = bool(board.get("higher_is_better", True))
    a, b = (float(evaluate.score(task, y_c, out)[metric.key]) for out in (out_challenger, out_champion))
    boot_a, boot_b = _resampled(metric, y_c, [out_challenger, out_champion], 1000, 0)
    diff = (boot_a - boot_b) if higher else (boot_b - boot_a)
    lo, hi = _percentile_ci(diff, confidence)
    better_by = (a - b) if higher else (b - a)
    outcome = _outcome((lo, hi))
    title = board.get("metric_title") or metric.key
    names = {"challenger": f"{evaluate.display_name(chal['model'])} retrained ({challenger_run_id})",
             "champion": f"{evaluate.display_name(chal['champion']['model'])} in use"}
    advice = {"better": "it is clearly better: promote it",
              "worse": "it is clearly worse: keep the model in use",
              "not_clearly_better": "it is not clearly better: keep the model in use, or wait for more outcomes"}[outcome]
    sentence = (f"On the {len(y_c):,} newest labelled rows, {names['challenger']} scores {title} {number(a)} against "
                f"{number(b)} for the {names['champion']}: better by {number(better_by, signed=True)} "
                f"({confidence:.0%} paired interval {number(lo, signed=True)} to {number(hi, signed=True)}); {advice}.")
    return {"outcome": outcome, "challenger_score": a, "champion_score": b, "diff": better_by, "diff_ci": [lo, hi],
            "n_rows": len(y_c), "metric": metric.key, "metric_title": title, "model": chal["model"],
            "challenger_run_id": challenger_run_id, "champion": chal["champion"], "sentence": sentence}


def promote(store: Store, run_id: str, challenger_run_id: str, model: str | None = None) -> ModelInUse:
    """Make the challenger's model the run's model in use (editors; audited; ``revert`` undoes it).
    The comparison behind it, when there is one, is kept with the change."""
    from dlcore.evaluate import recommended
    from dlcore.outputs import check_model

    challenger = store.run(challenger_run_id)
    if challenger.status not in EVALUATED:
        raise DataError(f"The run {challenger.id} is {challenger.status}; only a finished run's model can be used.")
    model = model or recommended(challenger.result["leaderboard"])[0]
    check_model(challenger, model)
    try:
        detail = challenge_result(store, run_id, challenger_run_id)
    except DlcoreError:
        detail = None
    store.change_model(run_id, challenger.id, model, {"promoted": True, "comparison": detail})
    return model_in_use(store, run_id)


def revert(store: Store, run_id: str) -> ModelInUse:
    """Undo the newest change of the model in use: back to the model used before it (the run's
    own recommended model when there was none). Audited like a promotion."""
    from dlcore.evaluate import recommended

    run = store.run(run_id)
    changes = store.model_changes(run_id)
    if not changes:
        raise DataError("The run uses the model its verdict recommends; there is no change to undo.")
    if len(changes) > 1:  # one step back; a second undo redoes
        back_run, back_model = changes[1]["use_run_id"], changes[1]["use_model"]
    else:
        back_run, back_model = run.id, recommended(run.result["leaderboard"])[0]
    store.change_model(run_id, back_run, back_model, {"reverted": changes[0]["id"]})
    return model_in_use(store, run_id)
