import doctest

import keras
import numpy as np
import pytest

from tfopt.callbacks import reduce_lr_on_plateau as reduce_lr_on_plateau_module
from tfopt.callbacks.reduce_lr_on_plateau import ReduceLROnPlateau
from tfopt.schedules.scaled import ScaledSchedule

from . import helpers

pytestmark = pytest.mark.backend_agnostic


def exponential():
    return keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=4, decay_rate=0.5)


def value(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def moves_per_step(recorder):
    return -np.diff(np.concatenate([[0.0], np.array(recorder.kernels).ravel()]))


def always_plateaus(**arguments):
    """Every epoch after the first counts as no improvement of the loss (min_delta is huge)."""
    return ReduceLROnPlateau(monitor="loss", patience=0, min_delta=1e9, **{"factor": 0.5, **arguments})


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"factor": 1.0}, r"Argument `factor` must be a number in \(0, 1\). Received: factor=1.0"),
        ({"factor": 0}, r"Argument `factor` must be a number in \(0, 1\). Received: factor=0"),
        ({"patience": -1}, r"Argument `patience` must be an integer >= 0. Received: patience=-1"),
        ({"mode": "up"}, r"Argument `mode` must be one of 'auto', 'min', 'max'. Received: mode='up'"),
        ({"min_delta": -1.0}, r"Argument `min_delta` must be a finite number >= 0. Received: min_delta=-1.0"),
        ({"cooldown": -2}, r"Argument `cooldown` must be an integer >= 0. Received: cooldown=-2"),
        ({"min_lr": -0.1}, r"Argument `min_lr` must be a finite number >= 0. Received: min_lr=-0.1"),
    ],
)
def test_invalid_arguments_are_value_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        ReduceLROnPlateau(**arguments)


def test_wrongly_typed_patience_is_a_type_error():
    with pytest.raises(TypeError, match=r"Argument `patience` must be an integer >= 0. Received: patience=1.5"):
        ReduceLROnPlateau(patience=1.5)


def test_config_round_trip():
    reduce = ReduceLROnPlateau(monitor="val_accuracy", factor=0.2, patience=3, mode="max", cooldown=1, min_lr=1e-5)
    rebuilt = ReduceLROnPlateau.from_config(reduce.get_config())
    assert rebuilt.get_config() == reduce.get_config()
    assert rebuilt.get_config()["monitor"] == "val_accuracy" and rebuilt.min_lr == 1e-5


LOSSES = [1.0, 0.9, 0.95, 0.91, 0.92, 0.9, 0.85, 0.86, 0.87, 0.88, 0.80, 0.81, 0.82, 0.83, 0.84, 0.85]


@pytest.mark.parametrize(
    "arguments",
    [
        {"factor": 0.5, "patience": 1},
        {"factor": 0.1, "patience": 2, "cooldown": 1},
        {"factor": 0.5, "patience": 0, "min_lr": 0.02},
        {"factor": 0.3, "patience": 1, "min_delta": 0.05, "mode": "min"},
        {"factor": 0.5, "patience": 1, "mode": "max"},
    ],
)
def test_float_rate_follows_keras_exactly(arguments):
    """The same loss sequence through Keras's callback and ours gives the same learning rates."""
    rates = {}
    for name, callback in (("keras", keras.callbacks.ReduceLROnPlateau), ("tfopt", ReduceLROnPlateau)):
        model = helpers.unit_gradient_model(keras.optimizers.SGD(0.1))
        reduce = callback(monitor="loss", **arguments)
        reduce.set_model(model)
        reduce.on_train_begin()
        rates[name] = []
        for epoch, loss in enumerate(LOSSES):
            logs = {"loss": loss}
            reduce.on_epoch_end(epoch, logs)
            rates[name].append((float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
                                logs["learning_rate"]))
    assert rates["tfopt"] == rates["keras"]
    assert len({rate for rate, _ in rates["keras"]}) > 1  # the sequence does trigger reductions


def test_float_rate_in_fit_matches_keras():
    results = []
    for callback in (keras.callbacks.ReduceLROnPlateau, ReduceLROnPlateau):
        model = helpers.unit_gradient_model(keras.optimizers.SGD(0.1))
        history = model.fit(*helpers.ones(2), batch_size=1, epochs=4, verbose=0,
                            callbacks=[callback(monitor="loss", factor=0.5, patience=0, min_delta=1e9)])
        results.append((history.history["learning_rate"], helpers.kernel(model).item()))
    assert results[0] == results[1]


