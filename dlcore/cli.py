"""``python -m dlcore``: the same code paths and store as the app, for automation.

    python -m dlcore fit DATA [--target COL] [--task auto|classification|regression] [--template NAME]
                              [--budget SECONDS|quick|standard|thorough] [--epochs N] [--seed S]
                              [--batch-size B] [--learning-rate LR] [--size S] [--use-personal COL,...]
                              [--workspace NAME]
    python -m dlcore predict RUN_ID DATA -o OUT.csv [--model NAME] [--map 'MODEL_COLUMN=FILE_COLUMN,...']
    python -m dlcore rerun RUN_ID
    python -m dlcore report RUN_ID -o REPORT.html [--explain]
    python -m dlcore bundle RUN_ID -o MODEL.zip [--model NAME]
    python -m dlcore runs [--json] [--workspace NAME]
    python -m dlcore monitor RUN_ID [--json]           (every scoring: rows, drift, realized score)
    python -m dlcore actuals RUN_ID FILE [--key COLUMN] [--json]   (true outcomes: the realized score)
    python -m dlcore worker [--only train|score]      (DLCORE_EXECUTOR=ray: the dispatcher to a Ray cluster)
    python -m dlcore serve [--host 127.0.0.1] [--port 8000]   (the REST endpoint alone; see docs/api.md)

Team mode (``DLCORE_AUTH=team``, or an ``[auth]`` section in ``.streamlit/secrets.toml``): every
command but ``worker`` acts as the user named by ``--as EMAIL`` (or ``$DLCORE_USER``), through the
store bound to that user (``Store.as_actor``), so it may do exactly what the pages let them do;
their personal workspace is made at their first action. ``fit --workspace NAME`` trains in a
shared workspace (default: the personal one). Administration:

    python -m dlcore workspace create NAME | add NAME EMAIL --role owner|editor|viewer
                               | remove NAME EMAIL | list [--json]
    python -m dlcore delete run ID | delete dataset ID           (owners only)
    python -m dlcore audit NAME [--json]                          (owners only; CSV without --json)
    python -m dlcore token create NAME --name WHAT | list NAME [--json] | revoke NAME TOKEN_ID
                                                                  (owners only: the REST endpoint's tokens)
    python -m dlcore account release EMAIL      (administrators: free an address from its sign-in account)

The CLI's user is a local operator (it runs with the data folder's own permissions), so ``--as``
names a user by e-mail and is trusted; the web app knows a user only by a sign-in: the provider's
account (issuer and subject) with a verified e-mail.

DATA is a file (CSV, Excel, Parquet; or a ZIP of images in class folders, which needs no
``--target``) or ``sample:NAME`` for a sample that ships with the installed packages. Results go to
stdout (JSON for ``fit``), progress to stderr. A problem with the input ends with exit status 1 and one
line ``error: ...``, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from typing import Sequence

from dlcore.errors import DlcoreError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 1, like every other bad input
        print(f"error: {message} (see: {self.prog} --help)", file=sys.stderr)  # prog names the command once
        raise SystemExit(1)


def _parser() -> argparse.ArgumentParser:
    from dlcore.spec import SIZES, TrainSpec

    defaults = TrainSpec()
    parser = _Parser(prog="python -m dlcore", description="Train deep models against baselines; score new data.")
    parser.add_argument("--as", dest="as_user", default=None, metavar="EMAIL", help=_AS_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fit = sub.add_parser("fit", help="train a deep template and the baselines; print the leaderboard as JSON")
    fit.add_argument("data", help="a CSV, Excel or Parquet file, a ZIP of images in class folders, or sample:NAME")
    fit.add_argument("--target", default=None, help="the column to predict (tables; images are classified by folder)")
    fit.add_argument("--task", default="auto",
                     choices=["auto", "classification", "regression", "binary", "multiclass", "forecast"])
    fit.add_argument("--time-col", default=None, help="forecast: the column of dates or times")
    fit.add_argument("--horizon", type=int, default=None, help="forecast: steps ahead (default: from the frequency)")
    fit.add_argument("--lookback", type=int, default=None, help="forecast: steps the deep model reads")
    fit.add_argument("--windows", type=int, default=None, help="forecast: backtest windows (default 3)")
    fit.add_argument("--season", type=int, default=None, help="forecast: steps in one season (default: from the frequency)")
    fit.add_argument("--id-col", default=None, help="forecast: the column naming each series, for a file of several")
    fit.add_argument("--covariates", default=None, help="forecast: other numeric columns to read, comma-separated")
    fit.add_argument("--gaps", default="interpolate", choices=["interpolate", "ffill", "zero"])
    fit.add_argument("--duplicates", default="mean", choices=["mean", "sum", "last"])
    fit.add_argument("--freq", default=None, help="forecast: add an irregular series up per D, W-MON, MS, ...")
    fit.add_argument("--template", default=None, help="default: mlp for tables, cnn_deep for images, lstm for forecasts")
    fit.add_argument("--image-size", type=int, default=None, help="images: side in pixels (default: from the images)")
    fit.add_argument("--no-augment", action="store_true", help="images: train on the pictures as they are")
    fit.add_argument("--no-flip", action="store_true", help="images: never mirror pictures left-right")
    fit.add_argument("--budget", default=None, metavar="SECONDS|quick|standard|thorough",
                     help="how long the whole run may take (search, folds or the validation split, ensemble); quick = 60 s, "
                          "standard = 300 s (the default), thorough = 1200 s")
    fit.add_argument("--epochs", type=int, default=None,
                     help=f"advanced: train the given settings once for N epochs instead of a search within a "
                          f"budget (default {defaults.epochs} for images and forecasts)")
    fit.add_argument("--seed", type=int, default=defaults.seed)
    fit.add_argument("--batch-size", type=int, default=None, help="rows per step (default: suggested from the table size)")
    fit.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    fit.add_argument("--size", choices=SIZES, default=defaults.size)
    fit.add_argument("--no-baselines", action="store_true", help="train the deep model only")
    fit.add_argument("--use-personal", default=None, metavar="COL,...",
                     help="tables: put these columns of personal data back as inputs (left out by default)")
    fit.add_argument("--workspace", default=None, metavar="NAME",
                     help="team mode: the workspace the data and the run go to (default: your personal one)")
    pred = sub.add_parser("predict", help="score a file with a finished run's model")
    pred.add_argument("run_id")
    pred.add_argument("data", help="a table for a table's run; an image or a ZIP of images for an image run")
    pred.add_argument("-o", "--output", required=True, help="where to write the scored CSV")
    pred.add_argument("--model", default=None, help="a model of the run (default: its best, by cross-validation where the run had folds)")
    pred.add_argument("--map", action="append", default=None, metavar="'MODEL_COLUMN=FILE_COLUMN,...'",
                      help="tables: which column of the file holds each of the model's, when the file names them "
                           "differently ('COLUMN=' scores one as missing); kept with the run for the next file")
    rerun = sub.add_parser("rerun", help="train a run's spec again (same data, seed and settings); print its leaderboard")
    rerun.add_argument("run_id")
    report = sub.add_parser("report", help="write a run's report: one HTML file that opens with no network")
    report.add_argument("run_id")
    report.add_argument("-o", "--output", required=True, help="where to write the HTML file")
    report.add_argument("--explain", action="store_true",
                        help="work out the best model's explanation first if the run has none yet")
    bundle = sub.add_parser("bundle", help="write a model bundle: the model, its preprocessing, a model card and predict.py")
    bundle.add_argument("run_id")
    bundle.add_argument("-o", "--output", required=True, help="where to write the ZIP file")
    bundle.add_argument("--model", default=None, help="a model of the run (default: its deep model)")
    mon = sub.add_parser("monitor", help="a run's scorings, newest first: rows, drift against the training rows, "
                                         "realized score when the outcomes came back")
    mon.add_argument("run_id")
    mon.add_argument("--json", action="store_true")
    act = sub.add_parser("actuals", help="record the true outcomes of a scored file (with --key), or score a labelled "
                                         "file and compare it at once; print the realized score")
    act.add_argument("run_id")
    act.add_argument("data", help="a file with the target column (and the key column with --key)")
    act.add_argument("--key", default=None, metavar="COLUMN", help="the column shared with a scored file")
    act.add_argument("--json", action="store_true")
    runs = sub.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--json", action="store_true")
    runs.add_argument("--limit", type=int, default=50)
    runs.add_argument("--workspace", default=None, metavar="NAME",
                      help="team mode: only this workspace's runs (default: every workspace you belong to)")
    space = sub.add_parser("workspace", help="team mode: create workspaces, change their members, list yours")
    space_sub = space.add_subparsers(dest="action", required=True, parser_class=_Parser)
    space_sub.add_parser("create", help="a shared workspace, with you as its owner").add_argument("name")
    add = space_sub.add_parser("add", help="add a member (or change their role); owners only")
    add.add_argument("name")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=["owner", "editor", "viewer"])
    remove = space_sub.add_parser("remove", help="remove a member; owners only")
    remove.add_argument("name")
    remove.add_argument("email")
    space_list = space_sub.add_parser("list", help="the workspaces you belong to, with your role")
    space_list.add_argument("--json", action="store_true")
    delete = sub.add_parser("delete", help="delete a run with its files, or a dataset with everything made from it; "
                                           "owners only")
    delete.add_argument("kind", choices=["run", "dataset"])
    delete.add_argument("record_id", metavar="ID")
    audit = sub.add_parser("audit", help="a workspace's audit log, newest first, as CSV (owners only)")
    audit.add_argument("name")
    audit.add_argument("--json", action="store_true")
    token = sub.add_parser("token", help="team mode: a workspace's API tokens for the REST endpoint (owners only)")
    token_sub = token.add_subparsers(dest="action", required=True, parser_class=_Parser)
    make = token_sub.add_parser("create", help="a new token; its secret is printed this once")
    make.add_argument("name", metavar="WORKSPACE")
    make.add_argument("--name", dest="label", required=True, metavar="WHAT",
                      help="what calls the API with it, e.g. 'billing system' (shown in the list and the audit log)")
    listing = token_sub.add_parser("list", help="the workspace's tokens (never their secrets)")
    listing.add_argument("name", metavar="WORKSPACE")
    listing.add_argument("--json", action="store_true")
    revoke = token_sub.add_parser("revoke", help="delete a token: the next request with it is refused")
    revoke.add_argument("name", metavar="WORKSPACE")
    revoke.add_argument("token_id", metavar="TOKEN_ID")
    serve = sub.add_parser("serve", help="serve the REST endpoint alone (POST /v1/runs/RUN_ID/predict, docs at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    session = sub.add_parser("session", help="team mode: list sign-ins, or end them now (administrators: anyone's; "
                                             "users: their own)")
    session_sub = session.add_subparsers(dest="action", required=True, parser_class=_Parser)
    session_list = session_sub.add_parser("list", help="active sign-ins, newest first")
    session_list.add_argument("--user", default=None, metavar="EMAIL", help="only this user's")
    session_list.add_argument("--all", action="store_true", help="also those signed out, revoked or expired")
    session_list.add_argument("--json", action="store_true")
    session_revoke = session_sub.add_parser("revoke", help="end a sign-in now (its cookie is refused at the next click)")
    session_revoke.add_argument("session_id", nargs="?", default=None, metavar="ID", help="a session id (8 characters suffice)")
    session_revoke.add_argument("--user", default=None, metavar="EMAIL", help="end every active sign-in of this user")
    account = sub.add_parser("account", help="team mode, administrators: free an address from the sign-in account "
                             "that holds it (the person's account was replaced at the provider)")
    account.add_argument("action", choices=["release"])
    account.add_argument("email")
    worker = sub.add_parser("worker", help="execute queued runs and scorings until stopped (with DLCORE_EXECUTOR=ray: "
                                           "hand them to the Ray cluster)")
    worker.add_argument("--only", choices=["train", "score"], default=None)
    worker.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    # --as may come after the command too (SUPPRESS: a command without it keeps the main parser's)
    stack = [sub]
    while stack:
        for name, command in stack.pop().choices.items():
            if name not in ("worker", "serve"):
                command.add_argument("--as", dest="as_user", default=argparse.SUPPRESS, metavar="EMAIL", help=_AS_HELP)
            stack.extend(a for a in command._actions if isinstance(a, argparse._SubParsersAction))
    return parser


_AS_HELP = "team mode: the email of the user to act as (default: $DLCORE_USER)"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _actor(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Who this command acts as: the built-in user in personal mode; in team mode the user named
    by ``--as`` or ``$DLCORE_USER`` (the CLI runs on the server with the data folder's own
    permissions: its user is a local operator, who could open the database anyway, so it trusts
    the name, by e-mail; the web app trusts only a sign-in, by the provider's account)."""
    from dlcore import access

    given = getattr(args, "as_user", None)
    if not access.team_mode():
        if given:
            raise DlcoreError("--as names a user only in team mode (DLCORE_AUTH=team, or an [auth] section in "
                              ".streamlit/secrets.toml); in personal mode the CLI acts as the one built-in user: "
                              "leave --as out.")
        return access.LOCAL
    email = (given or os.environ.get("DLCORE_USER") or "").strip().lower()
    if not email:
        raise DlcoreError("This server is in team mode: name the user you act as with --as EMAIL (or set "
                          "DLCORE_USER=EMAIL), e.g. python -m dlcore --as name@example.com runs.")
    try:
        email = access.normalise_email(email)
    except DlcoreError:
        raise DlcoreError(f"--as {email!r} is not an email address: write the user's address, e.g. "
                          "--as name@example.com.") from None
    if not access.email_allowed(email):
        raise DlcoreError(f"{email} may not use this server: its domain is not one of "
                          f"{', '.join(access.allowed_domains())}.")
    return access.Actor(email)


