"""tfmot's quantization-aware training guides (training_example, training_comprehensive_guide), transcribed with
the tfmot import replaced by `import tfopt.compat.tfmot as tfmot` (TensorFlow only: the guides convert to TFLite).

Changes from the guides, none in tfmot calls: the data (MNIST-shaped digits, a few steps); `.keras` and
`.weights.h5` files instead of `.h5` and `.tf` (Keras 3's formats); the prints and summaries are assertions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfopt.compat.tfmot as tfmot
from tests.compat.tfmot.guide_data import evaluate_model, mnist_like, tflite_kernels
from tfopt.layers import QuantizeWrapper

LastValueQuantizer = tfmot.quantization.keras.quantizers.LastValueQuantizer
MovingAverageQuantizer = tfmot.quantization.keras.quantizers.MovingAverageQuantizer


class DefaultDenseQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    # Configure how to quantize weights.
    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, LastValueQuantizer(num_bits=8, symmetric=True, narrow_range=False, per_axis=False))]

    # Configure how to quantize activations.
    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, MovingAverageQuantizer(num_bits=8, symmetric=False, narrow_range=False,
                                                          per_axis=False))]

    def set_quantize_weights(self, layer, quantize_weights):
        layer.kernel = quantize_weights[0]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    # Configure how to quantize outputs (may be equivalent to activations).
    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


@pytest.fixture(scope="module")
def mnist():
    return mnist_like(train=600, test=200)


def test_training_example(mnist):
    (train_images, train_labels), (test_images, test_labels) = mnist
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(28, 28)),
        tf.keras.layers.Reshape(target_shape=(28, 28, 1)),
        tf.keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation="relu"),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_images, train_labels, epochs=2, validation_split=0.1, verbose=0)

    quantize_model = tfmot.quantization.keras.quantize_model
    q_aware_model = quantize_model(model)
    q_aware_model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
    train_images_subset = train_images[0:1000]
    train_labels_subset = train_labels[0:1000]
    q_aware_model.fit(train_images_subset, train_labels_subset, batch_size=500, epochs=1, validation_split=0.1,
                      verbose=0)
    _, baseline_model_accuracy = model.evaluate(test_images, test_labels, verbose=0)
    _, q_aware_model_accuracy = q_aware_model.evaluate(test_images, test_labels, verbose=0)
    assert q_aware_model_accuracy > baseline_model_accuracy - 0.05

    converter = tf.lite.TFLiteConverter.from_keras_model(q_aware_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    quantized_tflite_model = converter.convert()
    assert [k[:3] for k in tflite_kernels(quantized_tflite_model)] == [("CONV_2D", "int8", "int8"),
                                                                       ("FULLY_CONNECTED", "int8", "int8")]
    interpreter = tf.lite.Interpreter(model_content=quantized_tflite_model)
    interpreter.allocate_tensors()
    test_accuracy = evaluate_model(interpreter, test_images, test_labels)
    assert abs(test_accuracy - q_aware_model_accuracy) < 0.03

    # float TFLite model for the size comparison
    float_converter = tf.lite.TFLiteConverter.from_keras_model(model)
    float_tflite_model = float_converter.convert()
    assert len(quantized_tflite_model) < len(float_tflite_model) / 2.5


def setup_model():
    return tf.keras.Sequential([
        tf.keras.layers.Dense(20, input_shape=(20,)),
        tf.keras.layers.Flatten(),
    ])


@pytest.fixture(scope="module")
def pretrained_weights(tmp_path_factory):
    x_train = np.random.default_rng(0).normal(size=(64, 20)).astype("float32")
    y_train = tf.keras.utils.to_categorical(np.random.default_rng(1).integers(0, 20, 64), 20)
    model = setup_model()
    model.compile(loss=tf.keras.losses.categorical_crossentropy, optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, verbose=0)
    path = str(tmp_path_factory.mktemp("pretrained") / "pretrained.weights.h5")
    model.save_weights(path)
    return path


def test_comprehensive_quantize_whole_model(pretrained_weights):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    quant_aware_model = tfmot.quantization.keras.quantize_model(base_model)
    quant_aware_model.summary(print_fn=lambda *_: None)
    assert [type(layer) for layer in quant_aware_model.layers] == [QuantizeWrapper, tf.keras.layers.Flatten]


def test_comprehensive_quantize_some_layers(pretrained_weights):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)

    def apply_quantization_to_dense(layer):
        if isinstance(layer, tf.keras.layers.Dense):
            return tfmot.quantization.keras.quantize_annotate_layer(layer)
        return layer

    annotated_model = tf.keras.models.clone_model(base_model, clone_function=apply_quantization_to_dense)
    quant_aware_model = tfmot.quantization.keras.quantize_apply(annotated_model)
    assert quant_aware_model.layers[0].name == "quant_dense" or quant_aware_model.layers[0].name.startswith("quant_")
    np.testing.assert_array_equal(quant_aware_model.layers[0].layer.kernel.numpy(), base_model.layers[0].kernel.numpy())


def test_comprehensive_functional_and_sequential_examples():
    i = tf.keras.Input(shape=(20,))
    x = tfmot.quantization.keras.quantize_annotate_layer(tf.keras.layers.Dense(10))(i)
    o = tf.keras.layers.Flatten()(x)
    annotated_model = tf.keras.Model(inputs=i, outputs=o)
    quant_aware_model = tfmot.quantization.keras.quantize_apply(annotated_model)
    assert isinstance(quant_aware_model.layers[1], QuantizeWrapper) and quant_aware_model.layers[1].quantize_inputs

    input_shape = (20,)
    annotated_model = tf.keras.Sequential([
        tfmot.quantization.keras.quantize_annotate_layer(tf.keras.layers.Dense(20, input_shape=input_shape)),
        tf.keras.layers.Flatten(),
    ])
    quant_aware_model = tfmot.quantization.keras.quantize_apply(annotated_model)
    assert isinstance(quant_aware_model.layers[0], QuantizeWrapper)


def test_comprehensive_checkpoint_and_deserialize(pretrained_weights, tmp_path):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    quant_aware_model = tfmot.quantization.keras.quantize_model(base_model)
    keras_model_file = str(tmp_path / "qat.keras")
    quant_aware_model.save(keras_model_file)
    with tfmot.quantization.keras.quantize_scope():
        loaded_model = tf.keras.models.load_model(keras_model_file)
    x = np.ones((2, 20), "float32")
    np.testing.assert_array_equal(loaded_model.predict(x, verbose=0), quant_aware_model.predict(x, verbose=0))


def test_comprehensive_create_and_deploy(pretrained_weights):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    quant_aware_model = tfmot.quantization.keras.quantize_model(base_model)
    quant_aware_model.compile(optimizer="adam", loss="mse")
    quant_aware_model.fit(np.random.default_rng(2).normal(size=(32, 20)), np.zeros((32, 20)), verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(quant_aware_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    quantized_tflite_model = converter.convert()
    assert [k[:3] for k in tflite_kernels(quantized_tflite_model)] == [("FULLY_CONNECTED", "int8", "int8")]


def fit_briefly(model):
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.default_rng(3).normal(size=(32, 20)), np.zeros((32, 20)), verbose=0)
    return model


def test_comprehensive_quantize_custom_keras_layer(tmp_path):
    quantize_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    quantize_annotate_model = tfmot.quantization.keras.quantize_annotate_model
    quantize_scope = tfmot.quantization.keras.quantize_scope

    class CustomLayer(tf.keras.layers.Dense):
        pass

    model = quantize_annotate_model(tf.keras.Sequential([
        quantize_annotate_layer(CustomLayer(20, input_shape=(20,)), DefaultDenseQuantizeConfig()),
        tf.keras.layers.Flatten(),
    ]))
    with quantize_scope({"DefaultDenseQuantizeConfig": DefaultDenseQuantizeConfig, "CustomLayer": CustomLayer}):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    wrapper = fit_briefly(quant_aware_model).layers[0]
    assert isinstance(wrapper.layer, CustomLayer) and isinstance(wrapper.quantize_config, DefaultDenseQuantizeConfig)
    # Saved and loaded inside the scope that names the unregistered classes, as tfmot's guide says.
    quant_aware_model.save(tmp_path / "custom.keras")
    with quantize_scope({"DefaultDenseQuantizeConfig": DefaultDenseQuantizeConfig, "CustomLayer": CustomLayer}):
        loaded = tf.keras.models.load_model(tmp_path / "custom.keras")
    x = np.ones((2, 20), "float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), quant_aware_model.predict(x, verbose=0))


def test_comprehensive_modify_quantization_parameters():
    quantize_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    quantize_annotate_model = tfmot.quantization.keras.quantize_annotate_model
    quantize_scope = tfmot.quantization.keras.quantize_scope

    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        # Configure weights to quantize with 4-bit instead of 8-bits.
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, LastValueQuantizer(num_bits=4, symmetric=True, narrow_range=False,
                                                      per_axis=False))]

    model = quantize_annotate_model(tf.keras.Sequential([
        quantize_annotate_layer(tf.keras.layers.Dense(20, input_shape=(20,)), ModifiedDenseQuantizeConfig()),
        tf.keras.layers.Flatten(),
    ]))
    with quantize_scope({"ModifiedDenseQuantizeConfig": ModifiedDenseQuantizeConfig}):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    kernel = fit_briefly(quant_aware_model).layers[0].quantized_weights()["kernel"]
    assert len(np.unique(keras.ops.convert_to_numpy(kernel))) <= 16


def test_comprehensive_modify_parts_of_layer_to_quantize():
    quantize_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    quantize_annotate_model = tfmot.quantization.keras.quantize_annotate_model
    quantize_scope = tfmot.quantization.keras.quantize_scope

    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        def get_activations_and_quantizers(self, layer):
            # Skip quantizing activations.
            return []

        def set_quantize_activations(self, layer, quantize_activations):
            # Empty since `get_activaations_and_quantizers` returns
            # an empty list.
            return

    model = quantize_annotate_model(tf.keras.Sequential([
        quantize_annotate_layer(tf.keras.layers.Dense(20, input_shape=(20,)), ModifiedDenseQuantizeConfig()),
        tf.keras.layers.Flatten(),
    ]))
    with quantize_scope({"ModifiedDenseQuantizeConfig": ModifiedDenseQuantizeConfig}):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    wrapper = fit_briefly(quant_aware_model).layers[0]
    assert wrapper._config_activations == [] and len(wrapper._config_weights) == 1


def test_comprehensive_use_custom_quantization_algorithm():
    quantize_annotate_layer = tfmot.quantization.keras.quantize_annotate_layer
    quantize_annotate_model = tfmot.quantization.keras.quantize_annotate_model
    quantize_scope = tfmot.quantization.keras.quantize_scope

    class FixedRangeQuantizer(tfmot.quantization.keras.quantizers.Quantizer):
        """Quantizer which forces outputs to be between -1 and 1."""

        def build(self, tensor_shape, name, layer):
            # Not needed. No new TensorFlow variables needed.
            return {}

        def __call__(self, inputs, training, weights, **kwargs):
            return tf.keras.backend.clip(inputs, -1.0, 1.0)

        def get_config(self):
            # Not needed. No __init__ parameters to serialize.
            return {}

    class ModifiedDenseQuantizeConfig(DefaultDenseQuantizeConfig):
        # Configure weights to quantize with 4-bit instead of 8-bits.
        def get_weights_and_quantizers(self, layer):
            # Use custom algorithm defined in `FixedRangeQuantizer` instead of default Quantizer.
            return [(layer.kernel, FixedRangeQuantizer())]

    model = quantize_annotate_model(tf.keras.Sequential([
        quantize_annotate_layer(tf.keras.layers.Dense(20, input_shape=(20,)), ModifiedDenseQuantizeConfig()),
        tf.keras.layers.Flatten(),
    ]))
    with quantize_scope({"ModifiedDenseQuantizeConfig": ModifiedDenseQuantizeConfig}):
        quant_aware_model = tfmot.quantization.keras.quantize_apply(model)
    wrapper = quant_aware_model.layers[0]
    wrapper.layer.kernel.assign(np.linspace(-3.0, 3.0, 400, dtype="float32").reshape(20, 20))
    kernel = keras.ops.convert_to_numpy(wrapper.quantized_weights()["kernel"])
    np.testing.assert_array_equal(kernel, np.clip(wrapper.layer.kernel.numpy(), -1.0, 1.0))
