"""The kinds of data the product learns from: one line each.

Everything that depends on the kind of a dataset or a run (its templates, how a run of it is
prepared or executed, scored and explained) is found here by name, so the generic run, the job
queue, scoring and explanations never name a kind. A new kind of data is one package that
builds a ``base.Kind`` and one line below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlcore import images, series, tables
from dlcore.base import Kind
from dlcore.errors import DataError, SpecError

if TYPE_CHECKING:
    from dlcore.base import Template
    from dlcore.spec import RunSpec
    from dlcore.store import DatasetRecord

__all__ = ["KINDS", "get", "of_run", "of_template", "template", "templates_for", "TEMPLATES", "check_dataset"]

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    tables.KIND,
    images.KIND,
    series.KIND,
)}

TEMPLATES: dict[str, "Template"] = {t.name: t for kind in KINDS.values() for t in kind.templates}


def get(name: str) -> Kind:
    """The kind a run recorded (``result["kind"]``, ``preprocess.json``); older runs are tables."""
    try:
        return KINDS[name or "tabular"]
    except KeyError:
        raise SpecError(f"Unknown kind of data {name!r}; known: {', '.join(KINDS)}.") from None


def template(name: str) -> "Template":
    try:
        return TEMPLATES[name]
    except KeyError:
        raise SpecError(f"Unknown template {name!r}; available: {', '.join(sorted(TEMPLATES))}.") from None


def templates_for(kind: str) -> list["Template"]:
    return [t for t in TEMPLATES.values() if t.kind == kind]


def of_template(name: str) -> Kind:
    """The kind a template belongs to: the kind of every run that trains it."""
    return get(template(name).kind)


def of_run(spec: "RunSpec") -> Kind:
    """The kind of a run: its template's. A spec with forecast settings is a forecast whatever
    template it names, and a wrong template is refused by the kind's ``check``."""
    if spec.forecast is not None:
        return KINDS["series"]
    return of_template(spec.template)


def check_dataset(kind: Kind, template: "Template", record: "DatasetRecord") -> None:
    """Refuse a template and a dataset that do not make a run of ``kind``, naming what would."""
    if template.kind == kind.name and record.kind == kind.reads:
        return
    if kind.needs:
        raise DataError(kind.needs)
    raise DataError(f"The template {template.title!r} is for {template.kind} data, but this dataset holds "
                    f"{record.kind} data; choose one of: {', '.join(t.title for t in templates_for(record.kind))}.")
