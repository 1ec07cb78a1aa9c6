import keras
import numpy as np
import pytest

from tfopt.models import SoftTargetDistillation

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
TEACHER = RNG.normal(size=(6, 5)).astype("float32") * 3
STUDENT = RNG.normal(size=(6, 5)).astype("float32")


def reference(teacher_logits, student_logits, temperature):
    """Hinton et al.'s T^2 KL(softmax(z_t/T) || softmax(z_s/T)), batch mean, float64."""
    def log_softmax(z):
        z = z.astype("float64") / temperature
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    p, q = log_softmax(teacher_logits), log_softmax(student_logits)
    return temperature**2 * np.mean(np.sum(np.exp(p) * (p - q), axis=1))


@pytest.mark.parametrize("temperature", [1.0, 4.0, 10.0])
def test_loss_on_logits_matches_the_formula(temperature):
    loss = SoftTargetDistillation(temperature=temperature).compute_loss(TEACHER, STUDENT)
    np.testing.assert_allclose(float(loss), reference(TEACHER, STUDENT, temperature), rtol=1e-5)


def test_loss_on_probabilities_equals_the_loss_on_their_logits():
    softmax = lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # noqa: E731
    loss = SoftTargetDistillation(temperature=4.0, from_logits=False).compute_loss(softmax(TEACHER), softmax(STUDENT))
    np.testing.assert_allclose(float(loss), reference(TEACHER, STUDENT, 4.0), rtol=1e-4)


def test_identical_outputs_give_zero_loss():
    assert abs(float(SoftTargetDistillation().compute_loss(TEACHER, TEACHER))) < 1e-6


def test_config_round_trip():
    loss = SoftTargetDistillation(temperature=2.5, from_logits=False)
    again = SoftTargetDistillation.from_config(loss.get_config())
    assert (again.temperature, again.from_logits) == (2.5, False)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, SoftTargetDistillation) and restored.temperature == 2.5


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"temperature": 0}, ValueError,
         "Argument `temperature` must be a finite number > 0. Received: temperature=0"),
        ({"temperature": -2.0}, ValueError, "Received: temperature=-2.0"),
        ({"from_logits": "yes"}, TypeError,
         "Argument `from_logits` must be a bool. Received: from_logits='yes'"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        SoftTargetDistillation(**kwargs)


def test_teacher_and_student_with_different_classes_are_refused():
    with pytest.raises(ValueError, match=r"same last dimension \(the classes\).*\(6, 5\).*\(6, 3\)"):
        SoftTargetDistillation().validate_outputs(keras.ops.ones((6, 5)), keras.ops.ones((6, 3)))
    teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="Teacher and student output shapes are incompatible"):
        keras.distillation.Distiller(teacher, student, SoftTargetDistillation())
