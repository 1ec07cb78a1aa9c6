"""HintDistillation: FitNets hints between layers of different widths, through a learned projection."""

import keras
from keras import ops

from tfopt.models._distillation import replicas_in_sync


@keras.saving.register_keras_serializable(package="tfopt")
class HintDistillation(keras.layers.Layer, keras.distillation.FeatureDistillation):
    """Matches a student layer to a teacher layer of a different width through a trainable projection (FitNets).

    `keras.distillation.FeatureDistillation` compares two layers' outputs directly, so they must have the same
    shape: a thin student layer cannot learn from a wide teacher layer (mean squared error between a (B, 8, 8, 16)
    and a (B, 8, 8, 64) tensor fails, and between widths 1 and N it silently broadcasts). This loss adds what it
    lacks: a regressor `r` (a bias-free Dense layer on the channel axis, which on feature maps is a 1x1
    convolution) that maps the student's features to the teacher's width, trained with the student. The
    regressor lives in this loss, not in the student, so `distiller.student` (what you save and deploy) has no
    trace of it. Use it with `keras.distillation.Distiller`, usually beside a `SoftTargetDistillation`, to guide a
    thinner or shallower student's intermediate representation; hint a middle layer (FitNets hints the student's
    middle layer with the teacher's).

    With `u_t` the teacher layer's output, `v_s` the student layer's, and `W_r` the regressor's kernel:

        L = loss(u_t, v_s W_r)        (mean squared error by default)

    Both layers must have the same shape but for the last (channel) axis; the regressor is built when the
    Distiller checks the models, from the layers' symbolic shapes. As with any layer-level loss in Keras 3.15, the
    Distiller extracts the student's features in a second training-mode forward pass: layers with state
    (BatchNormalization statistics, tfopt's pruning wrappers, which count steps) see two calls per step, so hint a
    plain student, not one being pruned.

    Args:
        teacher_layer_name: name of the teacher layer to imitate.
        student_layer_name: name of the student layer that receives the hint.
        loss: the comparison, a Keras loss or its name. Default "mse".
        name: the layer's name. Default "hint_distillation".

    Example:

    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, name="wide"), keras.layers.Dense(3)])
    >>> student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="thin"), keras.layers.Dense(3)])
    >>> hint = HintDistillation("wide", "thin")
    >>> distiller = keras.distillation.Distiller(teacher, student, [hint])
    >>> tuple(hint.projection.kernel.shape)
    (4, 16)

    References:
        - Romero, Ballas, Kahou, Chassang, Gatta and Bengio, 2015, "FitNets: Hints for Thin Deep Nets",
          https://arxiv.org/abs/1412.6550
    """

    def __init__(self, teacher_layer_name, student_layer_name, loss="mse", name="hint_distillation", **kwargs):
        for argument, value in (("teacher_layer_name", teacher_layer_name), ("student_layer_name", student_layer_name)):
            if not isinstance(value, str) or not value:
                raise TypeError(f"Argument `{argument}` must be the name of a layer (a non-empty string). Received: "
                                f"{argument}={value!r}")
        keras.layers.Layer.__init__(self, name=name, **kwargs)
        self.teacher_layer_name = teacher_layer_name
        self.student_layer_name = student_layer_name
        self.loss = keras.losses.get(loss) if isinstance(loss, str) else loss
        self._loss_config = loss if isinstance(loss, str) else keras.saving.serialize_keras_object(loss)
        self.projection = None

    def validate_model_compatibility(self, teacher, student):
        """Checks that both layers exist and agree but for the channel axis, and builds the projection."""
        teacher_shape = _layer_shape("teacher", teacher, self.teacher_layer_name)
        student_shape = _layer_shape("student", student, self.student_layer_name)
        if len(teacher_shape) != len(student_shape) or any(
            t is not None and s is not None and t != s for t, s in zip(teacher_shape[1:-1], student_shape[1:-1])
        ):
            raise ValueError(
                "Arguments `teacher_layer_name` and `student_layer_name` must name layers whose outputs differ at "
                f"most in the last (channel) axis. Received: {self.teacher_layer_name!r} with output shape "
                f"{teacher_shape} and {self.student_layer_name!r} with output shape {student_shape}"
            )
        if self.projection is None:
            self.projection = keras.layers.Dense(teacher_shape[-1], use_bias=False, name="projection")
            self.projection.build(student_shape)
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def validate_outputs(self, teacher_outputs, student_outputs):
        keras.tree.assert_same_structure(teacher_outputs, student_outputs)

    def compute_loss(self, teacher_outputs, student_outputs, **kwargs):
        loss = ops.mean(self.loss(teacher_outputs, self.projection(student_outputs)))
        return loss / replicas_in_sync()  # as Keras's compiled losses under a tf.distribute strategy

    def get_config(self):
        return {
            "name": self.name,
            "teacher_layer_name": self.teacher_layer_name,
            "student_layer_name": self.student_layer_name,
            "loss": self._loss_config,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("loss"), dict):
            config["loss"] = keras.saving.deserialize_keras_object(config["loss"])
        return cls(**config)


def _layer_shape(role, model, layer_name):
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(
            f"Argument `{role}_layer_name`: the {role} has no layer {layer_name!r}. Its layers: {', '.join(names)}"
        )
    return tuple(model.get_layer(layer_name).output.shape)
