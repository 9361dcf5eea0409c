"""A run's report: one self-contained HTML file to hand to a manager.

Interactive Plotly charts with plotly.js inlined once (the file opens with no network),
the data summary, the leaderboard with intervals and the verdict, the key charts, the saved
explanation and threshold, and a reproducibility block (spec, seed, dataset hash, library
versions). The Compare page offers it as a download; ``python -m dlcore report RUN_ID -o
REPORT.html`` writes the same file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from dlcore import charts, evaluate, explain, formats, kinds
from dlcore.errors import RunError
from dlcore.handover import decision
from dlcore.outputs import load_test_outputs
from dlcore.store import EVALUATED, Store
from dlcore.tables import charts as table_charts

__all__ = ["build_report", "report_name"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;
color:#1d1d1f;line-height:1.5}
h1{font-size:1.8rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.muted{color:#666;font-size:.9rem} table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border-bottom:1px solid #e3e3e3;padding:.35rem .7rem;text-align:left} th{background:#f6f7f9}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{padding:.8rem 1rem;border-radius:6px;margin:.6rem 0;background:#eef4fb;border-left:4px solid #1f4e9c}
.verdict.better{background:#eaf6ec;border-color:#2e7d32}
pre{background:#f6f7f9;padding:.8rem;overflow:auto;font-size:.82rem} .grid{display:flex;flex-wrap:wrap;gap:12px}
.grid figure{margin:0;width:200px;font-size:.8rem;color:#444} .grid img{width:200px;border-radius:4px}
"""


