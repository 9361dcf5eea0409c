"""The one module that owns the URL: page paths, query-parameter names, and links between pages.

Links carry ids only (``?dataset=``, ``?run=``, ``?scoring=``, ``?explanation=``), never data or settings, so a
page opened from a link shows a colleague the same thing. Pages call these helpers; they never
write query strings by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

__all__ = ["PAGES", "DATASET", "RUN", "SCORING", "EXPLANATION", "page", "navigation", "link", "href", "get_id", "set_ids", "open_run"]

DATASET, RUN, SCORING, EXPLANATION = "dataset", "run", "scoring", "explanation"
_ID_PARAMS = (DATASET, RUN, SCORING, EXPLANATION)


@dataclass(frozen=True)
class PageInfo:
    key: str
    file: str
    title: str
    url_path: str
    icon: str


PAGES: dict[str, PageInfo] = {
    p.key: p
    for p in (
        PageInfo("home", "pages/home.py", "Home", "home", ":material/home:"),
        PageInfo("data", "pages/data.py", "Data", "data", ":material/table_chart:"),
        PageInfo("train", "pages/train.py", "Train", "train", ":material/model_training:"),
        PageInfo("compare", "pages/compare.py", "Compare", "compare", ":material/leaderboard:"),
        PageInfo("explain", "pages/explain.py", "Explain", "explain", ":material/psychology_alt:"),
        PageInfo("decide", "pages/decide.py", "Decide", "decide", ":material/paid:"),
        PageInfo("predict", "pages/predict.py", "Predict", "predict", ":material/online_prediction:"),
        PageInfo("monitor", "pages/monitor.py", "Monitor", "monitor", ":material/monitor_heart:"),
        PageInfo("runs", "pages/runs.py", "Runs", "runs", ":material/history:"),
        PageInfo("workspace", "pages/workspace.py", "Workspace", "workspace", ":material/groups:"),
    )
}
# Pages of team mode only (members, access requests, the audit log): personal mode has one user.
TEAM_PAGES = ("workspace",)


@st.cache_resource
def _page_objects() -> dict[str, st.Page]:
    return {
        key: st.Page(p.file, title=p.title, url_path=p.url_path, icon=p.icon, default=(key == "home"))
        for key, p in PAGES.items()
    }


def page(key: str) -> st.Page:
    return _page_objects()[key]


def navigation() -> st.Page:
    from dlcore import access

    team = access.team_mode()
    return st.navigation([p for key, p in _page_objects().items() if team or key not in TEAM_PAGES],
                         position="sidebar")


def _ids(dataset: str | None, run: str | None, scoring: str | None,
         explanation: str | None = None) -> dict[str, str]:
    return {k: v for k, v in ((DATASET, dataset), (RUN, run), (SCORING, scoring), (EXPLANATION, explanation)) if v}


def link(key: str, label: str, *, dataset: str | None = None, run: str | None = None,
         scoring: str | None = None, explanation: str | None = None, icon: str | None = None) -> None:
    """A link to another page, carrying only ids."""
    st.page_link(page(key), label=label, icon=icon or PAGES[key].icon,
                 query_params=_ids(dataset, run, scoring, explanation) or None)


def href(key: str, *, dataset: str | None = None, run: str | None = None, scoring: str | None = None,
         explanation: str | None = None) -> str:
    """A relative URL to a page, for tables of links."""
    query = urlencode(_ids(dataset, run, scoring, explanation))
    path = "" if key == "home" else PAGES[key].url_path
    return f"/{path}" + (f"?{query}" if query else "")


def get_id(name: str) -> str | None:
    """An id from the URL; anything that is not a plausible id is ignored."""
    value = st.query_params.get(name)
    if not value or len(value) > 64 or not value.replace("-", "").replace("_", "").isalnum():
        return None
    return value


def set_ids(**ids: str | None) -> None:
    """Put ids in the URL (None removes one), leaving the others as they are."""
    for name, value in ids.items():
        if name not in _ID_PARAMS:
            raise ValueError(f"unknown id parameter {name!r}")
        if value:
            st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]


def open_run(run_id: str) -> None:
    """Go to a run's live page at once: its id is in the URL before anything else is drawn."""
    st.switch_page(page("train"), query_params={RUN: run_id})
