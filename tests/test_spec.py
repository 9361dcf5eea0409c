import pytest

from dlcore.errors import SpecError
from dlcore.spec import DataSpec, RunSpec, TrainSpec


def test_round_trip_is_equal():
    spec = RunSpec(data=DataSpec("d1", "churn", task="binary", features=("a", "b")), template="mlp_embed",
                   train=TrainSpec(epochs=3, seed=7, learning_rate=0.003))
    again = RunSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.data.features == ("a", "b")


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: TrainSpec(epochs=0), ["epochs", "0", "between 1"]),
        (lambda: TrainSpec(size="huge"), ["size", "huge", "small, medium, large"]),
        (lambda: TrainSpec(learning_rate=5.0), ["learning_rate", "5.0"]),
        (lambda: TrainSpec(epochs=2.5), ["epochs", "whole number"]),
        (lambda: DataSpec("d", "y", task="cluster"), ["cluster", "auto", "regression"]),
        (lambda: DataSpec("d", ""), ["target"]),
        (lambda: DataSpec("d", "y", features=("y", "x")), ["'y'", "also listed"]),
    ],
)
def test_bad_values_are_named_with_the_allowed_ones(make, words):
    with pytest.raises(SpecError) as info:
        make()
    for word in words:
        assert word in str(info.value)


def test_unknown_keys_are_refused_by_name():
    raw = RunSpec(data=DataSpec("d", "y")).to_dict()
    raw["train"]["epoch"] = 3
    with pytest.raises(SpecError, match="epoch"):
        RunSpec.from_dict(raw)


def test_suggested_batch_size_gives_small_tables_enough_steps():
    from dlcore.spec import suggested_batch_size

    assert [suggested_batch_size(n) for n in (150, 2_000, 5_000, 10_000, 1_000_000)] == [16, 32, 128, 256, 256]
    for n in (150, 569, 2_400, 20_000):
        assert int(n * 0.6) / suggested_batch_size(n) >= 5