def test_schedule_is_scaled_and_the_train_step_uses_the_scaled_rate():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(exponential()))
    recorder = helpers.KernelRecorder()
    history = model.fit(*helpers.ones(2), batch_size=1, epochs=4, verbose=0, callbacks=[always_plateaus(), recorder])
    # No reduction after epoch 0 (the first value is an improvement); halved after epochs 1, 2 and 3.
    factors = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    expected = [f * value(exponential(), t) for t, f in enumerate(factors)]
    np.testing.assert_allclose(moves_per_step(recorder), expected, rtol=1e-5)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, ScaledSchedule)
    assert float(keras.ops.convert_to_numpy(schedule.factor)) == pytest.approx(0.125)
    # Like Keras's callback, the logs hold the rate before the epoch's reduction.
    np.testing.assert_allclose(history.history["learning_rate"],
                               [f * value(exponential(), 2 * (e + 1)) for e, f in enumerate([1, 1, 0.5, 0.25])],
                               rtol=1e-6)


def test_schedule_is_scaled_when_the_train_function_was_traced_by_an_earlier_fit():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(exponential()))
    recorder = helpers.KernelRecorder()
    model.fit(*helpers.ones(2), batch_size=1, verbose=0, callbacks=[recorder])
    model.fit(*helpers.ones(2), batch_size=1, epochs=3, verbose=0, callbacks=[always_plateaus(), recorder])
    # The second fit's first epoch is its first improvement; it halves the rate after its second epoch.
    factors = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    expected = [f * value(exponential(), t) for t, f in enumerate(factors)]
    np.testing.assert_allclose(moves_per_step(recorder), expected, rtol=1e-5)


def test_min_lr_bounds_the_effective_rate_of_a_schedule():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(exponential()))
    recorder = helpers.KernelRecorder()
    min_lr = 0.3 * value(exponential(), 4)
    model.fit(*helpers.ones(2), batch_size=1, epochs=4, verbose=0,
              callbacks=[always_plateaus(min_lr=min_lr), recorder])
    # After epoch 1: 0.5 * s(4). After epoch 2: max(0.25 * s(6), min_lr) = min_lr, factor min_lr / s(6).
    # After epoch 3: the effective rate at step 8 is below min_lr already, so no further reduction.
    second = min_lr / value(exponential(), 6)
    factors = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, second, second]
    expected = [f * value(exponential(), t) for t, f in enumerate(factors)]
    np.testing.assert_allclose(moves_per_step(recorder), expected, rtol=1e-5)


def test_reduced_factor_survives_save_and_load(tmp_path):
    model = helpers.unit_gradient_model(keras.optimizers.SGD(exponential()))
    model.fit(*helpers.ones(1), batch_size=1, epochs=3, verbose=0, callbacks=[always_plateaus()])
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    schedule = loaded.optimizer._learning_rate
    assert isinstance(schedule, ScaledSchedule)
    assert float(keras.ops.convert_to_numpy(schedule.factor)) == pytest.approx(0.25)
    assert float(keras.ops.convert_to_numpy(loaded.optimizer.learning_rate)) == pytest.approx(
        0.25 * value(exponential(), 3), rel=1e-6)
    for saved, restored in zip(model.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    # The loaded model trains at the reduced rate, and a new callback keeps reducing the same wrapper.
    before = helpers.kernel(loaded).item()
    loaded.fit(*helpers.ones(1), batch_size=1, epochs=2, verbose=0, callbacks=[always_plateaus()])
    assert isinstance(loaded.optimizer._learning_rate, ScaledSchedule)
    assert loaded.optimizer._learning_rate is schedule
    moved = before - helpers.kernel(loaded).item()
    np.testing.assert_allclose(moved, 0.25 * (value(exponential(), 3) + value(exponential(), 4)), rtol=1e-5)
    assert float(keras.ops.convert_to_numpy(schedule.factor)) == pytest.approx(0.125)


def test_plain_callable_rate_is_refused():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(lambda: 0.1))
    with pytest.raises(ValueError, match=r"plain callable"):
        model.fit(*helpers.ones(1), verbose=0, callbacks=[always_plateaus()])


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(reduce_lr_on_plateau_module).failed == 0
