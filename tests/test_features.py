import json

import numpy as np
import pandas as pd
import pytest

from dlcore.errors import SchemaError
from dlcore.tables.preprocess import MISSING, OTHER, TabularPreprocessor
from dlcore.targets import TargetEncoder


def _frame():
    return pd.DataFrame({
        "x": [1.0, 2.0, 3.0, np.nan],
        "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
        "c": ["a", "b", "a", None],
    })


def test_learns_from_the_rows_it_is_fitted_on_only():
    pre = TabularPreprocessor(["x"], ["c"], ["when"]).fit(_frame().iloc[:3])
    assert pre.medians_[0] == 2.0 and pre.means_[0] == 2.0
    assert pre.vocab_["c"] == ["a", "b"]
    feats = pre.transform(_frame())
    # x standardised with the training mean 2 and std sqrt(2/3); the gap filled with the median 2.
    assert feats.numeric[:, 0] == pytest.approx([-1.2247449, 0.0, 1.2247449, 0.0], abs=1e-6)
    assert feats.codes[:, 0].tolist() == [2, 3, 2, MISSING]


def test_unseen_categories_are_counted_and_coded_other():
    pre = TabularPreprocessor(["x"], ["c"]).fit(_frame())
    new = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "zzz", "yyy"]})
    feats = pre.transform(new)
    assert feats.codes[:, 0].tolist() == [2, OTHER, OTHER]
    assert feats.unseen == {"c": 2}


def test_numbers_written_as_text_are_read_and_bad_cells_counted():
    pre = TabularPreprocessor(["x"], []).fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    feats = pre.transform(pd.DataFrame({"x": ["1", " 3 ", "abc"]}))
    assert feats.not_numbers == {"x": 1}
    assert feats.numeric[:, 0].tolist() == pytest.approx([-1.2247449, 1.2247449, 0.0], abs=1e-6)


def test_missing_columns_are_named():
    pre = TabularPreprocessor(["x"], ["c"]).fit(_frame())
    with pytest.raises(SchemaError, match=r"1 column\(s\).*'c'"):
        pre.transform(pd.DataFrame({"x": [1.0]}))


def test_dense_is_numbers_then_one_hot():
    pre = TabularPreprocessor(["x"], ["c"]).fit(_frame())
    dense = pre.dense(pre.transform(_frame()))
    # x, the "x is missing" flag, then c: (missing), (other), a, b
    assert dense.shape == (4, 2 + 4)
    assert dense[:, 2:].tolist() == [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0], [1, 0, 0, 0]]
    assert pre.dense_names[:2] == ["x", "x is missing"]


def test_json_round_trip_transforms_identically():
    pre = TabularPreprocessor(["x"], ["c"], ["when"]).fit(_frame())
    again = TabularPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    a, b = pre.transform(_frame()), again.transform(_frame())
    assert np.array_equal(a.numeric, b.numeric) and np.array_equal(a.codes, b.codes)


def test_target_encoder_classes_and_scaling():
    enc = TargetEncoder("binary").fit(pd.Series(["yes", "no", "yes"]))
    assert enc.classes_ == ["no", "yes"] and enc.encode(pd.Series(["yes", "no"])).tolist() == [1, 0]
    numeric_labels = TargetEncoder("multiclass").fit(pd.Series([10.0, 2.0, 1.0]))
    assert numeric_labels.classes_ == ["1", "2", "10"]
    reg = TargetEncoder("regression").fit(pd.Series([1.0, 3.0]))
    assert reg.encode(pd.Series([1.0, 3.0])).tolist() == [-1.0, 1.0]
    assert reg.decode_regression(np.array([[0.0], [1.0]])).tolist() == [2.0, 3.0]
