import keras
import numpy as np
import pytest

from tfopt.compression import count_flops, export_tflite, prune_channels
from tfopt.compression.report import measure_model

pytestmark = pytest.mark.backend_agnostic
L = keras.layers


def seeded(seed=0):
    keras.utils.set_random_seed(seed)


def sequential_cnn():
    """8x8x1 -> Conv(8) -> Conv(16) -> pool -> Flatten -> Dense(12) -> Dense(3)."""
    seeded()
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        L.Conv2D(8, 3, padding="same", activation="relu", name="c1"),
        L.Conv2D(16, 3, padding="same", activation="relu", name="c2"),
        L.MaxPooling2D(2, name="pool"),
        L.Flatten(name="flat"),
        L.Dense(12, activation="relu", name="d1"),
        L.Dense(3, name="out"),
    ])


def residual_cnn():
    seeded(1)
    i = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(i)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(name="stem_relu")(x)
    y = L.Conv2D(8, 3, padding="same", activation="relu", name="a")(x)
    y = L.Conv2D(8, 3, padding="same", name="b")(y)
    z = L.Add(name="add")([x, y])
    z = L.GlobalAveragePooling2D(name="gap")(z)
    return keras.Model(i, L.Dense(4, name="out")(z))


def data(shape, n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def l1(layer):
    kernel = layer.get_weights()[0]
    return np.abs(kernel.reshape(-1, kernel.shape[-1])).sum(0)


def test_sequential_shapes_parameters_and_flops_against_hand_counts():
    model = sequential_cnn()
    pruned = prune_channels(model, 0.5)
    assert isinstance(pruned, keras.Sequential)
    assert [pruned.get_layer(n).output.shape[-1] for n in ("c1", "c2", "d1", "out")] == [4, 8, 6, 3]
    # c1: 3*3*1*4+4, c2: 3*3*4*8+8, d1: (4*4*8)*6+6, out: 6*3+3
    assert pruned.count_params() == 40 + 296 + 774 + 21
    # MACs: c1 64*9*1*4, c2 64*9*4*8, d1 128*6, out 6*3
    assert count_flops(pruned) == 2304 + 18432 + 768 + 18
    assert count_flops(model) == 64 * 9 * 8 + 64 * 9 * 8 * 16 + 256 * 12 + 12 * 3
    assert [layer.output.shape[-1] for layer in model.layers] == [8, 16, 16, 256, 12, 3]  # original untouched


def test_keeps_the_highest_l1_channels_and_computes_the_masked_model():
    # Without BatchNorm and with relu, removing a channel equals zeroing its kernel column and bias: the pruned
    # model must predict what the original predicts with those columns zeroed (checks every slice, the Dense rows
    # after Flatten included).
    model = sequential_cnn()
    kept = {name: np.sort(np.argsort(-l1(model.get_layer(name)), kind="stable")[: n])
            for name, n in (("c1", 4), ("c2", 8), ("d1", 6))}
    pruned = prune_channels(model, 0.5)
    masked = keras.models.clone_model(model)
    masked.set_weights(model.get_weights())
    for name, keep in kept.items():
        kernel, bias = masked.get_layer(name).get_weights()
        drop = np.setdiff1d(np.arange(kernel.shape[-1]), keep)
        kernel[..., drop], bias[drop] = 0.0, 0.0
        masked.get_layer(name).set_weights([kernel, bias])
        np.testing.assert_array_equal(pruned.get_layer(name).get_weights()[1],
                                      model.get_layer(name).get_weights()[1][keep])
    x = data((8, 8, 1))
    np.testing.assert_allclose(pruned.predict(x, verbose=0), masked.predict(x, verbose=0), atol=1e-5)


def test_coupled_channels_of_an_add_are_pruned_together_with_one_shared_score():
    model = residual_cnn()
    stem, b = model.get_layer("stem"), model.get_layer("b")
    # Per layer, stem ranks channels 0-3 first and b ranks 4-7 first; summed (each divided by its mean) the
    # group ranks 0, 1, 4, 5 first.
    stem_scale = np.array([8, 7, 2, 1, 3.5, 3, 0.5, 0.4])
    b_scale = np.array([1, 1, 0.5, 0.5, 6, 5, 0.1, 0.1])
    stem.set_weights([np.ones_like(stem.get_weights()[0]) * stem_scale])
    kernel, bias = b.get_weights()
    b.set_weights([np.ones_like(kernel) * b_scale * stem_scale.mean() / b_scale.mean(), bias])
    pruned = prune_channels(model, 0.5)
    assert pruned.get_layer("stem").output.shape[-1] == pruned.get_layer("b").output.shape[-1] == 4
    assert pruned.get_layer("a").output.shape[-1] == 4
    assert pruned.get_layer("out").output.shape[-1] == 4
    np.testing.assert_array_equal(pruned.get_layer("stem_bn").get_weights()[0],
                                  model.get_layer("stem_bn").get_weights()[0][[0, 1, 4, 5]])
    np.testing.assert_array_equal(pruned.get_layer("b").get_weights()[1], bias[[0, 1, 4, 5]])
    np.testing.assert_array_equal(pruned.get_layer("out").get_weights()[0],
                                  model.get_layer("out").get_weights()[0][[0, 1, 4, 5]])


def test_depthwise_separable_and_concatenate_follow_the_channels():
    seeded(2)
    i = keras.Input((6, 6, 2))
    x = L.Conv2D(6, 1, name="c")(i)
    d = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)
    s = L.SeparableConv2D(4, 3, padding="same", name="sep")(d)
    cat = L.Concatenate(name="cat")([x, s])
    out = L.Dense(2, name="out")(L.GlobalMaxPooling2D()(cat))
    model = keras.Model(i, out)
    pruned = prune_channels(model, {"c": 0.5, "sep": 0.5})
    assert pruned.get_layer("dw").output.shape[-1] == 6
    assert pruned.get_layer("sep").get_weights()[0].shape == (3, 3, 6, 1)
    assert pruned.get_layer("sep").get_weights()[1].shape == (1, 1, 6, 2)
    assert pruned.get_layer("cat").output.shape[-1] == 5
    assert pruned.get_layer("out").get_weights()[0].shape == (5, 2)
    # MACs: c 36*2*3, dw 36*9*3*2, sep 36*9*6 + 36*6*2, out 5*2
    assert count_flops(pruned) == 216 + 1944 + 1944 + 432 + 10
    pruned.predict(data((6, 6, 2)), verbose=0)


