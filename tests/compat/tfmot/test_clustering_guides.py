"""tfmot's clustering guides (clustering_example, clustering_comprehensive_guide), transcribed with the tfmot import
replaced by `import tfopt.compat.tfmot as tfmot` (TensorFlow only: the guides convert to TFLite).

Changes from the guides, none in tfmot calls: the data (MNIST-shaped digits, a few steps); `.keras` and
`.weights.h5` files instead of `.h5` and `.tf` (Keras 3's formats); the prints and summaries are assertions. Not
transcribed: the comprehensive guide's custom layer through `ClusterableLayer` (tfopt clusters custom layers that
implement `tfopt.layers.QuantizableLayer`; Dense subclasses need nothing)."""


import numpy as np
import pytest
import tensorflow as tf

import tfopt.compat.tfmot as tfmot
from tests.compat.tfmot.guide_data import evaluate_model, get_gzipped_model_size, mnist_like, tflite_kernels
from tfopt.layers import ClusterWeights


@pytest.fixture(scope="module")
def mnist():
    return mnist_like(train=600, test=200)


def test_clustering_example(mnist, tmp_path):
    (train_images, train_labels), (test_images, test_labels) = mnist
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(28, 28)),
        tf.keras.layers.Reshape(target_shape=(28, 28, 1)),
        tf.keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation=tf.nn.relu),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_images, train_labels, validation_split=0.1, epochs=3, verbose=0)
    _, baseline_model_accuracy = model.evaluate(test_images, test_labels, verbose=0)

    cluster_weights = tfmot.clustering.keras.cluster_weights
    CentroidInitialization = tfmot.clustering.keras.CentroidInitialization
    clustering_params = {"number_of_clusters": 16, "cluster_centroids_init": CentroidInitialization.LINEAR}
    clustered_model = cluster_weights(model, **clustering_params)
    opt = tf.keras.optimizers.Adam(learning_rate=1e-5)
    clustered_model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=opt,
                            metrics=["accuracy"])
    clustered_model.fit(train_images, train_labels, batch_size=500, epochs=1, validation_split=0.1, verbose=0)
    _, clustered_model_accuracy = clustered_model.evaluate(test_images, test_labels, verbose=0)
    assert clustered_model_accuracy > baseline_model_accuracy - 0.1

    final_model = tfmot.clustering.keras.strip_clustering(clustered_model)
    clustered_keras_file = str(tmp_path / "clustered.keras")
    tf.keras.models.save_model(final_model, clustered_keras_file, include_optimizer=False)
    for layer in final_model.layers:
        if layer.weights:
            assert len(np.unique(layer.kernel.numpy())) <= 16

    clustered_tflite_model = tf.lite.TFLiteConverter.from_keras_model(final_model).convert()
    float_tflite_model = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    for _, _, weights, kernel in tflite_kernels(clustered_tflite_model):
        assert weights == "float32" and len(np.unique(kernel)) <= 16

    clustered_size = get_gzipped_model_size(tmp_path, clustered_tflite_model, "clustered")
    assert clustered_size < 0.5 * get_gzipped_model_size(tmp_path, float_tflite_model, "float")

    converter = tf.lite.TFLiteConverter.from_keras_model(final_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    tflite_quant_model = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=tflite_quant_model)
    interpreter.allocate_tensors()
    test_accuracy = evaluate_model(interpreter, test_images, test_labels)
    assert abs(test_accuracy - clustered_model_accuracy) < 0.05


input_shape = [20]
x_train = np.random.default_rng(0).normal(size=(16, 20)).astype("float32")
y_train = tf.keras.utils.to_categorical(np.random.default_rng(1).integers(0, 20, 16), num_classes=20)


def setup_model():
    return tf.keras.Sequential([tf.keras.layers.Dense(20, input_shape=input_shape), tf.keras.layers.Flatten()])


@pytest.fixture(scope="module")
def pretrained_weights(tmp_path_factory):
    model = setup_model()
    model.compile(loss=tf.keras.losses.categorical_crossentropy, optimizer="adam", metrics=["accuracy"])
    model.fit(x_train, y_train, verbose=0)
    path = str(tmp_path_factory.mktemp("pretrained") / "pretrained.weights.h5")
    model.save_weights(path)
    return path


cluster_weights = tfmot.clustering.keras.cluster_weights
CentroidInitialization = tfmot.clustering.keras.CentroidInitialization
clustering_params = {"number_of_clusters": 3, "cluster_centroids_init": CentroidInitialization.KMEANS_PLUS_PLUS}


def test_comprehensive_cluster_whole_model_and_some_layers(pretrained_weights):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    clustered_model = cluster_weights(base_model, **clustering_params)
    assert [type(layer) for layer in clustered_model.layers] == [ClusterWeights, tf.keras.layers.Flatten]

    base_model = setup_model()
    base_model.load_weights(pretrained_weights)

    def apply_clustering_to_dense(layer):
        if isinstance(layer, tf.keras.layers.Dense):
            return cluster_weights(layer, **clustering_params)
        return layer

    clustered_model = tf.keras.models.clone_model(base_model, clone_function=apply_clustering_to_dense)
    wrapper = clustered_model.layers[0]
    assert isinstance(wrapper, ClusterWeights)
    assert len(np.unique(wrapper.clustered_weights()["kernel"].numpy())) == 3


def test_comprehensive_sequential_layer_and_checkpoint(tmp_path):
    clustered_model = tf.keras.Sequential([
        cluster_weights(tf.keras.layers.Dense(20, input_shape=input_shape), **clustering_params),
        tf.keras.layers.Flatten(),
    ])
    clustered_model.compile(loss=tf.keras.losses.categorical_crossentropy, optimizer="adam")
    clustered_model.fit(x_train, y_train, verbose=0)
    keras_model_file = str(tmp_path / "clustered.keras")
    clustered_model.save(keras_model_file, include_optimizer=True)
    with tfmot.clustering.keras.cluster_scope():
        loaded_model = tf.keras.models.load_model(keras_model_file)
    np.testing.assert_array_equal(loaded_model.predict(x_train, verbose=0), clustered_model.predict(x_train,
                                                                                                    verbose=0))
    model_for_export = tfmot.clustering.keras.strip_clustering(clustered_model)
    assert len(np.unique(model_for_export.layers[0].kernel.numpy())) == 3


def test_unsupported_tfmot_arguments_are_errors_that_say_so():
    with pytest.raises(ValueError, match="Argument `cluster_centroids_init` must be CentroidInitialization.LINEAR or "
                                         "KMEANS_PLUS_PLUS"):
        cluster_weights(setup_model(), 3, CentroidInitialization.DENSITY_BASED)
    with pytest.raises(ValueError, match="Argument `cluster_per_channel` must be False"):
        cluster_weights(setup_model(), 3, cluster_per_channel=True)
    with pytest.raises(TypeError, match="unexpected keyword arguments: clustering_algorithm"):
        cluster_weights(setup_model(), 3, clustering_algorithm=None)


