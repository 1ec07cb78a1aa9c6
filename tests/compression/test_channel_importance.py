import keras
import numpy as np
import pytest

from tfopt.compression import channel_importance

pytestmark = pytest.mark.backend_agnostic
L = keras.layers


def model():
    keras.utils.set_random_seed(0)
    i = keras.Input((5, 5, 2))
    x = L.Conv2D(4, 3, name="conv")(i)
    x = L.BatchNormalization(name="bn")(x)
    x = L.SeparableConv2D(3, 2, depth_multiplier=2, name="sep")(x)
    x = L.Flatten()(x)
    return keras.Model(i, L.Dense(2, name="out")(x))


def test_l1_and_l2_are_the_norms_of_each_output_channel():
    m = model()
    for criterion, norm in (("l1", lambda k: np.abs(k).sum(0)), ("l2", lambda k: np.sqrt((k**2).sum(0)))):
        scores = channel_importance(m, criterion)
        assert sorted(scores) == ["conv", "out", "sep"]
        for name, weight in (("conv", m.get_layer("conv").kernel), ("sep", m.get_layer("sep").pointwise_kernel),
                             ("out", m.get_layer("out").kernel)):
            k = np.asarray(keras.ops.convert_to_numpy(weight), "float64")
            np.testing.assert_allclose(scores[name], norm(k.reshape(-1, k.shape[-1])), rtol=1e-6)


def test_bn_gamma_scores_the_batch_norm_scales():
    m = model()
    gamma = np.array([0.5, -2.0, 0.0, 1.0], "float32")
    bn = m.get_layer("bn")
    bn.set_weights([gamma, *bn.get_weights()[1:]])
    scores = channel_importance(m, "bn_gamma")
    assert list(scores) == ["bn"]
    np.testing.assert_array_equal(scores["bn"], np.abs(gamma))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"Argument `criterion` must be one of 'l1', 'l2', 'bn_gamma'. "
                                         r"Received: criterion='taylor'"):
        channel_importance(model(), "taylor")
    with pytest.raises(TypeError, match=r"Argument `model` must be a keras.Model"):
        channel_importance(L.Dense(2), "l1")
