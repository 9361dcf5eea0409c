"""Several browser sessions at once on one server: runs queue and all finish, and no page
ever shows another session's data. The render times are printed (timing belongs in bench/)."""

from __future__ import annotations

from bench.load import run_load


def test_three_sessions_train_at_once_all_finish_and_never_see_each_other(tmp_path):
    out = run_load(sessions=3, workers=2, rows=1200, epochs=6, reps=1, home=tmp_path, say=lambda m: None)
    assert list(out["statuses"].values()) == ["done"] * 3
    assert out["checks"] >= 6
    assert out["foreign"] == {"target_0": [], "target_1": [], "target_2": []}
    print(f"page render seconds, idle: {out['idle']}, while two runs train: {out.get('busy')}")
