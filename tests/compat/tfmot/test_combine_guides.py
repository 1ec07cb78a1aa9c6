"""tfmot's collaborative-optimization guides (pcqat_example, cqat_example, pqat_example), transcribed with the
tfmot import replaced by `import tfopt.compat.tfmot as tfmot` (TensorFlow only: the guides convert to TFLite).

Changes from the guides, none in tfmot calls: the data (MNIST-shaped digits, 1 epoch, a subset); `.keras` files
instead of `.h5` (Keras 3 saves whole models as `.keras`); the guides' deep import
`tensorflow_model_optimization.python.core.clustering.keras.experimental.cluster` is `tfmot.clustering.keras`;
the prints are assertions."""

import numpy as np
import pytest
import tensorflow as tf

import tfopt.compat.tfmot as tfmot
from tests.compat.tfmot.guide_data import evaluate_model, mnist_like, tflite_kernels

CLUSTERS = 8


@pytest.fixture(scope="module")
def mnist():
    return mnist_like(train=1437, test=200)


def model_weights_sparsity(model):
    """The guide's print_model_weights_sparsity, returning {weight path: sparsity}."""
    found = {}
    for layer in model.layers:
        weights = layer.trainable_weights if isinstance(layer, tf.keras.layers.Wrapper) else layer.weights
        for weight in weights:
            if "kernel" not in weight.name or "centroid" in weight.name:
                continue
            found[weight.path] = np.count_nonzero(weight.numpy() == 0) / weight.numpy().size
    return found


def model_weight_clusters(model):
    """The guide's print_model_weight_clusters, returning {layer/weight: distinct values}."""
    found = {}
    for layer in model.layers:
        weights = layer.trainable_weights if isinstance(layer, tf.keras.layers.Wrapper) else layer.weights
        for weight in weights:
            if "quantize_layer" in weight.name:
                continue
            if "kernel" in weight.name:
                found[f"{layer.name}/{weight.name}"] = len(np.unique(weight))
    return found


@pytest.fixture(scope="module")
def baseline(mnist):
    (train_images, train_labels), _ = mnist
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(28, 28)),
        tf.keras.layers.Reshape(target_shape=(28, 28, 1)),
        tf.keras.layers.Conv2D(filters=12, kernel_size=(3, 3), activation=tf.nn.relu),
        tf.keras.layers.MaxPooling2D(pool_size=(2, 2)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10),
    ])
    opt = tf.keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(optimizer=opt, loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(train_images, train_labels, validation_split=0.1, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def stripped_pruned_model(baseline, mnist):
    (train_images, train_labels), _ = mnist
    prune_low_magnitude = tfmot.sparsity.keras.prune_low_magnitude
    pruning_params = {"pruning_schedule": tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=100)}
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    pruned_model = prune_low_magnitude(baseline, **pruning_params)
    opt = tf.keras.optimizers.Adam(learning_rate=1e-5)
    pruned_model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer=opt,
                         metrics=["accuracy"])
    # 3 epochs of 41 steps: step 100 prunes (the guide's 60,000 images prune at steps 100, 200, ...).
    pruned_model.fit(train_images, train_labels, epochs=3, validation_split=0.1, callbacks=callbacks, verbose=0)
    return tfmot.sparsity.keras.strip_pruning(pruned_model)


@pytest.fixture(scope="module")
def stripped_clustered_model(stripped_pruned_model, mnist):
    (train_images, train_labels), _ = mnist
    cluster_weights = tfmot.clustering.keras.cluster_weights
    CentroidInitialization = tfmot.clustering.keras.CentroidInitialization
    clustering_params = {"number_of_clusters": CLUSTERS,
                         "cluster_centroids_init": CentroidInitialization.KMEANS_PLUS_PLUS,
                         "preserve_sparsity": True}
    sparsity_clustered_model = cluster_weights(stripped_pruned_model, **clustering_params)
    sparsity_clustered_model.compile(optimizer="adam",
                                     loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                     metrics=["accuracy"])
    sparsity_clustered_model.fit(train_images, train_labels, epochs=1, validation_split=0.1, verbose=0)
    return tfmot.clustering.keras.strip_clustering(sparsity_clustered_model)


