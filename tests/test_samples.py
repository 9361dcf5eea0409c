"""Tests for dlcore.tables.samples and dlcore.images.samples: every sample loads offline, has its target, and survives
the same path as an upload (CSV bytes -> read_table -> profile -> target checks)."""

from __future__ import annotations

import pandas as pd
import pytest

from dlcore.errors import DataError
from dlcore.tables import (
    check_target,
    infer_task,
    leakage_warnings,
    profile_frame,
    read_table,
    usable_features,
)
from dlcore.tables.samples import SAMPLES, Sample, load_sample, sample_csv_bytes

EXPECTED = {
    # key: (rows, columns, target, task, target values or None)
    "tips": (244, 7, "tip", "regression", None),
    "breast_cancer": (569, 31, "diagnosis", "binary", {"malignant", "benign"}),
    "diabetes": (442, 11, "disease_progression", "regression", None),
    "iris": (150, 5, "species", "multiclass", {"setosa", "versicolor", "virginica"}),
    "wine": (178, 14, "cultivar", "multiclass", {"cultivar_1", "cultivar_2", "cultivar_3"}),
}


def test_the_catalogue_holds_the_expected_samples():
    assert set(EXPECTED) <= set(SAMPLES)
    for key, sample in SAMPLES.items():
        assert isinstance(sample, Sample) and sample.key == key
        assert sample.title and sample.description.endswith(".")
        assert "\n" not in sample.description


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_sample_shape_target_and_task(key):
    rows, cols, target, task, labels = EXPECTED[key]
    df = load_sample(key)
    assert df.shape == (rows, cols)
    assert SAMPLES[key].default_target == target
    assert target in df.columns and df[target].notna().all()
    assert infer_task(df[target]) == task
    if labels is not None:
        assert set(df[target]) == labels
    assert check_target(df, target, task) == []
    assert leakage_warnings(df, target, task) == []
    # Readable names: no spaces or brackets from the original data sets.
    assert all(c == c.strip() and " " not in c and "(" not in c for c in df.columns)


def test_breast_cancer_labels_match_the_original_codes():
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True)
    ours = load_sample("breast_cancer")
    assert (ours["diagnosis"] == "malignant").sum() == (df.target == 0).sum() == 212
    assert ours["mean_radius"].tolist() == df.data["mean radius"].tolist()


def test_diabetes_keeps_real_units():
    df = load_sample("diabetes")
    assert df["age"].between(18, 80).all()
    assert {"blood_pressure", "blood_sugar", "bmi"} <= set(df.columns)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_csv_bytes_read_back_like_an_upload(key):
    original = load_sample(key)
    df, report = read_table(sample_csv_bytes(key), name=f"{key}.csv")
    assert report.format == "csv" and report.delimiter == ","
    assert list(df.columns) == list(original.columns)
    pd.testing.assert_frame_equal(df, original, check_dtype=False)
    profile = profile_frame(df)
    target = SAMPLES[key].default_target
    assert target not in usable_features(profile, target)
    assert len(usable_features(profile, target)) == original.shape[1] - 1


def test_load_sample_returns_a_fresh_copy():
    first = load_sample("iris")
    first.loc[0, "species"] = "changed"
    assert load_sample("iris").loc[0, "species"] == "setosa"


def test_unknown_key_lists_valid_keys():
    with pytest.raises(DataError, match="no sample data set called 'titanic'") as info:
        load_sample("titanic")
    for key in EXPECTED:
        assert key in str(info.value)
