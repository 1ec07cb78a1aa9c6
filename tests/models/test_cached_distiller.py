import os

import keras
import numpy as np
import pytest

from tfopt.models import CachedDistiller, HintDistillation, SoftTargetDistillation, cache_teacher_outputs

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
X = RNG.normal(size=(48, 5)).astype("float32")
Y = (X[:, 0] > 0).astype("int32") + (X[:, 1] > 0).astype("int32")


def model(width, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(width, activation="relu", name=f"hidden{width}"),
                             keras.layers.Dense(3, activation="softmax")])


def test_cached_loss_equals_the_live_teachers_on_the_same_batch():
    teacher, student = model(32, 0), model(4, 1)
    live = keras.distillation.Distiller(teacher, student, SoftTargetDistillation(3.0, from_logits=False),
                                        student_loss_weight=0.3)
    cached = CachedDistiller(student, SoftTargetDistillation(3.0, from_logits=False), student_loss_weight=0.3)
    for distiller in (live, cached):
        distiller.compile(keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    inputs, labels = cache_teacher_outputs(teacher, X, Y)
    y_pred = student(X)
    expected = float(live.compute_loss(X, Y, y_pred))
    np.testing.assert_allclose(float(cached.compute_loss(inputs, labels, y_pred)), expected, rtol=1e-6)
    np.testing.assert_allclose(cached.predict(inputs, verbose=0), student.predict(X, verbose=0), rtol=1e-6)


def test_training_on_cached_outputs_follows_the_live_distiller_and_never_runs_or_changes_the_teacher():
    teacher = model(32, 0)
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    cached_data = cache_teacher_outputs(teacher, X, Y)
    results = []
    for cached in (False, True):
        student = model(4, 1)
        if cached:
            distiller = CachedDistiller(student)
            data = cached_data
        else:
            distiller = keras.distillation.Distiller(teacher, student, SoftTargetDistillation(from_logits=False))
            data = (X, Y)
        distiller.compile(keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        history = distiller.fit(*data, batch_size=16, epochs=3, shuffle=False, verbose=0).history
        results.append((history, student.get_weights()))
    (live_history, live_weights), (cached_history, cached_weights) = results
    np.testing.assert_allclose(cached_history["distillation_loss"], live_history["distillation_loss"], rtol=1e-4)
    for a, b in zip(live_weights, cached_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert cached_history["distillation_loss"][-1] < cached_history["distillation_loss"][0]
    for a, b in zip(teacher.get_weights(), teacher_weights):
        np.testing.assert_array_equal(a, b)


def test_save_load_and_resume(tmp_path):
    inputs, labels = cache_teacher_outputs(model(32, 0), X, Y)
    distiller = CachedDistiller(model(4, 1), student_loss_weight=0.25)
    distiller.compile(keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    distiller.fit(inputs, labels, batch_size=16, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "cached.keras")
    distiller.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, CachedDistiller) and loaded.student_loss_weight == 0.25
    np.testing.assert_allclose(loaded.predict(inputs, verbose=0), distiller.predict(inputs, verbose=0), rtol=1e-6)
    for a, b in zip(distiller.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    resumed = loaded.fit(inputs, labels, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"]
    unbroken = distiller.fit(inputs, labels, batch_size=16, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(resumed, unbroken, rtol=1e-5)


def test_a_cache_file_is_reused_and_checked(tmp_path):
    teacher = model(32, 0)
    path = os.path.join(tmp_path, "teacher.npz")
    first, _ = cache_teacher_outputs(teacher, X, Y, path=path)
    teacher.set_weights([np.zeros_like(w) for w in teacher.get_weights()])  # a re-run would now differ
    again, _ = cache_teacher_outputs(teacher, X, Y, path=path)
    np.testing.assert_array_equal(again["teacher_outputs"], first["teacher_outputs"])
    with pytest.raises(ValueError, match=r"Argument `path`: the cache .* was built from a dataset of 48 examples; "
                                         r"the data has 40"):
        cache_teacher_outputs(teacher, X[:40], Y[:40], path=path)
    with pytest.raises(ValueError, match="Argument `path`: the cache .* was built from different data"):
        cache_teacher_outputs(teacher, X[::-1], Y[::-1], path=path)


def test_bad_inputs_name_the_argument():
    teacher = model(32, 0)
    with pytest.raises(ValueError, match="Argument `y` is required when `x` holds arrays"):
        cache_teacher_outputs(teacher, X)
    with pytest.raises(ValueError, match="Arguments `x` and `y` must hold the same number of examples. Received: 48 "
                                         "and 40"):
        cache_teacher_outputs(teacher, X, Y[:40])
    with pytest.raises(TypeError, match="Argument `teacher` must be a keras.Model"):
        cache_teacher_outputs("teacher.keras", X, Y)
    with pytest.raises(ValueError, match="Argument `batch_size` must be an integer >= 1. Received: batch_size=0"):
        cache_teacher_outputs(teacher, X, Y, batch_size=0)
    with pytest.raises(ValueError, match="Argument `path` must name a .npz file"):
        cache_teacher_outputs(teacher, X, Y, path="teacher_cache")


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_student_loss_weight_outside_0_1_is_refused(weight):
    with pytest.raises(ValueError, match=rf"Argument `student_loss_weight` must be a number in \[0.0, 1.0\]. "
                                         rf"Received: student_loss_weight={weight}"):
        CachedDistiller(model(4, 1), student_loss_weight=weight)


def test_intermediate_layer_losses_need_the_live_teacher():
    with pytest.raises(ValueError, match="Argument `distillation_losses`: CachedDistiller caches final outputs only"):
        CachedDistiller(model(4, 1), [HintDistillation("hidden32", "hidden4")])


def test_cached_outputs_with_other_classes_than_the_student_are_refused():
    teacher = keras.Sequential([keras.Input((5,)), keras.layers.Dense(7)])
    distiller = CachedDistiller(model(4, 1))
    distiller.compile("sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"same last dimension \(the classes\)"):
        distiller.fit(*cache_teacher_outputs(teacher, X, Y), epochs=1, verbose=0)


def test_plain_validation_data_is_explained():
    distiller = CachedDistiller(model(4, 1))
    distiller.compile("sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="CachedDistiller trains and evaluates on data from"):
        distiller.evaluate(X, Y, verbose=0)
