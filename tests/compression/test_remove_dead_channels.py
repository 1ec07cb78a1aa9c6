import keras
import numpy as np
import pytest

from tfopt.compression import remove_dead_channels

pytestmark = pytest.mark.backend_agnostic
L = keras.layers


def x_for(model, n=8):
    return np.random.default_rng(3).normal(size=(n, *model.inputs[0].shape[1:])).astype("float32")


def assert_lossless(model, shrunk):
    x = x_for(model)
    assert np.abs(model.predict(x, verbose=0) - shrunk.predict(x, verbose=0)).max() <= 1e-5


def zero_output_channels(layer, channels):
    values = layer.get_weights()
    values[0][..., channels] = 0.0
    if len(values) > 1:
        values[1][channels] = 0.0
    layer.set_weights(values)


def test_sequential_lossless_with_a_dead_conv_filter_and_dense_unit():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(6, 3, activation="relu", name="c1"),
        L.Conv2D(5, 3, activation="relu", name="c2"),
        L.Flatten(name="flat"),
        L.Dense(7, activation="tanh", name="d1"),
        L.Dense(3, name="out"),
    ])
    zero_output_channels(model.get_layer("c1"), [0, 4])
    zero_output_channels(model.get_layer("d1"), [1, 2, 6])
    shrunk = remove_dead_channels(model)
    assert isinstance(shrunk, keras.Sequential)
    assert [layer.output.shape[-1] for layer in shrunk.layers] == [4, 5, 20, 4, 3]
    assert shrunk.count_params() == (18 * 4 + 4) + (36 * 5 + 5) + (20 * 4 + 4) + (4 * 3 + 3)
    assert_lossless(model, shrunk)


def test_a_channel_whose_inputs_are_all_dead_is_dead_too():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), L.Dense(4, activation="relu", name="a"),
                              L.Dense(3, activation="relu", name="b"), L.Dense(2, name="out")])
    zero_output_channels(model.get_layer("a"), [0, 1])
    kernel, bias = model.get_layer("b").get_weights()
    kernel[2:, 0], bias[0] = 0.0, 0.0  # unit 0 of b only reads the dead units 0 and 1 of a
    model.get_layer("b").set_weights([kernel, bias])
    shrunk = remove_dead_channels(model)
    assert [layer.output.shape[-1] for layer in shrunk.layers] == [2, 2, 2]
    assert_lossless(model, shrunk)


def randomize_batch_norm(layer, rng):
    n = layer.gamma.shape[0]
    layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(size=n), rng.normal(size=n), rng.uniform(0.5, 2, n)])


def test_functional_with_batch_norm_zeroing_channels_is_lossless():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    i = keras.Input((6, 6, 3))
    x = L.Conv2D(8, 3, padding="same", name="c1")(i)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.Activation("relu", name="act")(x)
    x = L.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU(name="relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(i, L.Dense(3, name="out")(x))
    for name in ("bn1", "bn2"):
        randomize_batch_norm(model.get_layer(name), rng)
    gamma, beta, mean, var = model.get_layer("bn1").get_weights()
    gamma[[1, 5]], beta[[1, 5]] = 0.0, 0.0  # network slimming's zeros: the BN outputs 0 whatever it reads
    model.get_layer("bn1").set_weights([gamma, beta, mean, var])
    gamma, beta, mean, var = model.get_layer("bn2").get_weights()
    gamma[2], beta[2] = 0.0, 0.0
    beta[[1, 5]], mean[[1, 5]] = 0.0, 0.0  # bn2 maps the dead channels 1 and 5 (zero in, zero mean) to 0
    model.get_layer("bn2").set_weights([gamma, beta, mean, var])
    shrunk = remove_dead_channels(model)
    assert shrunk.get_layer("c1").output.shape[-1] == 5
    assert shrunk.get_layer("dw").get_weights()[0].shape == (3, 3, 5, 1)
    np.testing.assert_array_equal(shrunk.get_layer("bn2").get_weights()[3],
                                  model.get_layer("bn2").get_weights()[3][[0, 3, 4, 6, 7]])
    assert_lossless(model, shrunk)


def test_a_channel_with_a_non_zero_beta_is_kept():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((5,)), L.Dense(4, name="d"), L.BatchNormalization(name="bn"),
                              L.Dense(2, name="out")])
    zero_output_channels(model.get_layer("d"), [0, 1])
    gamma, beta, mean, var = model.get_layer("bn").get_weights()
    beta[0] = 0.5  # channel 0 outputs the constant 0.5: not dead; channel 1 outputs 0
    model.get_layer("bn").set_weights([gamma, beta, mean, var])
    shrunk = remove_dead_channels(model)
    assert shrunk.get_layer("d").units == 3
    assert_lossless(model, shrunk)


