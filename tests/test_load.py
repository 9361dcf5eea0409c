"""Several browser sessions at once on one server: runs queue and all finish, and no page
ever shows another session's data. Page render times are measured by ``python bench/load.py`` (timing
belongs in bench/, never in a pass/fail test)."""

from __future__ import annotations

import pytest

from bench.load import run_load


@pytest.mark.browser
def test_three_sessions_train_at_once_all_finish_and_never_see_each_other(tmp_path):
    out = run_load(sessions=3, workers=2, rows=1200, epochs=4, reps=0, home=tmp_path, say=lambda m: None)
    assert list(out["statuses"].values()) == ["done"] * 3
    assert out["checks"] >= 6
    assert out["foreign"] == {"target_0": [], "target_1": [], "target_2": []}
