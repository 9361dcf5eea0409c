"""Personal data on the pages: masked for those who may not see it, shown with a badge otherwise.

The profile flags columns of personal data by their content (``dlcore.tables.personal``). Pages
pass every table of cells they show through ``shown`` and name flagged columns with ``badge``.
Whether cells are masked is one switch for the session: ``hide_personal_data()`` (the sign-in code
calls it for a viewer, ``hide_personal_data(False)`` for an editor or owner, on every script run).
Personal mode never calls it: the one analyst sees the values, with the badge.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dlcore.tables.personal import PERSONAL_KINDS, mask_personal

__all__ = ["badge", "flagged", "hide_personal_data", "masking", "shown", "shown_row"]

_KEY = "_dlcore_mask_personal"


def hide_personal_data(on: bool = True) -> None:
    """Mask the cells of personal-data columns on every page of this session from now on (or not)."""
    st.session_state[_KEY] = bool(on)


def masking() -> bool:
    """Whether this session sees personal data masked."""
    return bool(st.session_state.get(_KEY, False))


def flagged(profile: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The flagged columns of a stored profile dict, by name, with what was found."""
    return {c["name"]: c["personal"] for c in (profile or {}).get("columns", []) if c.get("personal")}


def shown(frame: pd.DataFrame, profile: dict[str, Any] | None, column: str | None = None) -> pd.DataFrame:
    """``frame`` as this session may see it: the flagged columns masked when ``masking()``.

    ``column`` names the frame's column of feature names for a long table (a row's explanation:
    one row per input column, its value in ``value``): then the values of flagged inputs are masked.
    """
    names = flagged(profile)
    if not names or not masking():
        return frame
    if column is None:
        return mask_personal(frame, list(names))
    out = frame.copy()
    hide = out[column].isin(list(names))
    out["value"] = out["value"].astype("object").where(~hide, "•••")
    return out


def shown_row(result: dict[str, Any], profile: dict[str, Any] | None) -> dict[str, Any]:
    """A row's explanation (``contributions``: feature, value, contribution) as this session may
    see it: the values of flagged inputs masked when ``masking()``."""
    names = flagged(profile)
    if not names or not masking() or "contributions" not in result:
        return result
    hidden = [d for d in result["contributions"] if d.get("feature") in names]
    sentence = result.get("sentence", "")
    for d in hidden:  # the sentence names the two columns that moved the prediction most, with their values
        sentence = sentence.replace(f"{d['feature']} is {d['value']},", f"{d['feature']} is •••,")
    return {**result, "sentence": sentence,
            "contributions": [{**d, "value": "•••"} if d in hidden else d for d in result["contributions"]]}


def badge(finding: dict[str, Any]) -> str:
    """A Markdown badge for a flagged column: ":red-badge[personal: email addresses]"."""
    return f":red-badge[:material/shield_person: personal: {PERSONAL_KINDS.get(finding['kind'], finding['kind'])}]"
