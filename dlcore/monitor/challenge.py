"""A challenge: the champion (the model in use) and a challenger scored on the same newest labelled
rows. Apart from ``dlcore.monitor`` because it queues scorings (``dlcore.jobs``), and the scoring
jobs ask ``dlcore.monitor`` which model is in use: kept here, the import graph has no circle."""

from __future__ import annotations

import time
from typing import Any

from dlcore import jobs
from dlcore.errors import DataError
from dlcore.evaluate import recommended
from dlcore.monitor import CHALLENGE_PREFIX, _newest_labelled, _save_challengers, challengers, model_in_use
from dlcore.store import EVALUATED, Store

__all__ = ["start_challenge"]


def start_challenge(store: Store, run_id: str, challenger_run_id: str, model: str | None = None) -> dict[str, Any]:
    """Queue the champion (the model in use) and the challenger (its verdict's model, or ``model``)
    on the same newest labelled rows, as two scorings; ``challenge_result`` compares them."""
    run = store.run(run_id)
    challenger = store.run(challenger_run_id)
    if challenger.status not in EVALUATED:
        raise DataError(f"The challenger run {challenger.id} is {challenger.status}; wait until it finishes.")
    outcome, labelled = _newest_labelled(store, run_id)
    champion = model_in_use(store, run)
    model = model or recommended(challenger.result["leaderboard"])[0]
    content = labelled.to_csv(index=False).encode()
    name = f"{CHALLENGE_PREFIX}{outcome['summary'].get('source') or 'outcomes'}"
    ids = {"champion": jobs.submit_scoring(store, run.id, champion.model, content, name, model_run_id=champion.run_id),
           "challenger": jobs.submit_scoring(store, run.id, model, content, name, model_run_id=challenger.id)}
    entries = challengers(store, run_id)
    entry = next((e for e in entries if e["run_id"] == challenger.id), None)
    if entry is None:
        entry = {"run_id": challenger.id, "dataset_id": challenger.dataset_id, "combined": False,
                 "created_at": time.time()}
        entries.append(entry)
    entry["challenge"] = {"champion_scoring": ids["champion"], "challenger_scoring": ids["challenger"],
                          "champion": champion.to_dict(), "model": model, "outcome_id": outcome["id"],
                          "started_at": time.time()}
    _save_challengers(store, run_id, entries)
    return entry["challenge"]
