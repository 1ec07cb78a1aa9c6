"""SoftTargetDistillation: keras.distillation's logits distillation, for models that end in softmax too."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.models._distillation import replicas_in_sync

_TINY = 1e-7


@keras.saving.register_keras_serializable(package="tfopt")
class SoftTargetDistillation(keras.distillation.LogitsDistillation):
    """Hinton et al.'s soft-target loss for `keras.distillation.Distiller`, on logits or on probabilities.

    `keras.distillation.LogitsDistillation` divides the outputs by the temperature and applies softmax, which is
    right for models that output logits and silently wrong for the many that end in a softmax layer (the demo
    CNN, most Keras examples): softmax of probabilities divided by `T` is nearly uniform, so the student learns
    almost nothing. With `from_logits=False` this loss first takes `log(p)` of the teacher's and student's
    probabilities (logits up to a constant, which softmax ignores), then does exactly what `LogitsDistillation`
    does. It computes the KL divergence from log-softmax itself: in Keras 3.15, `LogitsDistillation`'s default
    `loss="kl_divergence"` resolves to the loss *function*, which skips the softmax its `KLDivergence` branch
    applies, and compares clipped logits instead. Works on cached outputs with `tfopt.models.CachedDistiller`.

    With `z_t`, `z_s` the teacher's and student's logits (`log p` when `from_logits=False`) and `T` the
    temperature:

        L = T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

    The `T^2` factor keeps the soft-target gradients on the scale of the label loss's as `T` changes. Under a
    `tf.distribute` strategy the loss is divided by the number of replicas, as Keras does for compiled losses, so
    the gradients summed across replicas average (Keras 3.15's distillation losses are not, and count N times).

    Args:
        temperature: `T`, a number > 0. Default 4.0 (Hinton et al. use 2 to 20; 3 to 5 suits small models).
        from_logits: whether both models output logits (True) or probabilities (False). Default True.

    Example:

    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> distiller = keras.distillation.Distiller(
    ...     teacher, student, SoftTargetDistillation(temperature=4.0, from_logits=False))

    References:
        - Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge in a Neural Network",
          https://arxiv.org/abs/1503.02531
    """

    def __init__(self, temperature=4.0, from_logits=True):
        temperature = _checks.finite_number("temperature", temperature, positive=True)
        _checks.boolean("from_logits", from_logits)
        super().__init__(temperature=temperature, loss="kl_divergence")
        self.from_logits = from_logits

    def validate_outputs(self, teacher_outputs, student_outputs):
        keras.tree.assert_same_structure(teacher_outputs, student_outputs)
        for teacher, student in zip(keras.tree.flatten(teacher_outputs), keras.tree.flatten(student_outputs)):
            classes = (teacher.shape[-1], student.shape[-1])
            if None not in classes and classes[0] != classes[1]:
                raise ValueError(
                    "Teacher and student outputs must have the same last dimension (the classes). Received: "
                    f"teacher output shape {tuple(teacher.shape)}, student output shape {tuple(student.shape)}"
                )

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        losses = [
            self._soft_target_loss(teacher, student)
            for teacher, student in zip(keras.tree.flatten(teacher_outputs), keras.tree.flatten(student_outputs))
        ]
        loss = losses[0] if len(losses) == 1 else ops.sum(ops.stack(losses))
        return loss / replicas_in_sync()

    def _soft_target_loss(self, teacher, student):
        if not self.from_logits:
            teacher, student = _log(teacher), _log(student)
        teacher = ops.log_softmax(ops.cast(teacher, "float32") / self.temperature, axis=-1)
        student = ops.log_softmax(ops.cast(student, "float32") / self.temperature, axis=-1)
        kl = ops.sum(ops.exp(teacher) * (teacher - student), axis=-1)
        return self.temperature**2 * ops.mean(kl)

    def get_config(self):
        return {"temperature": self.temperature, "from_logits": self.from_logits}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _log(probabilities):
    return ops.log(ops.clip(probabilities, _TINY, 1.0))
