"""tfmot's pruning guides (pruning_with_keras, the pruning comprehensive guide, pruning_with_sparsity_2_by_4),
transcribed with the tfmot import replaced by `import tfopt.compat.tfmot as tfmot` (TensorFlow only: the guides
convert to TFLite).

Changes from the guides, none in tfmot calls: the data (MNIST-shaped digits, a few steps); `.keras` and
`.weights.h5` files instead of `.h5` and `.tf` (Keras 3's formats); the prints and summaries are assertions."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

import tfopt.compat.tfmot as tfmot
from tests.compat.tfmot.guide_data import evaluate_model, get_gzipped_model_size, mnist_like, tflite_kernels
from tfopt.compression import sparsity_report
from tfopt.layers import PruneLowMagnitude


@pytest.fixture(scope="module")
def mnist():
    return mnist_like(train=600, test=200)


@pytest.fixture(scope="module")
def baseline(mnist):
    (train_images, train_labels), _ = mnist
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
    model.fit(train_images, train_labels, epochs=3, validation_split=0.1, verbose=0)
    return model


def prune_as_the_guide_does(model, mnist, frequency=None):
    """pruning_with_keras's fine-tune; `frequency` None is the guide's schedule (tfmot's default of 100)."""
    (train_images, train_labels), (test_images, test_labels) = mnist
    prune_low_magnitude = tfmot.sparsity.keras.prune_low_magnitude
    batch_size = 128
    epochs = 2
    validation_split = 0.1
    num_images = train_images.shape[0] * (1 - validation_split)
    end_step = np.ceil(num_images / batch_size).astype(np.int32) * epochs
    extra = {} if frequency is None else {"frequency": frequency}
    pruning_params = {"pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.50, final_sparsity=0.80, begin_step=0, end_step=end_step, **extra)}
    model_for_pruning = prune_low_magnitude(model, **pruning_params)
    model_for_pruning.compile(optimizer="adam",
                              loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              metrics=["accuracy"])
    logdir = tempfile.mkdtemp()
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), tfmot.sparsity.keras.PruningSummaries(log_dir=logdir)]
    model_for_pruning.fit(train_images, train_labels, batch_size=batch_size, epochs=epochs,
                          validation_split=validation_split, callbacks=callbacks, verbose=0)
    _, model_for_pruning_accuracy = model_for_pruning.evaluate(test_images, test_labels, verbose=0)
    assert os.listdir(os.path.join(logdir, "pruning"))
    return model_for_pruning, model_for_pruning_accuracy


def test_pruning_with_keras_on_a_short_fine_tune_warns_that_the_schedule_never_prunes(baseline, mnist):
    # end_step = 10 here (60,000 images: 844), below the schedule's frequency of 100: neither tfmot nor tfopt
    # prunes. tfopt says so once, at the start of training.
    with pytest.warns(UserWarning, match="the pruning schedule never prunes in this fit") as record:
        model_for_pruning, _ = prune_as_the_guide_does(baseline, mnist)
    assert sum("never prunes" in str(w.message) for w in record) == 1
    assert sparsity_report(model_for_pruning)["total"]["sparsity"] == 0.0


def test_pruning_with_keras(baseline, mnist, tmp_path):
    (_, _), (test_images, test_labels) = mnist
    _, baseline_model_accuracy = baseline.evaluate(test_images, test_labels, verbose=0)
    model_for_pruning, model_for_pruning_accuracy = prune_as_the_guide_does(baseline, mnist, frequency=2)
    assert model_for_pruning_accuracy > baseline_model_accuracy - 0.1

    model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    assert sparsity_report(model_for_export)["total"]["sparsity"] == pytest.approx(0.8, abs=0.01)
    pruned_keras_file = str(tmp_path / "pruned.keras")
    tf.keras.models.save_model(model_for_export, pruned_keras_file, include_optimizer=False)

    converter = tf.lite.TFLiteConverter.from_keras_model(model_for_export)
    pruned_tflite_model = converter.convert()
    for _, _, _, kernel in tflite_kernels(pruned_tflite_model):
        assert np.mean(kernel == 0) == pytest.approx(0.8, abs=0.01)

    float_tflite_model = tf.lite.TFLiteConverter.from_keras_model(baseline).convert()
    pruned_size = get_gzipped_model_size(tmp_path, pruned_tflite_model, "pruned")
    assert pruned_size < get_gzipped_model_size(tmp_path, float_tflite_model, "float") * 0.6

    converter = tf.lite.TFLiteConverter.from_keras_model(model_for_export)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    quantized_and_pruned_tflite_model = converter.convert()
    interpreter = tf.lite.Interpreter(model_content=quantized_and_pruned_tflite_model)
    interpreter.allocate_tensors()
    test_accuracy = evaluate_model(interpreter, test_images, test_labels)
    assert abs(test_accuracy - model_for_pruning_accuracy) < 0.03


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


def test_comprehensive_prune_whole_and_some_layers(pretrained_weights):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    assert [type(layer) for layer in model_for_pruning.layers] == [PruneLowMagnitude, tf.keras.layers.Flatten]

    def apply_pruning_to_dense(layer):
        if isinstance(layer, tf.keras.layers.Dense):
            return tfmot.sparsity.keras.prune_low_magnitude(layer)
        return layer

    model_for_pruning = tf.keras.models.clone_model(base_model, clone_function=apply_pruning_to_dense)
    assert isinstance(model_for_pruning.layers[0], PruneLowMagnitude)