def report_name(store: Store, run_id: str) -> str:
    dataset = store.dataset(store.run(run_id).dataset_id)
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in dataset.name.rsplit(".", 1)[0])[:40]
    return f"report-{stem}-{run_id}.html"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fig(fig: go.Figure) -> str:
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True})


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{_e(c)}</td>" if i in numeric else f"<td>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(x: Any) -> str:
    """A score as the pages write it (``dlcore.formats``: "0.9120", "693.2", "43,805"); "–" for none."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return formats.number(v) if np.isfinite(v) else "–"


def build_report(store: Store, run_id: str) -> str:
    """The report of a finished run as one HTML string (a few MB: plotly.js is inside).
    Asked for by a user, it is checked and kept in the audit log as a download."""
    if store.actor is not None:
        store.note_download("report", run_id)
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; a report needs a finished run.")
    dataset = store.dataset(run.dataset_id)
    result = run.result
    board = result["leaderboard"]
    kind = result.get("kind", "tabular")
    goal = (f"forecast “{run.target}”" if kind == "series" else "sort images into classes" if kind == "image"
            else f"predict “{run.target}” ({run.task})")
    parts: list[str] = [f"<h1>{_e(dataset.name)}: {_e(goal)}</h1>",
                        f"<p class='muted'>Run {_e(run.id)} · {_e(evaluate.display_name(run.template))} · finished "
                        f"{_e(_when(run.finished_at))} · report made {_e(_when(None))}</p>"]

    # Verdict first: it is the answer to the question the analyst was asked.
    parts.append("<h2>The answer</h2>")
    for verdict in board["verdicts"]:
        parts.append(f"<div class='verdict {_e(verdict['outcome'])}'>{_e(verdict['text'])}</div>")
    use, why = evaluate.recommended(board)
    if evaluate.nothing_predicts(board):
        parts.append(f"<p><b>No model to use</b>: none is clearly better than always guessing; the charts below show "
                     f"{_e(evaluate.display_name(use))} only to show what it would do.</p>")
    else:
        parts.append(f"<p><b>The model to use: {_e(evaluate.display_name(use))}</b>, {_e(why)}.</p>")
    if run.status == "stopped":
        parts.append("<p class='muted'>This run was stopped early by request; the deep model uses the best weights it "
                     "reached.</p>")

    parts.append("<h2>The data</h2>")
    rows = result.get("rows", {})
    facts = [["File", dataset.name], ["Rows × columns", f"{dataset.n_rows:,} × {dataset.n_cols:,}"],
             ["Target", run.target], ["Task", run.task or "-"]]
    if kind != "series":
        facts.append(["Split (train / validation / test)",
                      f"{rows.get('train', 0):,} / {rows.get('validation', 0):,} / {rows.get('test', 0):,}"])
        if rows.get("dropped_missing_target"):
            facts.append(["Rows left out (no target)", f"{rows['dropped_missing_target']:,}"])
    else:
        info = result.get("series", {})
        facts.append(["Backtest", f"{info.get('n_series', 1)} series × {info.get('windows')} windows of "
                                  f"{info.get('horizon')} steps"])
    if result.get("classes"):
        facts.append(["Classes", ", ".join(map(str, result["classes"][:20]))])
    parts.append(_table(["", ""], facts))
    for warning in result.get("warnings", []):
        parts.append(f"<p class='muted'>Note: {_e(warning)}</p>")

    parts.append("<h2>Leaderboard</h2>")
    how = "t-intervals across the backtest windows" if kind == "series" else f"{board.get('n_boot', 1000)} bootstrap resamples"
    unit = "windows" if kind == "series" else "rows"
    parts.append(f"<p class='muted'>Every model scored on the same test {unit} with the same metric; 95% intervals "
                 f"from {how}.</p>")
    table_rows = []
    folds = any(r.get("cv_score") is not None for r in board["rows"])
    for r in board["rows"]:
        low, high = (r.get("ci") or [None, None])[:2]
        cells = [evaluate.display_name(r["model"]), {"deep": "deep", "ensemble": "ensemble"}.get(r["family"], "baseline")]
        if folds:
            cv_low, cv_high = r.get("cv_ci") or [None, None]
            cells += [_num(r.get("cv_score")), f"{_num(cv_low)} – {_num(cv_high)}"]
        table_rows.append(cells + [_num(r["test_score"]), f"{_num(low)} – {_num(high)}"]
                          + ([str(r.get("trials") or "-")] if folds else []))
    if folds:
        parts.append(_table(["Model", "Kind", f"{board['metric_title']} (cross-validated)", "Interval across folds",
                             f"{board['metric_title']} (test)", "95% interval", "Trials"], table_rows,
                            numeric={2, 3, 4, 5, 6}))
    else:
        parts.append(_table(["Model", "Kind", board["metric_title"], "95% interval"], table_rows, numeric={2, 3}))
    parts.append(_fig(charts.leaderboard_chart(board["rows"], board["metric_title"], board["higher_is_better"])))
    parts.extend(_search(store, run))

    parts.extend(_key_charts(store, run, kind))
    parts.extend(_explanation(store, run, kind))
    parts.extend(_threshold(store, run))
    parts.extend(_reproducibility(store, run, dataset))

    body = "\n".join(parts)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(dataset.name)}: report of run "
            f"{_e(run.id)}</title><meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<style>{_CSS}</style><script type='text/javascript'>{get_plotlyjs()}</script></head>"
            f"<body>{body}</body></html>")


def _when(timestamp: float | None) -> str:
    moment = dt.datetime.fromtimestamp(timestamp) if timestamp else dt.datetime.now()
    return moment.strftime("%Y-%m-%d %H:%M")


def _key_charts(store: Store, run: Any, kind: str) -> list[str]:
    result = run.result
    if kind == "series":
        return _forecast_charts(store, run)
    best = evaluate.recommended(result["leaderboard"])[0]
    y_true, outputs, _ = load_test_outputs(store, run.id)
    families = {evaluate.display_name(r["model"]): r["family"] for r in result["leaderboard"]["rows"]}
    named = {evaluate.display_name(m): o for m, o in outputs.items()}
    out = ["<h2>How the models get it right and wrong</h2>"]
    if run.task in ("binary", "multiclass"):
        classes = result["classes"]
        y = np.asarray(y_true).astype(int)
        which = ("the best-scoring model (none is recommended for use)"
                 if evaluate.nothing_predicts(result["leaderboard"]) else "the model to use")
        out.append(f"<p class='muted'>Confusion matrix on the test rows of {which}: "
                   f"{_e(evaluate.display_name(best))}.</p>")
        out.append(_fig(charts.confusion_matrix_chart(y, np.asarray(outputs[best]).argmax(axis=1), classes)))
        if run.task == "binary":
            scores = {m: np.asarray(o)[:, 1] for m, o in named.items()}
            out.append(_fig(charts.roc_chart(y, scores, classes[1], families=families)))
    else:
        preds = {m: np.asarray(o).reshape(-1) for m, o in named.items()}
        out.append(_fig(charts.predicted_vs_actual_chart(y_true, preds, families=families)))
    return out


def _forecast_charts(store: Store, run: Any) -> list[str]:
    """The best model's backtest and forecast for the first series (the page shows any series)."""
    from dlcore.series import charts as series_charts
    from dlcore.series.run import ID_COLUMN, load_backtest, load_future, series_ids

    board = run.result["leaderboard"]
    info = run.result.get("series", {})
    best = evaluate.recommended(board)[0]
    ids = series_ids(store, run.id)
    series = ids[0] if len(ids) > 1 else None
    data = load_backtest(store, run.id, series)
    future = load_future(store, run.id)
    if best not in set(future["model"]):  # stopped during its backtest: only some models forecast
        best = next(r["model"] for r in board["rows"] if r["model"] in set(future["model"]))
    chosen = future[future["model"] == best].drop(columns=["model"]).reset_index(drop=True)
    if series is not None and ID_COLUMN in chosen:
        chosen = chosen[chosen[ID_COLUMN] == series].drop(columns=[ID_COLUMN])
    families = {evaluate.display_name(r["model"]): r["family"] for r in board["rows"]}
    name = evaluate.display_name(best)
    title = f"Backtest and forecast by {name}" + (f": {series} (1 of {len(ids)} series)" if series else "")
    fig = series_charts.forecast_chart(data["history_times"], data["history"], data["window_times"],
                                {name: data["forecasts"][best]}, chosen, families=families, title=title,
                                show_last=max(60, 4 * info.get("horizon", 12) * info.get("windows", 3)))
    return ["<h2>The forecast</h2>",
            f"<p class='muted'>{_e(name)}, the model to use: its forecasts over the windows it was "
            "tested on, and its forecast after the last date with the interval from its backtest errors.</p>",
            _fig(fig)]


