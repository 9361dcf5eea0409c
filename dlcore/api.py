"""The REST endpoint: ``POST /v1/runs/{run_id}/predict`` scores rows with a run's model in use.

One request is one scoring, kept with the run like a file scored on the Predict page: its rows
(a JSON array of records) go through ``jobs.submit_scoring`` and ``jobs.execute_scoring``, read
by the same reader and scored by the same ``scoring.score_upload`` as a file, so the endpoint,
the page and ``python -m dlcore predict`` give the same numbers. Two ways to execute it:

- ``inline`` (``python -m dlcore serve``): this process claims the scoring and scores it, loading
  the models (TensorFlow too) in itself: the lowest latency, for a scoring-only deployment.
- ``queued`` (mounted on the app's own server, ``streamlit run app.py``): the request queues the
  scoring and waits for the app's scoring worker (``dlcore.jobs``), because the Streamlit server
  process never loads TensorFlow; on a cluster the worker is a Ray task, with nothing else to run.

Access: in personal mode no token is asked (one user on one machine); in team mode every
request carries ``Authorization: Bearer <token>`` of a workspace (``Store.create_token``). No token
or an unknown one is 401; a run of another workspace is 404 with the very answer of an id that
does not exist. This module imports Starlette (it comes with Streamlit), never Streamlit.
"""

from __future__ import annotations

import functools
import html
import json
import math
import time
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from dlcore import access, config
from dlcore.errors import AccessError, DlcoreError, NotFoundError, RunError
from dlcore.store import EVALUATED, Store

__all__ = ["routes", "create_app", "openapi", "ApiProblem", "parse_rows", "PREDICT_PATH"]

PREDICT_PATH = "/v1/runs/{run_id}/predict"
_POLL_SECONDS = 0.02  # how often a queued request looks for its answer (one indexed row read)


class ApiProblem(Exception):
    """A request the endpoint refuses: its HTTP status and the message that names the fix."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def routes(mode: str = "queued", prepare: Callable[[], None] | None = None) -> list[BaseRoute]:
    """The endpoint's routes, for ``st.App(routes=...)`` or a Starlette app of their own.

    ``mode``: ``"inline"`` scores in this process; ``"queued"`` leaves it to the scoring workers
    (``prepare`` is called before each request is queued: the app starts its workers there)."""
    if mode not in ("inline", "queued"):
        raise ValueError(f"mode is 'inline' or 'queued', not {mode!r}")

    async def predict(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            store = _caller(request)
            run_id = request.path_params["run_id"]
            body = await _read_body(request)
            answer = await run_in_threadpool(_score, store, run_id, body, mode, prepare)
        except ApiProblem as problem:
            return JSONResponse({"error": str(problem)}, status_code=problem.status, headers=problem.headers)
        return JSONResponse(answer)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi())

    async def docs(request: Request) -> Response:
        return HTMLResponse(_docs_html(openapi()))

    return [Route(PREDICT_PATH, predict, methods=["POST"]), Route("/v1/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"])]


def create_app(mode: str = "inline") -> Starlette:
    """The endpoint alone (``python -m dlcore serve``)."""
    return Starlette(routes=routes(mode))


# ---- who is asking -------------------------------------------------------------------------------
@functools.cache
def _server_store() -> Store:
    return Store.open()


_UNAUTHORISED = ("This server is in team mode: send a workspace's API token as 'Authorization: Bearer <token>'. "
                 "An owner creates one on the Workspace page or with python -m dlcore token create WORKSPACE; "
                 "a revoked token no longer works.")


def _caller(request: Request) -> Store:
    """The store bound to whoever makes the request: the built-in user in personal mode, the
    token's workspace in team mode (401 for no token, a malformed one, or one revoked)."""
    store = _server_store()
    if not access.team_mode():
        return store.as_actor(access.LOCAL)
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    bound = store.for_token(secret.strip()) if scheme.lower() == "bearer" else None
    if bound is None:
        raise ApiProblem(401, _UNAUTHORISED, {"WWW-Authenticate": 'Bearer realm="dlcore"'})
    return bound


# ---- the body ------------------------------------------------------------------------------------
async def _read_body(request: Request) -> bytes:
    """The body, read up to the limit: a bigger one is refused before it is all received."""
    limit = config.api_max_bytes()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> ApiProblem:
    return ApiProblem(413, f"The request body is {_mb(size)} or more, over the limit of {_mb(limit)} "
                           "(DLCORE_API_MAX_MB on the server): send the rows in smaller batches.")


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


_SHAPE = 'Send {"rows": [{"column": value, ...}, ...]} with Content-Type: application/json.'