def test_comprehensive_functional_sequential_and_custom_layer():
    i = tf.keras.Input(shape=(20,))
    x = tfmot.sparsity.keras.prune_low_magnitude(tf.keras.layers.Dense(10))(i)
    o = tf.keras.layers.Flatten()(x)
    model_for_pruning = tf.keras.Model(inputs=i, outputs=o)
    assert isinstance(model_for_pruning.layers[1], PruneLowMagnitude)

    model_for_pruning = tf.keras.Sequential([
        tfmot.sparsity.keras.prune_low_magnitude(tf.keras.layers.Dense(20, input_shape=input_shape)),
        tf.keras.layers.Flatten(),
    ])
    assert model_for_pruning.built and isinstance(model_for_pruning.layers[0], PruneLowMagnitude)

    class MyDenseLayer(tf.keras.layers.Dense, tfmot.sparsity.keras.PrunableLayer):
        def get_prunable_weights(self):
            # Prune bias also, though that usually harms model accuracy too much.
            return [self.kernel, self.bias]

    model_for_pruning = tf.keras.Sequential([
        tfmot.sparsity.keras.prune_low_magnitude(MyDenseLayer(20, input_shape=input_shape)),
        tf.keras.layers.Flatten(),
    ])
    assert len(model_for_pruning.layers[0].pruned_weights) == 2


def test_comprehensive_model_fit_and_custom_training_loop(pretrained_weights):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        base_model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1))
    log_dir = tempfile.mkdtemp()
    callbacks = [tfmot.sparsity.keras.UpdatePruningStep(), tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir)]
    pruned.compile(loss=tf.keras.losses.categorical_crossentropy, optimizer="adam", metrics=["accuracy"])
    pruned.fit(x_train, y_train, callbacks=callbacks, epochs=2, verbose=0)
    assert sparsity_report(pruned)["total"]["sparsity"] == 0.5

    # Custom training loop, as the guide writes it.
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(
        base_model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1))
    loss = tf.keras.losses.categorical_crossentropy
    optimizer = tf.keras.optimizers.Adam()
    log_dir = tempfile.mkdtemp()
    unused_arg = -1
    epochs = 2
    batches = 1
    model_for_pruning.optimizer = optimizer
    step_callback = tfmot.sparsity.keras.UpdatePruningStep()
    step_callback.set_model(model_for_pruning)
    log_callback = tfmot.sparsity.keras.PruningSummaries(log_dir=log_dir)
    log_callback.set_model(model_for_pruning)
    step_callback.on_train_begin()
    for _ in range(epochs):
        log_callback.on_epoch_begin(epoch=unused_arg)
        for _ in range(batches):
            step_callback.on_train_batch_begin(batch=unused_arg)
            with tf.GradientTape() as tape:
                logits = model_for_pruning(x_train, training=True)
                loss_value = loss(y_train, logits)
                grads = tape.gradient(loss_value, model_for_pruning.trainable_variables)
                optimizer.apply_gradients(zip(grads, model_for_pruning.trainable_variables))
        step_callback.on_epoch_end(batch=unused_arg)
    kernel = model_for_pruning.layers[0].layer.kernel.numpy()
    assert np.mean(kernel == 0) == 0.5  # the callback wrote the zeros into the stored kernel


def test_comprehensive_checkpoint_and_deploy(pretrained_weights, tmp_path):
    base_model = setup_model()
    base_model.load_weights(pretrained_weights)
    model_for_pruning = tfmot.sparsity.keras.prune_low_magnitude(base_model)
    model_for_pruning.compile(loss=tf.keras.losses.categorical_crossentropy, optimizer="adam")
    model_for_pruning.fit(x_train, y_train, verbose=0)
    keras_model_file = str(tmp_path / "pruning.keras")
    model_for_pruning.save(keras_model_file, include_optimizer=True)
    with tfmot.sparsity.keras.prune_scope():
        loaded_model = tf.keras.models.load_model(keras_model_file)
    np.testing.assert_array_equal(loaded_model.predict(x_train, verbose=0), model_for_pruning.predict(x_train,
                                                                                                      verbose=0))
    model_for_export = tfmot.sparsity.keras.strip_pruning(model_for_pruning)
    assert [type(layer) for layer in model_for_export.layers] == [tf.keras.layers.Dense, tf.keras.layers.Flatten]


def test_pruning_with_sparsity_2_by_4_whole_model(mnist):
    (train_images, train_labels), _ = mnist
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer(input_shape=(28, 28)),
        tf.keras.layers.Reshape(target_shape=(28, 28, 1)),
        tf.keras.layers.Conv2D(32, 5, padding="same", activation="relu", name="pruning_sparsity_0_5"),
        tf.keras.layers.MaxPooling2D((2, 2), (2, 2), padding="same"),
        tf.keras.layers.Conv2D(64, 5, padding="same", activation="relu", name="structural_pruning"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(10, name="structural_pruning_dense"),
    ])
    # tfmot's (2, 4): 2 zeros in every 4 weights. The first Conv2D reads 1 channel: left dense, with a warning.
    with pytest.warns(UserWarning, match="leaves 1 layer\\(s\\) dense .*'pruning_sparsity_0_5' \\(Conv2D\\)"):
        pruned = tfmot.sparsity.keras.prune_low_magnitude(
            model, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1),
            sparsity_m_by_n=(2, 4))
    pruned.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(train_images[:64], train_labels[:64], batch_size=32, epochs=1, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    for name in ("structural_pruning", "structural_pruning_dense"):
        kernel = stripped.get_layer(name).kernel.numpy()
        groups = np.moveaxis(kernel, -2, -1).reshape(-1, 4)
        assert np.all(np.count_nonzero(groups, axis=-1) == 2)
    assert np.count_nonzero(stripped.get_layer("pruning_sparsity_0_5").kernel.numpy() == 0) == 0
