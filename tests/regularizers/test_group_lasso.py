import keras
import numpy as np
import pytest

from tfopt.regularizers import GroupLasso

pytestmark = pytest.mark.backend_agnostic


def reference_penalty(w, factor, axis):
    """NumPy float64 transcription: factor * sum over groups of the group's L2 norm."""
    w = np.asarray(w, "float64")
    if w.ndim <= 1:
        return factor * np.abs(w).sum()
    channel = -1 if axis == "output" else -2
    groups = np.moveaxis(w, channel, -1).reshape(-1, w.shape[channel])
    return factor * np.sqrt((groups**2).sum(axis=0)).sum()


def reference_gradient(w, factor, axis):
    w = np.asarray(w, "float64")
    channel = -1 if axis == "output" else -2
    norms = np.sqrt((np.moveaxis(w, channel, -1).reshape(-1, w.shape[channel]) ** 2).sum(axis=0))
    shape = [1] * w.ndim
    shape[channel] = -1
    norms = norms.reshape(shape)
    return factor * np.divide(w, norms, out=np.zeros_like(w), where=norms > 0)


@pytest.mark.parametrize("axis", ["output", "input"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 3, 2, 6), (3, 4, 5)])
def test_penalty_is_the_sum_of_channel_l2_norms(axis, shape):
    w = np.random.default_rng(0).normal(size=shape).astype("float32")
    value = float(keras.ops.convert_to_numpy(GroupLasso(0.3, axis)(keras.ops.convert_to_tensor(w))))
    assert value == pytest.approx(reference_penalty(w, 0.3, axis), rel=1e-5)


def test_a_vector_gets_l1_network_slimming_on_batch_norm_gamma():
    gamma = np.array([0.5, -2.0, 0.0, 1.5], "float32")
    assert float(keras.ops.convert_to_numpy(GroupLasso(0.1)(gamma))) == pytest.approx(0.4)


@pytest.mark.parametrize("axis", ["output", "input"])
def test_gradient_matches_numpy_with_zero_subgradient_at_a_dead_channel(axis):
    # Inputs are zero, so the data loss has no kernel gradient: one SGD step at lr=1 moves the kernel by exactly
    # minus the penalty's gradient. Channel 2 (a column) / input 1 (a row) is all zero: its subgradient is 0.
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(4, 5)).astype("float32")
    if axis == "output":
        kernel[:, 2] = 0.0
    else:
        kernel[1, :] = 0.0
    layer = keras.layers.Dense(5, kernel_regularizer=GroupLasso(0.05, axis))
    model = keras.Sequential([keras.Input((4,)), layer])
    layer.set_weights([kernel, np.zeros(5, "float32")])
    model.compile(keras.optimizers.SGD(1.0), "mse")
    model.train_on_batch(np.zeros((2, 4), "float32"), np.zeros((2, 5), "float32"))
    moved = kernel - layer.get_weights()[0]
    np.testing.assert_allclose(moved, reference_gradient(kernel, 0.05, axis), rtol=1e-5, atol=1e-7)
    assert np.all(np.isfinite(layer.get_weights()[0]))


def test_many_steps_drive_channels_to_zero_like_numpy_proximal_free_descent():
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(3, 4)).astype("float32")
    layer = keras.layers.Dense(4, use_bias=False, kernel_regularizer=GroupLasso(0.2))
    model = keras.Sequential([keras.Input((3,)), layer])
    layer.set_weights([kernel])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    expected = kernel.astype("float64")
    for _ in range(20):
        model.train_on_batch(np.zeros((1, 3), "float32"), np.zeros((1, 4), "float32"))
        expected = expected - 0.1 * reference_gradient(expected, 0.2, "output")
    np.testing.assert_allclose(layer.get_weights()[0], expected, rtol=1e-4, atol=1e-6)
    assert np.linalg.norm(layer.get_weights()[0], axis=0).max() < np.linalg.norm(kernel, axis=0).max()


def test_config_round_trip_and_saved_model(tmp_path):
    reg = GroupLasso(0.02, "input")
    assert GroupLasso.from_config(reg.get_config()).get_config() == {"l": 0.02, "axis": "input"}
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_regularizer=reg)])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[0].kernel_regularizer, GroupLasso)
    assert loaded.layers[0].kernel_regularizer.get_config() == reg.get_config()
    np.testing.assert_allclose(sum(float(keras.ops.convert_to_numpy(v)) for v in loaded.losses),
                               reference_penalty(model.layers[0].get_weights()[0], 0.02, "input"), rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"l": -1.0}, ValueError, "Argument `l` must be a finite number >= 0. Received: l=-1.0"),
        ({"l": "big"}, TypeError, "Argument `l` must be a finite number >= 0. Received: l='big'"),
        ({"axis": "rows"}, ValueError, "Argument `axis` must be one of 'output', 'input'. Received: axis='rows'"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        GroupLasso(**kwargs)