def test_residual_add_removes_a_channel_only_when_dead_on_every_branch():
    keras.utils.set_random_seed(3)
    i = keras.Input((5, 5, 2))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="stem")(i)
    y = L.Conv2D(6, 3, padding="same", activation="relu", name="a")(x)
    y = L.Conv2D(6, 3, padding="same", name="b")(y)
    z = L.Add(name="add")([x, y])
    z = L.ReLU(name="relu")(z)
    model = keras.Model(i, L.Dense(2, name="out")(L.Flatten()(z)))
    zero_output_channels(model.get_layer("stem"), [0, 2, 3])
    zero_output_channels(model.get_layer("b"), [0, 3, 5])  # dead on both branches: 0 and 3
    shrunk = remove_dead_channels(model)
    assert shrunk.get_layer("stem").filters == shrunk.get_layer("b").filters == 4
    np.testing.assert_array_equal(shrunk.get_layer("b").get_weights()[1],
                                  model.get_layer("b").get_weights()[1][[1, 2, 4, 5]])
    assert_lossless(model, shrunk)


def test_multiply_removes_a_channel_dead_on_either_side_and_outputs_keep_their_size():
    keras.utils.set_random_seed(4)
    i = keras.Input((6,))
    a = L.Dense(4, name="a")(i)
    b = L.Dense(4, name="b")(i)
    m = L.Multiply(name="mul")([a, b])
    model = keras.Model(i, [L.Dense(2, name="out")(m), L.Dense(3, name="head")(a)])
    zero_output_channels(model.get_layer("a"), [1])
    zero_output_channels(model.get_layer("b"), [2])
    zero_output_channels(model.get_layer("out"), [0])  # an output keeps its size even with a dead unit
    shrunk = remove_dead_channels(model)
    # Channel 1 is dead in `a` and in the product; channel 2 is dead in the product, but "head" reads a's channel
    # 2, which is alive: it stays.
    assert (shrunk.get_layer("a").units, shrunk.get_layer("b").units, shrunk.get_layer("out").units) == (3, 3, 2)
    x = x_for(model)
    for before, after in zip(model.predict(x, verbose=0), shrunk.predict(x, verbose=0)):
        assert np.abs(before - after).max() <= 1e-5


def test_atol_removes_near_zero_channels_and_sigmoid_channels_are_never_dead():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((4,)), L.Dense(5, activation="sigmoid", name="s"),
                              L.Dense(5, name="d"), L.Dense(2, name="out")])
    zero_output_channels(model.get_layer("s"), [0])  # sigmoid(0) = 0.5: alive
    kernel, bias = model.get_layer("d").get_weights()
    kernel[:, 1] *= 1e-7
    bias[1] = 0.0
    model.get_layer("d").set_weights([kernel, bias])
    assert remove_dead_channels(model).get_layer("s").units == 5
    assert remove_dead_channels(model).get_layer("d").units == 5
    assert remove_dead_channels(model, atol=1e-5).get_layer("d").units == 4


def test_rejects_bad_arguments():
    model = keras.Sequential([keras.Input((4,)), L.Dense(2)])
    with pytest.raises(ValueError, match=r"Argument `atol` must be a finite number >= 0. Received: atol=-1"):
        remove_dead_channels(model, atol=-1)
    with pytest.raises(TypeError, match=r"Argument `model` must be a keras.Model"):
        remove_dead_channels("model.keras")
