"""Greedy ensemble selection (Caruana et al., 2004; as AutoGluon builds its weighted ensemble).

Start empty; at each step add (with replacement) the model whose addition makes the averaged
out-of-fold prediction score best; the weights are how often each model was picked. Outputs
are class probabilities (n, k) or values (n,), averaged with those weights.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["select", "combine"]


def select(outputs: dict[str, np.ndarray], y: np.ndarray, score: Callable[[np.ndarray, np.ndarray], float],
           higher_is_better: bool, steps: int = 25) -> dict[str, float]:
    """Weights (summing to 1) of the models picked greedily on ``outputs`` (out-of-fold, same rows
    as ``y``). Ties go to the model listed first, so put the simpler ones first if it matters."""
    names = list(outputs)
    if not names:
        return {}
    sign = 1.0 if higher_is_better else -1.0
    counts = dict.fromkeys(names, 0)
    total: np.ndarray | None = None
    for step in range(1, steps + 1):
        best_name, best_value = None, -np.inf
        for name in names:
            trial = outputs[name] if total is None else (total + outputs[name])
            value = sign * score(y, trial / step)
            if np.isfinite(value) and value > best_value + 1e-12:
                best_name, best_value = name, value
        if best_name is None:
            break
        counts[best_name] += 1
        total = outputs[best_name].astype(float) if total is None else total + outputs[best_name]
    picked = sum(counts.values())
    return {name: c / picked for name, c in counts.items() if c} if picked else {}


def combine(outputs: dict[str, Any], weights: dict[str, float]) -> np.ndarray:
    """The weighted average of the models' outputs."""
    return sum(w * np.asarray(outputs[name], dtype=float) for name, w in weights.items())