def parse_rows(body: bytes, max_rows: int | None = None) -> list[dict[str, Any]]:
    """The rows of a request body, checked: a JSON object whose ``rows`` is a list of 1 to
    ``max_rows`` objects mapping a column to a number, text, true/false or null, none of them
    empty. Anything else is an ``ApiProblem`` naming the row and the column."""
    max_rows = config.api_max_rows() if max_rows is None else max_rows
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiProblem(400, f"The request body is not UTF-8 text. {_SHAPE}") from None
    except json.JSONDecodeError as exc:
        raise ApiProblem(400, f"The request body is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). "
                              f"{_SHAPE}") from None
    if not isinstance(value, dict) or "rows" not in value:
        got = f"an object with {', '.join(map(repr, list(value)[:5])) or 'no keys'}" if isinstance(value, dict) \
            else f"a JSON {type(value).__name__.replace('dict', 'object').replace('list', 'array')}"
        raise ApiProblem(422, f"The request body is {got}, without 'rows'. {_SHAPE}")
    rows = value["rows"]
    if not isinstance(rows, list) or not rows:
        raise ApiProblem(422, f"'rows' must be a non-empty array of objects. {_SHAPE}")
    if len(rows) > max_rows:
        raise ApiProblem(413, f"The request has {len(rows):,} rows, over the limit of {max_rows:,} per request "
                              "(DLCORE_API_MAX_ROWS on the server): send them in batches of at most "
                              f"{max_rows:,}, or score the whole file on the Predict page.")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ApiProblem(422, f"Row {i} of 'rows' is a JSON {_json_type(row)}, not an object. {_SHAPE}")
        if all(v is None for v in row.values()):
            raise ApiProblem(422, f"Row {i} of 'rows' has no values: give each row the columns the model reads "
                                  "(the run's training columns); a missing value is null.")
        for column, cell in row.items():
            if isinstance(cell, (dict, list)):
                raise ApiProblem(422, f"Row {i}, column {column!r} holds a JSON {_json_type(cell)}: a cell is a "
                                      "number, text, true/false or null.")
            if isinstance(cell, float) and not math.isfinite(cell):
                raise ApiProblem(422, f"Row {i}, column {column!r} is {cell}: send a finite number, or null for "
                                      "a missing value.")
    return rows


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value),
                                                                                                   "number")


# ---- scoring -------------------------------------------------------------------------------------
def _score(store: Store, run_id: str, body: bytes, mode: str, prepare: Callable[[], None] | None) -> dict:
    """Score the request's rows as one scoring of the run, and return its answer."""
    from dlcore import jobs, kinds, monitor
    from dlcore.scoring import API_INPUT

    try:
        run = store.run(run_id)  # 404 for another workspace's run, word for word a missing one
        store.require("score", "run", run_id)
        if run.status not in EVALUATED:
            raise ApiProblem(409, f"Run {run_id!r} is {run.status}; its models score rows once it has finished.")
        kind = kinds.get((run.result or {}).get("kind", "tabular"))
        if kind.unit != "rows":  # its models read whole files (images, a series' newer values), not rows
            raise ApiProblem(422, f"Run {run_id!r} learned from {kind.title.lower()}: its models score "
                                  f"{kind.unit}, not rows. Score a file on the Predict page or with "
                                  "python -m dlcore predict.")
        rows = parse_rows(body)
        if prepare is not None:
            prepare()
        content = json.dumps(rows, allow_nan=False).encode()
        use = monitor.model_in_use(store, run)  # a promoted challenger's model scores for its run
        scoring_id = jobs.submit_scoring(store, run_id, use.model, content, API_INPUT,
                                         model_run_id=use.run_id if use.run_id != run.id else None)
        if mode == "inline" and store.claim_scoring(scoring_id):
            jobs.execute_scoring(store, scoring_id)
        job = _wait(store, scoring_id)
    except NotFoundError as exc:
        raise ApiProblem(404, str(exc)) from None
    except AccessError as exc:
        raise ApiProblem(403, str(exc)) from None
    except RunError as exc:
        raise ApiProblem(409, str(exc)) from None
    except DlcoreError as exc:
        raise ApiProblem(422, str(exc)) from None
    if job.status != "done":
        problem = (job.summary or {}).get("error")
        raise ApiProblem(500 if problem == "internal" else 404 if problem == "NotFoundError" else 422,
                         job.message or "The scoring failed.")
    answer = json.loads((store.scoring_dir(scoring_id) / "answer.json").read_text())
    return {"run_id": run_id, "scoring_id": scoring_id, **answer}


def _wait(store: Store, scoring_id: str) -> Any:
    """The scoring once finished; 503 when no worker finished it in time (it stays queued)."""
    limit = config.api_wait_seconds()
    deadline = time.monotonic() + limit
    while True:
        job = store.scoring(scoring_id)
        if job.status in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise ApiProblem(503, f"No scoring worker finished this request within {limit:g} s (scoring "
                                  f"{scoring_id} is {job.status}): check that the app's workers run "
                                  "(python -m dlcore worker), then send it again.")
        time.sleep(_POLL_SECONDS)