def _store(args: argparse.Namespace, workspace: str | None = None):  # type: ignore[no-untyped-def]
    """The store bound to the acting user (every read, list and job checked as on the pages), in
    ``workspace`` (a name or id of one of theirs) or their personal workspace, made at their first action."""
    from dlcore.store import Store

    actor = _actor(args)
    opened = Store.open()
    bound = opened.as_actor(actor, opened.ensure_user(actor))
    if workspace is not None:
        bound = opened.as_actor(actor, _workspace_id(bound, workspace))
    return bound


def _workspace_id(store, name: str) -> str:  # type: ignore[no-untyped-def]
    """The id of the acting user's workspace called ``name`` (or with that id; ``personal``: their
    personal one). One not found and one they are not a member of get the same answer."""
    from dlcore import access

    mine = store.workspaces_of()
    exact = [w for w in mine if name in (w["id"], w["name"])]
    if len(exact) == 1:
        return exact[0]["id"]
    folded = [w for w in mine if w["name"].casefold() == name.strip().casefold()]
    if len(folded) == 1:
        return folded[0]["id"]
    if len(folded) > 1:
        raise DlcoreError(f"{name!r} could name several of your workspaces: "
                          f"{', '.join(repr(w['name']) for w in folded)}; write the name exactly as listed by "
                          "python -m dlcore workspace list, or the workspace's id.")
    if name.strip().casefold() == "personal":
        return store.ensure_user(store.actor)
    if not access.team_mode():
        raise DlcoreError(f"There is no workspace {name!r}: in personal mode everything is in your one workspace, "
                          "'Personal'. Leave the workspace out.")
    listed = ", ".join(f"{w['name']!r} ({w['role']})" for w in mine) or "none"
    raise DlcoreError(f"You are not a member of a workspace named {name!r} (or there is none on this server); yours "
                      f"are: {listed}. Ask an owner of the workspace to add you.")


