"""PruningSchedule: the tfmot should_prune rule, and custom schedules through the base class."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.compression import ConstantSparsity, PruningSchedule, prune_low_magnitude, strip_pruning

pytestmark = pytest.mark.backend_agnostic


def reference_should_prune(step, begin_step, end_step, frequency):
    """tfmot's rule, transcribed."""
    in_range = step >= begin_step and (step <= end_step or end_step < 0)
    return in_range and (step - begin_step) % frequency == 0


@pytest.mark.parametrize("begin_step, end_step, frequency", [(0, -1, 1), (0, -1, 100), (7, 40, 3), (5, 5, 2)])
def test_should_prune_follows_the_tfmot_rule_at_every_step(begin_step, end_step, frequency):
    for step in range(0, 120):
        got = bool(ops.convert_to_numpy(PruningSchedule._should_prune_in_step(step, begin_step, end_step, frequency)))
        assert got == reference_should_prune(step, begin_step, end_step, frequency), step


@keras.saving.register_keras_serializable(package="tfopt_tests")
class EveryOtherStep(PruningSchedule):
    """A custom schedule: 60% on every even step."""

    def __call__(self, step):
        return ops.equal(ops.mod(step, 2), 0), ops.convert_to_tensor(0.6, "float32")

    def get_config(self):
        return {}


def test_a_custom_schedule_drives_the_wrapper():
    keras.utils.set_random_seed(0)
    model = prune_low_magnitude(keras.Sequential([keras.Input((10,)), keras.layers.Dense(10)]), EveryOtherStep())
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(np.ones((4, 10)), np.ones((4, 10)), batch_size=2, epochs=1, verbose=0)  # steps 1, 2: prunes at 2
    kernel = keras.ops.convert_to_numpy(strip_pruning(model).layers[0].kernel)
    assert np.count_nonzero(kernel) == 40


def test_the_base_class_is_abstract():
    with pytest.raises(TypeError):
        PruningSchedule()


def test_from_config_rebuilds_a_subclass():
    schedule = ConstantSparsity(0.3, 2, 9, 4)
    assert ConstantSparsity.from_config(schedule.get_config()).get_config() == schedule.get_config()
