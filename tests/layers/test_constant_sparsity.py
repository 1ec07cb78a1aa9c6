"""ConstantSparsity: tfmot's values at every step (NumPy transcription, and tfmot itself when installed)."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.compression import ConstantSparsity


def reference(step, target_sparsity, begin_step, end_step, frequency):
    """tfmot's ConstantSparsity, transcribed in float64."""
    in_range = step >= begin_step and (step <= end_step or end_step == -1)
    return in_range and (step - begin_step) % frequency == 0, np.float64(target_sparsity)


CASES = [(0.5, 0, -1, 100), (0.9, 3, 50, 7), (0.0, 0, 0, 1), (0.25, 10, -1, 1)]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("args", CASES)
def test_values_at_every_step_equal_the_reference(args):
    schedule = ConstantSparsity(*args)
    for step in range(0, 260):
        should, sparsity = schedule(step)
        expected_should, expected_sparsity = reference(step, *args)
        assert bool(ops.convert_to_numpy(should)) == expected_should, step
        np.testing.assert_allclose(float(ops.convert_to_numpy(sparsity)), expected_sparsity, rtol=1e-7)


@pytest.mark.parametrize("args", CASES)
def test_values_equal_tfmot_constant_sparsity(args):
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    import tensorflow as tf

    theirs = tfmot.sparsity.keras.ConstantSparsity(*args)
    ours = ConstantSparsity(*args)
    for step in range(0, 260, 3):
        a, b = ours(step), theirs(tf.constant(step, tf.int64))
        assert bool(ops.convert_to_numpy(a[0])) == bool(b[0].numpy())
        assert float(ops.convert_to_numpy(a[1])) == float(b[1].numpy())


@pytest.mark.backend_agnostic
def test_config_round_trip():
    schedule = ConstantSparsity(0.8, begin_step=5, end_step=50, frequency=10)
    assert schedule.get_config() == {"target_sparsity": 0.8, "begin_step": 5, "end_step": 50, "frequency": 10}
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(rebuilt) is ConstantSparsity and rebuilt.get_config() == schedule.get_config()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kwargs, argument, message", [
    ({"target_sparsity": 1.0}, "target_sparsity", "must be a number in [0.0, 1.0). Received: target_sparsity=1.0"),
    ({"target_sparsity": -0.1}, "target_sparsity", "must be a number in [0.0, 1.0). Received: target_sparsity=-0.1"),
    ({"begin_step": -1}, "begin_step", "must be an integer >= 0. Received: begin_step=-1"),
    ({"begin_step": 10, "end_step": 5}, "end_step",
     "must be an integer >= begin_step (10), or -1. Received: end_step=5"),
    ({"end_step": -2}, "end_step", "must be an integer >= begin_step (0), or -1. Received: end_step=-2"),
    ({"frequency": 0}, "frequency", "must be an integer >= 1. Received: frequency=0"),
])
def test_bad_arguments_name_the_argument(kwargs, argument, message):
    arguments = {"target_sparsity": 0.5, "begin_step": 0, **kwargs}
    with pytest.raises(ValueError) as raised:
        ConstantSparsity(**arguments)
    assert f"Argument `{argument}` {message}" in str(raised.value)


@pytest.mark.backend_agnostic
def test_a_non_integer_step_argument_is_a_type_error():
    with pytest.raises(TypeError, match="Argument `frequency` must be an integer >= 1. Received: frequency=2.5"):
        ConstantSparsity(0.5, 0, frequency=2.5)