def _register(store, data: str):  # type: ignore[no-untyped-def]
    from dlcore import datasets

    if data.startswith("sample:"):
        return datasets.register_sample(store, data.split(":", 1)[1])[0]
    return datasets.register_file(store, data)[0]


def cmd_fit(args: argparse.Namespace) -> int:
    store = _store(args, args.workspace)
    store.require("upload", "workspace", store.workspace_id)  # a viewer is refused before the file is read

    from dlcore import tables as tabular
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.tables import run as tables_run
    from dlcore.tables.reader import load_frame

    record = _register(store, args.data)
    shape = f"{record.n_rows} images" if record.kind == "image" else f"{record.n_rows} rows x {record.n_cols} columns"
    _say(f"dataset {record.id}: {shape} ({record.name})")
    for note in record.report.get("notes", []):
        _say(f"note: {note}")
    for warning in record.profile.get("warnings", []):
        _say(f"warning: {warning}")
    if record.kind == "image":
        return _fit_images(store, record, args)
    if args.task == "forecast" or args.time_col:
        return _fit_forecast(store, record, args)
    if not args.target:
        raise DlcoreError("Name the column to predict with --target COLUMN.")
    frame = load_frame(store, record.id)
    task = args.task
    if args.target not in frame.columns:
        raise DlcoreError(
            f"There is no column {args.target!r} in {record.name}; the columns are: "
            f"{', '.join(map(repr, list(frame.columns)[:15]))}{' …' if frame.shape[1] > 15 else ''}."
        )
    resolved = tables_run.resolve_task(task, frame[args.target])
    for warning in tabular.check_target(frame, args.target, resolved) + tabular.leakage_warnings(frame, args.target, resolved):
        _say(f"warning: {warning}")
    from dlcore.spec import suggested_batch_size

    budget = _budget(args)
    spec = RunSpec(
        data=DataSpec(dataset_id=record.id, target=args.target, task=task,
                      features=_inputs_with_personal(record, args.target, args.use_personal)),
        template=args.template or "mlp",
        train=TrainSpec(epochs=args.epochs or TrainSpec.epochs, budget=budget, seed=args.seed,
                        batch_size=args.batch_size or suggested_batch_size(record.n_rows),
                        learning_rate=args.learning_rate, size=args.size),
        baselines=not args.no_baselines,
    )
    return _train_and_print(store, spec)


