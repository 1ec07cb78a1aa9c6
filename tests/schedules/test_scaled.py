import doctest
import json

import keras
import numpy as np
import pytest

from tfopt.schedules import scaled as scaled_module
from tfopt.schedules.scaled import ScaledSchedule


def cosine():
    return keras.optimizers.schedules.CosineDecay(0.2, decay_steps=50, alpha=0.05)


def values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(t))) for t in steps])


def cosine_reference(steps, initial=0.2, decay_steps=50, alpha=0.05):
    """Keras's CosineDecay in float64: initial * ((1 - alpha) * (1 + cos(pi * t / T)) / 2 + alpha)."""
    t = np.minimum(np.asarray(steps, dtype="float64"), decay_steps)
    return initial * ((1 - alpha) * 0.5 * (1 + np.cos(np.pi * t / decay_steps)) + alpha)


@pytest.mark.backend_agnostic
def test_a_schedule_that_is_not_a_learning_rate_schedule_is_a_type_error():
    with pytest.raises(TypeError, match=r"Argument `schedule` must be a keras.optimizers.schedules."
                                        r"LearningRateSchedule. Received: schedule=0.1 of type float"):
        ScaledSchedule(0.1)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("factor", [0.0, -1.0, float("inf"), float("nan")])
@pytest.mark.backend_agnostic
def test_a_factor_that_is_not_positive_and_finite_is_a_value_error(factor):
    with pytest.raises(ValueError, match=rf"Argument `factor` must be a finite number > 0. Received: factor={factor}"):
        ScaledSchedule(cosine(), factor=factor)


@pytest.mark.backend_agnostic
def test_a_factor_that_is_not_a_number_is_a_type_error():
    with pytest.raises(TypeError, match=r"Argument `factor` must be a finite number > 0. Received: factor='0.5' "
                                        r"of type str"):
        ScaledSchedule(cosine(), factor="0.5")


@pytest.mark.backend_agnostic
def test_values_are_the_factor_times_the_schedule():
    steps = range(0, 60, 3)
    scaled = ScaledSchedule(cosine(), factor=0.3)
    np.testing.assert_allclose(values(scaled, steps), 0.3 * cosine_reference(steps), rtol=1e-6)
    assert keras.ops.convert_to_numpy(scaled(7)).dtype == np.float32


@pytest.mark.backend_agnostic
def test_assigning_the_factor_changes_the_values():
    steps = range(0, 60, 7)
    scaled = ScaledSchedule(cosine())
    np.testing.assert_allclose(values(scaled, steps), cosine_reference(steps), rtol=1e-6)
    scaled.factor.assign(0.01)
    np.testing.assert_allclose(values(scaled, steps), 0.01 * cosine_reference(steps), rtol=1e-6)


@pytest.mark.backend_agnostic
def test_the_factor_is_a_non_trainable_float32_variable():
    scaled = ScaledSchedule(cosine(), factor=2.0)
    assert isinstance(scaled.factor, keras.Variable)
    assert not scaled.factor.trainable and scaled.factor.dtype == "float32"


@pytest.mark.backend_agnostic
def test_config_round_trip_keeps_the_current_factor():
    scaled = ScaledSchedule(cosine(), factor=0.5)
    scaled.factor.assign(0.125)
    config = scaled.get_config()
    assert json.loads(json.dumps(config)) == config
    assert config["factor"] == 0.125
    rebuilt = ScaledSchedule.from_config(config)
    assert rebuilt.get_config() == config
    serialized = keras.optimizers.schedules.serialize(scaled)
    assert serialized["registered_name"] == "tfopt>ScaledSchedule"
    restored = keras.optimizers.schedules.deserialize(json.loads(json.dumps(serialized)))
    assert isinstance(restored, ScaledSchedule)
    np.testing.assert_array_equal(values(restored, range(60)), values(scaled, range(60)))


@pytest.mark.backend_agnostic
def test_fit_uses_the_scaled_rate_and_save_load_keeps_it(tmp_path):
    @keras.saving.register_keras_serializable(package="tfopt_tests")
    def mean_prediction(y_true, y_pred):
        return keras.ops.mean(y_pred)

    scaled = ScaledSchedule(cosine(), factor=0.5)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(keras.optimizers.SGD(scaled), loss=mean_prediction)
    ones = np.ones((4, 1), "float32")
    model.fit(ones, ones, batch_size=1, shuffle=False, verbose=0)
    # The gradient of the single weight is 1, so SGD moves it by lr(t) per step.
    kernel = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    np.testing.assert_allclose(-kernel, 0.5 * cosine_reference(range(4)).sum(), rtol=1e-5)
    scaled.factor.assign(0.25)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.optimizer._learning_rate
    assert isinstance(restored, ScaledSchedule) and restored.get_config()["factor"] == 0.25
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.predict(ones, verbose=0)),
                                  keras.ops.convert_to_numpy(model.predict(ones, verbose=0)))
    for saved, restored_variable in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored_variable))
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)),
                               0.25 * cosine_reference([4])[0], rtol=1e-6)


def test_on_tensorflow_the_compiled_step_reads_a_new_factor_without_retracing():
    """TensorFlow's traced train step reads the factor variable each step (on JAX a retrace is needed)."""
    scaled = ScaledSchedule(keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=1.0))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(keras.optimizers.SGD(scaled), loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    ones = np.ones((1, 1), "float32")
    model.fit(ones, ones, verbose=0)
    train_function = model.train_function
    scaled.factor.assign(0.5)
    model.fit(ones, ones, verbose=0)
    assert model.train_function is train_function
    kernel = float(keras.ops.convert_to_numpy(model.layers[0].kernel)[0, 0])
    np.testing.assert_allclose(kernel, -(0.1 + 0.05), rtol=1e-6)


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(scaled_module).failed == 0
