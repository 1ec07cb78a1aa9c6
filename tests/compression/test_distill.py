import json

import keras
import numpy as np
import pytest

from tfopt.callbacks import UpdatePruningStep
from tfopt.compression import (
    ConstantSparsity,
    cluster_weights,
    fit_with_teacher,
    prune_low_magnitude,
    quantize_model,
    sparsity_report,
    strip_pruning,
)
from tfopt.pipelines import compress

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(96, 6, 6, 1)).astype("float32")
Y = (X[:, :3].mean(axis=(1, 2, 3)) > X[:, 3:].mean(axis=(1, 2, 3))).astype("int32") + (X[:, 0, 0, 0] > 0.5).astype(
    "int32"
)


@pytest.fixture(scope="module")
def dense():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(X, Y, epochs=5, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("cache", [True, False])
def test_pruning_fine_tunes_against_the_teacher_which_never_changes(dense, cache):
    weights = [w.copy() for w in dense.get_weights()]
    pruned = prune_low_magnitude(dense, ConstantSparsity(0.75, begin_step=0, frequency=1))
    history = fit_with_teacher(pruned, dense, X, Y, cache=cache, epochs=2, batch_size=16,
                               callbacks=[UpdatePruningStep()], verbose=0).history
    assert {"student_loss", "distillation_loss", "accuracy"} <= set(history)
    assert history["distillation_loss"][0] > 0
    stripped = strip_pruning(pruned)
    assert sparsity_report(stripped)["total"]["sparsity"] > 0.7
    for a, b in zip(dense.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert dense.trainable


def test_cached_and_live_teachers_train_the_same_weights(dense):
    results = []
    for cache in (True, False):
        keras.utils.set_random_seed(3)
        model = quantize_model(dense)
        fit_with_teacher(model, dense, X, Y, cache=cache, epochs=1, batch_size=32, shuffle=False,
                         optimizer=keras.optimizers.SGD(0.05), verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_clustering_takes_a_teacher(dense):
    clustered = cluster_weights(dense, 4)
    history = fit_with_teacher(clustered, dense, X, Y, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(history["loss"][0])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"temperature": 0.0}, ValueError,
         "Argument `temperature` must be a finite number > 0. Received: temperature=0.0"),
        ({"student_loss_weight": 1.2}, ValueError,
         r"Argument `student_loss_weight` must be a number in \[0.0, 1.0\]. Received: student_loss_weight=1.2"),
        ({"cache": "yes"}, TypeError, "Argument `cache` must be a bool"),
    ],
)
def test_bad_arguments_name_themselves(dense, kwargs, error, message):
    with pytest.raises(error, match=message):
        fit_with_teacher(keras.models.clone_model(dense), dense, X, Y, **kwargs)


def test_teacher_with_another_output_shape_is_refused(dense):
    other = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    with pytest.raises(ValueError, match=r"Argument `teacher` must have the model's output shape \(None, 3\). "
                                         r"Received: a teacher with output shape \(None, 5\)"):
        fit_with_teacher(keras.models.clone_model(dense), other, X, Y)
    with pytest.raises(ValueError, match="Argument `teacher` must be another model than `model`"):
        fit_with_teacher(dense, dense, X, Y)
    with pytest.raises(TypeError, match="Argument `teacher` must be a keras.Model"):
        fit_with_teacher(dense, "dense.keras", X, Y)


def test_compress_with_the_input_model_as_teacher(dense, tmp_path):
    data = {"x_train": X[:80], "y_train": Y[:80], "x_test": X[80:], "y_test": Y[80:]}
    rows = compress(dense, data, tmp_path, sparsity=0.5, epochs=1, teacher=True)
    assert rows[-2]["stage"] == "pruned 50% (.keras)" and rows[-2]["sparsity"] > 0.4
    assert json.loads((tmp_path / "report.json").read_text())["meta"]["teacher"] == "distilled"
    with pytest.raises(TypeError, match="Argument `teacher` must be None, True, a keras.Model or an existing .keras"):
        compress(dense, data, tmp_path, sparsity=0.5, epochs=1, teacher="nowhere")
