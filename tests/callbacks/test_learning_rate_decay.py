import doctest
import json

import keras
import numpy as np
import pytest

from tfopt.callbacks import learning_rate_decay as learning_rate_decay_module
from tfopt.callbacks.learning_rate_decay import LearningRateDecay

from . import helpers

pytestmark = pytest.mark.backend_agnostic


def cosine():
    return keras.optimizers.schedules.CosineDecay(0.1, decay_steps=12, alpha=0.1)


def schedule_values(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(t))) for t in steps])


def test_schedule_that_is_not_callable_is_a_type_error():
    with pytest.raises(TypeError, match=r"Argument `schedule` must be a keras.optimizers.schedules."
                                        r"LearningRateSchedule or a callable .* Received: schedule=0.1 of type float"):
        LearningRateDecay(0.1)


def test_unknown_granularity_is_a_value_error():
    with pytest.raises(ValueError, match=r"Argument `granularity` must be one of 'batch', 'epoch'. "
                                         r"Received: granularity='step'"):
        LearningRateDecay(cosine(), granularity="step")


def test_config_round_trip_with_a_keras_schedule():
    decay = LearningRateDecay(cosine(), granularity="epoch")
    config = json.loads(json.dumps(decay.get_config()))
    rebuilt = LearningRateDecay.from_config(config)
    assert rebuilt.granularity == "epoch"
    np.testing.assert_array_equal(schedule_values(rebuilt.schedule, range(12)), schedule_values(cosine(), range(12)))


def test_batch_granularity_sets_the_rate_every_step_and_sgd_follows_it():
    model, w = helpers.linear_model(keras.optimizers.SGD(0.5))
    x, y = helpers.regression_data(n=48)
    recorder = helpers.KernelRecorder()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[LearningRateDecay(cosine()), recorder])
    rates = schedule_values(cosine(), range(12))
    expected = []
    for step in range(12):
        batch = slice((step % 6) * 8, (step % 6 + 1) * 8)
        w = w - rates[step] * helpers.mse_gradient(w, x[batch], y[batch])
        expected.append(w)
    np.testing.assert_allclose(np.array(recorder.kernels), np.array(expected), rtol=1e-5, atol=1e-6)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(rates[11], rel=1e-6)


def test_epoch_granularity_uses_the_epoch_index():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(1.0))
    recorder = helpers.KernelRecorder()
    decay = LearningRateDecay(lambda epoch: 0.1 * 0.5**epoch, granularity="epoch")
    model.fit(*helpers.ones(3), batch_size=1, epochs=3, shuffle=False, verbose=0, callbacks=[decay, recorder])
    moves = -np.diff(np.concatenate([[0.0], np.array(recorder.kernels).ravel()]))
    np.testing.assert_allclose(moves, [0.1] * 3 + [0.05] * 3 + [0.025] * 3, rtol=1e-6)


def test_the_step_continues_across_fit_calls():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(1.0))
    recorder = helpers.KernelRecorder()
    for _ in range(2):
        model.fit(*helpers.ones(6), batch_size=1, shuffle=False, verbose=0,
                  callbacks=[LearningRateDecay(cosine()), recorder])
    moves = -np.diff(np.concatenate([[0.0], np.array(recorder.kernels).ravel()]))
    np.testing.assert_allclose(moves, schedule_values(cosine(), range(12)), rtol=1e-5)


def test_an_optimizer_holding_a_schedule_is_refused_at_train_begin():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(cosine()))
    with pytest.raises(ValueError, match=r"must be created with a float `learning_rate`.*"
                                         r"SGD\(learning_rate=CosineDecay\)"):
        model.fit(*helpers.ones(2), verbose=0, callbacks=[LearningRateDecay(cosine())])


def test_a_negative_rate_from_the_schedule_is_a_value_error():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(1.0))
    with pytest.raises(ValueError, match=r"finite learning rate >= 0. Received: schedule\(0\)=-1.0"):
        model.fit(*helpers.ones(2), verbose=0, callbacks=[LearningRateDecay(lambda step: -1.0)])


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(learning_rate_decay_module).failed == 0