def _explanation(store: Store, run: Any, kind: str) -> list[str]:
    board = run.result["leaderboard"]
    use = evaluate.recommended(board)[0]  # the model to use first, then the others in the board's order
    candidates = (sorted((r["model"] for r in board["rows"]), key=lambda m: m != use)
                  if kinds.get(kind).explains_any_model else [run.template])
    for model in candidates:
        saved = explain.load_global(store, run.id, model)
        if saved is None:
            continue
        name = evaluate.display_name(model)
        out = [f"<h2>What {_e(name)} relies on</h2>"]
        if kind == "image":
            out.append("<p class='muted'>Grad-CAM: warm colours mark where the model looked for the class it said.</p>"
                       "<div class='grid'>")
            for item in saved.get("items", []):
                path = store.run_dir(run.id) / "explain" / item["png"]
                if path.exists():
                    data = base64.b64encode(path.read_bytes()).decode()
                    mark = "right" if item["correct"] else "wrong"
                    out.append(f"<figure><img alt='' src='data:image/png;base64,{data}'><figcaption>{mark}: is "
                               f"{_e(item['true'])} · said {_e(item['predicted'])} ({item['confidence']:.0%})"
                               "</figcaption></figure>")
            out.append("</div>")
        elif kind == "series":
            from dlcore.series import explain as explain_series

            if saved.get("sentence"):
                out.append(f"<p>{_e(saved['sentence'])}</p>")
            out.append(_fig(explain_series.lag_importance_chart(saved)))
        else:
            out.append(f"<p class='muted'>Permutation importance on {saved['n_rows']:,} test rows: how much the "
                       f"{_e(saved['metric_title'])} gets worse when one column is shuffled.</p>")
            out.append(_fig(table_charts.importance_chart(saved["importance"], saved["metric_title"], name)))
            if saved.get("words"):  # text columns: the words that matter most per class
                out.append("<p class='muted'>The words that matter most: each word's push on the log-odds of the "
                           "row's own class when it is taken out of the text, averaged over the test rows that have "
                           "it (spread: standard deviation over those rows).</p>")
                out.append(_table(["Class", "Words (push ± spread)"], [
                    [label, ", ".join(f"{d['word']} ({d['mean']:+.2f} ± {d['std']:.2f})" for d in items[:6])]
                    for label, items in saved["words"].items()]))
            for item in saved.get("dependence", [])[:2]:  # the first output: the positive or first class
                title = (f"Probability of “{saved['classes'][1]}”" if saved["task"] == "binary"
                         else f"Probability of “{saved['classes'][0]}”" if saved["task"] == "multiclass"
                         else f"Predicted {run.target}")
                out.append(_fig(table_charts.dependence_chart({**item, "average": item["average"][0],
                                                         "individual": item["individual"][0]}, title)))
        return out
    return ["<h2>Explanation</h2><p class='muted'>No explanation has been worked out for this run yet: open its "
            "Explain page (or run <code>python -m dlcore report RUN_ID --explain</code>) and make the report again.</p>"]