def test_amount_per_layer_round_to_and_min_channels():
    model = sequential_cnn()
    pruned = prune_channels(model, {"c2": 0.7}, round_to=4)
    assert [pruned.get_layer(n).output.shape[-1] for n in ("c1", "c2", "d1")] == [8, 8, 12]  # 16-11=5 -> 8
    with pytest.raises(ValueError, match=r"Argument `min_channels`: pruning 70% of the 8 channels of layer\(s\) "
                                         r"\['c1'\] would leave 3, fewer than min_channels=4"):
        prune_channels(model, {"c1": 0.7}, min_channels=4)


def test_bn_gamma_criterion_keeps_the_largest_scales():
    model = residual_cnn()
    gamma = np.array([0.1, 2.0, 0.2, 1.5, 0.05, 1.0, 0.3, 3.0], "float32")
    bn = model.get_layer("stem_bn")
    bn.set_weights([gamma, *bn.get_weights()[1:]])
    pruned = prune_channels(model, 0.5, criterion="bn_gamma")
    np.testing.assert_array_equal(pruned.get_layer("stem_bn").get_weights()[0], gamma[[1, 3, 5, 7]])


def test_the_shrunk_model_saves_loads_trains_and_converts_to_tflite(tmp_path):
    pruned = prune_channels(residual_cnn(), 0.5)
    x = data((8, 8, 3), n=16)
    pruned.save(tmp_path / "p.keras")
    loaded = keras.models.load_model(tmp_path / "p.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), pruned.predict(x, verbose=0), atol=1e-6)
    loaded.compile("adam", "mse")
    history = loaded.fit(x, np.zeros((16, 4)), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    if keras.backend.backend() == "tensorflow":
        path = export_tflite(pruned, str(tmp_path / "p.tflite"))
        labels = pruned.predict(x, verbose=0).argmax(1)
        report = measure_model(path, x, labels, measure_latency=False)
        assert report.accuracy == 1.0  # the float file predicts what the Keras model predicts
        assert report.flops == count_flops(pruned) == 64 * 27 * 4 + 2 * 64 * 36 * 4 + 16


def test_skip_leaves_a_layer_unpruned_and_unsupported_layers_are_named():
    model = sequential_cnn()
    pruned = prune_channels(model, 0.5, skip=["c2"])
    assert [pruned.get_layer(n).output.shape[-1] for n in ("c1", "c2", "d1")] == [4, 16, 6]
    seeded()
    i = keras.Input((4, 4, 2))
    x = L.Conv2D(4, 1, name="c")(i)
    x = L.Reshape((16, 4), name="reshape")(x)
    x = L.Conv1D(4, 1, name="c1d")(x)
    model = keras.Model(i, L.Dense(2, name="out")(L.Flatten()(x)))
    with pytest.raises(ValueError, match=r"cannot follow the layer\(s\) 'reshape' \(Reshape: unsupported layer "
                                         r"type\).*Pass their names in `skip=`"):
        prune_channels(model, 0.5)
    pruned = prune_channels(model, 0.5, skip=["reshape"])
    assert pruned.get_layer("c").output.shape[-1] == 4  # it feeds the skipped layer
    assert pruned.get_layer("c1d").output.shape[-1] == 2


@pytest.mark.parametrize(
    "amount, message",
    [
        (1.0, r"Argument `amount` must be a number in \[0.0, 1.0\)\. Received: amount=1.0"),
        (-0.1, r"Argument `amount` must be a number in \[0.0, 1.0\)\. Received: amount=-0.1"),
        ({"c1": 1.5}, r"Argument `amount\['c1'\]` must be a number in \[0.0, 1.0\)\. Received: amount\['c1'\]=1.5"),
        ({"nope": 0.5}, r"Argument `amount` names layers that are not in model .*\['nope'\]"),
        ({"pool": 0.5}, r"Argument `amount`: layer 'pool' \(MaxPooling2D\) has no output channels of its own"),
        ({"out": 0.5}, r"Argument `amount`: the output channels of layer 'out' cannot be pruned: it reaches the "
                       r"model output 'out'"),
    ],
)
def test_rejects_bad_amounts(amount, message):
    with pytest.raises(ValueError, match=message):
        prune_channels(sequential_cnn(), amount)


def test_rejects_bad_models_and_arguments():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    sub = Subclassed()
    sub(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match=r"Argument `model` must be a Sequential or functional keras.Model; "
                                         r".* is a subclassed model \(Subclassed\).*functional API"):
        prune_channels(sub, 0.5)
    with pytest.raises(ValueError, match=r"Argument `criterion` must be one of 'l1', 'l2', 'bn_gamma'"):
        prune_channels(sequential_cnn(), 0.5, criterion="random")
    with pytest.raises(ValueError, match=r"Argument `skip` names layers that are not in model .*\['ghost'\]"):
        prune_channels(sequential_cnn(), 0.5, skip=["ghost"])
    with pytest.raises(TypeError, match=r"Argument `skip` must be a list of layer names"):
        prune_channels(sequential_cnn(), 0.5, skip="c1")


def test_an_unsupported_arrangement_in_a_coupled_group_is_named():
    seeded()
    i = keras.Input((4, 4, 2))
    a = L.Conv2D(2, 1, name="a")(i)
    b = L.Conv2D(2, 1, name="b")(i)
    cat = L.Concatenate(name="cat")([a, b])
    c = L.Conv2D(4, 1, name="c")(i)
    add = L.Add(name="add")([cat, c])
    model = keras.Model(i, L.Dense(2, name="out")(L.Flatten()(add)))
    with pytest.raises(ValueError, match=r"the channels joined by Add 'add' come from layers arranged differently"):
        prune_channels(model, 0.5)


def test_an_unsupported_layer_in_a_coupled_group_is_named_and_skip_keeps_the_group_whole():
    seeded()
    i = keras.Input((4, 4, 2))
    a = L.Conv2D(4, 1, name="a")(i)
    b = L.LayerNormalization(name="ln")(L.Conv2D(4, 1, name="b")(i))
    add = L.Add(name="add")([a, b])
    model = keras.Model(i, L.Dense(2, name="out")(L.Flatten()(L.Conv2D(6, 1, name="c")(add))))
    with pytest.raises(ValueError, match=r"cannot follow the layer\(s\) 'ln' \(LayerNormalization: unsupported "
                                         r"layer type\), 'add' \(Add: it reads an unsupported layer\)"):
        prune_channels(model, 0.5)
    pruned = prune_channels(model, 0.5, skip=["ln"])
    assert [pruned.get_layer(n).output.shape[-1] for n in ("a", "b", "c")] == [4, 4, 3]
