"""CachedDistiller: keras.distillation.Distiller fed with cached teacher outputs instead of the teacher."""

import keras

from tfopt import _checks
from tfopt.models._distillation import INPUTS_KEY, TEACHER_KEY, as_loss_instance, ends_in_probabilities
from tfopt.models.soft_target_distillation import SoftTargetDistillation


class _CachedTeacher(keras.Model):
    """Stands in for the teacher inside the Distiller: returns the outputs cached in the batch."""

    def __init__(self, name="cached_teacher", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict) or TEACHER_KEY not in inputs:
            raise ValueError(
                "CachedDistiller trains and evaluates on data from tfopt.models.cache_teacher_outputs (validation "
                "data included): it has no teacher to run. Evaluate `distiller.student` on plain data instead."
            )
        return inputs[TEACHER_KEY]


@keras.saving.register_keras_serializable(package="tfopt")
class CachedDistiller(keras.distillation.Distiller):
    """A `keras.distillation.Distiller` whose teacher outputs come with the data, cached once.

    Everything is Keras's Distiller (the student/distillation loss mix, the loss trackers, `compile`, `fit`,
    metrics on the student's predictions) except where the teacher's outputs come from: each batch carries them,
    as built by `tfopt.models.cache_teacher_outputs`, so no step runs the teacher. The student trains at its own
    step cost, however large the teacher is. Use it for long student runs on a fixed (un-augmented) dataset;
    keep `keras.distillation.Distiller` when the inputs change each epoch or to match intermediate layers
    (`FeatureDistillation`, `HintDistillation`), which need the live teacher.

    With `y` the labels, `z_t` the cached teacher outputs, `z_s` the student's and `a` the student loss weight:

        L = a * student_loss(y, z_s) + (1 - a) * sum_i w_i * distillation_loss_i(z_t, z_s)

    Called on cached data it predicts with the student on `inputs["inputs"]`; called on plain inputs it is the
    student. `distiller.student` is the model to keep.

    Args:
        student: the `keras.Model` to train.
        distillation_losses: a distillation loss (or list) on final outputs, e.g. `SoftTargetDistillation` or
            `keras.distillation.LogitsDistillation`. Default: `SoftTargetDistillation(temperature=4.0)`, with
            `from_logits` set by whether the student ends in softmax.
        distillation_loss_weights: weights `w_i` of the distillation losses. Default: 1 each.
        student_loss_weight: `a`, a number in [0, 1]. Default 0.5.
        name: the model's name. Default "cached_distiller".

    Example:

    >>> import numpy as np
    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    >>> from tfopt.models import cache_teacher_outputs
    >>> cached = cache_teacher_outputs(teacher, np.ones((8, 4)), np.zeros(8))
    >>> distiller = CachedDistiller(student)
    >>> distiller.compile(keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    >>> _ = distiller.fit(*cached, epochs=1, verbose=0)

    References:
        - Hinton, Vinyals and Dean, 2015, "Distilling the Knowledge in a Neural Network",
          https://arxiv.org/abs/1503.02531
    """

    def __init__(
        self,
        student,
        distillation_losses=None,
        distillation_loss_weights=None,
        student_loss_weight=0.5,
        name="cached_distiller",
        **kwargs,
    ):
        if not isinstance(student, keras.Model):
            raise TypeError(
                f"Argument `student` must be a keras.Model. Received: student of type {type(student).__name__}"
            )
        student_loss_weight = _checks.number("student_loss_weight", student_loss_weight, 0.0, 1.0)
        if distillation_losses is None:
            distillation_losses = SoftTargetDistillation(from_logits=not ends_in_probabilities(student))
        for loss in keras.tree.flatten(distillation_losses):
            if getattr(loss, "teacher_layer_name", None) or getattr(loss, "student_layer_name", None):
                raise ValueError(
                    "Argument `distillation_losses`: CachedDistiller caches final outputs only; a loss on "
                    f"intermediate layers needs the live teacher (keras.distillation.Distiller). Received: "
                    f"{type(loss).__name__}(teacher_layer_name={loss.teacher_layer_name!r}, "
                    f"student_layer_name={loss.student_layer_name!r})"
                )
        super().__init__(
            teacher=_CachedTeacher(),
            student=student,
            distillation_losses=distillation_losses,
            distillation_loss_weights=distillation_loss_weights,
            student_loss_weight=student_loss_weight,
            name=name,
            **kwargs,
        )

    def build(self, input_shape=None):
        self.built = True  # the student comes built (Distiller needs its symbolic outputs); nothing else to build

    def call(self, inputs, training=None, **kwargs):
        if isinstance(inputs, dict) and TEACHER_KEY in inputs:
            inputs = inputs[INPUTS_KEY]
        return self.student(inputs, training=training, **kwargs)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        # A named loss becomes a Loss object, which Keras scales for the replicas of a tf.distribute strategy.
        super().compile(optimizer=optimizer, loss=keras.tree.map_structure(as_loss_instance, loss), metrics=metrics,
                        **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config:  # Distiller compiles the parent without a loss; keep the student loss for loading
            config["loss"] = keras.saving.serialize_keras_object(self._student_loss_for_serialization)
        return config

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        del config["teacher"]
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["student"] = keras.saving.deserialize_keras_object(config["student"])
        config["distillation_losses"] = [
            keras.saving.deserialize_keras_object(loss) for loss in config["distillation_losses"]
        ]
        return cls(**config)

