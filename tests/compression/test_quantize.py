import keras
import numpy as np
import pytest

from tfopt.compression import quantize_model
from tfopt.layers import QuantizeWrapper

pytestmark = pytest.mark.backend_agnostic


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def small_cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.DepthwiseConv2D(3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def wrappers(model):
    return {layer.layer.name: layer for layer in model.layers if isinstance(layer, QuantizeWrapper)}


def test_wraps_supported_layers_and_folds_batch_norm_first():
    model = small_cnn()
    qat = quantize_model(model)
    kinds = [type(layer).__name__ for layer in qat.layers]
    assert kinds == [
        "QuantizeWrapper",
        "QuantizeWrapper",
        "QuantizeWrapper",
        "MaxPooling2D",
        "Flatten",
        "Dropout",
        "QuantizeWrapper",
    ]
    wrapped = wrappers(qat)
    conv = wrapped[model.layers[0].name]
    assert conv.quantize_inputs and conv.range_points == ["input_0", "output"]  # it reads the float model input
    assert not wrapped[model.layers[2].name].quantize_inputs  # ReLU reads the quantized conv output
    assert not wrapped[model.layers[-1].name].quantize_inputs  # pooling, Flatten, Dropout keep the scale
    assert wrapped[model.layers[-1].name].range_points == ["pre_activation"]


def test_starts_from_the_same_function_up_to_rounding():
    model = small_cnn()
    x = np.random.default_rng(0).uniform(size=(32, 8, 8, 1)).astype("float32")
    qat = quantize_model(model)
    qat(x, training=True)  # sets the activation ranges from this batch
    np.testing.assert_allclose(qat.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.05)


def test_functional_model_with_a_merge_layer():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12,))
    a = keras.layers.Dense(8, activation="relu")(inputs)
    b = keras.layers.Dense(8)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Add()([a, b]))
    qat = quantize_model(keras.Model(inputs, outputs))
    wrapped = {type(w.layer).__name__ + str(w.quantize_inputs): w for w in qat.layers if isinstance(w, QuantizeWrapper)}
    assert set(wrapped) == {"DenseTrue", "AddFalse", "DenseFalse"}
    assert qat.predict(np.ones((3, 12), "float32"), verbose=0).shape == (3, 2)


def test_unsupported_layers_raise_or_stay_float_on_request():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4), keras.layers.LayerNormalization(), keras.layers.Dense(2)]
    )
    with pytest.raises(
        ValueError,
        match=r"layers quantization-aware training does not support: 'layer_normalization.*' "
        r"\(LayerNormalization\).*skip_unsupported=True",
    ):
        quantize_model(model)
    qat = quantize_model(model, skip_unsupported=True)
    assert [type(layer).__name__ for layer in qat.layers] == [
        "QuantizeWrapper",
        "LayerNormalization",
        "QuantizeWrapper",
    ]
    assert qat.layers[2].quantize_inputs  # it reads the float LayerNormalization output
    np.testing.assert_array_equal(qat.layers[1].get_weights()[0], model.layers[1].get_weights()[0])


def test_rejects_bad_arguments():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(
        ValueError,
        match="Argument `preserve_sparsity` must be one of 'auto', True, False. Received: preserve_sparsity='yes'",
    ):
        quantize_model(model, preserve_sparsity="yes")
    with pytest.raises(
        ValueError, match=r"Argument `ema_decay` must be a number in \[0.0, 1.0\). Received: ema_decay=1.5"
    ):
        quantize_model(model, ema_decay=1.5)
    with pytest.raises(ValueError, match="already prepared for QAT"):
        quantize_model(quantize_model(model))


def pruned_mlp(sparsity=0.75):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(3)])
    rng = np.random.default_rng(1)
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        kernel[rng.random(kernel.shape) < sparsity] = 0.0
        layer.set_weights([kernel, bias])
    return model


def test_sparsity_survives_qat_fine_tuning():
    model = pruned_mlp()
    zeros = [layer.get_weights()[0] == 0 for layer in model.layers]
    qat = quantize_model(model)  # "auto": kernels with zeros get masks
    assert all(w.preserve_sparsity for w in wrappers(qat).values())
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(256, 16)).astype("float32"), rng.integers(0, 3, 256)
    qat.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=3, verbose=0)
    for layer, zero in zip(model.layers, zeros):
        wrapper = wrappers(qat)[layer.name]
        assert not np.array_equal(numpy(wrapper.layer.kernel), layer.get_weights()[0])  # it trained
        effective = numpy(wrapper.quantized_weights()["kernel"])
        assert np.all(effective[zero] == 0)
        assert np.mean(effective == 0) == pytest.approx(np.mean(zero), abs=0.02)
    no_masks = quantize_model(model, preserve_sparsity=False)
    assert not any(w.preserve_sparsity for w in wrappers(no_masks).values())


def test_save_and_load_keep_predictions_and_ranges(tmp_path):
    model = small_cnn()
    qat = quantize_model(model)
    x = np.random.default_rng(3).uniform(size=(64, 8, 8, 1)).astype("float32")
    y = np.random.default_rng(4).integers(0, 10, 64)
    qat.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    qat.fit(x, y, epochs=1, verbose=0)
    qat.save(tmp_path / "qat.keras")
    loaded = keras.models.load_model(tmp_path / "qat.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qat.predict(x, verbose=0))
    for a, b in zip(wrappers(qat).values(), wrappers(loaded).values()):
        for point in a.range_points:
            assert [float(numpy(v)) for v in a.activation_range(point)] == [
                float(numpy(v)) for v in b.activation_range(point)
            ]
    for a, b in zip(qat.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(numpy(a), numpy(b))


def test_training_resumed_after_load_matches_unbroken_training(tmp_path):
    # Without the Dropout: Keras does not save a Dropout's random state, so a float model with one does not resume
    # identically either.
    model = small_cnn()
    kept = [layer for layer in model.layers if not isinstance(layer, keras.layers.Dropout)]
    qat = quantize_model(keras.Sequential([keras.Input((8, 8, 1)), *kept]))
    x = np.random.default_rng(3).uniform(size=(64, 8, 8, 1)).astype("float32")
    y = np.random.default_rng(4).integers(0, 10, 64)
    qat.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    qat.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    qat.save(tmp_path / "qat.keras")
    loaded = keras.models.load_model(tmp_path / "qat.keras")
    resumed = loaded.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    unbroken = qat.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(resumed, unbroken, rtol=1e-6)
    for a, b in zip(qat.get_weights(), loaded.get_weights()):  # ranges and the initialized flag included
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
