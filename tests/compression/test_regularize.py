import keras
import numpy as np
import pytest

from tfopt.compression import add_regularizer
from tfopt.regularizers import GroupLasso

pytestmark = pytest.mark.backend_agnostic
L = keras.layers


def model():
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, name="conv")(i)
    x = L.BatchNormalization(name="bn")(x)
    x = L.SeparableConv2D(3, 2, name="sep")(x)
    x = L.DepthwiseConv2D(2, name="dw")(x)
    x = L.Flatten()(x)
    return keras.Model(i, L.Dense(2, name="out")(x))


def group_norms(kernel, factor):
    k = np.asarray(kernel, "float64")
    return factor * np.sqrt((k.reshape(-1, k.shape[-1]) ** 2).sum(0)).sum()


def total(losses):
    return sum(float(keras.ops.convert_to_numpy(v)) for v in losses)


def test_group_lasso_on_every_conv_and_dense_kernel_with_the_weights_kept():
    original = model()
    regularized = add_regularizer(original, GroupLasso(0.1), exclude=["out"])
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2)).astype("float32")
    np.testing.assert_array_equal(regularized.predict(x, verbose=0), original.predict(x, verbose=0))
    assert original.losses == []  # the original is not changed
    expected = group_norms(original.get_layer("conv").get_weights()[0], 0.1) + group_norms(
        original.get_layer("sep").get_weights()[1], 0.1)  # the pointwise kernel of the SeparableConv
    assert total(regularized.losses) == pytest.approx(expected, rel=1e-5)
    assert regularized.get_layer("out").kernel_regularizer is None


def test_network_slimming_l1_on_batch_norm_gamma_trains_and_saves(tmp_path):
    original = model()
    bn = original.get_layer("bn")
    bn.set_weights([np.array([1.0, -2.0, 0.5, 0.0], "float32"), *bn.get_weights()[1:]])
    slim = add_regularizer(original, keras.regularizers.L1(0.01), layer_types=L.BatchNormalization, weight="gamma")
    assert total(slim.losses) == pytest.approx(0.035)
    slim.save(tmp_path / "slim.keras")
    loaded = keras.models.load_model(tmp_path / "slim.keras")
    assert total(loaded.losses) == pytest.approx(0.035)
    loaded.compile("sgd", "mse")
    loaded.fit(np.zeros((4, 6, 6, 2)), np.zeros((4, 2)), verbose=0)
    gamma = loaded.get_layer("bn").get_weights()[0]
    assert np.abs(gamma).sum() < 3.5  # the penalty shrank it


def test_depthwise_kernel_and_sequential_models():
    seq = keras.Sequential([keras.Input((5,)), L.Dense(3, name="a"), L.Dense(2, name="b")])
    copy = add_regularizer(seq, GroupLasso(1.0, "input"), layer_types=(L.Dense,))
    assert isinstance(copy, keras.Sequential)
    k = seq.get_layer("a").get_weights()[0]
    expected = np.sqrt((k**2).sum(1)).sum() + np.sqrt((seq.get_layer("b").get_weights()[0] ** 2).sum(1)).sum()
    assert total(copy.losses) == pytest.approx(expected, rel=1e-5)
    dw = add_regularizer(model(), keras.regularizers.L2(1.0), layer_types=L.DepthwiseConv2D)
    assert total(dw.losses) == pytest.approx(float((dw.get_layer("dw").get_weights()[0] ** 2).sum()), rel=1e-5)


def test_rejects_bad_arguments():
    m = model()
    with pytest.raises(TypeError, match=r"Argument `regularizer` must be a keras.regularizers.Regularizer"):
        add_regularizer(m, 0.1)
    with pytest.raises(TypeError, match=r"Argument `layer_types` must be a keras layer class"):
        add_regularizer(m, GroupLasso(), layer_types="Dense")
    with pytest.raises(ValueError, match=r"Argument `weight`: layer 'conv' \(Conv2D\) has no regularizer for a "
                                         r"weight named 'gamma'"):
        add_regularizer(m, GroupLasso(), weight="gamma")
    with pytest.raises(ValueError, match=r"Argument `layer_types`: model .* has no layer of the types \['LSTM'\]"):
        add_regularizer(m, GroupLasso(), layer_types=L.LSTM)
    with pytest.raises(ValueError, match=r"Argument `exclude` names layers that are not in model .*\['ghost'\]"):
        add_regularizer(m, GroupLasso(), exclude=["ghost"])
