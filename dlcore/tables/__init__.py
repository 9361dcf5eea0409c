"""Tables: CSV (any separator, decimal commas, UTF-8 or Windows-1252), Excel and Parquet, one
column to predict.

- ``reader``: read an analyst's file; ``columns``: type every column as people write values;
  ``profile``: describe the columns and check a target; ``samples``: tables that ship inside
  installed packages.
- ``preprocess``: numbers, dates and categories fitted on the training rows only;
  ``templates``: the plain MLP and the wide-and-deep MLP; ``run``: how a run of a table is
  checked and prepared for the generic run (``dlcore.runner``).
- ``scoring``: new rows scored as in training; ``explain`` and ``charts``: what a model relies
  on, for the whole table and for one row.
"""

from dlcore import baselines
from dlcore.base import Kind
from dlcore.tables import explain, run, scoring, templates, upload
from dlcore.tables.personal import mask_personal
from dlcore.tables.profile import (
    COLUMN_KINDS,
    MIN_ROWS,
    TASKS,
    ColumnProfile,
    DatasetProfile,
    check_target,
    guess_target,
    infer_task,
    leakage_warnings,
    personal_columns,
    profile_frame,
    profile_of,
    usable_features,
)
from dlcore.tables.reader import FORMATS, ReadReport, load_frame, read_table

__all__ = [
    "KIND", "FORMATS", "COLUMN_KINDS", "TASKS", "MIN_ROWS", "ReadReport", "ColumnProfile", "DatasetProfile",
    "read_table", "load_frame", "profile_frame", "profile_of", "infer_task", "check_target", "leakage_warnings",
    "usable_features", "guess_target", "personal_columns", "mask_personal",
]

KIND = Kind(
    name="tabular",
    title="Tables",
    unit="rows",
    reads="tabular",
    templates=templates.TEMPLATES,
    claims=upload.claims,
    ingest=upload.ingest,
    baselines=baselines.baselines_for,
    check=run.check,
    prepare=run.prepare_inputs,
    scorer=scoring.TableScorer,
    score_upload=scoring.score_upload,
    explain=explain.explain_model,
    explain_row=explain.explain_row_of_run,
    explains_any_model=True,
    searches=True,
)