def test_pruning_then_sparsity_preserving_clustering(stripped_pruned_model, stripped_clustered_model):
    assert set(model_weights_sparsity(stripped_pruned_model).values()) == {0.5}
    assert all(s >= 0.5 for s in model_weights_sparsity(stripped_clustered_model).values())
    assert set(model_weight_clusters(stripped_clustered_model).values()) <= set(range(2, CLUSTERS + 1))


def test_pcqat_guide_keeps_sparsity_and_clusters_into_the_tflite_file(stripped_clustered_model, mnist):
    (train_images, train_labels), (test_images, test_labels) = mnist
    # QAT
    qat_model = tfmot.quantization.keras.quantize_model(stripped_clustered_model)
    qat_model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    qat_model.fit(train_images, train_labels, batch_size=128, epochs=1, validation_split=0.1, verbose=0)
    # PCQAT
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(stripped_clustered_model)
    pcqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model,
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True))
    pcqat_model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"])
    pcqat_model.fit(train_images, train_labels, batch_size=128, epochs=1, validation_split=0.1, verbose=0)
    # The guide's prints: PCQAT's trainable kernels are the shared values (at most 7 besides the fixed zero).
    assert all(count <= CLUSTERS for count in model_weight_clusters(pcqat_model).values())

    files = {}
    for name, keras_model in (("qat", qat_model), ("pcqat", pcqat_model)):
        converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        files[name] = converter.convert()
    for name in ("qat", "pcqat"):
        kernels = tflite_kernels(files[name])
        assert [(op, data, weights) for op, data, weights, _ in kernels] == [
            ("CONV_2D", "int8", "int8"), ("FULLY_CONNECTED", "int8", "int8")]
    for _, _, _, kernel in tflite_kernels(files["pcqat"]):
        assert np.mean(kernel == 0) >= 0.5
        for channel in kernel.reshape(kernel.shape[0], -1):
            assert len(np.unique(channel[channel != 0])) <= CLUSTERS
    qat_distinct = max(len(np.unique(c)) for _, _, _, k in tflite_kernels(files["qat"]) for c in k.reshape(
        k.shape[0], -1))
    assert qat_distinct > CLUSTERS + 1  # plain QAT spreads the shared values

    interpreter = tf.lite.Interpreter(model_content=files["pcqat"])
    interpreter.allocate_tensors()
    test_accuracy = evaluate_model(interpreter, test_images, test_labels)
    _, pcqat_accuracy = pcqat_model.evaluate(test_images, test_labels, verbose=0)
    assert test_accuracy > 0.6 and abs(test_accuracy - pcqat_accuracy) < 0.05


def test_cqat_guide(baseline, mnist):
    (train_images, train_labels), _ = mnist
    cluster_weights = tfmot.clustering.keras.cluster_weights
    CentroidInitialization = tfmot.clustering.keras.CentroidInitialization
    clustering_params = {"number_of_clusters": CLUSTERS, "cluster_centroids_init": CentroidInitialization.LINEAR}
    clustered_model = cluster_weights(baseline, **clustering_params)
    clustered_model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                            metrics=["accuracy"])
    clustered_model.fit(train_images, train_labels, batch_size=500, epochs=1, validation_split=0.1, verbose=0)
    stripped_clustered_model = tfmot.clustering.keras.strip_clustering(clustered_model)
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(stripped_clustered_model)
    cqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model, tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme())
    cqat_model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    cqat_model.fit(train_images, train_labels, batch_size=500, epochs=1, validation_split=0.1, verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(cqat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    for _, _, weights, kernel in tflite_kernels(converter.convert()):
        assert weights == "int8"
        assert max(len(np.unique(c)) for c in kernel.reshape(kernel.shape[0], -1)) <= CLUSTERS


def test_pqat_guide(stripped_pruned_model, mnist):
    (train_images, train_labels), _ = mnist
    quant_aware_annotate_model = tfmot.quantization.keras.quantize_annotate_model(stripped_pruned_model)
    pqat_model = tfmot.quantization.keras.quantize_apply(
        quant_aware_annotate_model, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    pqat_model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    pqat_model.fit(train_images, train_labels, batch_size=500, epochs=1, validation_split=0.1, verbose=0)
    assert set(model_weights_sparsity(pqat_model).values()) == {0.5}
    converter = tf.lite.TFLiteConverter.from_keras_model(pqat_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    for _, _, weights, kernel in tflite_kernels(converter.convert()):
        assert weights == "int8" and np.mean(kernel == 0) == 0.5