def _threshold(store: Store, run: Any) -> list[str]:
    if run.task not in ("binary", "multiclass"):
        return []
    chosen = decision.load_decision(store, run.id)
    if chosen is None:
        if run.task != "binary":
            return []
        return ["<h2>Threshold</h2><p class='muted'>No threshold from money has been saved for this run: predictions "
                "use 50%. Set one on the Decide page.</p>"]
    y_true, outputs, _ = load_test_outputs(store, run.id)
    k = decision.class_column((run.result or {}).get("classes", []), chosen.positive)
    y = (np.asarray(y_true).astype(int) == k).astype(int)  # yes/no, or this class against the rest
    p = np.asarray(outputs[chosen.model])[:, k]
    money = chosen.money
    curve = decision.profit_curve(y, p, money)
    best = decision.best_threshold(curve)
    counts = decision.confusion_at(y, p, chosen.threshold)
    low, high = decision.profit_interval(y, p, chosen.threshold, money, seed=int(run.spec["train"]["seed"]))
    n = len(y)
    return [
        "<h2>Threshold from money</h2>",
        f"<p>{_e(evaluate.display_name(chosen.model))} flags “{_e(chosen.positive)}” when its probability is at least "
        f"<b>{chosen.threshold:.3f}</b>. A right flag is worth {_e(money.money(money.value_tp))}, a false alarm costs "
        f"{_e(money.money(money.cost_fp))}, a miss {_e(money.money(money.cost_fn))}. On the {n:,} test rows that "
        f"earns <b>{_e(money.money(chosen.profit_per_row * n))}</b> ({_e(money.money(chosen.profit_per_row))} a row; "
        f"95% interval {_e(money.money(low))} to {_e(money.money(high))} a row), with {counts['tp']:,} right flags, "
        f"{counts['fp']:,} false alarms and {counts['fn']:,} misses.</p>",
        _fig(charts.profit_chart(curve, money.currency, best, chosen.threshold, chosen.positive)),
    ]


def _reproducibility(store: Store, run: Any, dataset: Any) -> list[str]:
    spec = json.dumps(run.spec, indent=2, sort_keys=True)
    versions = run.versions or {}
    rows = [["Run id", run.id], ["Seed", run.spec["train"]["seed"]], ["Dataset", f"{dataset.name} ({dataset.id})"],
            ["Dataset SHA-256", dataset.sha256]]
    rows += [[name, version] for name, version in sorted(versions.items())]
    return ["<h2>Reproduce it</h2>",
            "<p class='muted'>The same spec on the same data and machine gives the same scores: use “Rerun with the "
            f"same settings” on the run's Train page, or <code>python -m dlcore rerun {_e(run.id)}</code>.</p>",
            _table(["", ""], rows), f"<pre>{_e(spec)}</pre>"]


def _search(store: Store, run: Any) -> list[str]:
    """How the models were chosen (a run within a time budget): the budget, the folds, the search
    space and the settings chosen per model, the trials chart, and every fold's score."""
    from dlcore.search import load_trials, search_lines

    search = (run.result or {}).get("search")
    if not search:
        return []
    lines = search_lines(run.result)
    intro = lines[2]  # the paragraph after the heading
    out = ["<h2>How the models were chosen</h2>", f"<p>{_e(intro)}</p>"]
    out.append(_table(["Model", "Search space", "Trials", "Settings chosen"],
                      [[evaluate.display_name(name), search["space"].get(name, "weights over the other models"),
                        str(search["trials"].get(name, 0)), chosen["words"]]
                       for name, chosen in search["chosen"].items()]))
    trials = load_trials(store, run.id)
    if trials:
        unit = "images" if run.result.get("kind") == "image" else "rows"
        out.append(_fig(charts.trials_chart(trials, evaluate.display_name, unit)))
    if not search.get("folds"):  # images: a validation split, no folds to list
        return out
    board = run.result["leaderboard"]
    head = [f"r{f['repeat'] + 1} f{f['index'] + 1}" for f in search["folds"]]
    rows = [[evaluate.display_name(r["model"]), *[_num(v) for v in (r.get("cv_folds") or [None] * len(head))],
             _num(r.get("cv_score"))] for r in board["rows"]]
    out.append(f"<p class='muted'>{_e(board['metric_title'])} on each fold (repeat r, fold f); '-' where a model "
               "was not scored on a fold, and every model's mean is over the same folds.</p>")
    out.append(_table(["Model", *head, "Mean"], rows, numeric=set(range(1, len(head) + 2))))
    return out
