"""How a run's rows are split: seeded, stratified for classes where the classes allow it.

Every candidate of a run, deep or baseline, sees the same split, whatever the kind of data.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

__all__ = ["split_indices"]


def split_indices(y: np.ndarray, task: str, test_share: float, val_share: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the train, validation and test rows: seeded, stratified for classes when possible."""
    idx = np.arange(len(y))
    strat = y if task != "regression" else None

    def cut(pool: np.ndarray, share: float, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        try:
            return train_test_split(pool, test_size=share, random_state=seed, stratify=labels)
        except ValueError:  # a class too small to stratify: split plainly rather than refuse
            return train_test_split(pool, test_size=share, random_state=seed)

    rest, test = cut(idx, test_share, strat)
    val_of_rest = val_share / (1.0 - test_share)
    train, val = cut(rest, val_of_rest, strat[rest] if strat is not None else None)
    return np.sort(train), np.sort(val), np.sort(test)