def _inputs_with_personal(record, target: str, use_personal: str | None) -> tuple[str, ...] | None:  # type: ignore[no-untyped-def]
    """The inputs for ``--use-personal``: every usable column plus the named personal ones (None
    without the option: every usable column, personal ones left out)."""
    from dlcore import tables as tabular

    if not use_personal:
        return None
    profile = tabular.profile_of(record)
    personal = tabular.personal_columns(profile)
    asked = [c.strip() for c in use_personal.split(",") if c.strip()]
    unknown = [c for c in asked if c not in personal]
    if unknown:
        raise DlcoreError(f"--use-personal names {', '.join(map(repr, unknown))}, which "
                          f"{'is' if len(unknown) == 1 else 'are'} not flagged as personal data; the flagged columns "
                          f"are: {', '.join(map(repr, personal)) or 'none'}.")
    usable = tabular.usable_features(profile, target)
    _say(f"warning: putting back columns of personal data as inputs: {', '.join(map(repr, asked))}; the model "
         "learns from them, and the report, model card and bundle name them")
    return tuple(usable + [c for c in asked if c not in usable and c != target])


def _budget(args: argparse.Namespace) -> float | None:
    """Seconds of ``--budget`` (default: the standard preset), or None with ``--epochs``."""
    from dlcore.budget import DEFAULT_PRESET, describe, parse_budget

    if args.epochs is not None and args.budget is not None:
        raise DlcoreError("Give either --budget (a search within that time) or --epochs (the given settings, "
                          "trained once), not both.")
    budget = None if args.epochs is not None else parse_budget(args.budget or DEFAULT_PRESET)
    if budget is not None:
        _say(f"budget: {describe(budget)}")
    return budget


