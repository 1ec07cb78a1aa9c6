"""PolynomialDecay: tfmot's values at every step (NumPy transcription, and tfmot itself when installed)."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.compression import PolynomialDecay


def reference(step, initial_sparsity, final_sparsity, begin_step, end_step, power, frequency):
    """tfmot's PolynomialDecay (Zhu & Gupta 2017), transcribed in float64."""
    p = min(1.0, max(0.0, (step - begin_step) / (end_step - begin_step)))
    sparsity = final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - p) ** power
    should = begin_step <= step <= end_step and (step - begin_step) % frequency == 0
    return should, sparsity


CASES = [(0.0, 0.8, 0, 200, 3, 10), (0.1, 0.9, 20, 120, 2, 1), (0.5, 0.5, 0, 10, 3, 100), (0.0, 0.95, 5, 6, 1.5, 1)]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("args", CASES)
def test_values_at_every_step_equal_the_reference(args):
    schedule = PolynomialDecay(*args[:4], power=args[4], frequency=args[5])
    for step in range(0, 260):
        should, sparsity = schedule(step)
        expected_should, expected_sparsity = reference(step, *args)
        assert bool(ops.convert_to_numpy(should)) == expected_should, step
        np.testing.assert_allclose(float(ops.convert_to_numpy(sparsity)), expected_sparsity, rtol=1e-6, atol=1e-7)


@pytest.mark.backend_agnostic
def test_sparsity_rises_from_initial_to_final_and_stays():
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100)
    values = [float(ops.convert_to_numpy(schedule(t)[1])) for t in range(0, 150)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.8)
    assert all(b >= a for a, b in zip(values, values[1:]))
    # Cubic: most of the pruning early (half the steps give 7/8 of the final sparsity).
    assert values[50] == pytest.approx(0.8 * (1 - 0.5**3), rel=1e-6)


@pytest.mark.parametrize("args", CASES)
def test_values_equal_tfmot_polynomial_decay(args):
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    import tensorflow as tf

    theirs = tfmot.sparsity.keras.PolynomialDecay(*args[:4], power=args[4], frequency=args[5])
    ours = PolynomialDecay(*args[:4], power=args[4], frequency=args[5])
    for step in range(0, 260, 3):
        a, b = ours(step), theirs(tf.constant(step, tf.int64))
        assert bool(ops.convert_to_numpy(a[0])) == bool(b[0].numpy())
        np.testing.assert_allclose(float(ops.convert_to_numpy(a[1])), float(b[1].numpy()), rtol=1e-6, atol=1e-7)


@pytest.mark.backend_agnostic
def test_config_round_trip():
    schedule = PolynomialDecay(0.1, 0.9, begin_step=5, end_step=50, power=2, frequency=10)
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert type(rebuilt) is PolynomialDecay and rebuilt.get_config() == schedule.get_config()
    assert schedule.get_config()["power"] == 2.0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kwargs, argument, message", [
    ({"initial_sparsity": 1.0}, "initial_sparsity", "must be a number in [0.0, 1.0). Received: initial_sparsity=1.0"),
    ({"final_sparsity": 1.2}, "final_sparsity", "must be a number in [0.0, 1.0). Received: final_sparsity=1.2"),
    ({"final_sparsity": -0.5}, "final_sparsity", "must be a number in [0.0, 1.0). Received: final_sparsity=-0.5"),
    ({"begin_step": -3}, "begin_step", "must be an integer >= 0. Received: begin_step=-3"),
    ({"begin_step": 100, "end_step": 50}, "end_step", "must be an integer > begin_step (100). Received: end_step=50"),
    ({"end_step": -1}, "end_step", "must be an integer > begin_step (0). Received: end_step=-1"),
    ({"frequency": 0}, "frequency", "must be an integer >= 1. Received: frequency=0"),
    ({"power": 0}, "power", "must be a finite number > 0. Received: power=0"),
])
def test_bad_arguments_name_the_argument(kwargs, argument, message):
    arguments = {"initial_sparsity": 0.0, "final_sparsity": 0.8, "begin_step": 0, "end_step": 100, **kwargs}
    with pytest.raises(ValueError) as raised:
        PolynomialDecay(**arguments)
    assert f"Argument `{argument}` {message}" in str(raised.value)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("total_steps, end_fraction, frequency, end_step, updates",
                         [(1000, 0.7, None, 700, 14), (143, 0.7, None, 98, 14), (30, 0.6, 2, 18, 9),
                          (5, 0.7, None, 3, 3)])
def test_over_steps_ends_on_a_mask_update_at_the_final_sparsity(total_steps, end_fraction, frequency, end_step,
                                                               updates):
    schedule = PolynomialDecay.over_steps(0.8, total_steps, end_fraction=end_fraction, frequency=frequency)
    assert (schedule.begin_step, schedule.end_step) == (0, end_step)
    assert schedule.frequency == (frequency or max(1, total_steps // 20))
    values = [schedule(step) for step in range(total_steps + 1)]
    pruned = [step for step, (should, _) in enumerate(values) if bool(should) and step > 0]
    assert len(pruned) == updates and pruned[-1] == end_step
    assert float(values[end_step][1]) == pytest.approx(0.8, abs=1e-7)
    assert float(values[0][1]) == 0.0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kwargs, error, message", [
    ({"total_steps": 0}, ValueError, "Argument `total_steps` must be an integer >= 1. Received: total_steps=0"),
    ({"total_steps": 10.0}, TypeError, "Argument `total_steps` must be an integer >= 1"),
    ({"end_fraction": 0.0}, ValueError, r"Argument `end_fraction` must be a number in \(0.0, 1.0\]"),
    ({"frequency": 0}, ValueError, "Argument `frequency` must be an integer >= 1. Received: frequency=0"),
])
def test_over_steps_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        PolynomialDecay.over_steps(0.5, **{"total_steps": 100, **kwargs})
