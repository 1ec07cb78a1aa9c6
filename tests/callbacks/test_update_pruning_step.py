"""UpdatePruningStep: after every epoch and after training the stored weights of a pruned model hold the zeros."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.callbacks import UpdatePruningStep
from tfopt.compression import ConstantSparsity, prune_low_magnitude

pytestmark = pytest.mark.backend_agnostic


def pruned_model():
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8), keras.layers.Dense(3)])
    model = prune_low_magnitude(base, ConstantSparsity(0.5, begin_step=5, frequency=1000))
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse")
    return model


def data():
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    return x, x[:, :3] * 2


class StoredZeros(keras.callbacks.Callback):
    """Counts, at each epoch end (after the callbacks before it), stored weights that are not zero where pruned."""

    def __init__(self):
        super().__init__()
        self.leaks = []

    def on_epoch_end(self, epoch, logs=None):
        leaks = 0
        for wrapper in self.model.layers:
            stored = ops.convert_to_numpy(wrapper.layer.kernel)
            leaks += int(np.count_nonzero(stored[ops.convert_to_numpy(wrapper.masks[0]) == 0]))
        self.leaks.append(leaks)


def test_stored_weights_hold_the_zeros_at_every_epoch_end():
    model = pruned_model()
    check = StoredZeros()
    model.fit(*data(), batch_size=4, epochs=3, verbose=0, callbacks=[UpdatePruningStep(), check])
    assert check.leaks == [0, 0, 0]


def test_without_it_momentum_moves_the_stored_pruned_weights_but_not_the_forward_pass():
    model = pruned_model()
    check = StoredZeros()
    model.fit(*data(), batch_size=4, epochs=2, verbose=0, callbacks=[check])
    assert check.leaks[-1] > 0  # what the callback is for
    for wrapper in model.layers:
        effective = ops.convert_to_numpy(wrapper.masked_weights()[0])
        assert np.all(effective[ops.convert_to_numpy(wrapper.masks[0]) == 0] == 0)


def test_a_model_without_pruning_wrappers_is_an_error():
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="UpdatePruningStep was given to model .* which has no pruning wrappers"):
        model.fit(*data(), epochs=1, verbose=0, callbacks=[UpdatePruningStep()])


def test_config_round_trip():
    assert UpdatePruningStep.from_config(UpdatePruningStep().get_config()).get_config() == {}