def _fit_images(store, record, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from dlcore.spec import DataSpec, RunSpec, TrainSpec

    classes = record.report.get("classes", {})
    _say(f"images: {record.n_rows} in {len(classes)} classes ({', '.join(list(classes)[:10])})")
    if args.target not in (None, "label"):
        _say("note: images are classified by their folders (or labels file); --target is ignored")
    spec = RunSpec(
        data=DataSpec(dataset_id=record.id, target="label", task=args.task, image_size=args.image_size),
        template=args.template or "cnn_deep",
        train=TrainSpec(epochs=args.epochs or TrainSpec.epochs, budget=_budget(args), seed=args.seed,
                        batch_size=args.batch_size or 32,
                        learning_rate=args.learning_rate, size=args.size, augment=not args.no_augment,
                        flip=not args.no_flip),
        baselines=not args.no_baselines,
    )
    return _train_and_print(store, spec)


def _fit_forecast(store, record, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec

    if not args.time_col or not args.target:
        raise DlcoreError("A forecast needs --time-col COLUMN (the dates) and --target COLUMN (the values to forecast).")
    covariates = tuple(c.strip() for c in args.covariates.split(",") if c.strip()) if args.covariates else None
    spec = RunSpec(
        data=DataSpec(dataset_id=record.id, target=args.target, task="forecast", features=covariates),
        template=args.template or "lstm",
        train=TrainSpec(epochs=args.epochs or TrainSpec.epochs, budget=_budget(args), seed=args.seed, batch_size=args.batch_size or 32,
                        learning_rate=args.learning_rate, size=args.size),
        baselines=not args.no_baselines,
        forecast=ForecastSpec(time_col=args.time_col, horizon=args.horizon, lookback=args.lookback,
                              windows=args.windows, season_length=args.season, gaps=args.gaps,
                              duplicates=args.duplicates, freq=args.freq, id_col=args.id_col),
    )
    return _train_and_print(store, spec)


def _train_and_print(store, spec) -> int:  # type: ignore[no-untyped-def]
    import threading

    from dlcore import config, evaluate, runner
    from dlcore.jobs import _heartbeat

    if config.executor() == "ray":
        from dlcore import cluster

        # Queued for this process's own dispatcher (no other takes it), then executed on the
        # cluster exactly as the app's runs are (dlcore.cluster).
        owner = cluster.dispatcher_name()
        run_id = runner.submit(store, spec, held_by=owner)
        _say(f"run {run_id}: executing on the Ray cluster")
        cluster.run_and_wait(store, run_id, say=_say)
    else:
        # Created already running for this process, so no worker sharing the store can take it.
        run_id = runner.submit(store, spec, claim=True)
        stop = threading.Event()
        threading.Thread(target=_heartbeat, args=(store, run_id, stop, None), daemon=True).start()
        try:
            runner.execute_run(store, run_id, say=_say)
        finally:
            stop.set()
    run = store.run(run_id)
    if run.status == "failed":
        raise DlcoreError(run.message or "the run failed")
    board = run.result["leaderboard"]
    out = {
        "run_id": run.id, "dataset_id": run.dataset_id, "status": run.status, "task": run.task,
        "metric": board["metric"], "higher_is_better": board["higher_is_better"],
        "leaderboard": [
            {"model": r["model"], "family": r["family"], "test_score": r["test_score"], "ci": r["ci"],
             "metrics": r["metrics"], "fit_seconds": r["fit_seconds"], "cv_score": r.get("cv_score"),
             "cv_ci": r.get("cv_ci"), "trials": r.get("trials")}
            for r in board["rows"]
        ],
        "verdict": board["verdicts"][0]["text"] if board["verdicts"] else None,
        # The model to use, or None where nothing on the board predicts the target (said in "verdict").
        "recommended": None if evaluate.nothing_predicts(board) else evaluate.recommended(board)[0],
        "budget_s": run.result.get("budget_s"),
        "first_verdict_s": run.result.get("first_verdict_s"),  # a run within a budget: when the first board was in
        "elapsed_s": run.result.get("elapsed_s") if run.result.get("elapsed_s") is not None else
        (round(run.finished_at - run.started_at, 2) if run.finished_at and run.started_at else None),
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    store = _store(args)
    path = Path(args.data)
    run = store.run(args.run_id)  # a clear "no run" before anything else
    store.require("score", "run", run.id)  # refused before the models' libraries load

    from dlcore import monitor
    from dlcore.scoring import score_upload, to_safe_csv
    from dlcore.store import atomic_write

    if not path.is_file():
        raise DlcoreError(f"There is no file at {args.data!r}. Check the path and try again.")
    use = None
    if args.map:
        if (run.result or {}).get("kind", "tabular") != "tabular":
            raise DlcoreError(f"--map matches a table's columns to the model's; run {args.run_id!r} scores "
                              f"{(run.result or {}).get('kind')} data. Leave --map out.")
        from dlcore.tables import matching
        from dlcore.tables.scoring import score_upload as score_table

        scored = score_table(store, run, args.model, path.read_bytes(), path.name, columns=matching.parse_map(args.map))
    else:
        use = monitor.model_in_use(store, run) if args.model is None else None
        if use is not None and use.promoted:
            _say(f"note: scoring with {use.model} of run {use.run_id}, the model in use ({use.why})")
        scored = score_upload(store, use.run_id if use else run.id, use.model if use else args.model,
                              path.read_bytes(), path.name)
    model = scored.summary.model
    model_run = use.run_id if use is not None else run.id
    drift = _keep_scoring(store, run, model_run, model, path.name, scored)
    if drift:
        _say(f"drift: {drift}")
    if args.model is None and model_run == run.id:
        from dlcore import evaluate

        board = (run.result or {}).get("leaderboard", {})
        _, why = evaluate.recommended(board)
        if evaluate.nothing_predicts(board):
            _say(f"note: scoring with {model}, though no model is recommended for use: {why}")
        else:
            _say(f"note: scoring with {model}, {why} (choose another with --model)")
    for note in scored.summary.notes():
        _say(f"note: {note}")
    if (run.result or {}).get("kind") == "series":
        # The CLI has always written a forecast with commas and decimal points, whatever the
        # input's (the page's download follows the input's separators); kept as it was.
        scored.delimiter, scored.decimal = ",", "."
    with atomic_write(Path(args.output)) as tmp:
        tmp.write_bytes(to_safe_csv(scored.table, scored.delimiter, scored.decimal))
    _say(f"wrote {scored.described} to {args.output} (model {model})")
    return 0


def _keep_scoring(store, run, model_run: str, model: str, name: str, scored) -> str | None:  # type: ignore[no-untyped-def]
    """Keep a scoring made here as one queued on the Predict page is (audited, with its scored
    file and drift), so the Monitor page and ``monitor`` list it; its drift sentence."""
    from dlcore import monitor
    from dlcore.jobs import _jsonable
    from dlcore.scoring import to_safe_csv
    from dlcore.store import atomic_write

    scoring_id = store.create_scoring(run.id, model, name, model_run_id=model_run)
    with atomic_write(store.scoring_dir(scoring_id) / "scored.csv") as tmp:
        tmp.write_bytes(to_safe_csv(scored.table, scored.delimiter, scored.decimal))
    summary = {**scored.summary.to_dict(), "preview": _jsonable(scored.table.head(1).to_dict(orient="records"))}
    report = monitor.drift_of_scoring(store, run, model_run, model, scored.table) if len(scored.table) > 1 else None
    store.finish_scoring(scoring_id, "done", summary=monitor.keep_drift(store, scoring_id, report, summary))
    return report.sentence if report is not None else None


def cmd_monitor(args: argparse.Namespace) -> int:
    from dlcore import monitor

    store = _store(args)
    run = store.run(args.run_id)
    rows = monitor.scorings_report(store, run.id)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    use = monitor.model_in_use(store, run)
    print(f"run {run.id}: model in use {use.model}" + (f" of run {use.run_id}" if use.run_id != run.id else "")
          + f" ({use.why}); {len(rows)} scoring(s)")
    for alert in monitor.alerts(store, run.id):
        print(f"ALERT: {alert}")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["created_at"]))
        n = f"{r['rows']:,} rows" if r["rows"] is not None else r["status"]
        print(f"{r['scoring_id']}  {when}  {r['input_name']}  {n}")
        for line in (r["drift_sentence"], r["outcome_sentence"]):
            if line:
                print(f"    {line}")
    return 0


def cmd_actuals(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dlcore import monitor

    store = _store(args)
    run = store.run(args.run_id)
    store.require("score", "run", run.id)  # refused before the models' libraries load
    path = Path(args.data)
    if not path.is_file():
        raise DlcoreError(f"There is no file at {args.data!r}. Check the path and try again.")
    if args.key:
        got = monitor.record_outcomes(store, run.id, content=path.read_bytes(), name=path.name, key=args.key)
    else:  # a labelled file: scored now with the model in use, then compared with its own target
        from dlcore import jobs

        use = monitor.model_in_use(store, run)
        scoring_id = jobs.submit_scoring(store, run.id, use.model, path.read_bytes(), path.name, model_run_id=use.run_id)
        jobs.execute_scoring(store, scoring_id)
        job = store.scoring(scoring_id)
        if job.status != "done":
            raise DlcoreError(job.message or "The scoring failed.")
        if (job.summary or {}).get("drift"):
            _say(f"drift: {job.summary['drift']['sentence']}")
        got = monitor.record_outcomes(store, run.id, scoring_id=scoring_id)
    if args.json:
        print(json.dumps(got, indent=2))
    else:
        print(got["sentence"])
        lo_hi = got["promised_interval"]
        print(f"realized_score {got['realized_score']:.4f}; promised_interval "
              + (f"{lo_hi[0]:.4f}–{lo_hi[1]:.4f}" if lo_hi else "none"))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from dlcore.spec import RunSpec

    store = _store(args)
    store.require("train", "run", args.run_id)  # refused before the models' libraries load
    spec = RunSpec.from_dict(store.run(args.run_id).spec)
    _say(f"training the spec of run {args.run_id} again (seed {spec.train.seed})")
    return _train_and_print(store, spec)


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    store = _store(args)
    run = store.run(args.run_id)
    store.require("download_report", "run", run.id)  # refused before the models' libraries load

    from dlcore import evaluate, explain
    from dlcore.handover.report import build_report
    from dlcore.store import atomic_write

    if args.explain and run.result:
        from dlcore import kinds

        kind = kinds.get(run.result.get("kind", "tabular"))
        model = evaluate.recommended(run.result["leaderboard"])[0] if kind.explains_any_model else run.template
        if explain.load_global(store, run.id, model) is None:
            workspace = store.require("explain", "run", run.id)
            _say(f"working out the explanation of {model} (kept with the run)")
            explain.explain_run(store, run.id, model)
            store.log("explain", workspace, "run", run.id, model)  # as one asked for on the Explain page is
    text = build_report(store, args.run_id)
    with atomic_write(Path(args.output)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    _say(f"wrote the report of run {args.run_id} to {args.output} ({len(text.encode()) / 1e6:.1f} MB, opens with no network)")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from pathlib import Path

    store = _store(args)
    store.require("download_model", "run", args.run_id)  # refused before the models' libraries load

    from dlcore.handover.bundle import build_bundle
    from dlcore.store import atomic_write

    data = build_bundle(store, args.run_id, args.model)
    with atomic_write(Path(args.output)) as tmp:
        tmp.write_bytes(data)
    _say(f"wrote the model bundle of run {args.run_id} to {args.output} ({len(data) / 1e6:.1f} MB): unzip it and run "
         "python predict.py NEW.csv -o SCORED.csv")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from dlcore import access

    store = _store(args, args.workspace)
    team = access.team_mode()
    if args.workspace is not None or not team:
        spaces = {store.workspace_id: store.workspace(store.workspace_id)["name"]}
    else:  # every workspace the acting user belongs to, and nothing else
        spaces = {w["id"]: w["name"] for w in store.workspaces_of()}
    runs = sorted((r for w in spaces for r in store.as_actor(store.actor, w).list_runs(limit=args.limit)),
                  key=lambda r: r.created_at, reverse=True)[:args.limit]
    if args.json:
        print(json.dumps([{"run_id": r.id, "dataset_id": r.dataset_id, "status": r.status, "template": r.template,
                           "target": r.target, "task": r.task, "metric": r.metric, "test_score": r.test_score,
                           "created_at": r.created_at, "duration_s": r.duration, "node": r.node,
                           **({"workspace": spaces[r.workspace_id]} if team else {})} for r in runs], indent=2))
        return 0
    print(f"{'run':18} {'status':12} {'template':10} {'target':16} {'metric':9} {'score':>8}")
    for r in runs:
        score = f"{r.test_score:.4f}" if r.test_score is not None else "-"
        print(f"{r.id:18} {r.status:12} {r.template:10} {r.target[:16]:16} {(r.metric or '-'):9} {score:>8}")
    return 0


def _team_only(what: str) -> None:
    from dlcore import access

    if not access.team_mode():
        raise DlcoreError(f"{what} is for team mode (DLCORE_AUTH=team, or an [auth] section in "
                          ".streamlit/secrets.toml): in personal mode everything is in your one workspace.")


def cmd_workspace(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.action == "list":
        rows = [{"id": w["id"], "name": w["name"], "role": w["role"], "personal": w["personal_of"] is not None}
                for w in store.workspaces_of()]
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            print(f"{'workspace':40} {'role':7} id")
            for w in rows:
                print(f"{w['name'][:40]:40} {w['role']:7} {w['id']}")
        return 0
    if args.action == "create":
        _team_only("Creating a workspace")
        workspace_id = store.create_workspace(args.name)
        print(f"created the workspace {store.workspace(workspace_id)['name']!r} (id {workspace_id}); you are its owner: "
              "add colleagues with python -m dlcore workspace add NAME EMAIL --role editor")
        return 0
    _team_only("Changing the members of a workspace")
    from dlcore import access

    workspace_id = _workspace_id(store, args.name)
    name = store.workspace(workspace_id)["name"]
    email = access.normalise_email(args.email)
    if args.action == "add":
        store.add_member(workspace_id, email, args.role)
        print(f"{email} is now {'an' if args.role[0] in 'aeiou' else 'a'} {args.role} of {name!r}")
        return 0
    store.require("manage_members", "workspace", workspace_id)  # a viewer learns nothing of the members
    if email not in {m["email"] for m in store.members_of(workspace_id)}:
        raise DlcoreError(f"{email} is not a member of {name!r}; nothing was changed.")
    store.remove_member(workspace_id, email)
    print(f"removed {email} from {name!r}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    store = _store(args)
    store.require("delete", args.kind, args.record_id)  # not found, or refused, before anything is read
    plan = store.deletion_plan(args.kind, args.record_id)
    name = store.dataset(args.record_id).name if args.kind == "dataset" else None
    if args.kind == "run":
        store.delete_run(args.record_id)
    else:
        store.delete_dataset(args.record_id)
    what = (f"run {args.record_id}" if name is None else
            f"dataset {args.record_id} ({name}) with its {plan['runs']} run{'' if plan['runs'] == 1 else 's'}")
    print(f"deleted {what}, {plan['scorings']} scoring{'' if plan['scorings'] == 1 else 's'}, "
          f"{plan['explanations']} explanation{'' if plan['explanations'] == 1 else 's'} and "
          f"{plan['files']} file{'' if plan['files'] == 1 else 's'} ({plan['bytes'] / 1e6:.1f} MB); nothing of it is left")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    store = _store(args)
    workspace_id = _workspace_id(store, args.name)
    if not args.json:
        sys.stdout.write(store.audit_csv(workspace_id))
        return 0
    print(json.dumps([{"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r["at"])), "at": r["at"],
                       "user": r["email"], "action": r["action"], "kind": r["kind"], "id": r["resource_id"],
                       "detail": r["detail"]} for r in store.audit_log(workspace_id)], indent=2))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    _team_only("An API token")
    store = _store(args)
    workspace_id = _workspace_id(store, args.name)
    name = store.workspace(workspace_id)["name"]
    if args.action == "create":
        token_id, secret = store.create_token(workspace_id, args.label)
        _say(f"created the API token {token_id} of {name!r}; its secret is printed below this once (the server keeps "
             "only its hash): send it as 'Authorization: Bearer <secret>'")
        print(secret)
        return 0
    if args.action == "revoke":
        store.revoke_token(workspace_id, args.token_id)
        print(f"revoked the API token {args.token_id} of {name!r}: requests with it are refused from now on")
        return 0
    rows = [{"token_id": t["id"], "name": t["name"], "created_by": t["created_by"],
             "created_at": t["created_at"], "last_used_at": t["last_used_at"]} for t in store.tokens_of(workspace_id)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'token':18} {'name':30} {'created by':30} last used")
    for t in rows:
        used = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t["last_used_at"])) if t["last_used_at"] else "never"
        print(f"{t['token_id']:18} {t['name'][:30]:30} {(t['created_by'] or '')[:30]:30} {used}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import ipaddress

    import uvicorn

    from dlcore import access
    from dlcore.api import create_app

    with_token = ("team mode: each request sends a workspace's API token" if access.team_mode()
                  else "personal mode: no token")
    try:
        exposed = not ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        exposed = args.host != "localhost"
    if exposed and not access.team_mode():
        _say(f"warning: personal mode asks no token, and {args.host} may be reachable from other machines: anyone "
             "who reaches it can score with every run. Use team mode (DLCORE_AUTH=team) or --host 127.0.0.1.")
    _say(f"serving POST /v1/runs/RUN_ID/predict on http://{args.host}:{args.port} ({with_token}); docs at /docs")
    uvicorn.run(create_app("inline"), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_session(args: argparse.Namespace) -> int:
    from dlcore import access

    if not access.team_mode():
        raise DlcoreError("Sessions exist only in team mode (DLCORE_AUTH=team, or an [auth] section in "
                          ".streamlit/secrets.toml): in personal mode nobody signs in.")
    store = _store(args)
    if args.action == "revoke":
        if (args.session_id is None) == (args.user is None):
            raise DlcoreError("Name one session id, or --user EMAIL to end all of that user's sign-ins "
                              "(see: python -m dlcore session list).")
        ended = store.revoke_sessions(session_id=args.session_id, email=args.user)
        print(f"ended {ended} session(s)")
        return 0
    rows = store.list_sessions(email=args.user, include_ended=args.all)

    def stamp(t: float | None) -> str | None:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None

    listed = [{"id": r["id"][:16], "user": r["email"], "status": r["status"], "signed_in_utc": stamp(r["created_at"]),
               "expires_utc": stamp(r["expires_at"]), "last_seen_utc": stamp(r["last_seen"]),
               "ended_utc": stamp(r["ended_at"]), "ended_by": r["ended_by"]} for r in rows]
    if args.json:
        print(json.dumps(listed, indent=2))
        return 0
    for r in listed:
        print(f"{r['id']}  {r['user']}  {r['status']}  signed in {r['signed_in_utc']}  expires {r['expires_utc']}")
    return 0


def cmd_account(args: argparse.Namespace) -> int:
    _team_only("Releasing an address")
    store = _store(args)
    if store.release_account(args.email):
        print(f"released {args.email.strip().lower()}: the next verified sign-in with it takes it, with its "
              "workspaces")
    else:
        print(f"{args.email.strip().lower()} is held by no sign-in account; nothing was changed")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from dlcore import config
    from dlcore.jobs import worker_loop
    from dlcore.store import Store

    if config.executor() == "ray":  # the dispatcher: every kind of job, executed on the cluster
        from dlcore import cluster

        cluster.serve(Store.open(), parent=args.parent, say=_say)
        return 0
    kinds = (args.only,) if args.only else ("train", "score")
    worker_loop(Store.open(), kinds=kinds, parent=args.parent, say=_say)
    return 0


_ID_MARK = "\x00id:"
_ID_LIKE = re.compile(r"-[A-Za-z0-9_-]{15}")


def _protect_ids(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Ids made before ids stopped starting with "-" (one in 64 did) are still accepted as run or
    dataset ids: argparse would read "-Fjt8nMuM_KGE8mv" as an unknown option."""
    options: set[str] = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            options.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return [_ID_MARK + a if _ID_LIKE.fullmatch(a) and not a[1:].isdigit() and a not in options else a for a in argv]


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser()
    args = parser.parse_args(_protect_ids(parser, sys.argv[1:] if argv is None else list(argv)))
    for name, value in vars(args).items():
        if isinstance(value, str) and value.startswith(_ID_MARK):
            setattr(args, name, value[len(_ID_MARK):])
    command = {"fit": cmd_fit, "predict": cmd_predict, "rerun": cmd_rerun, "report": cmd_report, "bundle": cmd_bundle,
               "runs": cmd_runs, "worker": cmd_worker, "workspace": cmd_workspace, "delete": cmd_delete,
               "audit": cmd_audit, "token": cmd_token, "serve": cmd_serve, "monitor": cmd_monitor,
               "actuals": cmd_actuals, "account": cmd_account, "session": cmd_session}[args.command]
    try:
        return command(args)
    except DlcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback in the log folder
        log_path = _log_traceback()
        print(f"error: an internal problem stopped the command ({type(exc).__name__}); details are in {log_path}. "
              "Please report it with that file.", file=sys.stderr)
        return 2


def _log_traceback() -> str:
    import traceback

    from dlcore import config

    folder = config.home() / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "cli-errors.log"
        with open(path, "a") as fh:
            fh.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(sys.argv)}\n{traceback.format_exc()}\n")
        return str(path)
    except OSError:
        return "(the data folder is not writable)"
