"""cache_teacher_outputs on tf.data pipelines (TensorFlow only): shuffling is fine, random augmentation is refused."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfopt.models import CachedDistiller, cache_teacher_outputs

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 5)).astype("float32")
Y = RNG.integers(0, 3, size=40)


def teacher():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])


def test_a_shuffled_pipeline_caches_each_example_with_its_own_outputs():
    model = teacher()
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).shuffle(40, seed=1, reshuffle_each_iteration=True).batch(8)
    inputs, labels = cache_teacher_outputs(model, dataset)
    assert inputs["inputs"].shape == (40, 5) and labels.shape == (40,)
    np.testing.assert_allclose(inputs["teacher_outputs"], model.predict(inputs["inputs"], verbose=0), rtol=1e-6)
    assert sorted(labels.tolist()) == sorted(Y.tolist())
    distiller = CachedDistiller(keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)]))
    distiller.compile("sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert np.isfinite(distiller.fit(inputs, labels, epochs=1, verbose=0).history["loss"][0])


def test_random_augmentation_in_the_pipeline_is_refused():
    noise = tf.random.Generator.from_seed(1)  # its state moves on, so each pass draws new noise
    dataset = tf.data.Dataset.from_tensor_slices((X, Y)).batch(8).map(
        lambda x, y: (x + noise.normal(tf.shape(x), stddev=0.1), y))
    with pytest.raises(ValueError, match="Argument `x`: the dataset gives different inputs on each pass"):
        cache_teacher_outputs(teacher(), dataset)


def test_a_dataset_without_labels_is_refused():
    with pytest.raises(ValueError, match=r"Argument `x`: a dataset must yield \(x, y\) batches"):
        cache_teacher_outputs(teacher(), tf.data.Dataset.from_tensor_slices(X).batch(8))
