"""The model matrix of a big table, kept compact and built a block of rows at a time.

The plain MLP and every baseline read one float32 matrix: the standardised numbers, then a
one-hot of each category code. On a big table most of its columns are that one-hot (the
benchmark's 5,000,000 rows: 40 of 56 columns, 1,120 MB as float32), so ``RowMatrix`` keeps the
numbers as float32 and each category as one small integer code per row (68 bytes a row rather
than 224) and writes out the float32 rows only when a model asks for them: a batch for Keras, a
block to predict, a baseline's training rows. The rows it writes out are bit for bit the ones
the whole matrix held (``TabularPreprocessor.dense``: the same numbers, 1.0 where the code
points).

    m = RowMatrix(numbers, codes, widths=[5, 4])
    m.rows(train)[:1000]      # float32 (1000, n_numbers + 9)
    np.asarray(m.rows(test))  # every row at once
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["RowMatrix", "dense_rows", "release_freed_memory"]


def dense_rows(numbers: np.ndarray, codes: np.ndarray, widths: Sequence[int]) -> np.ndarray:
    """Float32 rows: ``numbers`` followed by a one-hot of each column of ``codes`` (column ``j``
    ``widths[j]`` wide)."""
    n, k = numbers.shape
    out = np.zeros((n, k + int(sum(widths))), dtype=np.float32)
    out[:, :k] = numbers
    where = np.arange(n)
    offset = k
    for j, width in enumerate(widths):
        out[where, offset + codes[:, j].astype(np.intp)] = 1.0
        offset += width
    return out


class RowMatrix:
    """Rows of a float32 matrix (numbers, then a one-hot of each category code) kept as
    ``numbers`` (float32, n × k) and ``codes`` (small integers, n × c); ``rows`` picks the
    rows this one stands for (a slice or positions; all of them when None).

    Indexing it (a slice or positions, as a NumPy array is indexed) gives those rows as a
    float32 array; ``rows`` gives a narrower ``RowMatrix`` without writing anything out."""

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, numbers: np.ndarray, codes: np.ndarray, widths: Sequence[int],
                 rows: slice | np.ndarray | None = None) -> None:
        self._numbers, self._codes, self._widths = numbers, codes, tuple(int(w) for w in widths)
        if rows is None:
            rows = slice(0, len(numbers))
        if isinstance(rows, slice):
            start, stop, step = rows.indices(len(numbers))
            if step != 1:
                rows = np.arange(start, stop, step)
            else:
                rows = slice(start, max(start, stop))
        self._rows = rows

    def __len__(self) -> int:
        rows = self._rows
        return rows.stop - rows.start if isinstance(rows, slice) else len(rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self._numbers.shape[1] + sum(self._widths))

    @property
    def nbytes(self) -> int:
        """The size of these rows written out as float32 (what a model would be handed)."""
        n, width = self.shape
        return n * width * 4

    def _base(self, index: Any) -> slice | np.ndarray:
        """Positions in ``numbers``/``codes`` of this matrix's rows ``index``."""
        rows = self._rows
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if isinstance(rows, slice) and step == 1:
                return slice(rows.start + start, rows.start + max(start, stop))
            index = np.arange(start, stop, step)
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.ndim != 1:
            raise IndexError("A RowMatrix is indexed by a slice or a list of row positions.")
        n = len(self)
        if len(index) and (index.min() < -n or index.max() >= n):
            raise IndexError(f"Row position out of range for {n} rows.")
        index = np.where(index < 0, index + n, index)
        return rows.start + index if isinstance(rows, slice) else rows[index]

    def rows(self, index: Any) -> "RowMatrix":
        """The rows ``index`` of this matrix, still compact."""
        return RowMatrix(self._numbers, self._codes, self._widths, self._base(index))

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, tuple):
            raise IndexError("A RowMatrix is indexed by rows only; write the rows out first (np.asarray).")
        base = self._base(index)
        return dense_rows(self._numbers[base], self._codes[base], self._widths)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"RowMatrix({len(self)} rows × {self.shape[1]} columns, compact)"


def release_freed_memory() -> None:
    """Hand back to the system the memory this process has freed but its C allocator keeps
    (glibc keeps freed blocks in per-thread pools, and TensorFlow's and scikit-learn's threads
    leave many): between the phases of a run, so each phase's peak starts from what is in use.
    Does nothing where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
