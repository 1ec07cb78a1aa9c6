"""UpdatePruningStep: after every epoch and after training the stored weights of a pruned model hold the zeros."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.callbacks import UpdatePruningStep
from tfopt.compression import ConstantSparsity, PolynomialDecay, prune_low_magnitude

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


def fit_with(schedule, epochs=2, steps=4):
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="hidden"),
                             keras.layers.Dense(3, name="out")])
    model = prune_low_magnitude(base, schedule)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    x, y = data()
    model.fit(x, y, batch_size=len(x) // steps, epochs=epochs, verbose=0, callbacks=[UpdatePruningStep()])
    return model


def never_prunes_warnings(record):
    return [str(w.message) for w in record if "never prunes" in str(w.message)]


def test_warns_once_when_end_step_is_below_frequency():
    schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=5, frequency=100)
    with pytest.warns(UserWarning) as record:
        model = fit_with(schedule)
    (message,) = never_prunes_warnings(record)
    assert "'prune_low_magnitude_hidden'" in message and "'prune_low_magnitude_out'" in message
    assert "no pruning step in steps 1 to 8 (begin_step=0, end_step=5, frequency=100)" in message
    # The warning tells the truth: the fit ended dense.
    assert all(float(np.mean(ops.convert_to_numpy(w.masks[0]))) == 1.0 for w in model.layers)


def test_warns_when_begin_step_is_after_the_last_step_of_the_fit():
    with pytest.warns(UserWarning) as record:
        fit_with(ConstantSparsity(0.5, begin_step=100, frequency=1))
    assert "no pruning step in steps 1 to 8" in never_prunes_warnings(record)[0]


def test_warns_when_every_pruning_step_has_zero_sparsity():
    with pytest.warns(UserWarning) as record:
        fit_with(PolynomialDecay(0.0, 0.8, begin_step=1, end_step=40, frequency=50))
    assert "sparsity 0 at every pruning step in steps 1 to 8" in never_prunes_warnings(record)[0]


@pytest.mark.parametrize("schedule", [
    ConstantSparsity(0.5, begin_step=0, frequency=4),
    PolynomialDecay(0.0, 0.8, begin_step=0, end_step=8, frequency=2),
    ConstantSparsity(0.5, begin_step=8, frequency=100),
])
def test_no_warning_when_the_schedule_prunes_in_the_fit(recwarn, schedule):
    model = fit_with(schedule)
    assert not never_prunes_warnings(recwarn)
    assert float(np.mean(ops.convert_to_numpy(model.layers[0].masks[0]))) < 1.0


def test_never_prunes_counts_from_the_wrappers_step():
    from tfopt.callbacks.update_pruning_step import never_prunes

    schedule = ConstantSparsity(0.5, begin_step=0, end_step=10, frequency=5)
    assert never_prunes(schedule, 0, 4) == "no pruning step in steps 1 to 4 (begin_step=0, end_step=10, frequency=5)"
    assert never_prunes(schedule, 3, 4) == ""  # step 5 is in 4..7
    assert never_prunes(schedule, 10, None).startswith("no pruning step in steps from 11")
    assert never_prunes(ConstantSparsity(0.5, begin_step=0, frequency=5), 10, None) == ""
