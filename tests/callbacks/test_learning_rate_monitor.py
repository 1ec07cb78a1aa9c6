import doctest

import keras
import numpy as np
import pytest

from tfopt.callbacks import learning_rate_monitor as learning_rate_monitor_module
from tfopt.callbacks.learning_rate_decay import LearningRateDecay
from tfopt.callbacks.learning_rate_monitor import LearningRateMonitor

from . import helpers


def exponential():
    return keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)


def value(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.backend_agnostic
def test_every_n_steps_below_one_is_a_value_error():
    with pytest.raises(ValueError, match=r"`every_n_steps` must be an integer >= 1. Received: every_n_steps=0"):
        LearningRateMonitor(every_n_steps=0)


@pytest.mark.backend_agnostic
def test_log_dir_that_is_not_a_path_is_a_type_error():
    with pytest.raises(TypeError, match=r"Argument `log_dir` must be a non-empty path \(str or os.PathLike\) or None. "
                                        r"Received: log_dir=3 of type int"):
        LearningRateMonitor(log_dir=3)


@pytest.mark.backend_agnostic
def test_config_round_trip(tmp_path):
    monitor = LearningRateMonitor(log_dir=tmp_path, every_n_steps=5)
    rebuilt = LearningRateMonitor.from_config(monitor.get_config())
    assert rebuilt.get_config() == {"log_dir": str(tmp_path), "every_n_steps": 5}


@pytest.mark.backend_agnostic
def test_history_holds_the_schedule_value_at_the_end_of_each_epoch():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(exponential()))
    history = model.fit(*helpers.ones(3), batch_size=1, epochs=3, verbose=0, callbacks=[LearningRateMonitor()])
    # After epoch e the optimizer has taken 3 * (e + 1) steps.
    expected = [value(exponential(), 3 * (e + 1)) for e in range(3)]
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)


@pytest.mark.backend_agnostic
def test_history_holds_a_float_rate_set_by_another_callback():
    model = helpers.unit_gradient_model(keras.optimizers.SGD(1.0))
    decay = LearningRateDecay(lambda epoch: 0.2 / (epoch + 1), granularity="epoch")
    history = model.fit(*helpers.ones(2), batch_size=1, epochs=3, verbose=0,
                        callbacks=[decay, LearningRateMonitor()])
    np.testing.assert_allclose(history.history["learning_rate"], [0.2, 0.1, 0.2 / 3], rtol=1e-6)


def read_scalars(log_dir, tag):
    """The (steps, values) of scalar `tag` in the event file(s) under log_dir/train, read back by TensorBoard."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(log_dir / "train"), size_guidance={"tensors": 0})
    accumulator.Reload()
    events = accumulator.Tensors(tag)
    return [e.step for e in events], [float(tf.make_ndarray(e.tensor_proto)) for e in events]


def test_tensorboard_gets_the_rate_of_every_nth_step(tmp_path):
    model = helpers.unit_gradient_model(keras.optimizers.SGD(exponential()))
    monitor = LearningRateMonitor(log_dir=tmp_path, every_n_steps=2)
    model.fit(*helpers.ones(4), batch_size=1, epochs=2, verbose=0, callbacks=[monitor])
    steps, values = read_scalars(tmp_path, "learning_rate")
    assert steps == [0, 2, 4, 6]
    np.testing.assert_allclose(values, [value(exponential(), s) for s in steps], rtol=1e-6)


def test_tensorboard_gets_a_float_rate_changed_per_batch(tmp_path):
    model = helpers.unit_gradient_model(keras.optimizers.SGD(1.0))
    callbacks = [LearningRateMonitor(log_dir=tmp_path), LearningRateDecay(lambda step: 0.01 * (step + 1))]
    model.fit(*helpers.ones(5), batch_size=1, verbose=0, callbacks=callbacks)
    steps, values = read_scalars(tmp_path, "learning_rate")
    assert steps == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(values, [0.01, 0.02, 0.03, 0.04, 0.05], rtol=1e-6)


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(learning_rate_monitor_module).failed == 0
