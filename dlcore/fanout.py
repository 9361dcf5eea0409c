"""The independent pieces of one run (its baselines; later cross-validation folds and search
trials): run in turn here, or spread over a cluster's nodes when the run executes on one.

The generic run hands ``current().map`` a module-level function, the pieces, and the arrays they
share. In turn (the default), each piece runs in this process and ``before`` is called first (the
run's phase names the piece). A cluster's ``Pieces`` (``dlcore.cluster``) writes the shared
arrays once into the run's folder, which every node sees, and runs the pieces at once on
whichever nodes are free; nodes read the arrays from the folder, never through the cluster.
Either way ``map`` yields ``(index, result)`` for every piece, so the run records the same thing.

    for i, (output, seconds) in fanout.current().map(fit_one, pieces, {"x": x}, folder, before=say_which):
        ...
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = ["Pieces", "InTurn", "current", "use"]

Piece = Callable[[Any, dict[str, np.ndarray]], Any]


class Pieces:
    """Runs the pieces of a run; ``parallel`` says whether they run at once (and ``where``)."""

    parallel = False
    where = "this machine"

    def map(self, fn: Piece, items: Sequence[Any], shared: dict[str, np.ndarray], folder: Path,
            before: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError


class InTurn(Pieces):
    """One piece after another, in this process, in the order given."""

    def map(self, fn: Piece, items: Sequence[Any], shared: dict[str, np.ndarray], folder: Path,
            before: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            if before is not None:
                before(i)
            yield i, fn(item, shared)


_current: Pieces = InTurn()


def current() -> Pieces:
    """How the pieces of the run executing in this process are run (in turn unless a cluster
    task said otherwise with ``use``)."""
    return _current


@contextlib.contextmanager
def use(pieces: Pieces) -> Iterator[None]:
    """Run the pieces of the runs executed inside this block with ``pieces``."""
    global _current
    before, _current = _current, pieces
    try:
        yield
    finally:
        _current = before
