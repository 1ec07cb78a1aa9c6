import os

import keras
import numpy as np
import pytest

from tfopt.models import HintDistillation, SoftTargetDistillation

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
X = RNG.uniform(size=(32, 6, 6, 1)).astype("float32")
Y = RNG.integers(0, 3, size=32)


def teacher_model():
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(12, 3, padding="same", name="t_conv"),
                             keras.layers.Flatten(), keras.layers.Dense(3, name="t_out")])


def student_model():
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, padding="same", name="s_conv"),
                             keras.layers.Flatten(), keras.layers.Dense(3, name="s_out")])


def test_feature_distillation_alone_cannot_match_different_widths():
    teacher, student = teacher_model(), student_model()
    plain = keras.distillation.FeatureDistillation(teacher_layer_name="t_conv", student_layer_name="s_conv")
    distiller = keras.distillation.Distiller(teacher, student, [plain])
    distiller.compile("adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(Exception, match="12|4"):
        distiller.fit(X, Y, epochs=1, verbose=0)


def test_the_loss_is_mse_to_the_projected_student_features():
    teacher, student = teacher_model(), student_model()
    hint = HintDistillation("t_conv", "s_conv")
    keras.distillation.Distiller(teacher, student, [hint])
    kernel = np.asarray(hint.projection.kernel)
    assert kernel.shape == (4, 12)
    t = keras.Model(teacher.inputs, teacher.get_layer("t_conv").output).predict(X, verbose=0)
    s = keras.Model(student.inputs, student.get_layer("s_conv").output).predict(X, verbose=0)
    expected = np.mean((t.astype("float64") - s.astype("float64") @ kernel) ** 2)
    np.testing.assert_allclose(float(hint.compute_loss(t, s)), expected, rtol=1e-5)


def test_projection_trains_with_the_student_and_is_absent_from_the_saved_student(tmp_path):
    teacher, student = teacher_model(), student_model()
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    hint = HintDistillation("t_conv", "s_conv")
    distiller = keras.distillation.Distiller(teacher, student, [SoftTargetDistillation(), hint],
                                             distillation_loss_weights=[1.0, 1.0], student_loss_weight=0.2)
    assert any(v is hint.projection.kernel for v in distiller.trainable_variables)
    before = np.asarray(hint.projection.kernel).copy()
    distiller.compile(keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = distiller.fit(X, Y, batch_size=8, epochs=4, verbose=0).history
    assert history["distillation_loss"][-1] < history["distillation_loss"][0]
    assert np.max(np.abs(np.asarray(hint.projection.kernel) - before)) > 1e-3
    for a, b in zip(teacher.get_weights(), teacher_weights):
        np.testing.assert_array_equal(a, b)
    path = os.path.join(tmp_path, "student.keras")
    distiller.student.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.count_params() == student_model().count_params()
    assert not any("projection" in v.path for v in loaded.weights)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), student.predict(X, verbose=0), rtol=1e-6, atol=1e-6)
    # The whole distiller (projection included) saves and loads too.
    whole = os.path.join(tmp_path, "distiller.keras")
    distiller.save(whole)
    again = keras.models.load_model(whole)
    np.testing.assert_array_equal(np.asarray(again.distillation_losses[1].projection.kernel),
                                  np.asarray(hint.projection.kernel))


@pytest.mark.parametrize(
    "teacher_layer, student_layer, message",
    [
        ("nope", "s_conv", "Argument `teacher_layer_name`: the teacher has no layer 'nope'"),
        ("t_conv", "nope", "Argument `student_layer_name`: the student has no layer 'nope'"),
        ("t_out", "s_conv", "must name layers whose outputs differ at most in the last"),
    ],
)
def test_bad_layers_name_the_argument(teacher_layer, student_layer, message):
    with pytest.raises(ValueError, match=message):
        keras.distillation.Distiller(teacher_model(), student_model(), [HintDistillation(teacher_layer, student_layer)])


def test_layer_names_must_be_strings():
    with pytest.raises(TypeError, match="Argument `teacher_layer_name` must be the name of a layer"):
        HintDistillation(None, "s_conv")
