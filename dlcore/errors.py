"""The one exception hierarchy of dlcore.

Pages catch ``DlcoreError`` and show its message with ``st.error``; the CLI prints it as
``error: ...`` and exits with status 1. Anything else that escapes is a bug.

::

    DlcoreError                 base: a problem the user can fix, said in plain words
    +-- DataError               a file or column cannot be used (empty, binary, one class...)
    |   +-- TooLargeError       a file is over the configured size limit
    +-- SpecError               a setting has a value outside the allowed ones
    +-- SchemaError             a file to score lacks columns the model was trained on
    +-- NotFoundError           a dataset, run or model id that the store does not hold
    |   +-- DeletedError        the record a job works for was deleted while it ran: the job ends
    +-- RunError                a training run failed (a NaN loss, a worker that died...)
    +-- StoreError              the data folder cannot be written (disk full, read-only), or this
    |                           machine does not see the store's shared data folder
    +-- ClusterError            the Ray cluster (DLCORE_EXECUTOR=ray) cannot be reached or joined
    +-- AccessError             a signed-in user's role in a workspace does not allow this action
"""

from __future__ import annotations

__all__ = [
    "DlcoreError",
    "DataError",
    "TooLargeError",
    "SpecError",
    "SchemaError",
    "NotFoundError",
    "DeletedError",
    "RunError",
    "StoreError",
    "ClusterError",
    "AccessError",
]


class DlcoreError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class DataError(DlcoreError):
    """Raised when a file or a column cannot be used as it is."""


class TooLargeError(DataError):
    """Raised when an upload is over the configured size limit."""


class SpecError(DlcoreError):
    """Raised when a run setting has a value outside the allowed ones."""


class SchemaError(DlcoreError):
    """Raised when a file to score lacks the columns the model was trained on."""


class NotFoundError(DlcoreError):
    """Raised when an id names no dataset, run or model in the store."""


class DeletedError(NotFoundError):
    """Raised in a worker when the record its job writes for (a run, a scoring, an explanation, a
    dataset) was deleted while the job ran: nothing more of it is written, and the job ends."""


class RunError(DlcoreError):
    """Raised when a training run cannot go on."""


class StoreError(DlcoreError):
    """Raised when the data folder cannot be written."""


class ClusterError(DlcoreError):
    """Raised when the Ray cluster named by ``RAY_ADDRESS`` cannot be reached or joined; the jobs
    waiting for it stay queued."""


class AccessError(DlcoreError):
    """Raised when a signed-in user may see a record but not do this to it (a viewer who asks
    to train, say). A record the user may not see raises ``NotFoundError`` instead, word for
    word the one for an id that does not exist."""