# ---- the document --------------------------------------------------------------------------------
@functools.cache
def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the endpoint (written here: one route does not need a framework)."""
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}

    def refusal(text: str) -> dict[str, Any]:
        schema = {"$ref": "#/components/schemas/Error"}
        return {"description": text, "content": {"application/json": {"schema": schema}}}

    cell = {"type": ["number", "string", "boolean", "null"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Deep Learning Studio scoring API", "version": "1",
                 "description": "Score rows with a finished run's model in use: the same answers as the Predict page "
                                "and `python -m dlcore predict`. Each request is kept as one scoring of the run."},
        "paths": {PREDICT_PATH: {"post": {
            "summary": "Score rows with the run's model in use",
            "operationId": "predict",
            "parameters": [{"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "The run's id, as in its link (?run=...) or python -m dlcore runs."}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["rows"], "properties": {"rows": {
                    "type": "array", "minItems": 1, "maxItems": config.api_max_rows(),
                    "items": {"type": "object", "additionalProperties": cell}}}},
                "example": {"rows": [{"tenure": 12, "charges": 70.5, "plan": "basic", "region": "north"}]}}}},
            "responses": {
                "200": {"description": "One prediction per row, in the order sent", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Prediction"}}}},
                "400": refusal("The body is not JSON"),
                "401": refusal("Team mode: no API token, or one unknown or revoked"),
                "404": refusal("No such run, or one of another workspace (the same answer)"),
                "409": refusal("The run has not finished"),
                "413": refusal("Over the body size (DLCORE_API_MAX_MB) or rows (DLCORE_API_MAX_ROWS) limit"),
                "422": refusal("Rows the model cannot score: the message names the columns and the fix"),
                "503": refusal("No scoring worker answered in time (DLCORE_API_WAIT_SECONDS)"),
            },
            "security": [{"token": []}, {}],
        }}},
        "components": {
            "schemas": {
                "Error": error,
                "Prediction": {"type": "object", "required": ["predictions", "probabilities", "model"], "properties": {
                    "run_id": {"type": "string"},
                    "scoring_id": {"type": "string", "description": "This request, kept as a scoring of the run"},
                    "model": {"type": "string", "description": "The model that scored the rows (the run's in use)"},
                    "predictions": {"type": "array", "items": {"type": ["string", "number"]}},
                    "probabilities": {"type": ["array", "null"], "description": "Classification: each class's "
                                      "probability per row; null for a regression",
                                      "items": {"type": "object", "additionalProperties": {"type": "number"}}},
                    "classes": {"type": ["array", "null"], "items": {"type": "string"}},
                    "decisions": {"type": "array", "description": "Only with a threshold saved on the Decide page"},
                    "drift": {"type": ["string", "null"], "description": "How this batch differs from the training "
                              "rows, in one sentence (null for one row)"},
                    "drifted_columns": {"type": ["array", "null"], "items": {"type": "string"}},
                    "notes": {"type": "array", "items": {"type": "string"},
                              "description": "What the scoring noticed (unseen categories, ignored columns...)"},
                }},
            },
            "securitySchemes": {"token": {
                "type": "http", "scheme": "bearer",
                "description": "Team mode: a workspace's API token (personal mode asks none)"}},
        },
    }


def _docs_html(doc: dict[str, Any]) -> str:
    """The document as one readable page that loads nothing from the internet (Swagger UI would
    fetch its scripts from a CDN, which the product never lets a browser do)."""
    op = doc["paths"][PREDICT_PATH]["post"]
    example = json.dumps(op["requestBody"]["content"]["application/json"]["example"])
    codes = "".join(f"<tr><td>{c}</td><td>{html.escape(r['description'])}</td></tr>"
                    for c, r in op["responses"].items())
    title = html.escape(doc["info"]["title"])
    schema = html.escape(json.dumps(doc["components"]["schemas"]["Prediction"], indent=2))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;line-height:1.5}}code,pre{{background:#f4f4f4}}
pre{{padding:1rem;overflow:auto}}td{{padding:.2rem .8rem;vertical-align:top}}</style></head><body>
<h1>{title}</h1><p>{html.escape(doc['info']['description'])}</p>
<h2><code>POST {PREDICT_PATH}</code></h2><p>{html.escape(op['summary'])}. At most {config.api_max_rows():,} rows and
{_mb(config.api_max_bytes())} per request. In team mode, send a workspace's API token:
<code>Authorization: Bearer &lt;token&gt;</code>.</p>
<pre>curl -X POST http://HOST:PORT/v1/runs/RUN_ID/predict -H 'Content-Type: application/json' \\
     -H 'Authorization: Bearer dls_...' -d '{html.escape(example)}'</pre>
<h3>Answer</h3><pre>{schema}</pre><h3>Status codes</h3><table>{codes}</table>
<p>The machine-readable document: <a href="/v1/openapi.json">/v1/openapi.json</a> (OpenAPI 3.1).</p></body></html>"""
