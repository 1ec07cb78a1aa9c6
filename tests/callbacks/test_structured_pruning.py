import keras
import numpy as np
import pytest

from tfopt.callbacks import StructuredPruning
from tfopt.compression import ConstantSparsity, PolynomialDecay, count_flops, remove_dead_channels

pytestmark = pytest.mark.backend_agnostic
L = keras.layers


def residual_cnn():
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 1))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(i)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU()(x)
    y = L.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    y = L.Conv2D(8, 3, padding="same", name="b")(y)
    z = L.ReLU()(L.Add(name="add")([x, y]))
    model = keras.Model(i, L.Dense(3, name="out")(L.GlobalAveragePooling2D()(z)))
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6, 6, 1)).astype("float32"), rng.integers(0, 3, n)


def live_channels(layer):
    kernel = layer.get_weights()[0]
    return int(np.count_nonzero(np.abs(kernel.reshape(-1, kernel.shape[-1])).sum(0)))


def test_prunes_gradually_then_remove_dead_channels_gives_the_small_model_losslessly():
    model = residual_cnn()
    x, y = data()
    callback = StructuredPruning(0.5)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[callback])
    assert callback.step == 24 and callback.sparsity == pytest.approx(0.5)
    assert [live_channels(model.get_layer(n)) for n in ("stem", "a", "b")] == [4, 4, 4]
    small = remove_dead_channels(model)
    assert [small.get_layer(n).filters for n in ("stem", "a", "b")] == [4, 4, 4]
    # MACs: stem 36*9*1*4, a 36*9*4*4, b 36*9*4*4, out 4*3
    assert count_flops(small) == 1296 + 5184 + 5184 + 12
    assert np.abs(small.predict(x, verbose=0) - model.predict(x, verbose=0)).max() <= 1e-5
    # The coupled stem/b channels are the same ones, and the BatchNorm of the pruned channels is zeroed.
    stem_live = np.abs(model.get_layer("stem").get_weights()[0]).sum((0, 1, 2)) > 0
    b_live = np.abs(model.get_layer("b").get_weights()[0]).sum((0, 1, 2)) > 0
    np.testing.assert_array_equal(stem_live, b_live)
    gamma, beta = model.get_layer("bn").get_weights()[:2]
    assert np.all(gamma[~stem_live] == 0) and np.all(beta[~stem_live] == 0)


def test_follows_the_schedule_steps_and_keeps_masked_channels_at_zero():
    model = residual_cnn()
    x, y = data(32)
    callback = StructuredPruning(schedule=ConstantSparsity(0.25, begin_step=3, frequency=100), target=None)
    model.fit(x[:16], y[:16], batch_size=8, epochs=1, verbose=0, callbacks=[callback])  # steps 1, 2
    assert live_channels(model.get_layer("a")) == 8
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callback])  # steps 3..10: resumes at 3
    assert callback.step == 10
    assert [live_channels(model.get_layer(n)) for n in ("stem", "a", "b")] == [6, 6, 6]


def test_schedule_with_polynomial_decay_and_a_matching_target():
    callback = StructuredPruning(0.75, PolynomialDecay(0.0, 0.75, begin_step=0, end_step=8, frequency=2))
    model = residual_cnn()
    model.fit(*data(), batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    assert [live_channels(model.get_layer(n)) for n in ("stem", "a", "b")] == [2, 2, 2]


def test_config_round_trip():
    callback = StructuredPruning(None, ConstantSparsity(0.3, begin_step=1), criterion="bn_gamma", min_channels=2,
                                 round_to=4, skip=["a"])
    again = StructuredPruning.from_config(callback.get_config())
    assert again.get_config() == callback.get_config()
    assert isinstance(again.schedule, ConstantSparsity) and again.schedule.target_sparsity == 0.3


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"target": 1.0}, ValueError, r"Argument `target` must be a number in \[0.0, 1.0\)\. Received: target=1.0"),
        ({"target": None}, ValueError, r"Argument `target` must be a number in \[0, 1\) when no `schedule` is given"),
        ({"schedule": 0.5}, TypeError, r"Argument `schedule` must be a tfopt.compression.PruningSchedule"),
        ({"target": 0.5, "schedule": ConstantSparsity(0.3, 0)}, ValueError,
         r"Argument `target` must be None or the schedule's final sparsity \(0.3\)\. Received: target=0.5"),
        ({"criterion": "taylor"}, ValueError, r"Argument `criterion` must be one of 'l1', 'l2', 'bn_gamma'"),
        ({"min_channels": 0}, ValueError, r"Argument `min_channels` must be an integer >= 1"),
        ({"skip": "a"}, TypeError, r"Argument `skip` must be a list of layer names"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        StructuredPruning(**kwargs)


def test_rejects_a_target_below_min_channels_before_training():
    model = residual_cnn()
    with pytest.raises(ValueError, match=r"Argument `min_channels`: pruning 90% of the 8 channels"):
        model.fit(*data(8), epochs=1, verbose=0, callbacks=[StructuredPruning(0.9, min_channels=2)])


def test_steps_per_execution_prunes_at_the_execution_holding_the_schedule_step():
    model = residual_cnn()
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=4)
    x, y = data(16)
    callback = StructuredPruning(None, ConstantSparsity(0.5, begin_step=3, end_step=3, frequency=1))
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[callback])
    assert callback.step == 16
    assert [live_channels(model.get_layer(n)) for n in ("stem", "a", "b")] == [4, 4, 4]
    small = remove_dead_channels(model)
    assert np.abs(small.predict(x, verbose=0) - model.predict(x, verbose=0)).max() <= 1e-5
